package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodguard/floodguard/paging"
)

// TestE2EPaging: a flood against the live daemon opens one incident, paged
// through an exec hook, and resolves it after the quiet period, across a
// restart of the daemon in between; a webhook sink whose receiver is down
// beside it neither blocks that nor delays the ban (detection timing is
// unaffected), and its undelivered pages wait in the outbox, reloaded by
// the next run.
func TestE2EPaging(t *testing.T) {
	e := newE2E(t, cfg{})
	pages := filepath.Join(e.dir, "pages.jsonl")
	hook := filepath.Join(e.dir, "page-hook.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\n{ cat; echo; } >> "+pages+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "hmac.key"), []byte("test-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "webhook.url"), []byte("http://127.0.0.1:9/hook\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(e.text(cfg{}) + fmt.Sprintf(`paging:
  host: e2e-victim
  quiet_period: 3s
  update_interval: 2s
  sinks:
    - name: hook
      type: exec
      command: [%s]
    - name: down
      type: webhook
      webhook_url: {file: %s/webhook.url}
      hmac_key: {file: %s/hmac.key}
      timeout: 1s
`, hook, e.dir, e.dir))
	d := e.start()
	e.waitWarm(d)
	mark := d.Log.Len()
	st := e.flood(e.udp(attacker4), floodRate, 3*time.Second)
	waitBan(t, d, mark, attacker4, st.Start) // within two ticks, paging or not
	if _, _, err := d.Log.WaitEvent(mark, 5*time.Second, "page_failed", nil); err != nil {
		t.Errorf("no page_failed log for the sink that is down: %v", err)
	}

	// Restart while the incident is open: the next run resumes it (same
	// key, the resolve is page 2), and the undelivered pages of the sink
	// that is down stay queued.
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.Wait(10 * time.Second)
	d = e.start()
	if _, _, err := d.Log.WaitEvent(0, 5*time.Second, "incident_restored", nil); err != nil {
		t.Errorf("incident not resumed after the restart: %v", err)
	}
	mark = 0

	// The resolve comes after the attack ends (exit hysteresis) and the
	// 3 s quiet period.
	var got []paging.Page
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		got = readPages(t, pages)
		if n := len(got); n > 0 && got[n-1].Action == paging.Resolve {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	var actions []string
	for _, p := range got {
		actions = append(actions, string(p.Action))
		if p.Incident.Key != got[0].Incident.Key {
			t.Errorf("pages of two incidents: %s and %s", got[0].Incident.Key, p.Incident.Key)
		}
	}
	t.Logf("pages: %v", actions)
	if len(got) < 2 || got[0].Action != paging.Trigger || got[len(got)-1].Action != paging.Resolve {
		t.Fatalf("pages %v, want a trigger first and a resolve last", actions)
	}
	inc := got[0].Incident
	if !strings.HasPrefix(inc.Key, "e2e-victim/") || inc.Kind != "single source" || inc.BannedSources != 1 {
		t.Errorf("trigger incident: %+v", inc)
	}
	if !strings.Contains(inc.Summary, attacker4.String()) {
		t.Errorf("summary does not name the attacker: %s", inc.Summary)
	}
	if _, _, err := d.Log.WaitEvent(0, time.Second, "outbox_loaded", nil); err != nil {
		t.Errorf("the down sink's pages were not reloaded from the outbox: %v", err)
	}
	if n := len(got); got[n-1].Seq != n {
		t.Errorf("resolve is page %d of %d: the sequence restarted", got[n-1].Seq, n)
	}
	outbox, _ := filepath.Glob(filepath.Join(e.dir, "state", "outbox", "down", "*.json"))
	if len(outbox) == 0 {
		t.Errorf("the undelivered pages are not in the outbox")
	}
	if left, _ := filepath.Glob(filepath.Join(e.dir, "state", "outbox", "hook", "*.json")); len(left) != 0 {
		t.Errorf("delivered pages left in the outbox: %v", left)
	}
}

func readPages(t *testing.T, path string) []paging.Page {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []paging.Page
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var p paging.Page
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("page hook got %q: %v", line, err)
		}
		out = append(out, p)
	}
	return out
}
