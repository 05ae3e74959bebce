package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodguard/floodguard/daemon"
)

// TestBlockSignatureRequest: block's signature flags reach the daemon as
// one BlockRequest, in any order around the optional source CIDR.
func TestBlockSignatureRequest(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "fg.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan daemon.BlockRequest, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req daemon.BlockRequest
		json.NewDecoder(r.Body).Decode(&req)
		got <- req
		json.NewEncoder(w).Encode(map[string]string{"result": "ok"})
	})}
	go srv.Serve(ln)
	defer srv.Close()

	for _, tc := range []struct {
		args      []string
		wantMatch string
		wantRate  uint64
		wantCIDR  string
	}{
		{[]string{"block", "--proto", "udp", "--sport", "123", "--ttl", "10m"}, `{"proto":"udp","sport":"123"}`, 0, ""},
		{[]string{"block", "--proto", "udp", "--dport", "443", "--len", "400-1500", "--rate", "1000", "--dst", "198.18.0.10"}, `{"dst":"198.18.0.10/32","proto":"udp","dport":"443","len":"400-1500"}`, 1000, ""},
		{[]string{"block", "198.19.0.0/16", "--proto", "tcp", "--flags", "syn", "--dport", "80"}, `{"src":"198.19.0.0/16","proto":"tcp","dport":"80","tcp_flags":"0x02/0x12"}`, 0, "198.19.0.0/16"},
		{[]string{"unblock", "--proto", "udp", "--sport", "123"}, `{"proto":"udp","sport":"123"}`, 0, ""},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(env{stdout: &stdout, stderr: &stderr}, append(tc.args, "--socket", sock)); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr.String())
		}
		req := <-got
		b, _ := json.Marshal(req.Match)
		if string(b) != tc.wantMatch || req.RatePPS != tc.wantRate || req.CIDR != tc.wantCIDR {
			t.Errorf("%v: sent match %s rate %d cidr %q", tc.args, b, req.RatePPS, req.CIDR)
		}
	}
	// --permanent: no TTL sent; with --ttl it is a usage error.
	var stdout, stderr bytes.Buffer
	if code := run(env{stdout: &stdout, stderr: &stderr}, []string{"block", "198.19.0.0/16", "--permanent", "--socket", sock}); code != 0 {
		t.Fatalf("block --permanent: exit %d: %s", code, stderr.String())
	}
	if req := <-got; !req.Permanent || req.TTL != "" || req.CIDR != "198.19.0.0/16" {
		t.Errorf("block --permanent sent %+v", req)
	}
	for _, bad := range [][]string{
		{"block", "198.19.0.1", "--permanent", "--ttl", "5m"}, // one or the other
		{"block", "--sport", "123"},                           // ports need a protocol
		{"block", "--proto", "udp", "--sport", "9-3"},         // bad range
		{"block", "198.19.0.1", "--rate", "100"},              // a rate needs a signature
		{"block", "--proto", "udp", "--flags", "0x02/0x12"},   // flags need tcp
		{"block"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(env{stdout: &stdout, stderr: &stderr}, append(bad, "--socket", sock)); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage): %s", bad, code, stderr.String())
		} else if !strings.Contains(stderr.String(), "floodguard") {
			t.Errorf("%v: stderr %q", bad, stderr.String())
		}
	}
}
