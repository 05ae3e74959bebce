// Package config owns floodguard's configuration file: its whole type (the
// detector's settings at the top level, the daemon's under "daemon", paging
// under "paging"), the defaults, reading and parsing with errors that name
// the key and its line, and validation of every section. The daemon, replay,
// page and the operator commands all read the file through it.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/yamlconf"
	"github.com/floodguard/floodguard/paging"
	"github.com/floodguard/floodguard/upstream"
)

// DefaultPath is where the packaged daemon reads its config.
const DefaultPath = "/etc/floodguard/floodguard.yaml"

// File is floodguard's whole configuration file.
type File struct {
	detector.Config `yaml:",inline"`
	Daemon          Daemon        `yaml:"daemon"`
	Paging          paging.Config `yaml:"paging"`
	// Upstream is nil without an "upstream" section: no BGP speaker.
	Upstream *upstream.Config `yaml:"upstream"`
}

// Daemon is the daemon's section of the file (key "daemon").
type Daemon struct {
	// Interface to protect; the --interface flag overrides it.
	Interface string `yaml:"interface"`
	// AttachMode is auto (native, falling back to generic with a warning),
	// native or generic.
	AttachMode string `yaml:"attach_mode"`
	// PinDir holds the pinned program, link and maps on bpffs.
	PinDir string `yaml:"pin_dir"`
	// StateDir holds the detector snapshot (systemd StateDirectory).
	StateDir string `yaml:"state_dir"`
	// RuntimeDir holds the control socket (systemd RuntimeDirectory).
	RuntimeDir string `yaml:"runtime_dir"`
	// SnapshotInterval is how often the detector state is saved.
	SnapshotInterval detector.Duration `yaml:"snapshot_interval"`
	// MaxSources and MaxRules size the kernel maps when they are created.
	MaxSources uint32 `yaml:"max_sources"`
	MaxRules   uint32 `yaml:"max_rules"`
	// SourceIdleTimeout removes sources silent this long from the kernel map.
	SourceIdleTimeout detector.Duration `yaml:"source_idle_timeout"`
	// AdmitBudget is how many new sources each CPU gives an entry of
	// their own at their first packet per tick; past it (a spoofed flood)
	// a new source needs AdmitAfter packets (1: every source at once). A
	// replay models both.
	AdmitBudget int `yaml:"admit_budget"`
	AdmitAfter  int `yaml:"admit_after"`
	// Trips lets the kernel report a source reaching its trip level
	// mid-tick, for a ban at once rather than at the tick's end.
	Trips bool `yaml:"trips"`
	// AllowHost adds the host's own addresses, its default gateways and
	// loopback to the allowlist, rediscovered every HostRefresh.
	AllowHost   bool              `yaml:"allow_host"`
	HostRefresh detector.Duration `yaml:"host_refresh"`
	// MetricsListen is the HOST:PORT serving Prometheus metrics on
	// /metrics ("" = off; ":9797" would listen on every interface, so
	// prefer 127.0.0.1:9797).
	MetricsListen string `yaml:"metrics_listen"`
}

// AdmitBudgetOption is AdmitBudget as bpf.Options.AdmitBudget and
// capture.ReplayOptions.AdmitBudget take it, where 0 means the default and
// a negative budget none.
func (d *Daemon) AdmitBudgetOption() int {
	if d.AdmitBudget == 0 {
		return -1
	}
	return d.AdmitBudget
}

// Default returns the documented defaults.
func Default() File {
	return File{
		Config: detector.DefaultConfig(),
		Daemon: Daemon{
			AttachMode:        "auto",
			PinDir:            bpf.DefaultPinDir,
			StateDir:          "/var/lib/floodguard",
			RuntimeDir:        "/run/floodguard",
			SnapshotInterval:  detector.Duration(time.Minute),
			MaxSources:        bpf.DefaultMaxSources,
			MaxRules:          bpf.DefaultMaxRules,
			SourceIdleTimeout: detector.Duration(5 * time.Minute),
			AdmitBudget:       bpf.DefaultAdmitBudget,
			AdmitAfter:        bpf.DefaultAdmitAfter,
			Trips:             true,
			AllowHost:         true,
			HostRefresh:       detector.Duration(30 * time.Second),
		},
		Paging: paging.DefaultConfig(),
	}
}

