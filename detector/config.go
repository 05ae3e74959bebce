package detector

import (
	"fmt"
	"math"
	"time"
)

// Config holds every threshold and window of the detector. It is the
// detector's part of floodguard's configuration file (internal/config reads
// the file; the yaml tags name the keys); DefaultConfig documents the
// defaults.
type Config struct {
	// Tick is the length of one measurement tick (100ms or more).
	Tick Duration `yaml:"tick"`
	// WarmUp is how long after start only floods above the hard ceilings
	// are acted on, while baselines and the population prior are learnt.
	WarmUp Duration `yaml:"warm_up"`
	// HalfLife is the half-life of every EWMA (rate and variance).
	HalfLife Duration `yaml:"half_life"`
	// PriorQuantile is the quantile of per-key rates of well-behaved keys
	// used as the baseline of a key with no history (0.5..0.9999).
	PriorQuantile float64 `yaml:"prior_quantile"`

	Prefixes    PrefixLengths     `yaml:"prefixes"`
	Source      Thresholds        `yaml:"source"`
	Prefix      Thresholds        `yaml:"prefix"`
	Aggregate   Thresholds        `yaml:"aggregate"`
	Distributed DistributedConfig `yaml:"distributed"`
	Bans        BanConfig         `yaml:"bans"`
	Tracking    TrackingConfig    `yaml:"tracking"`
	Signatures  SignatureConfig   `yaml:"signatures"`
}

// PrefixLengths lists the source prefix lengths tracked as keys of their own.
type PrefixLengths struct {
	IPv4 []int `yaml:"ipv4"`
	IPv6 []int `yaml:"ipv6"`
}

// Thresholds decide when a key of one scope is anomalous. A rate (pps or bps,
// judged separately) is over threshold when it exceeds all of
// baseline + K·σ, baseline × Ratio and the floor. EnterTicks consecutive
// ticks over threshold start an attack; ExitTicks consecutive ticks below
// ExitFraction × threshold end it. Before the warm-up ends, only rates over
// the ceiling count.
type Thresholds struct {
	K            float64 `yaml:"k"`
	Ratio        float64 `yaml:"ratio"`
	FloorPPS     float64 `yaml:"floor_pps"`
	FloorBPS     float64 `yaml:"floor_bps"`
	CeilingPPS   float64 `yaml:"ceiling_pps"`
	CeilingBPS   float64 `yaml:"ceiling_bps"`
	EnterTicks   int     `yaml:"enter_ticks"`
	ExitTicks    int     `yaml:"exit_ticks"`
	ExitFraction float64 `yaml:"exit_fraction"`
}

// DistributedConfig governs floods that no single source or prefix explains:
// the aggregate (or a protocol class) is anomalous and the detector looks for
// the smallest set of out-of-band sources that brings it back to baseline.
type DistributedConfig struct {
	// MinSourcePPS: a source below this rate is never a distributed-flood
	// contributor, whatever its band (protects flash crowds).
	MinSourcePPS float64 `yaml:"min_source_pps"`
	// MinExcessShare: ban only if the chosen set removes at least this share
	// of the excess; otherwise the flood is reported and nothing is banned
	// (a spoofed flood has no useful set).
	MinExcessShare float64 `yaml:"min_excess_share"`
	// ReflectionShare: if one UDP source port carries at least this share
	// of a UDP excess, the flood is called a reflection flood on that port
	// and only sources sending from it are candidates.
	ReflectionShare float64 `yaml:"reflection_share"`
	// MaxBansPerTick caps how many distributed bans one tick may add.
	MaxBansPerTick int `yaml:"max_bans_per_tick"`
}

