package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestPageTest: `floodguard page --test` sends a trigger and a resolve
// through every sink and reports each one's outcome, failing if any fails.
func TestPageTest(t *testing.T) {
	var mu sync.Mutex
	var got []string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusBadRequest)
	}))
	defer bad.Close()
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	config := func(url string) string {
		return write("fg.yaml", fmt.Sprintf(`paging:
  host: web1
  sinks:
    - name: hook
      type: webhook
      webhook_url: {file: %s}
      hmac_key: {file: %s}
`, write("url", url), write("key", "k")))
	}
	var stdout, stderr bytes.Buffer
	code := run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, []string{"page", "--test", "--config", config(ok.URL)})
	if code != 0 || !strings.Contains(stdout.String(), "hook") || !strings.Contains(stdout.String(), "ok") {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if len(got) != 2 || !strings.Contains(got[0], `"action":"trigger"`) || !strings.Contains(got[1], `"action":"resolve"`) {
		t.Errorf("receiver got %d requests: %v", len(got), got)
	}
	stdout.Reset()
	stderr.Reset()
	code = run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, []string{"page", "--test", "--config", config(bad.URL)})
	if code != 1 || !strings.Contains(stdout.String(), "FAILED") {
		t.Errorf("failing sink: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}
