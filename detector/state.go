package detector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"net/netip"
	"slices"
	"time"
)

// The state snapshot lets a restarted daemon keep its baselines and
// remember whom it banned. It is a compact binary encoding, versioned and
// checksummed so a torn or corrupt file is recognised and ignored instead
// of loaded.
const (
	stateMagic   = "FGSTATE1"
	stateVersion = 1
)

// ErrBadState is returned by RestoreState for a snapshot that is corrupt,
// truncated, of another version, or made with an incompatible config.
var ErrBadState = errors.New("bad detector state snapshot")

// stateWriter appends little-endian values.
type stateWriter struct{ b []byte }

func (w *stateWriter) u8(v uint8)    { w.b = append(w.b, v) }
func (w *stateWriter) u16(v uint16)  { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *stateWriter) u32(v uint32)  { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *stateWriter) u64(v uint64)  { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *stateWriter) f64(v float64) { w.u64(math.Float64bits(v)) }
func (w *stateWriter) i64(v int64)   { w.u64(uint64(v)) }
func (w *stateWriter) addr(a Addr)   { w.b = append(w.b, a[:]...) }
func (w *stateWriter) time(t time.Time) {
	w.i64(t.UnixNano())
}
func (w *stateWriter) prefix(p netip.Prefix) {
	w.addr(AddrFrom(p.Addr()))
	w.u8(uint8(p.Bits()))
	w.u8(boolByte(p.Addr().Is4()))
}
func (w *stateWriter) key(s *keyState) {
	w.f64(s.pps.mean)
	w.f64(s.pps.variance)
	w.f64(s.bps.mean)
	w.f64(s.bps.variance)
	w.u32(s.lastTick)
	w.u16(s.samples)
	w.u8(s.over)
	w.u8(s.calm)
	w.u8(uint8(s.flags))
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// stateReader reads what stateWriter wrote; the first short read sets err.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) take(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.err = fmt.Errorf("%w: truncated", ErrBadState)
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *stateReader) u8() uint8       { return r.take(1)[0] }
func (r *stateReader) u16() uint16     { return binary.LittleEndian.Uint16(r.take(2)) }
func (r *stateReader) u32() uint32     { return binary.LittleEndian.Uint32(r.take(4)) }
func (r *stateReader) u64() uint64     { return binary.LittleEndian.Uint64(r.take(8)) }
func (r *stateReader) f64() float64    { return math.Float64frombits(r.u64()) }
func (r *stateReader) time() time.Time { return time.Unix(0, int64(r.u64())).UTC() }
func (r *stateReader) addr() Addr {
	var a Addr
	copy(a[:], r.take(16))
	return a
}
func (r *stateReader) prefix() netip.Prefix {
	a, bits, v4 := r.addr(), int(r.u8()), r.u8() == 1
	na := netip.AddrFrom16(a)
	if v4 {
		na = na.Unmap()
	}
	p, err := na.Prefix(bits)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%w: prefix %v/%d", ErrBadState, na, bits)
	}
	return p
}
func (r *stateReader) key() keyState {
	var s keyState
	s.pps.mean, s.pps.variance = r.f64(), r.f64()
	s.bps.mean, s.bps.variance = r.f64(), r.f64()
	s.lastTick, s.samples = r.u32(), r.u16()
	s.over, s.calm, s.flags = r.u8(), r.u8(), keyFlags(r.u8())
	return s
}

// configStamp identifies the settings a snapshot's keys depend on: a
// snapshot made with another tick or other prefix lengths would be
// misread, so it is refused.
func configStamp(c *Config) uint64 {
	h := crc32.NewIEEE()
	fmt.Fprintf(h, "%d %v %v", c.Tick.D(), c.Prefixes.IPv4, c.Prefixes.IPv6)
	return uint64(h.Sum32())
}

