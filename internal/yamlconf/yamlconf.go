// Package yamlconf decodes floodguard's YAML configuration strictly: unknown
// keys and invalid values are errors naming the dotted key and its line.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

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
		// Values decoded through encoding.TextUnmarshaler (durations,
		// CIDRs) fail in yaml without a line: check them first, on the
		// tree, so their errors name the key and line like the others.
		if err := checkText(&root, reflect.TypeOf(v)); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) && fe.Key == "" {
				if fe.Key = keyAt(&root, fe.Line); fe.Key == "" {
					fe.Key = "(document)"
				}
			}
			return err
		}
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
		var ke keyedError
		if fe == nil && errors.As(err, &ke) {
			return &FieldError{Key: ke.ConfigKey(), Line: keyLine(&root, ke.ConfigKey()), Msg: ke.ConfigReason()}
		}
		return err
	}
	return nil
}

// keyedError is a validation error from a package that knows its key but
// not the file format (detector.FieldError): Decode turns it into a
// *FieldError with the key's line.
type keyedError interface {
	error
	ConfigKey() string
	ConfigReason() string
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
