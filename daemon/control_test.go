package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/config"
	"github.com/floodguard/floodguard/internal/privtest"
)

// testControl serves a control socket for an engine whose data plane
// accepts everything, running commands every 20 ms as the tick loop would.
func testControl(t *testing.T) (*detector.Engine, string) {
	t.Helper()
	privtest.RequireRoot(t, "the control socket serves root alone")
	f := config.Default()
	eng, err := detector.New(f.Config, nopRules{})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{file: f, log: zerolog.Nop(), eng: eng}
	dir := t.TempDir()
	c, err := listenControl(d, dir)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				c.serve()
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		c.close()
	})
	return eng, filepath.Join(dir, SocketName)
}

func socketClient(sock string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

func post(t *testing.T, sock string, req BlockRequest) (int, map[string]string) {
	t.Helper()
	b, _ := json.Marshal(req)
	resp, err := socketClient(sock, 5*time.Second).Post("http://floodguard/v1/block", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestControlBlockTTL: a manual block lasts at most bans.max_ttl unless
// asked to be permanent.
func TestControlBlockTTL(t *testing.T) {
	eng, sock := testControl(t)
	maxTTL := eng.Config().Bans.MaxTTL.D()
	ttlOf := func(cidr string) time.Duration {
		for _, b := range eng.Bans() {
			if b.Prefix == netip.MustParsePrefix(cidr) {
				return b.TTL
			}
		}
		t.Fatalf("%s not blocked: %v", cidr, eng.Bans())
		return 0
	}
	if code, out := post(t, sock, BlockRequest{CIDR: "198.19.7.0/24", TTL: "100h"}); code != http.StatusOK || !strings.Contains(out["result"], "max_ttl") {
		t.Fatalf("block --ttl 100h: %d %v, want it done saying it was capped by bans.max_ttl", code, out)
	}
	if got := ttlOf("198.19.7.0/24"); got != maxTTL {
		t.Errorf("block --ttl 100h lasts %v, want bans.max_ttl %v", got, maxTTL)
	}
	if code, out := post(t, sock, BlockRequest{CIDR: "198.19.8.0/24", TTL: "10m"}); code != http.StatusOK || strings.Contains(out["result"], "max_ttl") {
		t.Fatalf("block --ttl 10m: %d %v", code, out)
	}
	if got := ttlOf("198.19.8.0/24"); got != 10*time.Minute {
		t.Errorf("block --ttl 10m lasts %v", got)
	}
	if code, out := post(t, sock, BlockRequest{CIDR: "198.19.9.0/24", Permanent: true}); code != http.StatusOK {
		t.Fatalf("block --permanent: %d %v", code, out)
	}
	if got := ttlOf("198.19.9.0/24"); got != PermanentTTL {
		t.Errorf("block --permanent lasts %v, want %v", got, PermanentTTL)
	}
	if code, out := post(t, sock, BlockRequest{CIDR: "198.19.10.0/24", TTL: "5m", Permanent: true}); code != http.StatusBadRequest {
		t.Errorf("block with a ttl and permanent: %d %v, want 400", code, out)
	}
}

// TestControlServerLimits: a client cannot hold the control socket with an
// endless header, a body it never finishes, or many connections.
func TestControlServerLimits(t *testing.T) {
	saved := controlLimits
	controlLimits.read = 300 * time.Millisecond
	controlLimits.maxConns = 4
	t.Cleanup(func() { controlLimits = saved })
	_, sock := testControl(t)
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	statusLine := func(c net.Conn) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		l, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "error: " + err.Error()
		}
		return strings.TrimSpace(l)
	}

	c := dial()
	fmt.Fprintf(c, "GET /v1/status HTTP/1.1\r\nHost: floodguard\r\nX-Pad: %s\r\n\r\n", strings.Repeat("x", 64<<10))
	if l := statusLine(c); !strings.Contains(l, "431") {
		t.Errorf("64 KiB header answered %q, want 431", l)
	}
	c.Close()

	c = dial()
	fmt.Fprintf(c, "POST /v1/block HTTP/1.1\r\nHost: floodguard\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"cidr\":")
	if l := statusLine(c); strings.Contains(l, "i/o timeout") && strings.HasPrefix(l, "error") {
		t.Errorf("a body never finished holds the connection: %s", l)
	}
	c.Close()

	var idle []net.Conn
	for range controlLimits.maxConns {
		idle = append(idle, dial())
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := socketClient(sock, 500*time.Millisecond).Get("http://floodguard/v1/status"); err == nil {
		t.Errorf("served a request with %d connections open, the cap", len(idle))
	}
	idle[0].Close()
	if resp, err := socketClient(sock, 3*time.Second).Get("http://floodguard/v1/status"); err != nil {
		t.Errorf("a connection closed, still not served: %v", err)
	} else {
		resp.Body.Close()
	}
}
