#!/usr/bin/env bash
# XDP data plane, side by side (root): the empty program (floor),
# floodguard's pass and drop paths and xdp-filter's programs on the same
# frames, interleaved over rounds inside one benchmark (medians); the time
# to read 1M active sources; the kernel memory of the maps at default sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-xdp.sh: needs root (BPF_PROG_TEST_RUN)" >&2; exit 1; }
go test -run '^$' -bench 'XDPCompare|MapMemory' -benchtime 1x ./bpf/ | grep '^Benchmark' | tr '\t' '\n' | sed 's/^ *//'
go test -run '^$' -bench 'ReadSources' -cpu 1 -benchtime 5x ./bpf/ | grep '^Benchmark'
