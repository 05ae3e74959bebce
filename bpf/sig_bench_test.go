package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/detector"
)

// benchSigRules are 16 signature rules none of which matches the benchmark
// frame (IPv4 UDP 198.18.0.1:53 → 198.19.255.1:9): 12 indexed by port (so
// the frame's two index entries are empty) and 4 portless (checked one by
// one, each failing early).
func benchSigRules() []detector.Match {
	var ms []detector.Match
	for _, p := range []uint16{123, 389, 1900, 11211, 19, 17} {
		ms = append(ms, detector.Match{Proto: 17, SrcPort: detector.Range{Lo: p, Hi: p}})
	}
	for _, p := range []uint16{80, 443} {
		ms = append(ms, detector.Match{Proto: 17, DstPort: detector.Range{Lo: p, Hi: p}})
	}
	for _, p := range []uint16{22, 23, 3389, 8080} {
		ms = append(ms, detector.Match{Proto: 6, DstPort: detector.Range{Lo: p, Hi: p}})
	}
	return append(ms,
		detector.Match{Dst: pfx("198.51.100.0/24")},
		detector.Match{Proto: 47},
		detector.Match{Proto: 6, TCPFlags: 0x02, TCPFlagsMask: 0x12, Dst: pfx("203.0.113.1/32")},
		detector.Match{Proto: 1, Length: detector.Range{Lo: 1000, Hi: 1500}},
	)
}

// benchIndexed16 are 16 rules with ports, none matching the frame: only
// the frame's two (empty) index entries are read.
func benchIndexed16() []detector.Match {
	ms := benchSigRules()[:12]
	for _, p := range []uint16{5000, 5001, 5002, 5003} {
		ms = append(ms, detector.Match{Proto: 6, SrcPort: detector.Range{Lo: p, Hi: p}})
	}
	return ms
}

// benchPortless16 are 16 portless rules that do not match the frame: the
// most a frame ever checks one by one.
func benchPortless16() []detector.Match {
	var ms []detector.Match
	for i := range 16 {
		ms = append(ms, detector.Match{Dst: pfx(fmt.Sprintf("198.51.100.%d/32", i))})
	}
	return ms
}

// sigSetup installs rules (signature rules with rate, and one exact rule
// if exact is set) before a case's program is loaded.
func sigSetup(ms []detector.Match, rate uint64, exact string) func(*XDP) error {
	return func(x *XDP) error {
		for _, m := range ms {
			if err := x.InstallSignature(detector.SignatureRule{Match: m, RatePPS: rate, TTL: time.Hour}); err != nil {
				return err
			}
		}
		if exact != "" {
			return x.AddRule(pfx(exact), time.Hour)
		}
		return nil
	}
}

