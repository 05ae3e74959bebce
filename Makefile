# floodguard: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they use from Debian's packages if it is missing.

GO        ?= go
BIN       := bin/floodguard
OUT       := out
CORPUS    ?= $(abspath ../shared/pcaps)
export FLOODGUARD_PCAP_CORPUS ?= $(CORPUS)

# Debian packages the tests use: clang/llvm/libbpf for `make generate` and the
# freshness check of the committed BPF objects, bpftool for inspection,
# iproute2 for the namespace tests, hping3 for the live demo, tcpdump and
# xdp-tools (xdp-filter) for the benchmarks that compare against them;
# prometheus (promtool) to check the metrics and alert rules,
# prometheus-alertmanager for the paging test against a real Alertmanager,
# chromium to render the replay report, tmux to drive `floodguard top`;
# systemd (systemd-analyze) and strace to check the unit's sandbox, gobgpd
# and bird2 as the routers of the upstream BGP tests, zsh and man-db to
# check the generated completions and man page.
APT_PACKAGES := clang llvm libbpf-dev bpftool iproute2 tcpdump xdp-tools hping3 \
	prometheus prometheus-alertmanager chromium tmux systemd strace gobgpd bird2 zsh man-db
# What the live demo needs: namespaces and an hping3 flood; demo-upstream
# adds GoBGP's daemon and CLI as the router upstream.
DEMO_PACKAGES := iproute2 hping3
DEMO_UPSTREAM_PACKAGES := $(DEMO_PACKAGES) gobgpd

# apt-install installs those of the Debian packages $(1) that are missing
# (as root, or with sudo).
define apt-install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

.PHONY: all build test demo demo-upstream demo-replay demo-deps bench bench-live bench-trips bench-spoofed generate check-generated deps bpffs fuzz vet vulncheck clean install uninstall deb

all: build

# VERSION is stamped into the binary (floodguard version, --version, the
# daemon's logs and metrics): git describe, so a build says which commit it
# is and whether it had local changes.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/floodguard

# deps installs missing Debian packages (root, or sudo) and mounts bpffs.
deps:
	$(call apt-install,$(APT_PACKAGES))
	@$(MAKE) --no-print-directory bpffs

bpffs:
	@if [ "$$(id -u)" = 0 ] && ! mountpoint -q /sys/fs/bpf; then mount -t bpf bpf /sys/fs/bpf; fi

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# test runs every test, fuzz seed corpora included. Privileged tests skip when
# not root unless FLOODGUARD_REQUIRE_PRIVILEGED=1 (as in CI), which fails them.
test: deps vet check-generated vulncheck
	$(GO) test -count=1 -timeout 30m ./...

# vulncheck runs govulncheck when it is on PATH and VULNCHECK=1 is set:
# govulncheck fetches its vulnerability database from vuln.go.dev, which
# the CI machines and this workplace must not contact (their network
# reaches only the package registries), so it is opt-in where that host is
# reachable (or GOVULNDB names a local mirror). An unreachable database is
# said, not failed.
vulncheck:
	@if [ "$(VULNCHECK)" != 1 ]; then \
		echo "vulncheck: skipped (set VULNCHECK=1 where vuln.go.dev or a GOVULNDB mirror is reachable)"; exit 0; \
	fi; \
	if ! command -v govulncheck >/dev/null 2>&1; then \
		echo "vulncheck: govulncheck not on PATH, skipped (go install golang.org/x/vuln/cmd/govulncheck@latest)"; exit 0; \
	fi; \
	out=$$(govulncheck ./... 2>&1); rc=$$?; echo "$$out"; \
	if [ $$rc -ne 0 ] && echo "$$out" | grep -q "fetching vulnerabilities"; then \
		echo "vulncheck: the vulnerability database is unreachable, skipped (not a failure)"; exit 0; \
	fi; exit $$rc

# config-defaults regenerates deploy/floodguard.yaml, every config key with
# its default and comment, from the config structs (internal/config: Keys,
# KeyDocs); internal/config's tests fail while the committed file is stale.
.PHONY: config-defaults
config-defaults:
	$(GO) run ./cmd/floodguard config defaults > deploy/floodguard.yaml

# generate rebuilds the BPF objects and their Go bindings (needs clang).
generate:
	$(GO) generate ./bpf/

