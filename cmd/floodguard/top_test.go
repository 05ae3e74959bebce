package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodguard/floodguard/daemon"
)

// sampleTop is a daemon's view during a flood: many sources and prefixes,
// long IPv6 addresses, rules of each kind.
func sampleTop(sources, prefixes, rules int) *daemon.Top {
	started := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	top := &daemon.Top{
		Status: daemon.Status{
			Interface: "eth0", Mode: "native", Started: started, Ticks: 3725,
			TrackedSources: 1234, ActiveBans: rules, PPS: 24310, DroppedPPS: 23800, BaselinePPS: 512,
			Attacks:  []string{"source 198.18.0.66", "aggregate udp"},
			LastTick: started.Add(3725 * time.Second),
		},
		TickLength: time.Second, Warm: true,
		Classes: []daemon.TopClass{
			{Class: "all", PPS: 24310, BaselinePPS: 512, ThresholdPPS: 1536, Anomalous: true, Learnt: true},
			{Class: "syn", PPS: 3, BaselinePPS: 2, ThresholdPPS: 1000, Learnt: true},
			{Class: "tcp", PPS: 480, BaselinePPS: 470, ThresholdPPS: 1410, Learnt: true},
			{Class: "udp", PPS: 23800, BaselinePPS: 30, ThresholdPPS: 1000, Anomalous: true, Learnt: true},
			{Class: "icmp", PPS: 27, BaselinePPS: 10, ThresholdPPS: 1000, Learnt: true},
			{Class: "other", Learnt: true},
		},
		SourcesSeen: sources + 40, PrefixesSeen: prefixes + 7, RulesTotal: rules,
	}
	for i := range sources {
		k := daemon.TopKey{Target: fmt.Sprintf("198.18.%d.%d", i/200, i%200+1), PPS: float64(20000 / (i + 1)), BaselinePPS: 12, Tracked: i%3 != 0}
		switch i {
		case 0:
			k.Target, k.DroppedPPS, k.Ban = "198.18.0.66", 19800, "198.18.0.66/32"
		case 1:
			k.Target, k.Ban = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", "2001:db8:aaaa:bbbb::/64"
		}
		top.Sources = append(top.Sources, k)
	}
	for i := range prefixes {
		top.Prefixes = append(top.Prefixes, daemon.TopKey{Target: fmt.Sprintf("198.18.%d.0/24", i), Sources: 200 - i, PPS: float64(21000 / (i + 1)), BaselinePPS: 300, Tracked: true})
	}
	if prefixes > 1 {
		top.Prefixes[1] = daemon.TopKey{Target: "2001:db8:aaaa:bbbb::/64", Sources: 1, PPS: 4000, Ban: "2001:db8:aaaa:bbbb::/64", Tracked: true, BaselinePPS: 3}
	}
	for i := range rules {
		r := daemon.TopRule{Ban: daemon.Ban{Target: fmt.Sprintf("198.18.%d.%d/32", 1+i/200, i%200), Origin: "detector", Scope: "source", TimeLeft: time.Duration(100+i) * time.Second, Packets: uint64(1e6 / (i + 1))}, DroppedPPS: float64(9000 / (i + 1))}
		switch i {
		case 0:
			r.Target, r.Origin = "198.18.0.66/32", "detector"
		case 1:
			r.Target, r.Scope, r.Origin, r.TimeLeft = "2001:db8:aaaa:bbbb::/64", "prefix", "manual", 90*time.Minute
		case 2:
			r.Target, r.Scope, r.TimeLeft = "2001:db8:1234:5678:9abc:def0:1234:5678/128", "source", 26*time.Hour
		}
		top.Rules = append(top.Rules, r)
	}
	return top
}

