#!/usr/bin/env bash
# XDP data plane, side by side (root; part of `make bench`, which installs
# clang and xdp-tools first):
#   1. BenchmarkXDPCompare: the empty program (floor), floodguard's pass and
#      drop paths, xdp-filter's programs (loaded from the installed
#      xdp-tools/libxdp objects) and patched design variants of
#      floodguard.c, on the same 64- and 1500-byte frames, interleaved over
#      ROUNDS rounds of REPEAT runs each (BPF_PROG_TEST_RUN); medians.
#   2. BenchmarkSignatureCompare: signature rules (issue #13) against the
#      pass and exact-drop paths and the program before them (commit $BASE),
#      and the rate limiter's global counter against per-CPU counters.
#   3. BenchmarkRead1MSources: reading 1M active sources in one tick (time
#      and allocations per read, medians over READ_ROUNDS), with batch sizes
#      and the kernel/user-space split.
#   4. BenchmarkMapMemory: the kernel memory of the maps at default sizes.
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

# Design variants: one-line patches of a copy of bpf/floodguard.c (or a
# patch file from scripts/xdp-variants/ on a copy of bpf/), compiled with
# the flags bpf2go uses (bpf/gen.go). A patch that no longer applies (the
# source moved on) is reported and its variant left out. The base variant
# is the program before signature rules and features, from commit $BASE.
VARIANTS="$OUT/xdp-variants"
BASE=${BASE:-c233fd2}
PRE14=${PRE14:-cef0adb}
PRESLOTS=${PRESLOTS:-42eb72b}
PREPORTS=${PREPORTS:-a2345e5}
rm -rf "$VARIANTS"; mkdir -p "$VARIANTS"
CFLAGS=(-O2 -g -Wall -Wno-unused-function -Wno-unused-but-set-variable -target bpfel -fno-ident -I/usr/include/x86_64-linux-gnu)
variant() { # name sed-expression [patch-file]
	local name=$1 expr=$2 patch=${3:-} dir="$VARIANTS/src-$1"
	mkdir -p "$dir"
	cp bpf/*.h "$dir/"
	sed -e "$expr" bpf/floodguard.c > "$dir/floodguard.c"
	if [ -n "$expr" ] && cmp -s bpf/floodguard.c "$dir/floodguard.c"; then
		echo "bench-xdp.sh: variant $name: patch '$expr' no longer applies to bpf/floodguard.c; left out" >&2
		return
	fi
	if [ -n "$patch" ] && ! patch -s -p1 --no-backup-if-mismatch -d "$dir" < "scripts/xdp-variants/$patch"; then
		echo "bench-xdp.sh: variant $name: scripts/xdp-variants/$patch no longer applies; left out" >&2
		return
	fi
	clang "${CFLAGS[@]}" -mcpu=v3 -DFG_NCPU="$(getconf _NPROCESSORS_CONF)" -I"$dir" -c "$dir/floodguard.c" -o "$VARIANTS/floodguard-$name.o" ||
		echo "bench-xdp.sh: variant $name does not compile; left out" >&2
}
if command -v clang >/dev/null; then
	variant control  ''
	variant nocache  's/if (READ_ONCE(s->rules_gen) != FG_CTL_GEN(ctl))/if (1)/'
	variant ktime    's/bpf_ktime_get_coarse_ns()/bpf_ktime_get_ns()/'
	variant noclock  's/bpf_ktime_get_coarse_ns()/0/'
	variant nosource 's/action = track_source(st, &pkt, class, len, ctl, now);/action = XDP_PASS;/'
	variant noprefixhit 's/count_prefix_hit(pkt, len);//'
	variant nodropcount 's/s\(t\)\{0,1\}->dropped_\(packets\|bytes\) += [a-z0-9]*;//'
	variant nofeatures 's/count_features(&pkt, class, len);//'
	variant notrip 's/check_trip(s, pkt, class, len, ctl, st);/;/g'
	# What any per-source design costs by itself: the per-source work of
	# this one without #13's features, #17's trip check and the clock; then
	# also with plain adds for the entry's counters (as a per-CPU entry).
	LEAN='s/count_features(&pkt, class, len);//; s/bpf_ktime_get_coarse_ns()/0/; s/check_trip(s, pkt, class, len, ctl, st);/;/g'
	variant lean "$LEAN"
	variant leanplain "$LEAN"'; s/__sync_fetch_and_add(&s->\(packets\[class\]\|bytes\[class\]\), \(1\|len\));/s->\1 += \2;/'
	variant ratelimitpercpu '' ratelimit-percpu.patch
	variant ratelimitfetchadd '' ratelimit-fetchadd.patch
	# The program as it was before issue #13, built as it was then.
	mkdir -p "$VARIANTS/src-base"
	if git show "$BASE:bpf/floodguard.c" > "$VARIANTS/src-base/floodguard.c" &&
		git show "$BASE:bpf/floodguard.h" > "$VARIANTS/src-base/floodguard.h"; then
		clang "${CFLAGS[@]}" -mcpu=v1 -I"$VARIANTS/src-base" -c "$VARIANTS/src-base/floodguard.c" -o "$VARIANTS/floodguard-base.o" ||
			echo "bench-xdp.sh: base ($BASE) does not compile; left out" >&2
	else
		echo "bench-xdp.sh: no commit $BASE; base left out" >&2
	fi
	# Earlier designs, from the commit's bpf/: before issue #14 (per-CPU
	# per-source entries, no admission), before slots (the entry as the
	# hash's value), and before the port summer (the port counters as a
	# mapped region per CPU).
	commit_variant() { # name commit
		mkdir -p "$VARIANTS/src-$1"
		# The C sources only: a copy of the Go package under out/ would be
		# one more package for `go test ./...` to build.
		if git archive "$2" bpf | tar -x -C "$VARIANTS/src-$1" --strip-components=1 --wildcards '*.c' '*.h' 2>/dev/null; then
			clang "${CFLAGS[@]}" -mcpu=v3 -I"$VARIANTS/src-$1" -c "$VARIANTS/src-$1/floodguard.c" -o "$VARIANTS/floodguard-$1.o" ||
				echo "bench-xdp.sh: $1 ($2) does not compile; left out" >&2
		else
			echo "bench-xdp.sh: no commit $2; $1 left out" >&2
		fi
	}
	commit_variant pre14 "$PRE14"
	commit_variant preslots "$PRESLOTS"
	commit_variant preports "$PREPORTS"
	export FLOODGUARD_XDP_VARIANTS="$VARIANTS"
else
	echo "bench-xdp.sh: no clang: design variants left out" >&2
fi

go test -c -o "$OUT/bpf.test" ./bpf/
# ONLY=xdp-compare (or a space-separated list of the log names below) runs
# just those, e.g. to re-measure the variants without the slower reads.
ONLY=${ONLY:-xdp-compare xdp-signatures xdp-read xdp-maps}
bench() { # log-name benchmark what
	case " $ONLY " in *" $1 "*) ;; *) return 0 ;; esac
	echo "== $3" >&2
	(cd bpf && "$OUT/bpf.test" -test.run '^$' -test.bench "^$2\$" -test.benchtime 1x -test.cpu 1) >"$OUT/$1.log" 2>&1 ||
		{ cat "$OUT/$1.log" >&2; echo "bench-xdp.sh: $2 failed" >&2; exit 1; }
}
bench xdp-compare BenchmarkXDPCompare "XDP programs side by side ($ROUNDS rounds x $REPEAT repeats)"
bench xdp-signatures BenchmarkSignatureCompare "signature rules side by side ($ROUNDS rounds x $REPEAT repeats)"
bench xdp-read BenchmarkRead1MSources "reading 1M active sources ($READ_ROUNDS rounds)"
bench xdp-maps BenchmarkMapMemory "map memory at default sizes"

echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs; kernel $(uname -r); $(go version | cut -d' ' -f3); clang $(clang --version 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p;q'); xdp-tools $(dpkg-query -W -f '${Version}' xdp-tools 2>/dev/null || echo '?')"
for f in $ONLY; do
	echo
	if [ -s "$OUT/$f.md" ]; then cat "$OUT/$f.md"; else echo "($f: no table; see $OUT/$f.log)"; cat "$OUT/$f.log"; fi
done