# check-generated fails if the committed BPF objects are stale.
check-generated:
	@if [ -z "$$(ls bpf/*.c 2>/dev/null)" ]; then exit 0; fi; \
	$(GO) generate ./bpf/ >/dev/null && \
	if [ -n "$$(git status --porcelain -- bpf/)" ]; then \
		echo "bpf/: committed generated files are stale (regenerated now; review and commit):"; \
		git status --short -- bpf/; exit 1; \
	fi

# demo is the live demo (root): a lab of network namespaces joined by a
# bridge, an HTTP server behind `floodguard run`, a benign client, an hping3
# flood from another host; about half a minute, cleaned up even on Ctrl-C.
demo:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make demo needs root: it creates network namespaces and attaches an XDP program."; \
		echo "Run it as root (sudo make demo), or run 'make demo-replay', the offline demo, as any user."; \
		exit 1; \
	fi
	@$(MAKE) --no-print-directory build demo-deps
	@./$(BIN) demo

demo-deps:
	$(call apt-install,$(DEMO_PACKAGES))

# demo-upstream is the live demo plus a router upstream (gobgpd, in a fourth
# namespace on the bridge) that floodguard peers with over BGP: the flood's
# rule shows up in the router's FlowSpec table and leaves it after the
# flood; about a minute (root).
demo-upstream:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make demo-upstream needs root: it creates network namespaces and attaches an XDP program."; \
		exit 1; \
	fi
	@$(MAKE) --no-print-directory build
	$(call apt-install,$(DEMO_UPSTREAM_PACKAGES))
	@./$(BIN) demo --upstream

# demo-replay synthesizes a single-source flood and a reflection flood, and
# replays them through the detector (no root needed).
demo-replay: build
	@mkdir -p $(OUT)
	@./$(BIN) synth -out $(OUT) -seed 1 single-source udp-reflection >/dev/null
	@echo "== single-source UDP flood (labels: $(OUT)/single-source.labels.json)"
	@./$(BIN) replay $(OUT)/single-source.pcap
	@echo
	@echo "== DNS reflection flood from ~1500 reflectors (labels: $(OUT)/udp-reflection.labels.json),"
	@echo "   with the pages on-call staff would get and an HTML report"
	@./$(BIN) replay --page --report $(OUT)/udp-reflection.html $(OUT)/udp-reflection.pcap
	@echo "report: $(OUT)/udp-reflection.html"

# report-screenshot regenerates docs/report.png, the README's picture of
# `replay --report`: a DNS reflection flood (seed 1) shown in headless
# Chromium.
.PHONY: report-screenshot
report-screenshot: build
	$(call apt-install,chromium)
	@mkdir -p $(OUT) docs
	@./$(BIN) synth -out $(OUT) -seed 1 udp-reflection >/dev/null
	@./$(BIN) replay -o jsonl -report $(OUT)/udp-reflection.html $(OUT)/udp-reflection.pcap >/dev/null
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	chromium --headless --disable-gpu --no-sandbox --user-data-dir="$$tmp" --hide-scrollbars \
		--window-size=1280,900 --screenshot=docs/report.png "file://$(abspath $(OUT))/udp-reflection.html" 2>/dev/null
	@echo "wrote docs/report.png from $(OUT)/udp-reflection.html"

# testdata regenerates the synthesized captures under testdata/synth (small:
# 12 s warm-up, floods at 6 % of their rate, one heavy client; gzipped
# without a timestamp so the bytes are reproducible), then the golden
# outputs of every committed capture. Review the diff before committing.
SYNTH_SCENARIOS := benign flash-crowd single-source spoofed-syn udp-reflection carpet ipv6-rotation pulsing \
	reflection-mix udp-botnet spoofed-syn-served
.PHONY: testdata
testdata: build
	./$(BIN) synth -out testdata/synth -seed 1 -scale 0.01 -warm-up 12s -flood-scale 0.06 -heavy-clients 1 $(SYNTH_SCENARIOS) >/dev/null
	for s in $(SYNTH_SCENARIOS); do gzip -9nf testdata/synth/$$s.pcap; done
	$(GO) test -count=1 ./replay/ ./cmd/floodguard/ -run Golden -update

# bench runs the side-by-side benchmarks recorded in BENCHMARKS.md.
bench: build deps
	./scripts/bench-replay.sh
	./scripts/bench-xdp.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./capture/
	$(GO) test -run '^$$' -fuzz FuzzReplay -fuzztime 30s ./capture/

