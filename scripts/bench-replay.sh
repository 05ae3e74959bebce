#!/usr/bin/env bash
# Replay throughput, side by side (part of `make bench`): over one
# synthesized capture of exactly 1,000,000 packets, on one core
# (GOMAXPROCS=1), capture's BenchmarkThroughput measures
#   pcapgo-read      the bare pcapgo loop, ReadPacketData until EOF (the floor)
#   pcapgo-zerocopy  the same with ZeroCopyReadPacketData
#   replay-source    capture.Replay alone: read, decode, aggregate into ticks
#   replay-full      what `floodguard replay` runs: Replay, SimulatedPlane,
#                    detector.New(detector.DefaultConfig(), plane), detector.Run
#   tcpdump          tcpdump -r FILE -w /dev/null (left out if not installed)
# The machine is shared and noisy, so the variants are interleaved: every
# round runs each once (PASSES passes over the file after an untimed one),
# starting one variant further along each round; the table has medians over
# rounds, and the ratios are medians of the ratios within each round. Also
# the detector's per-tick cost (detector BenchmarkStep), once per round.
#
#   ROUNDS=6 PASSES=3 OUT=out/bench ./scripts/bench-replay.sh   # the defaults
#
# Writes $OUT/bench.pcap, $OUT/replay-rounds.txt (every sample) and
# $OUT/replay.md (the tables, as printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-6}
PASSES=${PASSES:-3}
OUT=${OUT:-out/bench}
mkdir -p "$OUT"
PCAP="$OUT/bench.pcap"
# Regenerated every time (a few seconds), so that it is always what the
# current synth writes: deterministic for a seed.
go run ./cmd/floodguard synth -out "$OUT" -seed 1 -packets 1000000 bench >/dev/null
export FLOODGUARD_BENCH_PCAP="$PCAP"
go test -c -o "$OUT/capture.test" ./capture/
go test -c -o "$OUT/detector.test" ./detector/
if ! command -v tcpdump >/dev/null; then
	echo "bench-replay.sh: tcpdump is not installed: no tcpdump baseline (make bench installs it)" >&2
fi

variants=(pcapgo-read pcapgo-zerocopy replay-source replay-full tcpdump)
nv=${#variants[@]}
raw="$OUT/replay-rounds.txt"
: >"$raw"
for r in $(seq "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	for i in $(seq 0 $((nv - 1))); do
		v=${variants[$(((i + r - 1) % nv))]}
		"$OUT/capture.test" -test.run '^$' -test.bench "^BenchmarkThroughput\$/^$v\$" \
			-test.cpu 1 -test.benchtime "${PASSES}x" | awk -v r="$r" '/^Benchmark/ { print r, $0 } /^cpu:/ { print "#", $0 }' >>"$raw"
	done
	"$OUT/detector.test" -test.run '^$' -test.bench 'Step' -test.cpu 1 -test.benchtime 5x |
		awk -v r="$r" '/^Benchmark/ { print r, $0 }' >>"$raw"
done

{
	echo "Replay throughput over $PCAP (1,000,000 packets): median of $ROUNDS interleaved rounds of $PASSES passes, GOMAXPROCS=1"
	echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') (Go reports \"$(grep -m1 '^# cpu:' "$raw" | cut -d: -f2 | sed 's/^ *//;s/ *$//')\"), $(nproc) CPUs; $(go version | cut -d' ' -f3); kernel $(uname -r)"
	echo
	awk '
	function median(arr, n,   i, j, t) {
		for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j+1] = arr[j]; arr[j+1] = t }
		return (n % 2) ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
	}
	# ratio returns the median over rounds of ns[a, r] / ns[b, r].
	function ratio(a, b,   r, n, x) {
		n = 0; delete x
		for (r = 1; r <= maxr; r++) if (((a, r) in ns) && ((b, r) in ns)) x[++n] = ns[a, r] / ns[b, r]
		return n ? sprintf("%.2f", median(x, n)) : "n/a"
	}
	$2 ~ /^BenchmarkThroughput\// {
		name = $2; sub(/^BenchmarkThroughput\//, "", name); sub(/-[0-9]+$/, "", name)
		r = $1; if (r > maxr) maxr = r
		for (i = 3; i <= NF; i++) {
			if ($(i) == "ns/pkt") ns[name, r] = $(i-1)
			if ($(i) == "allocs/pkt") { na[name]++; al[name, na[name]] = $(i-1) }
		}
	}
	$2 ~ /^BenchmarkStep\// {
		name = $2; sub(/^BenchmarkStep\//, "", name); sub(/-[0-9]+$/, "", name)
		for (i = 3; i <= NF; i++) {
			if ($(i) == "ns/source") { sn[name]++; sv[name, sn[name]] = $(i-1) }
			if ($(i) == "heap-bytes/source") { hb[name] = $(i-1) }
		}
	}
	END {
		nv = split("pcapgo-read pcapgo-zerocopy replay-source replay-full tcpdump", order, " ")
		printf "| %-15s | %12s | %8s | %10s | %13s | %17s | %9s |\n", "variant", "pkts/s", "ns/pkt", "allocs/pkt", "× pcapgo-read", "× pcapgo-zerocopy", "× tcpdump"
		printf "|%s|%s|%s|%s|%s|%s|%s|\n", "-----------------", "-------------:", "---------:", "-----------:", "--------------:", "------------------:", "----------:"
		for (o = 1; o <= nv; o++) {
			k = order[o]; n = 0; delete x
			for (r = 1; r <= maxr; r++) if ((k, r) in ns) x[++n] = ns[k, r]
			if (n == 0) continue
			med[k] = median(x, n)
			ap = "n/a"
			if (na[k]) { delete y; for (i = 1; i <= na[k]; i++) y[i] = al[k, i]; ap = sprintf("%.6f", median(y, na[k])) }
			printf "| %-15s | %10.2f M | %8.1f | %10s | %13s | %17s | %9s |\n", k, 1e3 / med[k], med[k], ap, ratio(k, "pcapgo-read"), ratio(k, "pcapgo-zerocopy"), ratio(k, "tcpdump")
		}
		print ""
		print "(pkts/s and ns/pkt: medians over rounds; × X: median over rounds of the ratio of ns/pkt to X in the same round.)"
		print ""
		for (o = 1; o <= 2; o++) {
			k = (o == 1) ? "replay-full" : "replay-source"
			if (!(k in med)) continue
			rate = 1e9 / med[k]; rr = ratio(k, "pcapgo-read")
			met1 = (rate >= 3e6) ? "met" : "NOT met"
			met2 = (rr != "n/a" && rr + 0 <= 2) ? "met" : "NOT met"
			printf "%s: %.2f Mpkts/s on one core (target >= 3): %s; %s× the bare pcapgo loop (target <= 2): %s\n", k, rate / 1e6, met1, rr, met2
		}
		print ""
		printf "| %-18s | %14s | %22s |\n", "detector Step", "ns/source/tick", "heap bytes per source"
		printf "|%s|%s|%s|\n", "--------------------", "----------------", "------------------------"
		split("sources=1000 sources=100000 sources=1000000", so, " ")
		for (o = 1; o <= 3; o++) {
			k = so[o]; if (!(k in sn)) continue
			delete a; for (i = 1; i <= sn[k]; i++) a[i] = sv[k, i]
			printf "| %-18s | %14.1f | %22.1f |\n", k, median(a, sn[k]), hb[k]
		}
	}' "$raw"
} | tee "$OUT/replay.md"
