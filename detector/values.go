package detector

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Duration is a time.Duration written in the config file as a Go duration
// string ("1s", "2m30s"). It implements encoding.TextUnmarshaler so any
// decoder (the YAML one in internal/config, or a test's) can fill it
// without the detector knowing the file format.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 1s or 2m", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// CIDR is a prefix written as "198.18.0.0/15", "2001:db8::/32" or a bare
// address (a single-address prefix). It is stored masked.
type CIDR struct{ netip.Prefix }

// ParseCIDR parses a CIDR or a bare address.
func ParseCIDR(s string) (CIDR, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return CIDR{}, fmt.Errorf("parse %q: not an address or CIDR", s)
		}
		a = a.Unmap()
		return CIDR{netip.PrefixFrom(a, a.BitLen())}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return CIDR{}, fmt.Errorf("parse %q: not an address or CIDR", s)
	}
	if p.Addr().Is4In6() {
		return CIDR{}, fmt.Errorf("parse %q: write IPv4 prefixes in dotted form", s)
	}
	return CIDR{p.Masked()}, nil
}

// UnmarshalText parses a CIDR or bare address.
func (c *CIDR) UnmarshalText(b []byte) error {
	v, err := ParseCIDR(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// MarshalText writes the CIDR string.
func (c CIDR) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// FieldError is an invalid configuration value: the dotted key of the
// config file ("source.k") and why. The config loader adds the line.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return fmt.Sprintf("config: %s: %s", e.Key, e.Msg) }

// ConfigKey and ConfigReason let a config loader name the key's line
// without knowing this type.
func (e *FieldError) ConfigKey() string    { return e.Key }
func (e *FieldError) ConfigReason() string { return e.Msg }
