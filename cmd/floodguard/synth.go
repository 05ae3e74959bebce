package main

import (
	"fmt"
	"strings"

	"github.com/floodguard/floodguard/synth"
)

func runSynth(e env, args []string) error {
	names := func(ss []synth.Scenario) string {
		var n []string
		for _, s := range ss {
			n = append(n, string(s))
		}
		return strings.Join(n, ", ")
	}
	fs := newFlagSet(e, "synth", "[flags] SCENARIO... | all",
		"scenarios: "+names(synth.Scenarios())+", bench",
		"signature scenarios: "+names(synth.SignatureScenarios()),
		"'all' is every scenario but bench")
	out := fs.String("out", ".", "output `directory` for SCENARIO.pcap and SCENARIO.labels.json")
	seed := fs.Int64("seed", 1, "random seed; equal seeds give identical files")
	scale := fs.Float64("scale", 1, "capture size factor (0 < scale ≤ 4); durations keep a 60 s warm-up")
	warmUp := fs.Duration("warm-up", 0, "background before the event, at least 10s (default: what -scale gives, at least 60s)")
	heavy := fs.Int("heavy-clients", 0, "heavy benign clients at 300-500 pps each (default: 5 scaled, at least 2)")
	floodScale := fs.Float64("flood-scale", 1, "factor (0 < f ≤ 1) on the rates of the one-tool floods (single-source, pulsing, spoofed-syn, spoofed-syn-served, ipv6-rotation) and on the numbers of reflectors and bots (reflection-mix, udp-botnet; floors kept)")
	packets := fs.Int("packets", synth.DefaultBenchPackets, "packets in the bench scenario")
	port := fs.Uint("reflection-port", 53, "UDP source port of the reflectors in udp-reflection")
	botnetPort := fs.Uint("botnet-port", 443, "UDP destination port of the bots in udp-botnet (the QUIC visitors stay on 443)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError("no scenario given (try 'all')")
	}
	if *port == 0 || *port > 65535 {
		return usageError("-reflection-port %d: want 1..65535", *port)
	}
	if *botnetPort == 0 || *botnetPort > 65535 {
		return usageError("-botnet-port %d: want 1..65535", *botnetPort)
	}
	var scenarios []synth.Scenario
	for _, a := range pos {
		if a == "all" {
			scenarios = append(scenarios, synth.Scenarios()...)
			scenarios = append(scenarios, synth.SignatureScenarios()...)
			continue
		}
		scenarios = append(scenarios, synth.Scenario(a))
	}
	opt := synth.Options{Seed: *seed, Scale: *scale, Packets: *packets, ReflectionPort: uint16(*port), BotnetPort: uint16(*botnetPort), WarmUp: *warmUp, FloodScale: *floodScale, HeavyClients: *heavy}
	for _, s := range scenarios {
		pcap, labels, err := synth.WriteFiles(*out, s, opt)
		if err != nil {
			return err // it names the scenario
		}
		fmt.Fprintf(e.stdout, "%s\t%s\n", pcap, labels)
	}
	return nil
}
