package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// The port summer: fg_sum_ports (sumports.c) adds up the CPUs' copies of
// the per-CPU fg_feat_ports in the kernel, for the blocks the features
// reader asks for, into fg_port_sums, which the reader maps. The per-CPU
// counters themselves (4 MiB per CPU) are never mapped into the daemon
// (DESIGN.md, "Features").

// portSummer is the loaded fg_sum_ports and its two maps. The reader writes
// the request into want (mapped) and reads the sums (mapped) after sum.
type portSummer struct {
	prog *ebpf.Program
	sums *ebpf.Map // fg_port_sums
	want *ebpf.Map // fg_port_want
}

// loadPortSummer loads fg_sum_ports on the program's port counters.
func loadPortSummer(ports *ebpf.Map) (*portSummer, error) {
	spec, err := loadSumports()
	if err != nil {
		return nil, err
	}
	spec.Maps[sumportsMapFgFeatPorts].MaxEntries = ports.MaxEntries()
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		MapReplacements: map[string]*ebpf.Map{sumportsMapFgFeatPorts: ports},
	})
	if err != nil {
		return nil, classify("load the port summer", err)
	}
	defer coll.Close()
	return &portSummer{
		prog: coll.DetachProgram(sumportsProgFgSumPorts),
		sums: coll.DetachMap(sumportsMapFgPortSums),
		want: coll.DetachMap(sumportsMapFgPortWant),
	}, nil
}

// sum runs fg_sum_ports: afterwards fg_port_sums holds, for every block
// want names, the counters summed over the CPUs.
func (s *portSummer) sum() error {
	if _, err := s.prog.Run(&ebpf.RunOptions{}); err != nil {
		return fmt.Errorf("run %s: %w", sumportsProgFgSumPorts, err)
	}
	return nil
}

// close releases the program and its maps; s may be nil.
func (s *portSummer) close() {
	if s == nil {
		return
	}
	if s.prog != nil {
		s.prog.Close()
	}
	for _, m := range []*ebpf.Map{s.sums, s.want} {
		if m != nil {
			m.Close()
		}
	}
}
