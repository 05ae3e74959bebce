package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/floodguard/floodguard/synth"
)

func runSynth(e env, args []string) error {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	out := fs.String("out", ".", "output `directory` for SCENARIO.pcap and SCENARIO.labels.json")
	seed := fs.Int64("seed", 1, "random seed; equal seeds give identical files")
	scale := fs.Float64("scale", 1, "capture size factor (0 < scale ≤ 4); durations keep a 60 s warm-up")
	warmUp := fs.Duration("warm-up", 0, "background before the event, at least 10s (default: what -scale gives, at least 60s)")
	heavy := fs.Int("heavy-clients", 0, "heavy benign clients at 300-500 pps each (default: 5 scaled, at least 2)")
	floodScale := fs.Float64("flood-scale", 1, "factor (0 < f ≤ 1) on the rates of the one-tool floods (single-source, pulsing, spoofed, IPv6 rotation)")
	packets := fs.Int("packets", synth.DefaultBenchPackets, "packets in the bench scenario")
	port := fs.Uint("reflection-port", 53, "UDP source port of the reflectors in udp-reflection")
	fs.Usage = func() {
		var names []string
		for _, s := range synth.Scenarios() {
			names = append(names, string(s))
		}
		fmt.Fprintf(e.stderr, "usage: floodguard synth [flags] SCENARIO... | all\nscenarios: %s, bench\n", strings.Join(names, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError("%v", err)
	}
	if fs.NArg() == 0 {
		return usageError("no scenario given (try 'all')")
	}
	if *port == 0 || *port > 65535 {
		return usageError("-reflection-port %d: want 1..65535", *port)
	}
	var scenarios []synth.Scenario
	for _, a := range fs.Args() {
		if a == "all" {
			scenarios = append(scenarios, synth.Scenarios()...)
			continue
		}
		scenarios = append(scenarios, synth.Scenario(a))
	}
	opt := synth.Options{Seed: *seed, Scale: *scale, Packets: *packets, ReflectionPort: uint16(*port), WarmUp: *warmUp, FloodScale: *floodScale, HeavyClients: *heavy}
	for _, s := range scenarios {
		pcap, labels, err := synth.WriteFiles(*out, s, opt)
		if err != nil {
			return fmt.Errorf("synth %s: %w", s, err)
		}
		fmt.Fprintf(e.stdout, "%s\t%s\n", pcap, labels)
	}
	return nil
}
