package paging_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/config"
	"github.com/floodguard/floodguard/paging"
)

// TestPagerReconfigure: a reload with new paging settings moves delivery
// to the new sinks; one whose secret is missing is refused and the old
// settings keep delivering.
func TestPagerReconfigure(t *testing.T) {
	dir := t.TempDir()
	hook := func(name string) string {
		p := filepath.Join(dir, name+".sh")
		out := filepath.Join(dir, name+".jsonl")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n{ cat; echo; } >> "+out+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := func(paging string) *config.File {
		t.Helper()
		f, err := config.Parse([]byte(fmt.Sprintf("daemon:\n  state_dir: %s\npaging:\n  host: web1\n%s", dir, paging)))
		if err != nil {
			t.Fatal(err)
		}
		return &f
	}
	first := file(fmt.Sprintf("  sinks:\n    - {name: a, type: exec, command: [%s]}\n", hook("a")))
	p, err := paging.NewPager(first.Paging, nil, paging.PagerOptions{Deliver: true, OutboxDir: filepath.Join(dir, "outbox")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	reconfigure := func(f *config.File) error {
		_, err := p.Reconfigure(f.Paging, time.Hour)
		return err
	}
	send := func(id string) {
		t.Helper()
		if err := p.Submit(paging.Page{ID: id, Action: paging.Trigger, Seq: 1, Time: time.Now(), Incident: paging.Incident{Key: id}}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name+".jsonl"))
		return string(b)
	}
	send("one")

	if err := reconfigure(file(fmt.Sprintf("  sinks:\n    - {name: b, type: exec, command: [%s]}\n", hook("b")))); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); len(st) != 1 || st[0].Sink != "b" {
		t.Fatalf("sinks after reload: %+v", st)
	}
	send("two")
	if !strings.Contains(got("a"), `"one"`) || strings.Contains(got("a"), `"two"`) || !strings.Contains(got("b"), `"two"`) {
		t.Errorf("a got %q, b got %q", got("a"), got("b"))
	}

	bad := file("  sinks:\n    - name: c\n      type: webhook\n      webhook_url: {file: " + filepath.Join(dir, "missing") + "}\n      hmac_key: {env: FG_TEST_NO_SUCH_VAR}\n")
	if err := reconfigure(bad); err == nil || !strings.Contains(err.Error(), "paging sink c") {
		t.Fatalf("reload with a missing secret: %v", err)
	}
	if st := p.Stats(); len(st) != 1 || st[0].Sink != "b" {
		t.Fatalf("sinks after a refused reload: %+v", st)
	}
	send("three")
	if !strings.Contains(got("b"), `"three"`) {
		t.Errorf("b got %q after a refused reload", got("b"))
	}

	// A new sink whose outbox directory cannot be made: refused before
	// the old delivery stops, which goes on.
	if err := os.WriteFile(filepath.Join(dir, "outbox", "d"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	blocked := file(fmt.Sprintf("  sinks:\n    - {name: b, type: exec, command: [%s]}\n    - {name: d, type: exec, command: [%s]}\n", hook("b"), hook("d")))
	if err := reconfigure(blocked); err == nil || !strings.Contains(err.Error(), "outbox") {
		t.Fatalf("reload with an outbox that cannot be made: %v", err)
	}
	if st := p.Stats(); len(st) != 1 || st[0].Sink != "b" {
		t.Fatalf("sinks after a reload refused for its outbox: %+v", st)
	}
	send("four")
	if !strings.Contains(got("b"), `"four"`) || got("d") != "" {
		t.Errorf("b got %q, d got %q after a reload refused for its outbox", got("b"), got("d"))
	}

	// No sinks at all: delivery stops, the tracker keeps going.
	if err := reconfigure(file("  sinks: []\n")); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st != nil {
		t.Errorf("stats without sinks: %+v", st)
	}
}
