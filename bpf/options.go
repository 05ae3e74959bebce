package bpf

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// What a caller of Load chooses and what it can get back: Options and their
// defaults and validation, attach modes, the errors callers branch on, and
// classify, which maps kernel errors onto those errors.

// Defaults for Options.
const (
	// DefaultPinDir is where maps and the link are pinned so that a restarted
	// daemon adopts the running program and its rules.
	DefaultPinDir = "/sys/fs/bpf/floodguard"
	// DefaultMaxSources is the default capacity of the per-source map. Its
	// memory is preallocated: about MaxSources * (128 * possible CPUs + 64)
	// bytes.
	DefaultMaxSources = 1 << 20
	// DefaultMaxRules is the default capacity of the exact-rule map and of
	// each prefix-rule trie.
	DefaultMaxRules = 1 << 16

	maxMaxSources = 1 << 28
	maxMaxRules   = 1 << 24
)

// Errors callers branch on; test with errors.Is.
var (
	// ErrInvalidOptions is returned for Options that fail validation, before
	// any system call.
	ErrInvalidOptions = errors.New("invalid options")
	// ErrNoInterface is returned when Options.Interface does not exist.
	ErrNoInterface = errors.New("no such interface")
	// ErrPermission is returned when the kernel refuses to create maps or
	// load the program: the process is not root and lacks CAP_BPF and
	// CAP_NET_ADMIN (or CAP_SYS_ADMIN on old kernels).
	ErrPermission = errors.New("not permitted to use BPF (need root, or CAP_BPF and CAP_NET_ADMIN)")
	// ErrBPFFSNotMounted is returned when the pin directory is not on a bpf
	// filesystem (mount -t bpf bpf /sys/fs/bpf).
	ErrBPFFSNotMounted = errors.New("bpffs is not mounted at the pin directory")
	// ErrXDPBusy is returned when another XDP program is attached to the
	// interface and Options.Replace is not set.
	ErrXDPBusy = errors.New("another XDP program is attached to the interface")
	// ErrKernelTooOld is returned when the kernel lacks a feature floodguard
	// needs; the most recent are bpf_ktime_get_coarse_ns (Linux 5.11,
	// probed) and atomic fetch-and-add (Linux 5.12, used by the signature
	// rate limiter: an older verifier rejects the program).
	ErrKernelTooOld = errors.New("kernel too old for floodguard")
	// ErrPinConflict is returned when the pin directory holds a floodguard
	// link attached to another interface.
	ErrPinConflict = errors.New("pin directory belongs to a program attached to another interface")
)

// AttachMode selects how the program is attached.
type AttachMode int

const (
	// ModeAuto tries native (driver) mode and falls back to generic mode;
	// XDP.Fallback says why native mode failed.
	ModeAuto AttachMode = iota
	// ModeNative attaches in driver mode only.
	ModeNative
	// ModeGeneric attaches in generic (SKB) mode only: slower, works on any
	// interface.
	ModeGeneric
)

func (m AttachMode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return fmt.Sprintf("AttachMode(%d)", int(m))
}

// Options configure Load. The zero value of each field selects its default.
type Options struct {
	// Interface is the network interface to attach to. Empty means load
	// the program and fresh maps without attaching or pinning anything:
	// for tests, benchmarks (Program.Run) and offline use.
	Interface string
	// Mode selects native or generic XDP; ModeAuto by default.
	Mode AttachMode
	// Replace detaches any other XDP program from Interface instead of
	// failing with ErrXDPBusy.
	Replace bool
	// PinDir is the bpffs directory holding the pins; DefaultPinDir when
	// empty. Must be absolute. Used only with Interface.
	PinDir string
	// MaxSources is the capacity of the per-source map; DefaultMaxSources
	// when 0. When adopting pinned maps their capacity wins.
	MaxSources uint32
	// MaxRules is the capacity of the exact-rule map and of each prefix-rule
	// trie; DefaultMaxRules when 0. When adopting pinned maps their capacity
	// wins.
	MaxRules uint32
	// AdmitAfter is the number of frames a new source sends before it
	// gets a per-source entry (DESIGN.md, "Admission"): 1 admits every
	// source at its first frame; DefaultAdmitAfter when 0; at most
	// MaxAdmit. It is a setting of the running program: the last Load (or
	// SetAdmitAfter) decides.
	AdmitAfter int
	// AdmitBudget is how many new sources each CPU admits per tick at
	// their first frame before admission applies (DefaultAdmitBudget
	// when 0; negative: none). Like AdmitAfter, a setting of the running
	// program.
	AdmitBudget int
}

