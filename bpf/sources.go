package bpf

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
)

// Source is a per-source entry. Counters are cumulative
// since the entry was created (the live source turns them into per-tick
// deltas); LastSeenNs is CLOCK_MONOTONIC (MonotonicNow).
type Source struct {
	Addr detector.Addr
	detector.Counters
	// UDPSrcPort is the last UDP source port seen; 0 if none.
	UDPSrcPort uint16
	LastSeenNs uint64
}

// sourceOf returns the Source of an entry.
func sourceOf(addr *detector.Addr, v *SourceValue) Source {
	s := Source{Addr: *addr, UDPSrcPort: v.UDPSrcPort, LastSeenNs: v.LastSeenNs}
	s.Packets, s.Bytes = v.Packets, v.Bytes
	s.DroppedPackets, s.DroppedBytes = v.DroppedPackets, v.DroppedBytes
	return s
}

// DefaultReadBatch is the number of entries a SourceReader asks the kernel
// for per system call.
const DefaultReadBatch = 4096

// SourceReader reads the per-source map with batch lookups, reusing its
// buffers: in steady state a full read allocates nothing per entry. It is
// not safe for concurrent use; each reader belongs to one goroutine.
type SourceReader struct {
	m       *ebpf.Map
	keys    []detector.Addr
	vals    []SourceValue // len(keys)
	noBatch bool          // the kernel has no batch operations: iterate
	cursor  ebpf.MapBatchCursor
	resume  bool // the last read stopped at its deadline: go on from cursor
}

// NewSourceReader returns a reader of x's per-source map asking for batch
// entries per system call (DefaultReadBatch if batch <= 0).
func (x *XDP) NewSourceReader(batch int) *SourceReader {
	if batch <= 0 {
		batch = DefaultReadBatch
	}
	return &SourceReader{
		m:    x.sources,
		keys: make([]detector.Addr, batch),
		vals: make([]SourceValue, batch),
	}
}

// AppendSources appends every per-source entry to dst and returns the
// extended slice. Pass the previous result sliced to zero length to reuse
// its storage. Entries inserted or deleted during the read may or may not
// be seen; none is seen twice.
func (r *SourceReader) AppendSources(dst []Source) ([]Source, error) {
	dst, _, err := r.AppendSourcesUntil(dst, time.Time{})
	return dst, err
}

// AppendSourcesUntil is AppendSources with a deadline (none if zero): past
// it, the read stops after the batch in progress and returns complete
// false; the next call goes on from there, and the one that reaches the
// end of the map returns complete true. A full pass over the map then
// spans several calls: each entry is seen once per pass (entries inserted
// or deleted meanwhile may or may not be).
func (r *SourceReader) AppendSourcesUntil(dst []Source, deadline time.Time) (_ []Source, complete bool, err error) {
	if !r.noBatch {
		out, complete, err := r.appendBatch(dst, deadline)
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return out, complete, err
		}
		r.noBatch = true
	}
	dst, err = r.appendIter(dst)
	return dst, true, err
}

func (r *SourceReader) appendBatch(dst []Source, deadline time.Time) ([]Source, bool, error) {
	if !r.resume {
		r.cursor = ebpf.MapBatchCursor{}
	}
	r.resume = false
	for {
		n, err := r.m.BatchLookup(&r.cursor, r.keys, r.vals, nil)
		done := errors.Is(err, ebpf.ErrKeyNotExist)
		if err != nil && !done {
			if errors.Is(err, unix.ENOSPC) && len(r.keys) < 1<<20 {
				// A hash bucket holds more entries than a batch: grow and
				// retry from the same bucket.
				r.keys = make([]detector.Addr, 2*len(r.keys))
				r.vals = make([]SourceValue, len(r.keys))
				continue
			}
			return dst, true, fmt.Errorf("read sources: %w", err)
		}
		for i := range n {
			dst = append(dst, sourceOf(&r.keys[i], &r.vals[i]))
		}
		if done {
			return dst, true, nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			r.resume = true
			return dst, false, nil
		}
	}
}

func (r *SourceReader) appendIter(dst []Source) ([]Source, error) {
	var key detector.Addr
	var val SourceValue
	it := r.m.Iterate()
	for it.Next(&key, &val) {
		dst = append(dst, sourceOf(&key, &val))
	}
	if err := it.Err(); err != nil {
		return dst, fmt.Errorf("read sources: %w", err)
	}
	return dst, nil
}

// LookupSource returns the entry for addr, and false if the source is not
// tracked.
func (x *XDP) LookupSource(addr detector.Addr) (Source, bool, error) {
	var v SourceValue
	if err := x.sources.Lookup(&addr, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Source{}, false, nil
		}
		return Source{}, false, fmt.Errorf("lookup source %v: %w", addr, err)
	}
	return sourceOf(&addr, &v), true, nil
}

// DeleteSources deletes the entries for keys (idle sources) and returns how
// many it deleted; keys already gone are skipped.
func (x *XDP) DeleteSources(keys []detector.Addr) (int, error) {
	deleted := 0
	for len(keys) > 0 {
		n, err := x.sources.BatchDelete(keys, nil)
		deleted += n
		switch {
		case err == nil:
			return deleted, nil
		case errors.Is(err, ebpf.ErrKeyNotExist):
			// Stopped at a missing key: skip it.
			keys = keys[n+1:]
		case errors.Is(err, ebpf.ErrNotSupported):
			return x.deleteEach(keys, deleted)
		default:
			return deleted, fmt.Errorf("delete sources: %w", err)
		}
	}
	return deleted, nil
}

func (x *XDP) deleteEach(keys []detector.Addr, deleted int) (int, error) {
	for i := range keys {
		err := x.sources.Delete(&keys[i])
		switch {
		case err == nil:
			deleted++
		case errors.Is(err, ebpf.ErrKeyNotExist):
		default:
			return deleted, fmt.Errorf("delete source %v: %w", keys[i], err)
		}
	}
	return deleted, nil
}

// ReadStats returns the global counters summed over CPUs.
func (x *XDP) ReadStats() (Stats, error) {
	vals := make([]Stats, x.ncpu)
	if err := x.stats.Lookup(uint32(0), vals); err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	var s Stats
	for i := range vals {
		v := &vals[i]
		for c := range NumClasses {
			s.Packets[c] += v.Packets[c]
			s.Bytes[c] += v.Bytes[c]
			s.DroppedClassPackets[c] += v.DroppedClassPackets[c]
			s.DroppedClassBytes[c] += v.DroppedClassBytes[c]
		}
		s.DroppedPackets += v.DroppedPackets
		s.DroppedBytes += v.DroppedBytes
		s.UnparsedPackets += v.UnparsedPackets
		s.UnparsedBytes += v.UnparsedBytes
		s.SourceInsertFailures += v.SourceInsertFailures
		s.ProbationPackets += v.ProbationPackets
		s.ProbationBytes += v.ProbationBytes
		s.Admitted += v.Admitted
		s.ProbationCredited += v.ProbationCredited
		s.Trips += v.Trips
		s.TripsCapped += v.TripsCapped
	}
	return s, nil
}
