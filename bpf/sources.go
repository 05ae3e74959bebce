package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
)

// Source is a per-source entry summed over CPUs. Counters are cumulative
// since the entry was created (the live source turns them into per-tick
// deltas); LastSeenNs is CLOCK_MONOTONIC (MonotonicNow).
type Source struct {
	Addr detector.Addr
	detector.Counters
	// UDPSrcPort is the last UDP source port seen (from the CPU that saw
	// the source last); 0 if none.
	UDPSrcPort uint16
	LastSeenNs uint64
}

// sumSource adds the per-CPU copies of one entry into s.
func sumSource(s *Source, addr *detector.Addr, vals []SourceValue) {
	*s = Source{Addr: *addr}
	var portSeen uint64
	for i := range vals {
		v := &vals[i]
		for c := range NumClasses {
			s.Packets[c] += v.Packets[c]
			s.Bytes[c] += v.Bytes[c]
		}
		s.DroppedPackets += v.DroppedPackets
		s.DroppedBytes += v.DroppedBytes
		if v.LastSeenNs > s.LastSeenNs {
			s.LastSeenNs = v.LastSeenNs
		}
		if v.UDPSrcPort != 0 && v.LastSeenNs >= portSeen {
			portSeen = v.LastSeenNs
			s.UDPSrcPort = v.UDPSrcPort
		}
	}
}

// DefaultReadBatch is the number of entries a SourceReader asks the kernel
// for per system call.
const DefaultReadBatch = 4096

// SourceReader reads the per-source map with batch lookups, reusing its
// buffers: in steady state a full read allocates nothing per entry. It is
// not safe for concurrent use; each reader belongs to one goroutine.
type SourceReader struct {
	m       *ebpf.Map
	ncpu    int
	keys    []detector.Addr
	vals    []SourceValue // len(keys) * ncpu, per-CPU values entry-major
	noBatch bool          // the kernel has no batch operations: iterate
}

// NewSourceReader returns a reader of x's per-source map asking for batch
// entries per system call (DefaultReadBatch if batch <= 0).
func (x *XDP) NewSourceReader(batch int) *SourceReader {
	if batch <= 0 {
		batch = DefaultReadBatch
	}
	return &SourceReader{
		m:    x.sources,
		ncpu: x.ncpu,
		keys: make([]detector.Addr, batch),
		vals: make([]SourceValue, batch*x.ncpu),
	}
}

// AppendSources appends every per-source entry, summed over CPUs, to dst
// and returns the extended slice. Pass the previous result sliced to zero
// length to reuse its storage. Entries inserted or deleted during the read
// may or may not be seen; none is seen twice.
func (r *SourceReader) AppendSources(dst []Source) ([]Source, error) {
	if !r.noBatch {
		out, err := r.appendBatch(dst)
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return out, err
		}
		r.noBatch = true
	}
	return r.appendIter(dst)
}

func (r *SourceReader) appendBatch(dst []Source) ([]Source, error) {
	var cursor ebpf.MapBatchCursor
	for {
		n, err := r.m.BatchLookup(&cursor, r.keys, r.vals, nil)
		done := errors.Is(err, ebpf.ErrKeyNotExist)
		if err != nil && !done {
			if errors.Is(err, unix.ENOSPC) && len(r.keys) < 1<<20 {
				// A hash bucket holds more entries than a batch: grow and
				// retry from the same bucket.
				r.keys = make([]detector.Addr, 2*len(r.keys))
				r.vals = make([]SourceValue, len(r.keys)*r.ncpu)
				continue
			}
			return dst, fmt.Errorf("read sources: %w", err)
		}
		for i := range n {
			dst = append(dst, Source{})
			sumSource(&dst[len(dst)-1], &r.keys[i], r.vals[i*r.ncpu:(i+1)*r.ncpu])
		}
		if done {
			return dst, nil
		}
	}
}

func (r *SourceReader) appendIter(dst []Source) ([]Source, error) {
	var key detector.Addr
	vals := r.vals[:r.ncpu]
	it := r.m.Iterate()
	for it.Next(&key, vals) {
		dst = append(dst, Source{})
		sumSource(&dst[len(dst)-1], &key, vals)
	}
	if err := it.Err(); err != nil {
		return dst, fmt.Errorf("read sources: %w", err)
	}
	return dst, nil
}

// LookupSource returns the entry for addr summed over CPUs, and false if the
// source is not tracked.
func (x *XDP) LookupSource(addr detector.Addr) (Source, bool, error) {
	vals := make([]SourceValue, x.ncpu)
	if err := x.sources.Lookup(&addr, vals); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Source{}, false, nil
		}
		return Source{}, false, fmt.Errorf("lookup source %v: %w", addr, err)
	}
	var s Source
	sumSource(&s, &addr, vals)
	return s, true, nil
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
	}
	return s, nil
}