// BanConfig governs ban decisions.
type BanConfig struct {
	// TTL is the first ban's lifetime; each repeat offence doubles it up to
	// MaxTTL. ForgetAfter is how long an offence is remembered.
	TTL         Duration `yaml:"ttl"`
	MaxTTL      Duration `yaml:"max_ttl"`
	ForgetAfter Duration `yaml:"forget_after"`
	// MaxActive caps active bans; past it new bans are refused and reported.
	MaxActive int `yaml:"max_active"`
	// MaxLegitShare caps the share of the legitimate-looking traffic (from
	// established sources within their band) that one prefix ban may drop;
	// a ban over it is refused and reported instead.
	MaxLegitShare float64 `yaml:"max_legit_share"`
	// Allowlist holds CIDRs that are never banned.
	Allowlist []CIDR `yaml:"allowlist"`
	// DryRun decides and reports bans but installs none.
	DryRun bool `yaml:"dry_run"`
}

// TrackingConfig bounds the detector's memory.
type TrackingConfig struct {
	// MaxKeys caps tracked sources plus prefixes; past it new keys are judged
	// against the prior but not remembered.
	MaxKeys int `yaml:"max_keys"`
	// IdleTimeout forgets a key unseen for this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ProbationTimeout forgets sooner a key seen in fewer than three ticks,
	// so a spoofed flood (every packet a new source) cannot fill memory.
	ProbationTimeout Duration `yaml:"probation_timeout"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Tick:          Duration(time.Second),
		WarmUp:        Duration(60 * time.Second),
		HalfLife:      Duration(2 * time.Minute),
		PriorQuantile: 0.99,
		Prefixes:      PrefixLengths{IPv4: []int{24}, IPv6: []int{64, 48}},
		Source: Thresholds{
			K: 4, Ratio: 3, FloorPPS: 1000, FloorBPS: 20e6,
			CeilingPPS: 50000, CeilingBPS: 500e6,
			EnterTicks: 1, ExitTicks: 5, ExitFraction: 0.5,
		},
		Prefix: Thresholds{
			K: 4, Ratio: 4, FloorPPS: 5000, FloorBPS: 50e6,
			CeilingPPS: 200000, CeilingBPS: 2e9,
			EnterTicks: 1, ExitTicks: 5, ExitFraction: 0.5,
		},
		Aggregate: Thresholds{
			K: 5, Ratio: 2, FloorPPS: 10000, FloorBPS: 100e6,
			CeilingPPS: 1e6, CeilingBPS: 10e9,
			EnterTicks: 1, ExitTicks: 5, ExitFraction: 0.5,
		},
		Distributed: DistributedConfig{
			MinSourcePPS: 30, MinExcessShare: 0.5, ReflectionShare: 0.6, MaxBansPerTick: 5000,
		},
		Bans: BanConfig{
			TTL: Duration(2 * time.Minute), MaxTTL: Duration(time.Hour),
			ForgetAfter: Duration(24 * time.Hour), MaxActive: 10000, MaxLegitShare: 0.25,
		},
		Signatures: DefaultSignatureConfig(),
		Tracking: TrackingConfig{
			MaxKeys: 4 << 20, IdleTimeout: Duration(10 * time.Minute),
			ProbationTimeout: Duration(10 * time.Second),
		},
	}
}

// Validate checks every value; the first problem is returned as a
// *FieldError.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if c.Tick.D() < 100*time.Millisecond || c.Tick.D() > time.Minute {
		return bad("tick", "%s is outside 100ms..1m", c.Tick)
	}
	if c.WarmUp < 0 {
		return bad("warm_up", "must not be negative")
	}
	if c.HalfLife.D() < c.Tick.D() {
		return bad("half_life", "%s is shorter than the tick %s", c.HalfLife, c.Tick)
	}
	if !(c.PriorQuantile >= 0.5 && c.PriorQuantile <= 0.9999) {
		return bad("prior_quantile", "%v is outside 0.5..0.9999", c.PriorQuantile)
	}
	for _, l := range c.Prefixes.IPv4 {
		if l < 8 || l > 31 {
			return bad("prefixes.ipv4", "length %d is outside 8..31", l)
		}
	}
	for _, l := range c.Prefixes.IPv6 {
		if l < 16 || l > 127 {
			return bad("prefixes.ipv6", "length %d is outside 16..127", l)
		}
	}
	for _, s := range []struct {
		name string
		t    *Thresholds
	}{{"source", &c.Source}, {"prefix", &c.Prefix}, {"aggregate", &c.Aggregate}} {
		if err := s.t.validate(s.name); err != nil {
			return err
		}
	}
	d := c.Distributed
	if !(d.MinSourcePPS >= 0) || math.IsInf(d.MinSourcePPS, 0) {
		return bad("distributed.min_source_pps", "must be a non-negative number")
	}
	if !(d.MinExcessShare >= 0 && d.MinExcessShare <= 1) {
		return bad("distributed.min_excess_share", "%v is outside 0..1", d.MinExcessShare)
	}
	if !(d.ReflectionShare > 0 && d.ReflectionShare <= 1) {
		return bad("distributed.reflection_share", "%v is outside (0..1]", d.ReflectionShare)
	}
	if d.MaxBansPerTick < 0 {
		return bad("distributed.max_bans_per_tick", "must not be negative")
	}
	b := c.Bans
	if b.TTL.D() < c.Tick.D() {
		return bad("bans.ttl", "%s is shorter than the tick", b.TTL)
	}
	if b.MaxTTL < b.TTL {
		return bad("bans.max_ttl", "%s is shorter than bans.ttl %s", b.MaxTTL, b.TTL)
	}
	if b.ForgetAfter < 0 {
		return bad("bans.forget_after", "must not be negative")
	}
	if b.MaxActive < 0 {
		return bad("bans.max_active", "must not be negative")
	}
	if !(b.MaxLegitShare > 0 && b.MaxLegitShare <= 1) {
		return bad("bans.max_legit_share", "%v is outside (0..1]", b.MaxLegitShare)
	}
	if err := c.Signatures.validate(); err != nil {
		return err
	}
	t := c.Tracking
	if t.MaxKeys < 1 {
		return bad("tracking.max_keys", "must be at least 1")
	}
	if t.IdleTimeout.D() < c.Tick.D() {
		return bad("tracking.idle_timeout", "%s is shorter than the tick", t.IdleTimeout)
	}
	if t.ProbationTimeout.D() < c.Tick.D() || t.ProbationTimeout > t.IdleTimeout {
		return bad("tracking.probation_timeout", "%s must lie between the tick and tracking.idle_timeout", t.ProbationTimeout)
	}
	return nil
}

func (t *Thresholds) validate(scope string) error {
	bad := func(key, format string, args ...any) error {
		return &FieldError{Key: scope + "." + key, Msg: fmt.Sprintf(format, args...)}
	}
	nonNeg := func(key string, v float64) error {
		if !(v >= 0) || math.IsInf(v, 0) {
			return bad(key, "%v must be a non-negative number", v)
		}
		return nil
	}
	for _, f := range []struct {
		key string
		v   float64
	}{{"k", t.K}, {"floor_pps", t.FloorPPS}, {"floor_bps", t.FloorBPS}, {"ceiling_pps", t.CeilingPPS}, {"ceiling_bps", t.CeilingBPS}} {
		if err := nonNeg(f.key, f.v); err != nil {
			return err
		}
	}
	if !(t.Ratio >= 1) || math.IsInf(t.Ratio, 0) {
		return bad("ratio", "%v must be at least 1", t.Ratio)
	}
	if t.CeilingPPS < t.FloorPPS {
		return bad("ceiling_pps", "%v is below floor_pps %v", t.CeilingPPS, t.FloorPPS)
	}
	if t.CeilingBPS < t.FloorBPS {
		return bad("ceiling_bps", "%v is below floor_bps %v", t.CeilingBPS, t.FloorBPS)
	}
	if t.EnterTicks < 1 {
		return bad("enter_ticks", "must be at least 1")
	}
	if t.ExitTicks < 1 {
		return bad("exit_ticks", "must be at least 1")
	}
	if !(t.ExitFraction > 0 && t.ExitFraction <= 1) {
		return bad("exit_fraction", "%v is outside (0..1]", t.ExitFraction)
	}
	return nil
}
