package bpf

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/floodguard/floodguard/detector"
)

// Admission of new sources (admit.h, DESIGN.md "Admission"): the settings
// user space writes through the memory-mapped fg_admission, and Probation,
// the Go model of the program's probation table that the replay runs.

// setAdmission publishes the threshold and budget and, on a fresh map, a
// random seed. Called by Load.
func (x *XDP) setAdmission(threshold, budget int) error {
	if atomic.LoadUint32(&x.admit.Seed) == 0 {
		var b [4]byte
		for binary.LittleEndian.Uint32(b[:]) == 0 {
			if _, err := rand.Read(b[:]); err != nil {
				return fmt.Errorf("admission seed: %w", err)
			}
		}
		atomic.StoreUint32(&x.admit.Seed, binary.LittleEndian.Uint32(b[:]))
	}
	return x.SetAdmission(threshold, budget)
}

// SetAdmission sets the admission threshold and budget of the running
// program (Options.AdmitAfter, Options.AdmitBudget, after defaults).
func (x *XDP) SetAdmission(threshold, budget int) error {
	if threshold < 1 || threshold > MaxAdmit {
		return fmt.Errorf("%w: admit after %d frames: must be 1..%d", ErrInvalidOptions, threshold, MaxAdmit)
	}
	if budget < 0 || budget > maxAdmitBudget {
		return fmt.Errorf("%w: admission budget %d: must be 0..%d", ErrInvalidOptions, budget, maxAdmitBudget)
	}
	atomic.StoreUint32(&x.admit.Budget, uint32(budget))
	atomic.StoreUint32(&x.admit.Threshold, uint32(threshold))
	return nil
}

// SetAdmissionSeed sets the probation table's hash seed: for tests that
// compare the program with Probation, which must use the same seed.
func (x *XDP) SetAdmissionSeed(seed uint32) { atomic.StoreUint32(&x.admit.Seed, seed) }

// AdvanceEpoch starts a new admission epoch: frames recorded on probation
// before it are no longer added to their source's entry at admission, as
// they belong to a tick already read. The live source calls it at every
// tick. It also returns to the program the slots of entries deleted
// before the previous call (slots.go).
func (x *XDP) AdvanceEpoch() error {
	atomic.AddUint32(&x.admit.Epoch, 1)
	return x.recycleSlots()
}

// Epoch returns the current admission epoch.
func (x *XDP) Epoch() uint32 { return atomic.LoadUint32(&x.admit.Epoch) }

// Admission returns the program's admission settings.
func (x *XDP) Admission() AdmissionValue {
	return AdmissionValue{
		Threshold: atomic.LoadUint32(&x.admit.Threshold),
		Epoch:     atomic.LoadUint32(&x.admit.Epoch),
		Seed:      atomic.LoadUint32(&x.admit.Seed),
		Budget:    atomic.LoadUint32(&x.admit.Budget),
	}
}

// probeSlot is probe_slot (admit.h).
func probeSlot(a *detector.Addr, seed uint32) uint32 {
	h := seed
	for i := 0; i < 16; i += 4 {
		h = (h ^ binary.LittleEndian.Uint32(a[i:])) * probeMul
		h ^= h >> 15
	}
	return h >> (32 - probeBits)
}

// Probation is the Go model of one CPU's probation table (admit.h): the
// replay runs every new source's frames through it, so that replayed
// sources are admitted exactly when the program would admit them on one
// CPU. The zero value is not usable; see NewProbation.
type Probation struct {
	threshold uint32
	seed      uint32
	epoch     uint32
	budget    uint32 // free admissions per epoch
	used      uint32 // free admissions in this epoch
	slots     []ProbeValue
}

// NewProbation returns a table admitting budget sources per epoch at their
// first frame and the others at their threshold-th (1: every source at its
// first; see Options.AdmitAfter and AdmitBudget), hashing with seed.
func NewProbation(threshold, budget int, seed uint32) (*Probation, error) {
	if threshold < 1 || threshold > MaxAdmit {
		return nil, fmt.Errorf("%w: admit after %d frames: must be 1..%d", ErrInvalidOptions, threshold, MaxAdmit)
	}
	if budget < 0 || budget > maxAdmitBudget {
		return nil, fmt.Errorf("%w: admission budget %d: must be 0..%d", ErrInvalidOptions, budget, maxAdmitBudget)
	}
	p := &Probation{threshold: uint32(threshold), budget: uint32(budget), seed: seed}
	if threshold > 1 {
		p.slots = make([]ProbeValue, ProbeSlots)
	}
	return p, nil
}

// AdvanceEpoch is XDP.AdvanceEpoch: the replay calls it at every tick.
func (p *Probation) AdvanceEpoch() { p.epoch, p.used = p.epoch+1, 0 }

// Threshold returns the admission threshold.
func (p *Probation) Threshold() int { return int(p.threshold) }

// Admitted is what Admit hands back for an admitted source: the frames
// recorded on probation in this epoch, to count before the admitting one.
type Admitted struct {
	detector.Counters
	UDPSrcPort uint16
}

// Admit puts a frame (class, wire length, whether it was dropped, its UDP
// source port or 0) of a source that has no entry on probation, and
// reports whether the source is admitted with it; then rec holds the
// frames recorded before it in this epoch (the admitting frame is not in
// it).
func (p *Probation) Admit(a *detector.Addr, class detector.Class, wire uint64, dropped bool, udpPort uint16, rec *Admitted) bool {
	*rec = Admitted{}
	if p.threshold <= 1 {
		return true
	}
	if p.used < p.budget {
		p.used++
		return true
	}
	s := &p.slots[probeSlot(a, p.seed)]
	switch {
	case s.Addr != *a:
		*s = ProbeValue{Addr: *a, Epoch: p.epoch}
	case s.Epoch != p.epoch:
		s.N, s.UDPSport, s.Epoch = 0, 0, p.epoch
	}
	if uint32(s.Seen)+1 >= p.threshold {
		rec.UDPSrcPort = s.UDPSport
		s.addRecords(&rec.Counters)
		*s = ProbeValue{}
		return true
	}
	if s.N < probeRecords {
		s.Class[s.N] = uint8(class)
		if dropped {
			s.Class[s.N] |= probeDropped
		}
		s.Len[s.N] = uint32(wire)
		s.N++
	}
	if udpPort != 0 {
		s.UDPSport = udpPort
	}
	s.Seen++
	return false
}
