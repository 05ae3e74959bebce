package paging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// writeScript writes an executable shell script into a temporary
// directory and returns its path.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExecHook(t *testing.T) {
	out := t.TempDir()
	script := writeScript(t, `cat > "$1/stdin.json"
printf '%s\n%s\n%s\n%s\n' "$FLOODGUARD_ACTION" "$FLOODGUARD_INCIDENT_KEY" "$FLOODGUARD_SEVERITY" "$FLOODGUARD_PAGE_ID" > "$1/env"
echo "noise on stdout"
`)
	s := mustSink(t, SinkConfig{Type: "exec", Name: "hook", Command: []string{script, out}, Timeout: detector.Duration(10 * time.Second)})
	for _, action := range []Action{Trigger, Update, Resolve} {
		t.Run(string(action), func(t *testing.T) {
			p := testPage(action)
			if err := s.Send(context.Background(), p); err != nil {
				t.Fatalf("Send: %v", err)
			}
			b, err := os.ReadFile(filepath.Join(out, "stdin.json"))
			if err != nil {
				t.Fatal(err)
			}
			var got Page
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("stdin is not a Page: %v\n%s", err, b)
			}
			if got.ID != p.ID || got.Action != action || got.Incident.Key != p.Incident.Key {
				t.Errorf("stdin page %+v", got)
			}
			env, err := os.ReadFile(filepath.Join(out, "env"))
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s\n%s\n%s\n%s\n", action, p.Incident.Key, p.Incident.Severity, p.ID)
			if string(env) != want {
				t.Errorf("environment %q, want %q", env, want)
			}
		})
	}
}

func TestExecFailure(t *testing.T) {
	long := strings.Repeat("x", 500)
	tests := []struct {
		name     string
		script   string
		wantIn   []string
		wantNot  []string
		parentCx bool // cancel the caller's context instead
	}{
		{"exit 1", "echo 'no route to pager' >&2; exit 1", []string{"exit status 1", "no route to pager"}, nil, false},
		{"exit 2", "exit 2", []string{"exit status 2"}, nil, false},
		{"long stderr", "echo " + long + " >&2; exit 3", []string{"exit status 3", strings.Repeat("x", 200)}, []string{strings.Repeat("x", 201)}, false},
		{"stdin ignored", "exit 0", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSink(t, SinkConfig{Type: "exec", Name: "hook", Command: []string{writeScript(t, tc.script)}, Timeout: detector.Duration(10 * time.Second)})
			err := s.Send(context.Background(), testPage(Trigger))
			if tc.wantIn == nil {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			checkClass(t, err, "retry", 0)
			for _, w := range tc.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error quotes more than 200 bytes of stderr: %q", err)
				}
			}
			if !strings.HasPrefix(err.Error(), "exec hook: ") {
				t.Errorf("error %q does not name the sink", err)
			}
		})
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	// The hook starts a helper in the background and waits: both must die.
	script := writeScript(t, `sleep 300 &
echo $! > "$1/helper.pid"
echo $$ > "$1/hook.pid"
wait
`)
	s := mustSink(t, SinkConfig{Type: "exec", Name: "slow", Command: []string{script, dir}, Timeout: detector.Duration(300 * time.Millisecond)})
	done := make(chan error, 1)
	go func() { done <- s.Send(context.Background(), testPage(Trigger)) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a hanging hook was not killed")
	}
	checkClass(t, err, "retry", 0)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("err = %v, want a timeout", err)
	}
	for _, f := range []string{"hook.pid", "helper.pid"} {
		b, rerr := os.ReadFile(filepath.Join(dir, f))
		if rerr != nil {
			t.Fatalf("%s: %v (the hook did not start?)", f, rerr)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 1 {
			t.Fatalf("%s: bad pid %q", f, b)
		}
		// The killed helper is reparented and reaped; wait (bounded) for
		// it to be gone. A zombie still answers kill 0, so check its state.
		deadline := time.Now().Add(10 * time.Second)
		for processAlive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("%s: process %d survived the timeout", f, pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func TestExecCallerCancel(t *testing.T) {
	s := mustSink(t, SinkConfig{Type: "exec", Name: "slow", Command: []string{writeScript(t, "sleep 300\n")}, Timeout: detector.Duration(time.Minute)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, testPage(Trigger)) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want cancellation", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cancelling the context did not stop the hook")
	}
}

// TestExecMinimalEnvironment: the hook gets PATH and the page's variables,
// not the daemon's environment, which may hold other sinks' secrets.
func TestExecMinimalEnvironment(t *testing.T) {
	t.Setenv("FLOODGUARD_SLACK_URL", "https://hooks.slack.invalid/T000/B000/secret")
	t.Setenv("HOME", "/root")
	out := t.TempDir()
	script := writeScript(t, `env > "$1/env"`)
	s := mustSink(t, SinkConfig{Type: "exec", Name: "hook", Command: []string{script, out}, Timeout: detector.Duration(10 * time.Second)})
	p := testPage(Trigger)
	if err := s.Send(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "env"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	// The shell adds PWD, SHLVL and _ of its own.
	delete(got, "PWD")
	delete(got, "SHLVL")
	delete(got, "_")
	want := map[string]string{
		"PATH":                    os.Getenv("PATH"),
		"FLOODGUARD_ACTION":       string(Trigger),
		"FLOODGUARD_INCIDENT_KEY": p.Incident.Key,
		"FLOODGUARD_SEVERITY":     string(p.Incident.Severity),
		"FLOODGUARD_PAGE_ID":      p.ID,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hook environment\n%v\nwant\n%v", got, want)
	}
}
