package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/privtest"
)

// TestLiveUpstream runs `make demo-upstream`'s demo with short timings
// (3 s warm-up, ban and flood): the router's FlowSpec table gets the
// flood's rule and loses it after the flood, as the narration and the
// summary say, and the demo cleans up. It needs what the demo needs: root,
// hping3 and gobgpd.
func TestLiveUpstream(t *testing.T) {
	privtest.RequireRoot(t, "the live demo makes network namespaces and attaches XDP")
	for _, prog := range []string{"hping3", "gobgpd", "gobgp"} {
		if _, err := exec.LookPath(prog); err != nil {
			privtest.SkipOrFail(t, "needs %s (make demo-upstream installs it): %v", prog, err)
		}
	}
	bin := filepath.Join(t.TempDir(), "floodguard")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/floodguard/floodguard/cmd/floodguard").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	o := Options{WarmUp: 3 * time.Second, TTL: 3 * time.Second, Flood: 3 * time.Second, Floodguard: bin, Upstream: true}
	if err := Run(ctx, o, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	text := out.String()
	for _, want := range []string{
		"router    198.18.0.254",
		"BGP session with the router established",
		"ROUTER: [destination: 198.18.0.1/32][source: 198.18.0.66/32] in its FlowSpec table",
		"ROUTER: [destination: 198.18.0.1/32][source: 198.18.0.66/32] gone from its table",
		"upstream:      rule in the router's table",
		"cleaning up",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	// The lab's namespaces are named fglabPID-...: none may be left.
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "fglab"+strconv.Itoa(os.Getpid())+"-") {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}