// Parse reads a config document over the defaults: keys it leaves out keep
// their default; unknown keys and bad values are errors naming the key and
// its line (*yamlconf.FieldError). An empty document yields the defaults.
func Parse(data []byte) (File, error) {
	f := Default()
	if hasTopKey(data, "upstream") {
		// A present section starts from its defaults; an absent one
		// leaves Upstream nil (the decoder never touches it).
		u := upstream.DefaultConfig()
		f.Upstream = &u
	}
	err := yamlconf.Decode(data, &f, f.Validate)
	return f, err
}

// Load reads and parses the config file at path ("" means the defaults).
func Load(path string) (File, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("read config: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Validate checks every section.
func (f *File) Validate() error {
	if err := f.Config.Validate(); err != nil {
		return err
	}
	d := &f.Daemon
	bad := func(key, format string, args ...any) error {
		return &yamlconf.FieldError{Key: "daemon." + key, Msg: fmt.Sprintf(format, args...)}
	}
	if _, err := AttachMode(d.AttachMode); err != nil {
		return bad("attach_mode", "%q: want auto, native or generic", d.AttachMode)
	}
	for key, dir := range map[string]string{"pin_dir": d.PinDir, "state_dir": d.StateDir, "runtime_dir": d.RuntimeDir} {
		if !filepath.IsAbs(dir) {
			return bad(key, "%q must be an absolute path", dir)
		}
	}
	if d.SnapshotInterval.D() < time.Second {
		return bad("snapshot_interval", "%s is shorter than 1s", d.SnapshotInterval)
	}
	if d.AdmitBudget < 0 || d.AdmitBudget > 1<<20 {
		return bad("admit_budget", "%d: want 0..%d sources per CPU and tick", d.AdmitBudget, 1<<20)
	}
	if d.AdmitAfter < 1 || d.AdmitAfter > bpf.MaxAdmit {
		return bad("admit_after", "%d: want 1..%d packets", d.AdmitAfter, bpf.MaxAdmit)
	}
	if d.SourceIdleTimeout.D() < f.Tick.D() {
		return bad("source_idle_timeout", "%s is shorter than the tick", d.SourceIdleTimeout)
	}
	if d.HostRefresh.D() < time.Second {
		return bad("host_refresh", "%s is shorter than 1s", d.HostRefresh)
	}
	if err := CheckListen(d.MetricsListen); err != nil {
		return bad("metrics_listen", "%v", err)
	}
	if err := f.Paging.Validate(); err != nil {
		return err
	}
	if f.Upstream != nil {
		return f.Upstream.Validate()
	}
	return nil
}

// hasTopKey reports whether the document has key at its top level (a
// document that does not parse is left for the decoder to reject).
func hasTopKey(data []byte, key string) bool {
	var top map[string]yaml.Node
	if yaml.Unmarshal(data, &top) != nil {
		return false
	}
	_, ok := top[key]
	return ok
}

// AttachMode maps daemon.attach_mode to the loader's mode.
func AttachMode(s string) (bpf.AttachMode, error) {
	switch s {
	case "", "auto":
		return bpf.ModeAuto, nil
	case "native":
		return bpf.ModeNative, nil
	case "generic":
		return bpf.ModeGeneric, nil
	}
	return 0, fmt.Errorf("attach mode %q: want auto, native or generic", s)
}

// CheckListen validates a metrics listen address, HOST:PORT ("" is off).
func CheckListen(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT, like 127.0.0.1:9797: %w", addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	return nil
}

// Paths are where a running daemon can be reached: what the operator
// commands need of the config file.
type Paths struct {
	RuntimeDir string
	PinDir     string
}

// LoadPaths reads only daemon.runtime_dir and daemon.pin_dir from the config
// file, ignoring everything else, so operator commands keep working while
// the file holds an edit the daemon rejected ("" means the defaults).
func LoadPaths(path string) (Paths, error) {
	def := Default().Daemon
	p := Paths{RuntimeDir: def.RuntimeDir, PinDir: def.PinDir}
	if path == "" {
		return p, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrPermission) {
		return p, fmt.Errorf("read config: %w (operator commands need root)", err)
	}
	if err != nil {
		return p, fmt.Errorf("read config: %w", err)
	}
	var doc struct {
		Daemon struct {
			RuntimeDir string `yaml:"runtime_dir"`
			PinDir     string `yaml:"pin_dir"`
		} `yaml:"daemon"`
	}
	// Lenient on purpose: a bad key elsewhere must not lock the operator out.
	_ = yaml.Unmarshal(data, &doc)
	if doc.Daemon.RuntimeDir != "" {
		p.RuntimeDir = doc.Daemon.RuntimeDir
	}
	if doc.Daemon.PinDir != "" {
		p.PinDir = doc.Daemon.PinDir
	}
	return p, nil
}
