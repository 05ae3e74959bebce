package capture

import (
	"time"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
)

// DefaultSourceIdleTimeout is how long a source may be silent before its
// per-source entry is removed (LiveOptions.IdleTimeout, and its model in
// the replay, ReplayOptions.SourceIdleTimeout).
const DefaultSourceIdleTimeout = 5 * time.Minute

// A source whose entry holds fewer than FewPackets packets is removed
// after DefaultFewPacketsIdleTimeout of silence rather than the idle
// timeout: what a spoofed flood admits within the admission budget
// (bpf.Options.AdmitBudget) leaves within seconds (LiveOptions).
const (
	FewPackets                   = 8
	DefaultFewPacketsIdleTimeout = 10 * time.Second
)

// fewPacketsIdle is the few-packets idle timeout for a tick: the default,
// but at least two ticks.
func fewPacketsIdle(tick time.Duration) time.Duration {
	return max(DefaultFewPacketsIdleTimeout, 2*tick)
}

// DefaultAdmissionSeed keys the replay's probation hash: fixed, so that a
// replay is deterministic. The live program's seed is random (bpf.Load).
const DefaultAdmissionSeed = 0x5eed_f100

// admission models, for the replay, which sources the XDP program holds an
// entry for (bpf DESIGN.md, "Admission"): a source gets one when the
// admission budget or the probation table (bpf.Probation, the program's on
// one CPU) admits it, and loses it when it has been silent for the idle
// timeout (or the few-packets one), as the live source evicts it. Sources not admitted are counted only in the tick's
// totals, as the program counts them only in its global counters.
type admission struct {
	probe   *bpf.Probation
	idle    time.Duration
	fewIdle time.Duration // idle timeout of entries with few packets
	seen    map[detector.Addr]*entry
	rec     bpf.Admitted
	// sweepAt is the size of seen above which forgotten entries are
	// swept out (twice the size after the last sweep).
	sweepAt int
}

// entry is what the model keeps of an admitted source: the start of the
// last tick it sent in, and its packets since admission (up to the tick
// before).
type entry struct {
	last    time.Time
	packets uint64
}

// expired reports whether the live source would have removed e's entry by
// the tick starting at start.
func (m *admission) expired(e *entry, start time.Time) bool {
	idle := start.Sub(e.last)
	return idle > m.idle || (e.packets < FewPackets && idle > m.fewIdle)
}

func newAdmission(threshold, budget int, seed uint32, idle, fewIdle time.Duration) (*admission, error) {
	p, err := bpf.NewProbation(threshold, budget, seed)
	if err != nil {
		return nil, err
	}
	return &admission{probe: p, idle: idle, fewIdle: fewIdle, seen: make(map[detector.Addr]*entry), sweepAt: 1 << 16}, nil
}

// tick starts the tick beginning at start: a new probation epoch.
func (m *admission) tick(start time.Time) {
	m.probe.AdvanceEpoch()
	if len(m.seen) > m.sweepAt {
		for a, e := range m.seen {
			if m.expired(e, start) {
				delete(m.seen, a)
			}
		}
		m.sweepAt = max(2*len(m.seen), 1<<16)
	}
}

// admitted reports whether a holds an entry at its first packet of the
// tick starting at start, and if so records that it sent in this tick. An
// entry silent for longer than the idle timeout is gone, as the live
// source evicts it.
func (m *admission) admitted(a *detector.Addr, start time.Time) bool {
	if m.probe.Threshold() <= 1 {
		return true
	}
	e, ok := m.seen[*a]
	if !ok {
		return false
	}
	if m.expired(e, start) {
		delete(m.seen, *a)
		return false
	}
	e.last = start
	return true
}

// closed records the packets of the tick's admitted sources.
func (m *admission) closed(srcs []detector.Source) {
	if m.probe.Threshold() <= 1 {
		return
	}
	for i := range srcs {
		if e := m.seen[srcs[i].Addr]; e != nil {
			e.packets += srcs[i].TotalPackets()
		}
	}
}

// probation puts a packet of a source without an entry on probation and
// reports whether the source is admitted with it; then m.rec holds what
// the probation table recorded of it in this tick.
func (m *admission) probation(pkt *Packet, wire uint64, dropped bool, start time.Time) bool {
	var port uint16
	if pkt.Class == detector.ClassUDP && pkt.L4 {
		port = pkt.SrcPort
	}
	if !m.probe.Admit(&pkt.Src, pkt.Class, wire, dropped, port, &m.rec) {
		return false
	}
	m.seen[pkt.Src] = &entry{last: start}
	return true
}