// BenchmarkSignatureCompare runs, side by side and interleaved as
// BenchmarkXDPCompare does, on 64-byte IPv4 UDP frames from 198.18.0.1
// (source port 53): the empty program, the program before signature rules
// and features (the BASE commit's, built by scripts/bench-xdp.sh), the pass
// path without and with 16 signature rules that do not match, signature
// drops next to the exact-rule drop, and the rate limiter, global (the
// committed program) and per CPU (a variant the script builds).
//
// Run it once: go test -run '^$' -bench SignatureCompare -benchtime 1x ./bpf/
func BenchmarkSignatureCompare(b *testing.B) {
	const src = "198.18.0.1"
	rounds := benchEnvInt(b, "ROUNDS", 9)
	repeat := benchEnvInt(b, "REPEAT", 10_000_000)
	requirePrivileged(b)
	small := []int{64}
	sport53 := detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}}
	fg := func(variant *ebpf.CollectionSpec, setup func(*XDP) error) func() (*ebpf.Program, func(), error) {
		return func() (*ebpf.Program, func(), error) { return loadFloodguardSetup(variant, setup) }
	}
	none := sigSetup(nil, 0, "")
	cases := []*xdpCase{
		{key: "empty", label: "empty XDP program (floor)", load: loadEmptyCase, want: xdpPass},
		{key: "fg-pass", label: "pass: no signature rules", load: fg(nil, none), want: xdpPass},
		{key: "fg-pass-sig16", label: "pass: 16 signature rules that do not match (12 by port, 4 portless)", load: fg(nil, sigSetup(benchSigRules(), 0, "")), want: xdpPass},
		{key: "fg-pass-indexed16", label: "pass: 16 signature rules by port that do not match", load: fg(nil, sigSetup(benchIndexed16(), 0, "")), want: xdpPass},
		{key: "fg-pass-portless16", label: "pass: 16 portless signature rules that do not match (the most checked one by one)", load: fg(nil, sigSetup(benchPortless16(), 0, "")), want: xdpPass},
		{key: "fg-drop-exact", label: "drop: exact rule 198.18.0.1/32", load: fg(nil, sigSetup(nil, 0, src+"/32")), want: xdpDrop},
		{key: "fg-drop-sig1", label: "drop: signature rule udp sport 53, alone", load: fg(nil, sigSetup([]detector.Match{sport53}, 0, "")), want: xdpDrop},
		{key: "fg-drop-sig17", label: "drop: signature rule udp sport 53, with the 16 others", load: fg(nil, sigSetup(append(benchSigRules(), sport53), 0, "")), want: xdpDrop},
		{key: "fg-limit", label: "rate limit udp sport 53 at 10^12 pps (passes): global counter, read then add", load: fg(nil, sigSetup([]detector.Match{sport53}, 1e12, "")), want: xdpPass},
		{key: "fg-limit-over", label: "rate limit udp sport 53 at 10 pps (over the limit: drops): global counter, read only", load: fg(nil, sigSetup([]detector.Match{sport53}, 10, "")), want: xdpDrop},
	}
	var note string
	variants := map[string]*ebpf.CollectionSpec{}
	if dir := os.Getenv(xdpVariantsEnv); dir == "" {
		note = "base and variant rows left out: " + xdpVariantsEnv + " not set (scripts/bench-xdp.sh builds them)"
	} else {
		var missing []string
		for _, v := range []string{"base", "nofeatures", "ratelimitpercpu", "ratelimitfetchadd"} {
			spec, err := ebpf.LoadCollectionSpec(filepath.Join(dir, "floodguard-"+v+".o"))
			if err != nil {
				missing = append(missing, v)
				continue
			}
			variants[v] = spec
		}
		note = "variants from " + dir
		if len(missing) > 0 {
			note += "; not built: " + strings.Join(missing, ", ")
		}
	}
	if spec := variants["base"]; spec != nil {
		cases = append(cases,
			&xdpCase{key: "base-pass", label: "before #13 (BASE commit): pass, no rules", load: fg(spec, none), want: xdpPass},
			&xdpCase{key: "base-drop-exact", label: "before #13 (BASE commit): drop, exact rule", load: fg(spec, sigSetup(nil, 0, src+"/32")), want: xdpDrop})
	}
	if spec := variants["nofeatures"]; spec != nil {
		cases = append(cases, &xdpCase{key: "nofeatures-pass", label: "this program without feature counting (not usable: shows their share): pass", load: fg(spec, none), want: xdpPass})
	}
	for _, v := range []struct{ name, key, label string }{
		{"ratelimitpercpu", "percpu", "per-CPU counters (allowance / CPUs each)"},
		{"ratelimitfetchadd", "fetchadd", "global counter, fetch-and-add on every packet"},
	} {
		if spec := variants[v.name]; spec != nil {
			cases = append(cases,
				&xdpCase{key: v.key + "-limit", label: "rate limit at 10^12 pps (passes): " + v.label, load: fg(spec, sigSetup([]detector.Match{sport53}, 1e12, "")), want: xdpPass},
				&xdpCase{key: v.key + "-limit-over", label: "rate limit at 10 pps (drops): " + v.label, load: fg(spec, sigSetup([]detector.Match{sport53}, 10, "")), want: xdpDrop})
		}
	}
	for _, c := range cases {
		c.sizes = small
		c.kernel, c.cpu, c.wall = map[int][]float64{}, map[int][]float64{}, map[int][]float64{}
	}
	frames := map[int][]byte{64: udpFrame(b, src, 64)}
	cpu := pinBenchCPU(b)
	for b.Loop() {
		measureCases(b, cases, frames, rounds, repeat)
	}

	byKey := map[string]*xdpCase{}
	for _, c := range cases {
		byKey[c.key] = c
		b.ReportMetric(median(c.cpu[64]), "64B-"+c.key+"-ns")
	}
	ns := func(k string) float64 { return median(byKey[k].cpu[64]) }
	var sb strings.Builder
	fmt.Fprintf(&sb, "BenchmarkSignatureCompare: %d rounds (after a warm-up round), each loading every program afresh and running it with %d repeats on a 64-byte IPv4 UDP frame, interleaved; medians over rounds; pinned to CPU %d of %d possible. %s.\n\n",
		rounds, repeat, cpu, mustPossibleCPU(b), note)
	sb.WriteString("| program, path | ns [kernel] | × floor | min–max over rounds |\n|---|---|---|---|\n")
	for _, c := range cases {
		fmt.Fprintf(&sb, "| %s | %.1f [%.0f] | %.2f | %s |\n", c.label, ns(c.key), median(c.kernel[64]), ns(c.key)/ns("empty"), spread(c.cpu[64], "%.1f"))
	}
	// Paired per-round differences, as in BenchmarkXDPCompare.
	diff := func(a, c string) (d []float64) {
		for i := range byKey[a].cpu[64] {
			d = append(d, byKey[a].cpu[64][i]-byKey[c].cpu[64][i])
		}
		return d
	}
	target := func(what, a, c string, limit float64) {
		if byKey[a] == nil || byKey[c] == nil {
			fmt.Fprintf(&sb, "- %s: not measured (%s)\n", what, note)
			return
		}
		d := diff(a, c)
		verdict := "**met**"
		if median(d) > limit {
			verdict = "**not met**"
		}
		fmt.Fprintf(&sb, "- %s: %.1f vs %.1f ns, %+.1f ns (per round median %+.1f, %s)", what, ns(a), ns(c), ns(a)-ns(c), median(d), spread(d, "%+.1f"))
		if limit >= 0 {
			fmt.Fprintf(&sb, ", target ≤ %+.0f ns: %s", limit, verdict)
		}
		sb.WriteString("\n")
	}
	sb.WriteString("\nDifferences (ratio of medians, then the median and range of the per-round differences):\n\n")
	target("pass, no signature rules, vs the program before #13", "fg-pass", "base-pass", -1)
	target("pass, features' share (vs the build without them)", "fg-pass", "nofeatures-pass", -1)
	target("pass with 16 non-matching signature rules vs none", "fg-pass-sig16", "fg-pass", 5)
	target("pass with 16 non-matching rules by port vs none", "fg-pass-indexed16", "fg-pass", 5)
	target("pass with 16 non-matching portless rules vs none", "fg-pass-portless16", "fg-pass", -1)
	target("signature drop (1 rule) vs exact-rule drop", "fg-drop-sig1", "fg-drop-exact", 5)
	target("signature drop (1 of 17 rules) vs exact-rule drop", "fg-drop-sig17", "fg-drop-exact", 5)
	target("exact-rule drop vs the program before #13", "fg-drop-exact", "base-drop-exact", -1)
	target("rate limit, passing: global (read then add) vs per-CPU counters", "fg-limit", "percpu-limit", 5)
	target("rate limit, over the limit: global (read only) vs per-CPU counters", "fg-limit-over", "percpu-limit-over", 5)
	target("rate limit, passing: read then add vs fetch-and-add", "fg-limit", "fetchadd-limit", -1)
	target("rate limit, over the limit: read only vs fetch-and-add", "fg-limit-over", "fetchadd-limit-over", -1)
	writeBenchTable(b, "xdp-signatures.md", sb.String())
}
