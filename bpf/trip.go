package bpf

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/floodguard/floodguard/detector"
)

// Trips (trip.h, DESIGN.md "Trips"): the levels user space gives the
// program, and the reader of the trips it reports.

// DefaultTripCap is the default number of trips each CPU reports per tick
// (SetTripLevel): a spoofed flood whose sources each cross the level
// cannot turn the ring buffer into work; the tick's end judges the rest.
const DefaultTripCap = 64

// SetTripLevel sets the level of every source without one of its own
// (packets and bytes within a tick; 0: never by that measure; both 0:
// trips off) and the most trips per CPU and tick.
func (x *XDP) SetTripLevel(packets, bytes uint64, capPerTick uint32) {
	atomic.StoreUint32(&x.admit.TripCap, capPerTick)
	atomic.StoreUint64(&x.admit.TripBytes, bytes)
	atomic.StoreUint64(&x.admit.TripPackets, packets)
}

// TripLevel returns the global trip level and cap (SetTripLevel).
func (x *XDP) TripLevel() (packets, bytes uint64, capPerTick uint32) {
	return atomic.LoadUint64(&x.admit.TripPackets), atomic.LoadUint64(&x.admit.TripBytes), atomic.LoadUint32(&x.admit.TripCap)
}

// SourceTripLevel is one source's own trip level, for UpdateTripLevels.
type SourceTripLevel struct {
	Addr    detector.Addr
	Packets uint64
	Bytes   uint64
	Remove  bool // the source goes back to the global level
}

// UpdateTripLevels sets or removes sources' own trip levels, then
// publishes whether any is left (the program looks them up only then). The
// program reads a source's level once per tick, so a change applies from
// the next tick.
func (x *XDP) UpdateTripLevels(levels []SourceTripLevel) error {
	if len(levels) == 0 {
		return nil
	}
	x.sigMu.Lock()
	defer x.sigMu.Unlock()
	for i := range levels {
		l := &levels[i]
		var err error
		if l.Remove {
			err = x.tripLevels.Delete(&l.Addr)
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				err = nil
			}
		} else {
			err = x.tripLevels.Put(&l.Addr, TripLevelValue{Packets: l.Packets, Bytes: l.Bytes})
		}
		if err != nil {
			return fmt.Errorf("trip level of %v: %w", l.Addr, err)
		}
	}
	return x.publishFlags(false)
}

// Trip is a source the program reported as having reached its trip level.
type Trip struct {
	Addr detector.Addr
	// Packets and Bytes are its counts in the tick when it did.
	Packets, Bytes uint64
	// TimeNs is when (CLOCK_MONOTONIC, MonotonicNow's clock).
	TimeNs uint64
	Class  detector.Class
	// Epoch is the admission epoch (XDP.Epoch) it tripped in: a trip of
	// an epoch already read is history.
	Epoch uint32
}

// TripReader reads the trips the program reports. Read blocks; Close (from
// another goroutine) makes it return os.ErrClosed.
type TripReader struct {
	rd  *ringbuf.Reader
	rec ringbuf.Record
}

// NewTripReader returns a reader of x's trips. There should be one.
func (x *XDP) NewTripReader() (*TripReader, error) {
	rd, err := ringbuf.NewReader(x.trips)
	if err != nil {
		return nil, fmt.Errorf("trips: %w", err)
	}
	return &TripReader{rd: rd}, nil
}

// Read waits for the next trip.
func (r *TripReader) Read() (Trip, error) {
	if err := r.rd.ReadInto(&r.rec); err != nil {
		if errors.Is(err, ringbuf.ErrClosed) {
			return Trip{}, os.ErrClosed
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return Trip{}, err
		}
		return Trip{}, fmt.Errorf("read trip: %w", err)
	}
	if len(r.rec.RawSample) < int(unsafe.Sizeof(TripRecord{})) {
		return Trip{}, fmt.Errorf("read trip: %d-byte record", len(r.rec.RawSample))
	}
	var t TripRecord
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&t)), unsafe.Sizeof(t)), r.rec.RawSample)
	return Trip{Addr: t.Addr, Packets: t.Packets, Bytes: t.Bytes, TimeNs: t.TimeNs, Class: detector.Class(t.Class), Epoch: t.Epoch}, nil
}

// SetDeadline makes Read return os.ErrDeadlineExceeded once t has passed
// without a trip (zero: no deadline).
func (r *TripReader) SetDeadline(t time.Time) { r.rd.SetDeadline(t) }

// Close stops the reader; a Read in progress returns os.ErrClosed.
func (r *TripReader) Close() error { return r.rd.Close() }
