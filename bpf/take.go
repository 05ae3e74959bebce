package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/detector"
)

// TakeSources deletes the per-source entries for keys and appends their last
// values to dst. Each address is deleted from fg_sources
// (BPF_MAP_LOOKUP_AND_DELETE_ELEM, Linux 5.14+) before its slot is read, so
// a frame counted before the delete is in the value returned: evicting an
// idle source loses nothing. Keys already gone are skipped.
func (x *XDP) TakeSources(keys []detector.Addr, dst []Source) ([]Source, error) {
	var slot uint32
	for i := range keys {
		err := x.sources.LookupAndDelete(&keys[i], &slot)
		switch {
		case err == nil:
			v, err := x.slot(slot)
			if err != nil {
				return dst, fmt.Errorf("take source %v: %w", keys[i], err)
			}
			dst = append(dst, sourceOf(&keys[i], &v.SourceValue, slot))
			x.releaseSlot(slot)
		case errors.Is(err, ebpf.ErrKeyNotExist):
		default:
			return dst, fmt.Errorf("take source %v: %w", keys[i], err)
		}
	}
	return dst, nil
}
