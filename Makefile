# floodguard: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they use from Debian's packages if it is missing.

GO        ?= go
BIN       := bin/floodguard
OUT       := out
CORPUS    ?= $(abspath ../shared/pcaps)
export FLOODGUARD_PCAP_CORPUS ?= $(CORPUS)

# Debian packages the tests use: clang/llvm/libbpf for `make generate` and the
# freshness check of the committed BPF objects, bpftool for inspection,
# iproute2 and hping3 for the namespace tests, tcpdump and xdp-tools (xdp-filter) for
# the benchmarks that compare against them.
APT_PACKAGES := clang llvm libbpf-dev bpftool iproute2 tcpdump xdp-tools hping3

.PHONY: all build test demo bench bench-live generate check-generated deps bpffs fuzz vet clean install

all: build

build:
	$(GO) build -o $(BIN) ./cmd/floodguard

# deps installs missing Debian packages (root, or sudo) and mounts bpffs.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@$(MAKE) --no-print-directory bpffs

bpffs:
	@if [ "$$(id -u)" = 0 ] && ! mountpoint -q /sys/fs/bpf; then mount -t bpf bpf /sys/fs/bpf; fi

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# test runs every test, fuzz seed corpora included. Privileged tests skip when
# not root unless FLOODGUARD_REQUIRE_PRIVILEGED=1 (as in CI), which fails them.
test: deps vet check-generated
	$(GO) test -count=1 -timeout 30m ./...

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

# demo synthesizes a single-source flood and a reflection flood, and replays
# them through the detector.
demo: build
	@mkdir -p $(OUT)
	@./$(BIN) synth -out $(OUT) -seed 1 single-source udp-reflection >/dev/null
	@echo "== single-source UDP flood (labels: $(OUT)/single-source.labels.json)"
	@./$(BIN) replay $(OUT)/single-source.pcap
	@echo
	@echo "== DNS reflection flood from ~1500 reflectors (labels: $(OUT)/udp-reflection.labels.json)"
	@./$(BIN) replay $(OUT)/udp-reflection.pcap

# bench runs the side-by-side benchmarks recorded in BENCHMARKS.md.
bench: build deps
	./scripts/bench-replay.sh
	./scripts/bench-xdp.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseConfig -fuzztime 30s ./detector/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./capture/
	$(GO) test -run '^$$' -fuzz FuzzReplay -fuzztime 30s ./capture/

# bench-live runs floodguard and FastNetMon one after the other on the same
# namespace lab and flood (root; installs fastnetmon if missing).
bench-live: build deps
	@dpkg -s fastnetmon >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fastnetmon >/dev/null
	./scripts/bench-live.sh

# install puts the binary, the systemd unit and a default config in place
# (an existing config is kept).
PREFIX  ?= /usr/local
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/floodguard
	install -D -m 0644 deploy/floodguard.service $(DESTDIR)/etc/systemd/system/floodguard.service
	install -d -m 0755 $(DESTDIR)/etc/floodguard
	test -e $(DESTDIR)/etc/floodguard/floodguard.yaml || install -m 0644 deploy/floodguard.yaml $(DESTDIR)/etc/floodguard/floodguard.yaml
	install -D -m 0644 README.md $(DESTDIR)/usr/share/doc/floodguard/README.md
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; set daemon.interface in /etc/floodguard/floodguard.yaml, then: systemctl enable --now floodguard"

clean:
	rm -rf bin $(OUT)
