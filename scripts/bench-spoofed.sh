#!/usr/bin/env bash
# What a random-source (spoofed) flood costs floodguard's daemon (issue 14),
# optionally side by side with an older build in the same run. The
# measuring is done by scripts/benchspoofed (Go): it builds the live demo's
# namespace lab, floods the server with trafgen (netsniff-ng) from random
# sources, times single-source floods during and after it, reads the
# daemon's CPU and memory from /proc and its ticks from its metrics, and
# removes everything on exit, Ctrl-C included.
#
#   scripts/bench-spoofed.sh                      # bin/floodguard (built if FG is unset)
#   BASE_REF=main scripts/bench-spoofed.sh        # and a build of main, taking turns
#   scripts/bench-spoofed.sh -rounds 3 -family 4  # flags: go run ./scripts/benchspoofed -h
#
# The report goes to stdout and out/bench-spoofed.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-spoofed.sh: needs root (namespaces, XDP)" >&2; exit 1; }
command -v ip >/dev/null || { echo "bench-spoofed.sh: needs iproute2" >&2; exit 1; }
GO=${GO:-go}
mkdir -p bin
if [ -z "${FG:-}" ]; then FG=bin/floodguard; "$GO" build -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o "$FG" ./cmd/floodguard; fi
args=()
if [ -n "${BASE_REF:-}" ]; then
	# The baseline is built from a clean export of BASE_REF in a temporary
	# directory: the work tree, its index and its worktree list stay as
	# they are.
	rev=$(git rev-parse --verify --quiet "$BASE_REF^{commit}") || { echo "bench-spoofed.sh: BASE_REF=$BASE_REF: not a commit" >&2; exit 1; }
	tmp=$(mktemp -d /tmp/bench-spoofed-base.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	mkdir "$tmp/src"
	git archive --format=tar "$rev" | tar -x -C "$tmp/src"
	basever=$(git describe --always "$rev")
	echo "building the baseline from $BASE_REF ($basever)" >&2
	(cd "$tmp/src" && "$GO" build -ldflags "-X main.version=$basever" -o "$tmp/floodguard" ./cmd/floodguard)
	args+=(-baseline "$tmp/floodguard")
fi
"$GO" build -o bin/benchspoofed ./scripts/benchspoofed
# Not exec: the trap removes the baseline's directory afterwards.
bin/benchspoofed -floodguard "$FG" "${args[@]}" "$@"
