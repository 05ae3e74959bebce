package yamlconf

import (
	"encoding"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
)

// checkText walks the document beside the Go type it decodes into and
// tries every scalar bound for an encoding.TextUnmarshaler (detector
// durations and CIDRs) on a scratch value. yaml reports such a failure
// without a line; here it becomes a *FieldError with the key and line.
// Keys unknown to the type are left for the decoder to reject.
func checkText(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return checkText(n.Content[0], t)
	case yaml.AliasNode:
		// Not followed: an alias may point at its own ancestor. The
		// decoder still rejects a bad aliased value, without a line.
		return nil
	case yaml.ScalarNode:
		pt := reflect.PointerTo(t)
		if !pt.Implements(textUnmarshaler) || pt.Implements(yamlUnmarshaler) || n.Tag == "!!null" {
			return nil
		}
		u := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := u.UnmarshalText([]byte(n.Value)); err != nil {
			return &FieldError{Line: n.Line, Msg: err.Error()}
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return nil
		}
		for _, c := range n.Content {
			if err := checkText(c, t.Elem()); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			ft, ok := fieldType(t, n.Content[i].Value)
			if !ok {
				continue
			}
			if err := checkText(n.Content[i+1], ft); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldType is the type a mapping key decodes into: a struct field by its
// yaml tag (looking into inline structs), or a map's element type.
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	switch t.Kind() {
	case reflect.Map:
		return t.Elem(), true
	case reflect.Struct:
	default:
		return nil, false
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			if ft, ok := fieldType(f.Type, key); ok {
				return ft, true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}