func TestRenderTop(t *testing.T) {
	for _, tc := range []struct {
		name          string
		top           *daemon.Top
		width, height int
		footer        string
		want, absent  []string
	}{
		{
			name: "80x24 full", top: sampleTop(20, 20, 12), width: 80, height: 24, footer: "q: quit",
			want: []string{
				"floodguard top - eth0 (native XDP)  up 1h2m  tick 3725",
				"traffic  24.3k pps  baseline 512  threshold 1.5k  dropped 23.8k pps  OVER",
				"udp 23.8k/30*", "attacks  source 198.18.0.66, aggregate udp",
				"SOURCE (60 seen)", "198.18.0.66", "banned", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", "in /64",
				"PREFIX (27 seen)", "198.18.0.0/24", "... 56 more", "... 24 more",
				"RULE (12 in force)", "198.18.0.66/32", "manual", "1h30m", "26h", "... 9 more", "q: quit",
			},
		},
		{
			name: "80x24 no rules", top: sampleTop(3, 2, 0), width: 80, height: 24,
			want: []string{"(no rules in force)", "... 40 more", "... 7 more", "RULE (0 in force)"},
		},
		{
			name: "empty", top: &daemon.Top{Status: daemon.Status{Interface: "vb", Mode: "generic"}}, width: 80, height: 24, footer: "q: quit",
			want:   []string{"floodguard top - vb (generic XDP)", "(warm-up)", "SOURCE (0 seen)", "(no traffic this tick)", "(no rules in force)", "attacks  none", "\n\n\n\nq: quit"},
			absent: []string{"more"},
		},
		{
			name: "nothing yet", top: nil, width: 80, height: 24, footer: "floodguard is not running (no daemon on /run/x.sock); retrying",
			want: []string{"floodguard top", "floodguard is not running"},
		},
		{
			name: "nothing yet, wrapped", top: nil, width: 30, height: 24, footer: "floodguard is not running (no daemon on /run/fglab/fglab3959-c45edc/run/floodguard.sock); retrying (for 3s)",
			want: []string{"floodguard is not running (no\ndaemon on", "floodguard.sock); retrying\n(for 3s)"},
		},
		{
			name: "unbounded plain", top: sampleTop(20, 20, 12), width: 100, height: 0,
			want: []string{"198.18.0.19", "198.18.19.0/24", "... 40 more", "... 7 more", "198.18.1.11/32"},
		},
		{
			name: "narrow: long IPv6 cut in the middle", top: sampleTop(20, 20, 12), width: 60, height: 30,
			want: []string{"2001:db8:aa..:eeee:ffff", "2001:db..678/128", "RULE  ", "udp 23.8k/30*"},
		},
		{
			name: "wide and tall", top: sampleTop(20, 20, 12), width: 200, height: 80,
			want:   []string{"2001:db8:1234:5678:9abc:def0:1234:5678/128", "198.18.0.20", "198.18.1.11/32"},
			absent: []string{"more\n  ...", " 0 more"},
		},
		{
			name: "tiny", top: sampleTop(20, 20, 12), width: 30, height: 6,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := renderTop(tc.top, tc.width, tc.height, tc.footer)
			screen := strings.Join(lines, "\n")
			if tc.height > 0 && len(lines) > tc.height {
				t.Errorf("%d lines for %d rows", len(lines), tc.height)
			}
			for i, l := range lines {
				if len(l) > tc.width {
					t.Errorf("line %d is %d columns wide, over %d: %q", i+1, len(l), tc.width, l)
				}
				if strings.ContainsAny(l, "\x1b\r\n\t") {
					t.Errorf("line %d holds control characters: %q", i+1, l)
				}
				for _, r := range l {
					if r > 0x7e {
						t.Errorf("line %d is not plain ASCII: %q", i+1, l)
						break
					}
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(screen, w) {
					t.Errorf("screen lacks %q", w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(screen, a) {
					t.Errorf("screen holds %q", a)
				}
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("%dx%d:\n%s", tc.width, tc.height, screen)
			}
		})
	}
}

func TestRenderTopFillsScreen(t *testing.T) {
	// With more to show than fits, every row is used, and the heading of
	// each list is kept at any height that leaves the summary room.
	for h := 13; h <= 60; h++ {
		lines := renderTop(sampleTop(20, 20, 12), 80, h, "q: quit")
		if len(lines) != h {
			t.Errorf("height %d: %d lines", h, len(lines))
		}
		screen := strings.Join(lines, "\n")
		for _, w := range []string{"SOURCE (", "PREFIX (", "RULE (", "q: quit"} {
			if !strings.Contains(screen, w) {
				t.Errorf("height %d: no %q", h, w)
			}
		}
	}
}

func TestEllipsize(t *testing.T) {
	for _, tc := range []struct {
		s    string
		w    int
		want string
	}{
		{"198.18.0.1", 20, "198.18.0.1"},
		{"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 20, "2001:db8:..eeee:ffff"},
		{"abcdef", 3, "abc"},
	} {
		if got := ellipsize(tc.s, tc.w); got != tc.want || len(got) > tc.w {
			t.Errorf("ellipsize(%q, %d) = %q, want %q", tc.s, tc.w, got, tc.want)
		}
	}
}

// fakeDaemon serves /v1/top on a Unix socket like the daemon: each answer
// one tick on from the last.
func fakeDaemon(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fg.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var ticks atomic.Uint64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/top", func(w http.ResponseWriter, r *http.Request) {
		top := sampleTop(5, 3, 2)
		top.Status.Ticks = ticks.Add(1)
		if a := r.URL.Query().Get("after"); a != "" && a != fmt.Sprint(top.Status.Ticks-1) {
			http.Error(w, `{"error":"after out of order"}`, http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(top)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return sock
}

func TestTopPlain(t *testing.T) {
	sock := fakeDaemon(t)
	var stdout, stderr bytes.Buffer
	code := run(env{stdout: &stdout, stderr: &stderr}, []string{"top", "--socket", sock, "-n", "3"})
	if code != 0 {
		t.Fatalf("top -n 3: exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "\x1b") {
		t.Errorf("plain output holds escape codes:\n%q", out)
	}
	if n := strings.Count(out, "floodguard top - eth0"); n != 3 {
		t.Errorf("%d views, want 3:\n%s", n, out)
	}
	for _, tick := range []string{"tick 1 ", "tick 2 ", "tick 3 "} {
		if !strings.Contains(out, tick) {
			t.Errorf("no view of %q:\n%s", tick, out)
		}
	}

	stdout.Reset()
	code = run(env{stdout: &stdout, stderr: &stderr}, []string{"top", "--socket", sock, "-n", "2", "-o", "json"})
	if code != 0 {
		t.Fatalf("top -o json: exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("top -n 2 -o json: %d lines, want 2", len(lines))
	}
	var top daemon.Top
	if err := json.Unmarshal([]byte(lines[1]), &top); err != nil || len(top.Sources) != 5 || top.Sources[0].Target != "198.18.0.66" {
		t.Errorf("top -o json: %v: %+v", err, top.Sources)
	}
}

func TestTopDaemonDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	var stdout, stderr bytes.Buffer
	code := run(env{stdout: &stdout, stderr: &stderr}, []string{"top", "--socket", sock, "-n", "1"})
	if code != 1 || !strings.Contains(stderr.String(), "not running") {
		t.Fatalf("top with no daemon: exit %d, %q", code, stderr.String())
	}
	if code := run(env{stdout: &stdout, stderr: &stderr}, []string{"top", "-o", "yaml"}); code != 2 {
		t.Errorf("top -o yaml: exit %d, want 2", code)
	}
}
