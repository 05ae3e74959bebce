package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/detector"
)

// TakeSources deletes the per-source entries for keys and appends their last
// values to dst. For each entry the read and the delete
// are one operation (BPF_MAP_LOOKUP_AND_DELETE_ELEM, Linux 5.14+), so a frame
// counted before the delete is in the value returned: evicting an idle
// source loses nothing. Keys already gone are skipped.
func (x *XDP) TakeSources(keys []detector.Addr, dst []Source) ([]Source, error) {
	if len(keys) == 0 {
		return dst, nil
	}
	var v SourceValue
	for i := range keys {
		err := x.sources.LookupAndDelete(&keys[i], &v)
		switch {
		case err == nil:
			dst = append(dst, sourceOf(&keys[i], &v))
		case errors.Is(err, ebpf.ErrKeyNotExist):
		default:
			return dst, fmt.Errorf("take source %v: %w", keys[i], err)
		}
	}
	return dst, nil
}
