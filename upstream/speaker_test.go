package upstream

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/detector"
)

// freePort is a TCP port of 127.0.0.1 nothing listens on (as of now).
func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// router is a second GoBGP on 127.0.0.1 standing in for an upstream
// router: it listens on port, and takes the speaker as a passive neighbour.
func router(t *testing.T, ctx context.Context, port uint16) *server.BgpServer {
	t.Helper()
	r := server.NewBgpServer(server.LoggerOption(&logAdapter{log: zerolog.Nop()}))
	go r.Serve()
	t.Cleanup(r.Stop)
	if err := r.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 64500, RouterId: "198.18.0.254",
		ListenPort: int32(port), ListenAddresses: []string{"127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 64512},
		Transport: &api.Transport{PassiveMode: true},
		AfiSafis:  families(),
	}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func rib(t *testing.T, r *server.BgpServer, fam *api.Family) []string {
	var out []string
	err := r.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam}, func(d *api.Destination) {
		for _, p := range d.Paths {
			n, err := apiutil.GetNativeNlri(p)
			if err != nil {
				t.Error(err)
				continue
			}
			attrs, _ := apiutil.GetNativePathAttributes(p)
			s := n.String()
			for _, a := range attrs {
				if strings.Contains(a.String(), "Extcomms") || strings.Contains(a.String(), "Communities") {
					s += " " + a.String()
				}
			}
			out = append(out, s)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestGoBGPAnnouncesToARouter runs the speaker against a GoBGP router on
// loopback: the session comes up, a FlowSpec rule and a blackhole reach
// the router's RIB and are withdrawn, and Stop closes the session.
func TestGoBGPAnnouncesToARouter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := freePort(t)
	r := router(t, ctx, port)
	cfg := testConfig()
	cfg.BGP.Peers = []Peer{{Address: "127.0.0.1", AS: 64500, Port: port, HoldTime: detector.Duration(9 * time.Second)}}
	g, err := NewGoBGP(ctx, &cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			g.Stop()
		}
	}()
	if err := g.SetPeers(ctx, cfg.BGP.Peers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session", func() bool {
		ps := g.Peers(ctx)
		return len(ps) == 1 && ps[0].State == "established"
	})
	fs := Announcement{Match: detector.Match{Src: netip.MustParsePrefix("198.19.0.66/32"), Dst: netip.MustParsePrefix("198.18.0.1/32")}}
	bh := Announcement{Match: detector.Match{Dst: netip.MustParsePrefix("198.18.0.1/32")}, Blackhole: true}
	for _, a := range []*Announcement{&fs, &bh} {
		if err := g.Announce(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	want := "[destination: 198.18.0.1/32][source: 198.19.0.66/32] {Extcomms: [discard]}"
	waitFor(t, "the flowspec rule at the router", func() bool {
		got := rib(t, r, familyFlow4)
		return len(got) == 1 && got[0] == want
	})
	waitFor(t, "the blackhole at the router", func() bool {
		got := rib(t, r, familyUni4)
		return len(got) == 1 && strings.Contains(got[0], "blackhole")
	})
	if err := g.Withdraw(ctx, &fs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the withdrawal", func() bool { return len(rib(t, r, familyFlow4)) == 0 })
	g.Stop()
	stopped = true
	waitFor(t, "the session to close at the router", func() bool {
		var up bool
		_ = r.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			up = p.GetState().GetSessionState() == api.PeerState_ESTABLISHED
		})
		return !up && len(rib(t, r, familyUni4)) == 0
	})
}

// TestGoBGPRearm: a router that was not there when the speaker started is
// reached as soon as the peer is re-armed, not after GoBGP's own retry
// interval (30 s, which would time this test out).
func TestGoBGPRearm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := freePort(t)
	cfg := testConfig()
	cfg.BGP.Peers = []Peer{{Address: "127.0.0.1", AS: 64500, Port: port, HoldTime: detector.Duration(9 * time.Second)}}
	g, err := NewGoBGP(ctx, &cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if err := g.SetPeers(ctx, cfg.BGP.Peers); err != nil {
		t.Fatal(err)
	}
	// GoBGP's first dial comes 1 to 2 s after the peer is added and is
	// refused: nothing listens yet.
	time.Sleep(2500 * time.Millisecond)
	if ps := g.Peers(ctx); len(ps) != 1 || ps[0].State == "established" {
		t.Fatalf("peers %+v before the router exists", ps)
	}
	router(t, ctx, port)
	if err := g.Rearm(ctx, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		if ps := g.Peers(ctx); len(ps) == 1 && ps[0].State == "established" {
			t.Logf("established %v after the re-arm", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("not established 5 s after the re-arm: %+v", g.Peers(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Established: a re-arm leaves the session alone.
	if err := g.Rearm(ctx, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if ps := g.Peers(ctx); len(ps) != 1 || ps[0].State != "established" {
		t.Errorf("re-arming an established peer changed it: %+v", ps)
	}
}