// MarshalState encodes what the engine has learnt and decided: baselines
// of every tracked key, the aggregate baselines and priors, active bans and
// remembered offences.
func (e *Engine) MarshalState() []byte {
	w := &stateWriter{b: make([]byte, 0, 64+64*(e.sources.len()+e.prefixes.len()))}
	w.b = append(w.b, stateMagic...)
	w.u32(stateVersion)
	w.u64(configStamp(&e.cfg))
	w.u32(e.tick)
	w.u32(e.warmEnd)
	for i := range e.agg {
		a := &e.agg[i]
		w.f64(a.pps.mean)
		w.f64(a.pps.variance)
		w.f64(a.bps.mean)
		w.f64(a.bps.variance)
		w.u32(a.samples)
	}
	w.f64(e.srcPrior.value)
	w.u8(boolByte(e.srcPrior.ready))
	w.u32(uint32(len(e.pfxPrior)))
	for i := range e.pfxPrior {
		w.f64(e.pfxPrior[i].value)
		w.u8(boolByte(e.pfxPrior[i].ready))
	}
	w.u32(uint32(e.sources.len()))
	e.sources.all(func(a Addr, s *keyState) {
		w.addr(a)
		w.key(s)
	})
	w.u32(uint32(e.prefixes.len()))
	for k, i := range e.prefixes.index {
		w.addr(k.addr)
		w.u8(k.bits)
		w.key(&e.prefixes.slots[i])
	}
	w.u32(uint32(len(e.bans.list)))
	for i := range e.bans.list {
		b := &e.bans.list[i]
		w.prefix(b.Prefix)
		w.i64(int64(b.TTL))
		w.time(b.Expires)
		w.u8(uint8(b.Scope))
		w.f64(b.HoldPPS)
		w.u8(boolByte(b.DryRun))
		w.f64(b.LastPPS)
		w.u32(b.seen)
		w.u8(boolByte(b.Manual))
	}
	w.u32(uint32(len(e.bans.offences)))
	for p, o := range e.bans.offences {
		w.prefix(p)
		w.u32(uint32(o.count))
		w.time(o.last)
	}
	w.u32(uint32(len(e.bans.pardons)))
	for p, until := range e.bans.pardons {
		w.prefix(p)
		w.time(until)
	}
	w.u32(crc32.ChecksumIEEE(w.b))
	return w.b
}

// RestoreState replaces the engine's learnt state with a snapshot made by
// MarshalState. On error the engine is unchanged.
func (e *Engine) RestoreState(data []byte) error {
	if len(data) < len(stateMagic)+8 || string(data[:len(stateMagic)]) != stateMagic {
		return fmt.Errorf("%w: not a floodguard state snapshot", ErrBadState)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return fmt.Errorf("%w: checksum mismatch (torn or corrupt file)", ErrBadState)
	}
	r := &stateReader{b: body[len(stateMagic):]}
	if v := r.u32(); v != stateVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadState, v, stateVersion)
	}
	if r.u64() != configStamp(&e.cfg) {
		return fmt.Errorf("%w: made with another tick or other prefix lengths", ErrBadState)
	}
	fresh, err := New(e.cfg, e.enf)
	if err != nil {
		return err
	}
	fresh.SetExtraAllowlist(e.extraAllow)
	// The snapshot may predate the allowlist: the first Step lifts the
	// bans it now covers.
	fresh.allowChanged = true
	fresh.tick, fresh.warmEnd = r.u32(), r.u32()
	for i := range fresh.agg {
		a := &fresh.agg[i]
		a.pps.mean, a.pps.variance = r.f64(), r.f64()
		a.bps.mean, a.bps.variance = r.f64(), r.f64()
		a.samples = r.u32()
	}
	fresh.srcPrior.value, fresh.srcPrior.ready = r.f64(), r.u8() == 1
	if np := int(r.u32()); np != len(fresh.pfxPrior) {
		return fmt.Errorf("%w: %d prefix priors, want %d", ErrBadState, np, len(fresh.pfxPrior))
	}
	for i := range fresh.pfxPrior {
		fresh.pfxPrior[i].value, fresh.pfxPrior[i].ready = r.f64(), r.u8() == 1
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		a := r.addr()
		s := r.key()
		// Own trip levels are worked out afresh below.
		s.flags &^= flagTripLevel
		*fresh.sources.add(a, s.lastTick) = s
		if s.flags&(flagAnomalous|flagBanned) != 0 {
			fresh.sources.get(a).flags &^= flagListed
			fresh.listSource(fresh.sources.get(a), a)
		}
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		k := prefixKey{addr: r.addr(), bits: r.u8()}
		s := r.key()
		s.flags &^= flagListed
		*fresh.prefixes.add(k, s.lastTick) = s
		if s.flags&(flagAnomalous|flagBanned) != 0 {
			st := fresh.prefixes.get(k)
			st.flags |= flagListed
			fresh.anomPfx = append(fresh.anomPfx, k)
		}
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		var b ActiveBan
		b.Prefix = r.prefix()
		b.TTL = time.Duration(r.u64())
		b.Expires = r.time()
		b.Scope = Scope(r.u8())
		b.HoldPPS = r.f64()
		b.DryRun = r.u8() == 1
		b.LastPPS, b.seen = r.f64(), r.u32()
		b.Manual = r.u8() == 1
		fresh.bans.idx[b.Prefix] = len(fresh.bans.list)
		fresh.bans.list = append(fresh.bans.list, b)
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		p := r.prefix()
		fresh.bans.offences[p] = offence{count: int(r.u32()), last: r.time()}
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		p := r.prefix()
		fresh.bans.pardons[p] = r.time()
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadState, len(r.b))
	}
	fresh.stats = e.stats
	fresh.restoreTripLevels(&e.trip)
	*e = *fresh
	return nil
}