# bench-live runs floodguard and FastNetMon one after the other on the same
# namespace lab and flood (root; installs fastnetmon if missing); flags for
# scripts/benchlive in BENCH_LIVE_FLAGS, e.g. BENCH_LIVE_FLAGS='-rounds 3'.
BENCH_LIVE_FLAGS ?=
bench-live: build deps
	@dpkg -s fastnetmon >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fastnetmon >/dev/null
	GO=$(GO) FG=$(BIN) ./scripts/bench-live.sh $(BENCH_LIVE_FLAGS)

# bench-trips times floodguard's bans with trips on against tick-end
# decisions (daemon.trips: false), the same binary taking turns (issue 17):
# single-source UDP floods at each rate and phase of the tick, flood start
# to the first drop in the kernel and to the ban line (root; installs
# netsniff-ng for trafgen, which sends the floods above 40k pps; ~17 s a
# flood, 30 floods by default: ~9 min). Flags in BENCH_TRIPS_FLAGS, e.g.
# make bench-trips BENCH_TRIPS_FLAGS='-rates 20000,60000,150000 -phases 5'.
BENCH_TRIPS_FLAGS ?=
bench-trips: build
	@if [ "$$(id -u)" != 0 ]; then echo "make bench-trips needs root: it creates network namespaces and attaches XDP programs."; exit 1; fi
	$(call apt-install,iproute2 netsniff-ng)
	GO=$(GO) FG=$(BIN) ./scripts/bench-live.sh -compare-trips $(BENCH_TRIPS_FLAGS)

# bench-spoofed measures what a random-source (spoofed) flood costs the daemon
# (issue 14): CPU, memory, slow map reads, tick punctuality, and how fast a
# single-source flood during and after it is banned (root; installs
# netsniff-ng for trafgen if missing; ~2 min a round). BASE_REF=<git ref>
# builds that commit too and runs both in the same rounds, taking turns;
# flags for scripts/benchspoofed in BENCH_SPOOFED_FLAGS, e.g.
# make bench-spoofed BASE_REF=main BENCH_SPOOFED_FLAGS='-rounds 3 -family 4'.
BENCH_SPOOFED_FLAGS ?=
BASE_REF ?=
bench-spoofed: build
	@if [ "$$(id -u)" != 0 ]; then echo "make bench-spoofed needs root: it creates network namespaces and attaches XDP programs."; exit 1; fi
	$(call apt-install,iproute2 netsniff-ng)
	GO=$(GO) FG=$(BIN) BASE_REF=$(BASE_REF) ./scripts/bench-spoofed.sh $(BENCH_SPOOFED_FLAGS)

# install puts the binary, the systemd unit, a default config (an existing
# one is kept), the bash and zsh completions and the man page (generated by
# the binary: floodguard completion bash|zsh, floodguard man) in place.
# The unit's ExecStart follows PREFIX.
PREFIX  ?= /usr/local
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/floodguard
	install -d -m 0755 $(DESTDIR)/etc/systemd/system
	sed 's|^ExecStart=/usr/local/bin/floodguard |ExecStart=$(PREFIX)/bin/floodguard |' deploy/floodguard.service > $(DESTDIR)/etc/systemd/system/floodguard.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/floodguard.service
	install -d -m 0755 $(DESTDIR)/etc/floodguard
	test -e $(DESTDIR)/etc/floodguard/floodguard.yaml || install -m 0644 deploy/floodguard.yaml $(DESTDIR)/etc/floodguard/floodguard.yaml
	install -D -m 0644 README.md $(DESTDIR)/usr/share/doc/floodguard/README.md
	install -d -m 0755 $(DESTDIR)/usr/share/bash-completion/completions $(DESTDIR)/usr/share/zsh/vendor-completions $(DESTDIR)/usr/share/man/man1
	$(BIN) completion bash > $(DESTDIR)/usr/share/bash-completion/completions/floodguard
	$(BIN) completion zsh > $(DESTDIR)/usr/share/zsh/vendor-completions/_floodguard
	$(BIN) man > $(DESTDIR)/usr/share/man/man1/floodguard.1
	chmod 0644 $(DESTDIR)/usr/share/bash-completion/completions/floodguard $(DESTDIR)/usr/share/zsh/vendor-completions/_floodguard $(DESTDIR)/usr/share/man/man1/floodguard.1
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; set daemon.interface in /etc/floodguard/floodguard.yaml, then: systemctl enable --now floodguard"

