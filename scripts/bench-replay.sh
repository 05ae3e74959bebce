#!/usr/bin/env bash
# Replay throughput, side by side: the bare pcapgo read loop (the floor),
# the replay source, the whole replay path, and tcpdump, over one 1M-packet
# synthesized capture, on one core. Rounds are interleaved (every variant
# once per round) because the machine is shared and noisy; medians and
# ratios are printed at the end. Also the detector's per-tick cost.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
OUT=${OUT:-out/bench}
mkdir -p "$OUT"
PCAP="$OUT/bench.pcap"
[ -s "$PCAP" ] || go run ./cmd/floodguard synth -out "$OUT" -seed 1 -packets 1000000 bench >/dev/null
export FLOODGUARD_BENCH_PCAP="$PCAP"
go test -c -o "$OUT/capture.test" ./capture/
go test -c -o "$OUT/detector.test" ./detector/
raw="$OUT/replay-rounds.txt"; : > "$raw"
for r in $(seq "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	"$OUT/capture.test" -test.run '^$' -test.bench 'Throughput' -test.cpu 1 -test.benchtime 3x | grep '^Benchmark' >> "$raw"
	"$OUT/detector.test" -test.run '^$' -test.bench 'Step' -test.cpu 1 -test.benchtime 5x | grep '^Benchmark' >> "$raw"
done
echo
echo "median over $ROUNDS interleaved rounds, GOMAXPROCS=1 ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(go version | cut -d' ' -f3); kernel $(uname -r))"
awk '
function median(arr, n,   i, j, t) {
	for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j+1] = arr[j]; arr[j+1] = t }
	return (n % 2) ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
}
/^BenchmarkThroughput/ {
	name = $1; sub(/^BenchmarkThroughput\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 2; i <= NF; i++) {
		if ($(i) == "ns/pkt") { n[name]++; v[name, n[name]] = $(i-1) }
		if ($(i) == "allocs/op") { allocs[name] = $(i-1) }
	}
}
/^BenchmarkStep/ {
	name = $1; sub(/^BenchmarkStep\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 2; i <= NF; i++) {
		if ($(i) == "ns/source") { sn[name]++; sv[name, sn[name]] = $(i-1) }
		if ($(i) == "heap-bytes/source") { hb[name] = $(i-1) }
	}
}
END {
	split("pcapgo-read pcapgo-zerocopy replay-source replay-full tcpdump", order, " ")
	for (k in n) { delete a; for (i = 1; i <= n[k]; i++) a[i] = v[k, i]; med[k] = median(a, n[k]) }
	printf "| %-16s | %8s | %10s | %12s | %12s | %12s | %10s |\n", "variant", "ns/pkt", "Mpkts/s", "× pcapgo-read", "× zero-copy", "× tcpdump", "allocs/pkt"
	printf "|%s|%s|%s|%s|%s|%s|%s|\n", "------------------", "----------", "------------", "--------------", "--------------", "--------------", "------------"
	for (o = 1; o <= 5; o++) {
		k = order[o]; if (!(k in med)) continue
		ap = (k in allocs) ? sprintf("%.4f", allocs[k] / 1000000) : "n/a"
		tx = ("tcpdump" in med) ? sprintf("%.2f", med[k] / med["tcpdump"]) : "n/a"
		printf "| %-16s | %8.1f | %10.2f | %12.2f | %12.2f | %12s | %10s |\n", k, med[k], 1000 / med[k], med[k] / med["pcapgo-read"], med[k] / med["pcapgo-zerocopy"], tx, ap
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