// AdoptBan takes over a rule found in the data plane that the engine does
// not know (its snapshot was lost, or an operator installed it): it will be
// renewed or lifted at expiry like the engine's own bans. A rule over the
// allowlist is refused (ErrAllowlisted): the caller removes it.
func (e *Engine) AdoptBan(r Rule, scope Scope) error {
	if e.bans.get(r.Prefix) != nil {
		return nil
	}
	if a, ok := e.allowlistedBy(r.Prefix); ok {
		return fmt.Errorf("adopt %s: %w (%s)", r.Prefix, ErrAllowlisted, a)
	}
	e.bans.idx[r.Prefix] = len(e.bans.list)
	e.bans.list = append(e.bans.list, ActiveBan{Rule: r, Scope: scope, HoldPPS: e.cfg.Distributed.MinSourcePPS, seen: e.tick})
	if s := e.keyOf(r.Prefix); s != nil {
		s.flags |= flagBanned
	}
	e.noteTripPrefix(r.Prefix)
	return nil
}

// SetExtraAllowlist replaces the allowlist entries that come from outside
// the config (the host's own addresses, its gateways, loopback), keeping the
// configured ones. If the allowlist changed, the next Step lifts every ban
// it now covers (an unban event each) and re-sends the sources exempt from
// signature rules.
func (e *Engine) SetExtraAllowlist(extra []netip.Prefix) {
	e.extraAllow = slices.Clone(extra)
	allow := make([]netip.Prefix, 0, len(e.cfg.Bans.Allowlist)+len(extra))
	for _, c := range e.cfg.Bans.Allowlist {
		allow = append(allow, c.Prefix)
	}
	allow = append(allow, extra...)
	if !slices.Equal(allow, e.allow) {
		e.allowChanged = true
	}
	e.allow = allow
}

// Reload switches to a new configuration, keeping everything learnt. The
// tick and the prefix lengths shape the learnt state and need a restart. A
// ban the new allowlist covers is lifted at the next Step.
func (e *Engine) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if configStamp(&cfg) != configStamp(&e.cfg) {
		return fmt.Errorf("reload: tick and prefixes cannot change without a restart")
	}
	e.cfg = cfg
	// The thresholds may have changed: own trip levels follow as sources
	// are judged, the global one now.
	e.trip.globalOK = false
	tick := cfg.Tick.D()
	e.alpha = alphaFor(float64(cfg.HalfLife.D()) / float64(tick))
	e.decay = newDecayTable(e.alpha)
	e.SetExtraAllowlist(e.extraAllow)
	return nil
}