# uninstall removes what install put in place; the config (and its
# directory) stays unless PURGE=1. The daemon's pins, if any, are not files
# install made: stop the daemon, then `floodguard detach` first.
uninstall:
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl disable --now floodguard 2>/dev/null || true; fi
	rm -f $(DESTDIR)$(PREFIX)/bin/floodguard $(DESTDIR)/etc/systemd/system/floodguard.service
	rm -rf $(DESTDIR)/usr/share/doc/floodguard
	rm -f $(DESTDIR)/usr/share/bash-completion/completions/floodguard $(DESTDIR)/usr/share/zsh/vendor-completions/_floodguard $(DESTDIR)/usr/share/man/man1/floodguard.1
	@if [ "$(PURGE)" = 1 ]; then echo "rm -rf $(DESTDIR)/etc/floodguard"; rm -rf $(DESTDIR)/etc/floodguard; \
	else echo "kept $(DESTDIR)/etc/floodguard (PURGE=1 removes it)"; fi
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# deb builds $(OUT)/floodguard_VERSION_ARCH.deb with dpkg-deb alone: no new
# tools (no debhelper, dpkg-dev or lintian). It stages `make install` with
# PREFIX=/usr: the binary in /usr/bin, the unit in /lib/systemd/system
# (ExecStart=/usr/bin/floodguard ...), /etc/floodguard/floodguard.yaml as a
# conffile (an edited config survives upgrades), the completions and the
# gzipped man page. The version is git describe made Debian-safe: a leading
# v dropped, every character dpkg refuses in a version turned into +, and
# 0~ in front unless it starts with a digit. The binary links only libc.
DEB_VERSION    := $(shell echo '$(VERSION)' | sed -e 's/^v//' -e 's/[^A-Za-z0-9.+~]/+/g' -e '/^[0-9]/!s/^/0~/')
DEB_ARCH       ?= $(shell dpkg --print-architecture 2>/dev/null || $(GO) env GOARCH)
DEB_MAINTAINER ?= floodguard maintainers <maintainers@floodguard.invalid>
DEB_ROOT       := $(OUT)/deb/floodguard
DEB            := $(OUT)/floodguard_$(DEB_VERSION)_$(DEB_ARCH).deb
deb:
	@command -v dpkg-deb >/dev/null || { echo "make deb needs dpkg-deb (Debian's dpkg package)"; exit 1; }
	rm -rf $(DEB_ROOT)
	@$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr >/dev/null
	install -d -m 0755 $(DEB_ROOT)/lib/systemd/system $(DEB_ROOT)/DEBIAN
	mv $(DEB_ROOT)/etc/systemd/system/floodguard.service $(DEB_ROOT)/lib/systemd/system/floodguard.service
	rmdir $(DEB_ROOT)/etc/systemd/system $(DEB_ROOT)/etc/systemd
	gzip -9n $(DEB_ROOT)/usr/share/man/man1/floodguard.1
	echo /etc/floodguard/floodguard.yaml > $(DEB_ROOT)/DEBIAN/conffiles
	printf '%s\n' '#!/bin/sh' 'set -e' \
		'if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi' > $(DEB_ROOT)/DEBIAN/postinst
	cp $(DEB_ROOT)/DEBIAN/postinst $(DEB_ROOT)/DEBIAN/postrm
	chmod 0755 $(DEB_ROOT)/DEBIAN/postinst $(DEB_ROOT)/DEBIAN/postrm
	{ echo 'Package: floodguard'; \
	  echo 'Version: $(DEB_VERSION)'; \
	  echo 'Architecture: $(DEB_ARCH)'; \
	  echo 'Maintainer: $(DEB_MAINTAINER)'; \
	  echo "Installed-Size: $$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)"; \
	  echo 'Depends: libc6'; \
	  echo 'Section: net'; \
	  echo 'Priority: optional'; \
	  echo 'Homepage: https://github.com/floodguard/floodguard'; \
	  echo 'Description: DDoS detector that drops floods in the kernel with XDP'; \
	  echo ' floodguard watches a network interface with an eBPF/XDP program, detects'; \
	  echo ' volumetric floods (single sources, spoofed floods, reflection) and drops'; \
	  echo ' them in the kernel. Set daemon.interface in /etc/floodguard/floodguard.yaml,'; \
	  echo ' then: systemctl enable --now floodguard'; \
	} > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB) >/dev/null
	@echo "built $(DEB)"

clean:
	rm -rf bin $(OUT)
