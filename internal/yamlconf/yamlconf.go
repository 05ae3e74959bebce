// Package yamlconf decodes floodguard's YAML configuration strictly: unknown
// keys and invalid values are errors naming the dotted key and its line.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Decode decodes data over the values already in v (its defaults), rejects
// unknown keys, then runs validate. Errors from either step come back as a
// *FieldError naming the key and its line where one can be found.
func Decode(data []byte, v any, validate func() error) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
			return explainDecodeError(&root, err)
		}
	}
	if validate == nil {
		return nil
	}
	if err := validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Line == 0 {
			fe.Line = keyLine(&root, fe.Key)
		}
		return err
	}
	return nil
}

// FieldError is an invalid configuration value: the dotted key, the line it
// stands on (0 when it was not in the file, i.e. a bad default) and why.
type FieldError struct {
	Key  string
	Line int
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config line %d: %s: %s", e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("config: %s: %s", e.Key, e.Msg)
}

// explainDecodeError rewrites yaml's type errors ("line 3: field kk not
// found in type detector.Thresholds") to name the dotted key:
// "config line 3: source.kk: unknown key".
func explainDecodeError(root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return fmt.Errorf("parse config: %w", err)
	}
	msg := te.Errors[0]
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	_, detail, _ := strings.Cut(msg, ": ")
	if strings.HasPrefix(detail, "field ") && strings.Contains(detail, " not found in type") {
		detail = "unknown key"
	}
	fe := &FieldError{Key: keyAt(root, line), Line: line, Msg: detail}
	if fe.Key == "" {
		fe.Key = "(document)"
	}
	return fe
}

// keyAt returns the dotted key whose key or value starts on line.
func keyAt(n *yaml.Node, line int) string {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return keyAt(n.Content[0], line)
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Line == line && (v.Kind == yaml.ScalarNode || v.Line == line) {
				if sub := keyAt(v, line); sub != "" && v.Kind == yaml.MappingNode {
					return k.Value + "." + sub
				}
				return k.Value
			}
			if sub := keyAt(v, line); sub != "" {
				if strings.HasPrefix(sub, "[") {
					return k.Value + sub
				}
				return k.Value + "." + sub
			}
			if k.Line == line {
				return k.Value
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if sub := keyAt(c, line); sub != "" {
				return fmt.Sprintf("[%d].%s", i, sub)
			}
			if c.Line == line {
				return fmt.Sprintf("[%d]", i)
			}
		}
	}
	return ""
}

// keyLine finds the line of a dotted key ("source.k") in a parsed document.
func keyLine(root *yaml.Node, key string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(key, ".") {
		if n.Kind == yaml.SequenceNode {
			// A list element is named by its index ("sinks.1.url").
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
			continue
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("1s", "2m30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return nodeError(n, fmt.Sprintf("%q is not a duration like 1s or 2m", n.Value))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// CIDR is a prefix written in YAML as "198.18.0.0/15", "2001:db8::/32" or a
// bare address (a single-address prefix). It is stored masked.
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

// UnmarshalYAML parses a CIDR or bare address.
func (c *CIDR) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseCIDR(n.Value)
	if err != nil {
		return nodeError(n, err.Error())
	}
	*c = v
	return nil
}

// MarshalYAML writes the CIDR string.
func (c CIDR) MarshalYAML() (any, error) { return c.String(), nil }

// nodeError reports a bad value as a yaml type error, so the decoder collects
// it with its line and explainDecodeError can name the key.
func nodeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}
