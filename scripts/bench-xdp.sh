#!/usr/bin/env bash
# XDP data plane, side by side (root; part of `make bench`, which installs
# clang and xdp-tools first):
#   1. BenchmarkXDPCompare: the empty program (floor), floodguard's pass and
#      drop paths, xdp-filter's programs (loaded from the installed
#      xdp-tools/libxdp objects) and patched design variants of
#      floodguard.c, on the same 64- and 1500-byte frames, interleaved over
#      ROUNDS rounds of REPEAT runs each (BPF_PROG_TEST_RUN); medians.
#   2. BenchmarkRead1MSources: reading 1M active sources in one tick (time
#      and allocations per read, medians over READ_ROUNDS), with batch sizes
#      and the kernel/user-space split.
#   3. BenchmarkMapMemory: the kernel memory of the maps at default sizes.
# Tables go to $OUT (default out/bench) as xdp-*.md, ready for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-xdp.sh: needs root (BPF_PROG_TEST_RUN, BPF maps)" >&2; exit 1; }
OUT=${OUT:-out/bench}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export FLOODGUARD_BENCH_OUT="$OUT"
rm -f "$OUT"/xdp-*.md "$OUT"/xdp-*.log "$OUT/xdp-compare-samples.tsv"
export ROUNDS=${ROUNDS:-9}
export REPEAT=${REPEAT:-10000000}
export READ_ROUNDS=${READ_ROUNDS:-5}

# Design variants: one-line patches of a copy of bpf/floodguard.c, compiled
# with the flags bpf2go uses (bpf/gen.go). A patch that no longer applies
# (the source moved on) is reported and its variant left out.
VARIANTS="$OUT/xdp-variants"
rm -rf "$VARIANTS"; mkdir -p "$VARIANTS"
CFLAGS=(-O2 -g -Wall -Wno-unused-function -target bpfel -fno-ident -I/usr/include/x86_64-linux-gnu -I"$PWD/bpf")
variant() { # name mcpu sed-expression
	local name=$1 mcpu=$2 expr=$3 src="$VARIANTS/floodguard-$1.c"
	sed -e "$expr" bpf/floodguard.c > "$src"
	if [ -n "$expr" ] && cmp -s bpf/floodguard.c "$src"; then
		echo "bench-xdp.sh: variant $name: patch '$expr' no longer applies to bpf/floodguard.c; left out" >&2
		return
	fi
	clang "${CFLAGS[@]}" -mcpu="$mcpu" -c "$src" -o "$VARIANTS/floodguard-$name.o" ||
		echo "bench-xdp.sh: variant $name does not compile; left out" >&2
}
if command -v clang >/dev/null; then
	variant control  v1 ''
	variant nocache  v1 's/if (s->rules_gen != FG_CTL_GEN(ctl))/if (1)/'
	variant ktime    v1 's/bpf_ktime_get_coarse_ns()/bpf_ktime_get_ns()/'
	variant noclock  v1 's/bpf_ktime_get_coarse_ns()/0/'
	variant nosource v1 's/action = track_source(st, &pkt, class, len);/action = XDP_PASS;/'
	variant noprefixhit v1 's/count_prefix_hit(pkt, len);//'
	variant nodropcount v1 's/s\(t\)\{0,1\}->dropped_\(packets\|bytes\) += [a-z0-9]*;//'
	variant mcpuv3   v3 ''
	export FLOODGUARD_XDP_VARIANTS="$VARIANTS"
else
	echo "bench-xdp.sh: no clang: design variants left out" >&2
fi

go test -c -o "$OUT/bpf.test" ./bpf/
bench() { # log-name benchmark what
	echo "== $3" >&2
	(cd bpf && "$OUT/bpf.test" -test.run '^$' -test.bench "^$2\$" -test.benchtime 1x -test.cpu 1) >"$OUT/$1.log" 2>&1 ||
		{ cat "$OUT/$1.log" >&2; echo "bench-xdp.sh: $2 failed" >&2; exit 1; }
}
bench xdp-compare BenchmarkXDPCompare "XDP programs side by side ($ROUNDS rounds x $REPEAT repeats)"
bench xdp-read BenchmarkRead1MSources "reading 1M active sources ($READ_ROUNDS rounds)"
bench xdp-maps BenchmarkMapMemory "map memory at default sizes"

echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs; kernel $(uname -r); $(go version | cut -d' ' -f3); clang $(clang --version 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p;q'); xdp-tools $(dpkg-query -W -f '${Version}' xdp-tools 2>/dev/null || echo '?')"
for f in xdp-compare xdp-read xdp-maps; do
	echo
	if [ -s "$OUT/$f.md" ]; then cat "$OUT/$f.md"; else echo "($f: no table; see $OUT/$f.log)"; cat "$OUT/$f.log"; fi
done
