package bpf

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// Checks Load makes before it loads anything: that the pin directory is on
// bpffs and that the kernel has the features the program needs.

// checkBPFFS returns ErrBPFFSNotMounted unless dir, or its closest existing
// ancestor, is on a bpf filesystem.
func checkBPFFS(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if errors.Is(err, unix.ENOENT) && p != "/" {
			continue
		}
		if err != nil {
			return fmt.Errorf("statfs %s: %w", p, err)
		}
		if st.Type != unix.BPF_FS_MAGIC {
			return fmt.Errorf("%w: %s is not on bpffs (mount -t bpf bpf %s)", ErrBPFFSNotMounted, p, p)
		}
		return nil
	}
}

// checkKernel returns ErrKernelTooOld if a feature probe says the kernel
// lacks something the program needs. Inconclusive probes (e.g. without
// privileges) are ignored: loading then fails with the real reason. XDP
// bpf_link (5.9) is checked by the attach itself.
func checkKernel() error {
	for _, c := range []struct {
		what  string
		probe func() error
	}{
		{"XDP programs (Linux 4.8)", func() error { return features.HaveProgramType(ebpf.XDP) }},
		{"per-CPU hash maps (Linux 4.6)", func() error { return features.HaveMapType(ebpf.PerCPUHash) }},
		{"LPM tries (Linux 4.11)", func() error { return features.HaveMapType(ebpf.LPMTrie) }},
		{"bpf_ktime_get_coarse_ns (Linux 5.11)", func() error {
			return features.HaveProgramHelper(ebpf.XDP, asm.FnKtimeGetCoarseNs)
		}},
		// The port summer (sumports.c): a syscall program with bpf_loop
		// and bpf_map_lookup_percpu_elem.
		{"BPF_PROG_TYPE_SYSCALL programs (Linux 5.14)", func() error { return features.HaveProgramType(ebpf.Syscall) }},
		{"bpf_loop (Linux 5.17)", func() error { return features.HaveProgramHelper(ebpf.Syscall, asm.FnLoop) }},
		{"bpf_map_lookup_percpu_elem (Linux 5.19)", func() error {
			return features.HaveProgramHelper(ebpf.Syscall, asm.FnMapLookupPercpuElem)
		}},
	} {
		if err := c.probe(); errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("%w: no %s: %w", ErrKernelTooOld, c.what, err)
		}
	}
	return nil
}