// DefaultAdmitAfter is the default admission threshold: past the budget, a
// source that sends one or two frames and vanishes never costs an entry.
const DefaultAdmitAfter = 3

// DefaultAdmitBudget is the default number of sources each CPU admits per
// tick at their first frame: more than an ordinary tick brings (a flash
// crowd's clients pass the threshold within a tick anyway), far fewer than
// a spoofed flood.
const DefaultAdmitBudget = 1024

const maxAdmitBudget = 1 << 30

func (o Options) withDefaults() Options {
	if o.PinDir == "" {
		o.PinDir = DefaultPinDir
	}
	if o.MaxSources == 0 {
		o.MaxSources = DefaultMaxSources
	}
	if o.MaxRules == 0 {
		o.MaxRules = DefaultMaxRules
	}
	if o.AdmitAfter == 0 {
		o.AdmitAfter = DefaultAdmitAfter
	}
	switch {
	case o.AdmitBudget == 0:
		o.AdmitBudget = DefaultAdmitBudget
	case o.AdmitBudget < 0:
		o.AdmitBudget = 0
	}
	return o
}

// validate checks options without system calls.
func (o Options) validate() error {
	if o.Interface != "" {
		if len(o.Interface) >= unix.IFNAMSIZ || strings.ContainsAny(o.Interface, "/ \t\n:") || o.Interface == "." || o.Interface == ".." {
			return fmt.Errorf("%w: interface name %q", ErrInvalidOptions, o.Interface)
		}
	}
	if o.Mode < ModeAuto || o.Mode > ModeGeneric {
		return fmt.Errorf("%w: attach mode %d", ErrInvalidOptions, int(o.Mode))
	}
	if !filepath.IsAbs(o.PinDir) || filepath.Clean(o.PinDir) != strings.TrimSuffix(o.PinDir, "/") || o.PinDir == "/" {
		return fmt.Errorf("%w: pin directory %q must be a clean absolute path below /", ErrInvalidOptions, o.PinDir)
	}
	// bpffs refuses to create names with dots. Only the last component is
	// necessarily created by floodguard; the directories above it may lie
	// outside bpffs (a private mount under /tmp/x.y, say).
	if strings.Contains(filepath.Base(o.PinDir), ".") {
		return fmt.Errorf("%w: pin directory %q: bpffs does not allow dots in names", ErrInvalidOptions, o.PinDir)
	}
	if o.MaxSources > maxMaxSources {
		return fmt.Errorf("%w: max sources %d above %d", ErrInvalidOptions, o.MaxSources, maxMaxSources)
	}
	if o.AdmitAfter < 1 || o.AdmitAfter > MaxAdmit {
		return fmt.Errorf("%w: admit after %d frames: must be 1..%d", ErrInvalidOptions, o.AdmitAfter, MaxAdmit)
	}
	if o.AdmitBudget > maxAdmitBudget {
		return fmt.Errorf("%w: admission budget %d above %d", ErrInvalidOptions, o.AdmitBudget, maxAdmitBudget)
	}
	if o.MaxRules > maxMaxRules {
		return fmt.Errorf("%w: max rules %d above %d", ErrInvalidOptions, o.MaxRules, maxMaxRules)
	}
	return nil
}

// classify wraps err for op, adding ErrPermission or ErrKernelTooOld when
// the kernel said so.
func classify(op string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%s: %w: %w", op, ErrPermission, err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%s: %w: %w", op, ErrKernelTooOld, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
