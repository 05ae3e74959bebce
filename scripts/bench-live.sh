#!/usr/bin/env bash
# floodguard side by side with FastNetMon Community (Debian's fastnetmon
# 1.2.4), one after the other on the same namespace lab and the same flood
# (issue #5). The measuring is done by scripts/benchlive (Go): it builds the
# live demo's lab (server, benign client and attacker namespaces on a
# bridge, 198.18.0.0/24 only), floods with internal/lab's paced packet
# sender at a fixed rate, and removes everything on exit, Ctrl-C included.
# Flags go to benchlive (go run ./scripts/benchlive -h lists them), e.g.
#   scripts/bench-live.sh -rounds 5 -rate 20000 -flood 10s
# The report goes to stdout and out/bench-live.md.
#
# With -compare-trips (make bench-trips) it times floodguard alone, trips on
# against off (issue 17), without FastNetMon; floods above 40k pps need
# trafgen (netsniff-ng). The report goes to out/bench-trips.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-live.sh: needs root (namespaces, XDP)" >&2; exit 1; }
case " $* " in
*" -compare-trips "*) ;;
*) command -v fastnetmon >/dev/null || { echo "bench-live.sh: needs fastnetmon (apt-get install fastnetmon)" >&2; exit 1; } ;;
esac
command -v ip >/dev/null || { echo "bench-live.sh: needs iproute2" >&2; exit 1; }
GO=${GO:-go}
mkdir -p bin
# Both from the same tree: the benchmark reads floodguard's pinned maps, whose
# layout must match. FG names an already built binary (make bench-live's).
if [ -z "${FG:-}" ]; then FG=bin/floodguard; "$GO" build -o "$FG" ./cmd/floodguard; fi
"$GO" build -o bin/benchlive ./scripts/benchlive
exec bin/benchlive -floodguard "$FG" "$@"
