package bpf

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/floodguard/floodguard/detector"
)

// TestABIMatchesBTF checks every Go mirror in abi.go against the BTF of
// the compiled object: sizes, field count, field offsets and field sizes,
// and that each map uses the record it is mirrored with. It needs no
// privileges.
func TestABIMatchesBTF(t *testing.T) {
	spec, err := loadFloodguard()
	if err != nil {
		t.Fatal(err)
	}
	mirrors := map[string]any{
		"fg_addr":        detector.Addr{},
		"fg_source":      SourceValue{},
		"fg_slot":        SlotValue{},
		"fg_admission":   AdmissionValue{},
		"fg_stats":       Stats{},
		"fg_exact_rule":  ExactRuleValue{},
		"fg_prefix_rule": PrefixRuleValue{},
		"fg_lpm4_key":    LPM4Key{},
		"fg_lpm6_key":    LPM6Key{},
		"fg_sig_rule":    SigRuleValue{},
		"fg_sig_stats":   SigStatsValue{},
		"fg_port_count":  PortCountValue{},
		"fg_port_block":  PortBlockValue{},
		"fg_feat":        FeatValue{},
	}
	for cname, mirror := range mirrors {
		var st *btf.Struct
		if err := spec.Types.TypeByName(cname, &st); err != nil {
			t.Errorf("struct %s: %v", cname, err)
			continue
		}
		gt := reflect.TypeOf(mirror)
		if uint64(gt.Size()) != uint64(st.Size) {
			t.Errorf("struct %s: %d bytes, Go %s %d bytes", cname, st.Size, gt, gt.Size())
			continue
		}
		if gt.Kind() != reflect.Struct {
			continue // detector.Addr is [16]byte: the size is the layout
		}
		if gt.NumField() != len(st.Members) {
			t.Errorf("struct %s: %d members, Go %s %d fields", cname, len(st.Members), gt, gt.NumField())
			continue
		}
		for i, m := range st.Members {
			f := gt.Field(i)
			size, err := btf.Sizeof(m.Type)
			if err != nil {
				t.Fatal(err)
			}
			if uint64(f.Offset) != uint64(m.Offset.Bytes()) || uint64(f.Type.Size()) != uint64(size) {
				t.Errorf("%s.%s at %d (%d bytes), Go %s.%s at %d (%d bytes)",
					cname, m.Name, m.Offset.Bytes(), size, gt, f.Name, f.Offset, f.Type.Size())
			}
		}
	}

	for name, want := range map[string][2]string{
		mapSources:   {"fg_addr", ""},
		mapSlots:     {"", "fg_slot"},
		mapStats:     {"", "fg_stats"},
		mapExact:     {"fg_addr", "fg_exact_rule"},
		mapPrefix4:   {"fg_lpm4_key", "fg_prefix_rule"},
		mapPrefix6:   {"fg_lpm6_key", "fg_prefix_rule"},
		mapSigRules:  {"", "fg_sig_rule"},
		mapSigStats:  {"", "fg_sig_stats"},
		mapExempt:    {"fg_addr", ""},
		mapFeatPorts: {"", "fg_port_block"},
		mapFeat:      {"", "fg_feat"},
		mapFeatDsts:  {"", "fg_addr"},
	} {
		ms := spec.Maps[name]
		if ms == nil {
			t.Errorf("no map %s", name)
			continue
		}
		if want[0] != "" && ms.Key.TypeName() != want[0] {
			t.Errorf("map %s key %s, want %s", name, ms.Key.TypeName(), want[0])
		}
		if want[1] != "" && ms.Value.TypeName() != want[1] {
			t.Errorf("map %s value %s, want %s", name, ms.Value.TypeName(), want[1])
		}
		if err := checkABI(name, specInfo{ms}); err != nil {
			t.Error(err)
		}
	}
	if err := prepareSpec(spec, Options{}.withDefaults(), 2); err != nil {
		t.Error(err)
	}

	// The port summer's object declares the program's fg_feat_ports
	// (replaced at load) and sums into blocks of the same layout.
	sum, err := loadSumports()
	if err != nil {
		t.Fatal(err)
	}
	ports := sum.Maps[sumportsMapFgFeatPorts]
	if err := checkABI(mapFeatPorts, specInfo{ports}); err != nil {
		t.Errorf("sumports: %v", err)
	}
	for _, ms := range []*ebpf.MapSpec{ports, sum.Maps[sumportsMapFgPortSums]} {
		if got := ms.Value.TypeName(); got != "fg_port_block" {
			t.Errorf("sumports %s value %s, want fg_port_block", ms.Name, got)
		}
	}
}

type fakeMap struct {
	typ                 ebpf.MapType
	key, value, entries uint32
}

func (f fakeMap) Type() ebpf.MapType { return f.typ }
func (f fakeMap) KeySize() uint32    { return f.key }
func (f fakeMap) ValueSize() uint32  { return f.value }
func (f fakeMap) MaxEntries() uint32 { return f.entries }

func TestCheckABI(t *testing.T) {
	if err := checkABI(mapSources, fakeMap{ebpf.Hash, 16, 4, 1 << 20}); err != nil {
		t.Errorf("matching map: %v", err)
	}
	if err := checkABI(mapSigRules, fakeMap{ebpf.Array, 4, 192, SigSlots}); err != nil {
		t.Errorf("matching map: %v", err)
	}
	for _, c := range []struct {
		name string
		m    fakeMap
	}{
		// The per-CPU layout before issue #14.
		{mapSources, fakeMap{ebpf.PerCPUHash, 16, 128, 1 << 20}},
		{mapSources, fakeMap{ebpf.Hash, 4, 176, 1 << 20}},
		{mapSources, fakeMap{ebpf.Hash, 16, 120, 1 << 20}},
		{mapProbe, fakeMap{ebpf.PerCPUArray, 4, 40, 1024}},
		// The port counters before the port summer: a region per CPU.
		{mapFeatPorts, fakeMap{ebpf.Array, 4, 16, uint32(2 * portCounters)}},
		// The shared index layout fixes the size of these.
		{mapSigRules, fakeMap{ebpf.Array, 4, 192, 128}},
		{mapFeatTouched, fakeMap{ebpf.Array, 4, 8, 65536}},
	} {
		if err := checkABI(c.name, c.m); !errors.Is(err, ErrABIMismatch) {
			t.Errorf("%s %+v: %v, want ErrABIMismatch", c.name, c.m, err)
		}
	}
}
