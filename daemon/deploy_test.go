package daemon

// Tests of deploy/prometheus and deploy/grafana: the alerting rules pass
// `promtool check rules` and their unit tests, and the rules, their tests
// and the dashboard name only series the daemon exports.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/floodguard/floodguard/internal/privtest"
)

const (
	rulesDir      = "../deploy/prometheus"
	rulesFile     = "floodguard-rules.yml"
	rulesTestFile = "floodguard-rules.test.yml"
	dashboardFile = "../deploy/grafana/floodguard-dashboard.json"
)

// promtoolIn runs promtool with args in dir.
func promtoolIn(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		privtest.SkipOrFail(t, "promtool not installed (apt-get install prometheus): %v", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestDeployAlertRules(t *testing.T) {
	if out, err := promtoolIn(t, rulesDir, "check", "rules", rulesFile); err != nil {
		t.Errorf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	if out, err := promtoolIn(t, rulesDir, "test", "rules", rulesTestFile); err != nil {
		t.Errorf("promtool test rules %s: %v\n%s", rulesTestFile, err, out)
	}
	// Every alert has unit tests showing it firing and not firing.
	rules, err := os.ReadFile(filepath.Join(rulesDir, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join(rulesDir, rulesTestFile))
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllStringSubmatch(string(rules), -1)
	want := []string{"FloodguardAttackInProgress", "FloodguardDown", "FloodguardNotTicking", "FloodguardSourceMapNearlyFull", "FloodguardPagingFailing"}
	var got []string
	for _, a := range alerts {
		got = append(got, a[1])
	}
	if !slices.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
	for _, name := range want {
		firing := regexp.MustCompile(`alertname: ` + name + `\s+exp_alerts:\s+- exp_labels`).MatchString(string(tests))
		quiet := strings.Contains(string(tests), "alertname: "+name+"\n        exp_alerts: []")
		if !firing || !quiet {
			t.Errorf("%s: tested firing %v, not firing %v; want both", name, firing, quiet)
		}
	}
}

// exportedNames returns every series name a fully fed daemon exports,
// histograms with their _bucket, _sum and _count series.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	_, fams := scrape(t, fakeMetrics(t).handler())
	names := map[string]bool{"up": true}
	for name, f := range fams {
		names[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	return names
}

var seriesName = regexp.MustCompile(`\b(floodguard_[a-z0-9_]+|up)\b`)

func TestDeployNamesExported(t *testing.T) {
	exported := exportedNames(t)
	for _, file := range []string{filepath.Join(rulesDir, rulesFile), filepath.Join(rulesDir, rulesTestFile), dashboardFile} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range seriesName.FindAllString(string(data), -1) {
			n++
			if !exported[m] {
				t.Errorf("%s names %s, which floodguard does not export", file, m)
			}
		}
		if n == 0 {
			t.Errorf("%s names no floodguard series", file)
		}
	}
}

// dashboard is what the test reads of a Grafana dashboard.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ X, Y, W, H int }
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func TestDeployDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 || len(d.Panels) == 0 {
		t.Errorf("dashboard title %q uid %q schema %d with %d panels", d.Title, d.UID, d.SchemaVersion, len(d.Panels))
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("no Prometheus data source variable named datasource")
	}
	isVar := func(ds *datasource) bool { return ds != nil && ds.Type == "prometheus" && ds.UID == "${datasource}" }
	ids := map[int]bool{}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if !isVar(p.Datasource) {
			t.Errorf("panel %q: data source %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: grid position %+v", p.Title, g)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || refs[q.RefID] || !isVar(q.Datasource) {
				t.Errorf("panel %q: query %+v", p.Title, q)
			}
			refs[q.RefID] = true
			// Grafana's variables as Prometheus would see them.
			expr := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*").Replace(q.Expr)
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d_%s\n        expr: %s\n", p.ID, q.RefID, strconvQuote(expr))
		}
	}
	for _, want := range []string{"baseline", "Dropped vs passed", "Bans", "Top talkers", "Tick duration", "Map read"} {
		if !slices.ContainsFunc(d.Panels, func(p panel) bool { return strings.Contains(p.Title, want) }) {
			t.Errorf("no panel titled with %q", want)
		}
	}
	// The queries parse as PromQL: check them as recording rules.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yml"), []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := promtoolIn(t, dir, "check", "rules", "dashboard.yml"); err != nil {
		t.Errorf("dashboard queries do not parse: %v\n%s", err, out)
	}
}

// strconvQuote quotes s as a YAML (JSON) string.
func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestDeployUnit: the systemd unit carries the sandboxing floodguard is
// known to run under (the system calls the daemon makes are checked
// against its filter by TestE2EUnitSyscallFilter) and passes
// `systemd-analyze verify`.
func TestDeployUnit(t *testing.T) {
	const unit = "../deploy/floodguard.service"
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for _, want := range []string{
		"ProtectSystem=strict", "ReadWritePaths=/sys/fs/bpf", "NoNewPrivileges=yes",
		"ProtectKernelTunables=yes", "ProtectProc=invisible", "PrivateMounts=yes",
		"SystemCallFilter=@system-service bpf", "SystemCallErrorNumber=EPERM", "SystemCallArchitectures=native",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("%s lacks %s", unit, want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		privtest.SkipOrFail(t, "systemd-analyze not installed (apt-get install systemd): %v", err)
	}
	// verify wants ExecStart's program to exist: a copy runs /bin/true.
	dir := t.TempDir()
	copied := strings.Replace(string(data), "ExecStart=/usr/local/bin/floodguard", "ExecStart=/bin/true", 1)
	if err := os.WriteFile(filepath.Join(dir, "floodguard.service"), []byte(copied), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", filepath.Join(dir, "floodguard.service")).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
