package bpf_test

import (
	"errors"
	"log"
	"net/netip"
	"time"

	"github.com/floodguard/floodguard/bpf"
)

// Attach to eth0 (adopting a program a previous run left pinned), ban a
// prefix for ten minutes and read the counters once. Compiled, not run:
// it needs root and an interface.
func ExampleLoad() {
	x, err := bpf.Load(bpf.Options{Interface: "eth0"})
	if errors.Is(err, bpf.ErrXDPBusy) {
		log.Fatal("eth0 runs another XDP program; set Options.Replace to take over")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer x.Close() // the program keeps running; Detach would stop it
	if err := x.Fallback(); err != nil {
		log.Printf("warning: generic XDP: %v", err)
	}

	if err := x.AddRule(netip.MustParsePrefix("198.18.0.0/24"), 10*time.Minute); err != nil {
		log.Fatal(err)
	}

	sources, err := x.NewSourceReader().AppendSources(nil)
	if err != nil {
		log.Fatal(err)
	}
	stats, err := x.ReadStats()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d sources, %d frames dropped, per-source view partial: %v",
		len(sources), stats.DroppedPackets, stats.SourceInsertFailures > 0)
}
