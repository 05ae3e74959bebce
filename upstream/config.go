package upstream

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/yamlconf"
	"github.com/floodguard/floodguard/paging"
)

// Config is the "upstream" section of the config file. Without the section
// the daemon runs no BGP speaker and announces nothing.
type Config struct {
	BGP BGP `yaml:"bgp"`
	// EscalatePPS: a local rule whose traffic reaches this rate is
	// announced upstream (0: never on packets).
	EscalatePPS float64 `yaml:"escalate_pps"`
	// EscalateBPS is the same in bits per second (0: off); either
	// threshold triggers.
	EscalateBPS float64 `yaml:"escalate_bps"`
	// FlowSpec announces the escalated rules as FlowSpec (RFC 8955/8956).
	FlowSpec bool `yaml:"flowspec"`
	// MaxAnnouncements caps the routes announced at once; more are refused
	// and counted.
	MaxAnnouncements int       `yaml:"max_announcements"`
	Blackhole        Blackhole `yaml:"blackhole"`
}

// BGP is the speaker: this side's identity and the routers it connects to.
type BGP struct {
	RouterID string `yaml:"router_id"`
	LocalAS  uint32 `yaml:"local_as"`
	Peers    []Peer `yaml:"peers"`
}

// Peer is one router the speaker connects out to (it never listens).
type Peer struct {
	Address string `yaml:"address"`
	AS      uint32 `yaml:"as"`
	// Port is the router's BGP port (179).
	Port uint16 `yaml:"port"`
	// Password is the TCP MD5 key, from a file (mode 600) or the
	// environment, never in the config file.
	Password paging.Secret `yaml:"password"`
	// HoldTime is the proposed hold time (90s; keepalives every third).
	HoldTime detector.Duration `yaml:"hold_time"`
}

// Blackhole is RTBH: the protected address itself announced with a
// blackhole community when the traffic reaches its thresholds. Off by
// default: it takes the attacked address off the Internet.
type Blackhole struct {
	Enabled   bool    `yaml:"enabled"`
	Community string  `yaml:"community"`
	PPS       float64 `yaml:"pps"`
	BPS       float64 `yaml:"bps"`
}

// DefaultConfig is what a present "upstream" section starts from.
func DefaultConfig() Config {
	return Config{
		EscalatePPS: 5000, FlowSpec: true, MaxAnnouncements: 100,
		Blackhole: Blackhole{Community: "65535:666"},
	}
}

// DefaultHoldTime and DefaultPort apply to a peer that leaves them out.
const (
	DefaultHoldTime = 90 * time.Second
	DefaultPort     = 179
)

// Validate checks the section; errors name the key ("upstream.bgp.peers.0.as").
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &yamlconf.FieldError{Key: "upstream." + key, Msg: fmt.Sprintf(format, args...)}
	}
	rid, err := netip.ParseAddr(c.BGP.RouterID)
	if err != nil || !rid.Is4() {
		return bad("bgp.router_id", "%q: want an IPv4 address (BGP identifier)", c.BGP.RouterID)
	}
	if c.BGP.LocalAS == 0 {
		return bad("bgp.local_as", "missing or 0: want an AS number 1-4294967295")
	}
	if len(c.BGP.Peers) == 0 {
		return bad("bgp.peers", "no peers: give at least one {address, as}")
	}
	seen := map[netip.Addr]bool{}
	for i := range c.BGP.Peers {
		p := &c.BGP.Peers[i]
		key := func(k string) string { return "bgp.peers." + strconv.Itoa(i) + "." + k }
		a, err := netip.ParseAddr(p.Address)
		if err != nil || a.Zone() != "" {
			return bad(key("address"), "%q: want an IPv4 or IPv6 address", p.Address)
		}
		if seen[a] {
			return bad(key("address"), "%s is listed twice", a)
		}
		seen[a] = true
		if p.AS == 0 {
			return bad(key("as"), "missing or 0: want the router's AS number")
		}
		if p.HoldTime != 0 && (p.HoldTime.D() < 3*time.Second || p.HoldTime.D() > 65535*time.Second) {
			return bad(key("hold_time"), "%s: want 3s to 65535s", p.HoldTime)
		}
		if p.Password.Env != "" && p.Password.File != "" {
			return bad(key("password"), "give file or env, not both")
		}
	}
	for k, v := range map[string]float64{"escalate_pps": c.EscalatePPS, "escalate_bps": c.EscalateBPS,
		"blackhole.pps": c.Blackhole.PPS, "blackhole.bps": c.Blackhole.BPS} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return bad(k, "%v: want a non-negative number (0: off)", v)
		}
	}
	if c.MaxAnnouncements < 0 || c.MaxAnnouncements > 100000 {
		return bad("max_announcements", "%d is outside 0..100000", c.MaxAnnouncements)
	}
	if _, err := ParseCommunity(c.Blackhole.Community); err != nil {
		return bad("blackhole.community", "%v", err)
	}
	if c.Blackhole.Enabled && c.Blackhole.PPS == 0 && c.Blackhole.BPS == 0 {
		return bad("blackhole", "enabled with neither pps nor bps: set the rate that warrants a blackhole")
	}
	return nil
}

// ParseCommunity reads a standard community "ASN:VALUE".
func ParseCommunity(s string) (uint32, error) {
	a, b, ok := strings.Cut(s, ":")
	hi, err1 := strconv.ParseUint(a, 10, 16)
	lo, err2 := strconv.ParseUint(b, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q: want ASN:VALUE, each 0-65535, like 65535:666", s)
	}
	return uint32(hi)<<16 | uint32(lo), nil
}

// holdTime returns the peer's hold time or the default.
func (p *Peer) holdTime() time.Duration {
	if p.HoldTime == 0 {
		return DefaultHoldTime
	}
	return p.HoldTime.D()
}

func (p *Peer) port() uint16 {
	if p.Port == 0 {
		return DefaultPort
	}
	return p.Port
}
