package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/privtest"
	"github.com/floodguard/floodguard/synth"
)

// writeTinyScenario writes a small synthetic single-source flood and
// returns its path.
func writeTinyScenario(t *testing.T) string {
	t.Helper()
	pcap, _, err := synth.WriteFiles(t.TempDir(), synth.SingleSource, synth.Options{Seed: 1, Scale: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	return pcap
}

// replayWithReport runs `replay --report` in-process on a synthesized
// scenario and returns the report's path and contents.
func replayWithReport(t *testing.T, s synth.Scenario, scale float64, format string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	pcap, _, err := synth.WriteFiles(dir, s, synth.Options{Seed: 1, Scale: scale})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.html")
	var stdout, stderr bytes.Buffer
	code := run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr},
		[]string{"replay", "--format", format, "--report", out, pcap})
	if code != 0 {
		t.Fatalf("replay --report: exit %d: %s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %q", stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".report.html.*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
	return out, string(data)
}

func TestReplayReport(t *testing.T) {
	for _, format := range []string{"human", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			_, html := replayWithReport(t, synth.SingleSource, 0.1, format)
			for _, want := range []string{`id="summary"`, `id="aggregate"`, `id="classes"`, `id="attacks"`, `id="bans"`, "<svg", `class="ban"`, "198.19.1.1/32"} {
				if !strings.Contains(html, want) {
					t.Errorf("report lacks %q", want)
				}
			}
		})
	}
}

func TestReplayReportUnwritable(t *testing.T) {
	path := writeTinyScenario(t)
	out := filepath.Join(t.TempDir(), "missing-dir", "r.html")
	var stdout, stderr bytes.Buffer
	code := run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, []string{"replay", "--report", out, path})
	if code != 1 || !strings.Contains(stderr.String(), out) {
		t.Fatalf("exit %d, stderr %q: want exit 1 and an error naming %s", code, stderr.String(), out)
	}
	if !strings.Contains(stdout.String(), "summary:") {
		t.Errorf("the replay's output is missing when the report fails: %q", stdout.String())
	}
}

// chromiumPath finds Debian's chromium.
func chromiumPath(t *testing.T) string {
	for _, p := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	privtest.SkipOrFail(t, "chromium not installed (apt-get install chromium): cannot render the report")
	return ""
}

// TestReplayReportRendersInChromium opens the report of a reflection flood
// in headless Chromium: it must render its sections and charts, with no
// console message at all (the page has no scripts, so any message is a
// failure: a blocked load, a parse error).
func TestReplayReportRendersInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	report, _ := replayWithReport(t, synth.UDPReflection, 0.3, "jsonl")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--disable-gpu", "--no-sandbox",
		"--user-data-dir="+t.TempDir(), "--enable-logging=stderr", "--v=0",
		"--virtual-time-budget=5000", "--dump-dom", "file://"+report)
	var dom, logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &dom, &logs
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v (timeout: %v)\n%s", err, ctx.Err(), logs.String())
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			t.Errorf("console message: %s", line)
		}
	}
	got := dom.String()
	for _, want := range []string{
		`<section id="summary">`, `<section id="aggregate">`, `<section id="classes">`, `<section id="bytes">`,
		`<section id="attacks">`, `<section id="bans">`, "udp traffic", "reflection from udp source port 53",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if n := strings.Count(got, "<svg"); n != 3 {
		t.Errorf("rendered DOM has %d charts, want 3", n)
	}
	// Charts drew their lines.
	if !regexp.MustCompile(`<path class="total" d="M[0-9.]+ [0-9.]+L`).MatchString(got) {
		t.Errorf("no aggregate rate line in the rendered DOM")
	}
}
