package upstream

import (
	"context"
	"testing"

	"github.com/floodguard/floodguard/detector"
	"github.com/rs/zerolog"
)

// nopSpeaker accepts everything and holds no session.
type nopSpeaker struct{}

func (nopSpeaker) SetPeers(context.Context, []Peer) error        { return nil }
func (nopSpeaker) Announce(context.Context, *Announcement) error { return nil }
func (nopSpeaker) Withdraw(context.Context, *Announcement) error { return nil }
func (nopSpeaker) Peers(context.Context) []PeerState             { return nil }
func (nopSpeaker) Stop()                                         {}

// TestAnnouncedCount: Announced counts the routes wanted after the last
// Observe, dry-run ones excluded (what pages report as gone upstream).
func TestAnnouncedCount(t *testing.T) {
	cfg := testConfig()
	u, err := New(&cfg, zerolog.Nop(), func(context.Context, *Config) (Speaker, error) { return nopSpeaker{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if n := u.Announced(); n != 0 {
		t.Fatalf("announced %d before any tick", n)
	}
	u.Observe(Input{Tick: &detector.Tick{}, Bans: []detector.ActiveBan{ban("198.19.0.66/32", 9000), ban("198.19.0.67/32", 9000)}, Protected: host[:1]})
	if n := u.Announced(); n != 2 {
		t.Fatalf("announced %d, want 2", n)
	}
	dry := ban("198.19.0.68/32", 9000)
	dry.DryRun = true
	u.Observe(Input{Tick: &detector.Tick{}, Bans: []detector.ActiveBan{ban("198.19.0.66/32", 9000), dry}, Protected: host[:1]})
	if n := u.Announced(); n != 1 {
		t.Fatalf("announced %d with one live and one dry-run rule, want 1", n)
	}
}

func (nopSpeaker) Rearm(context.Context, string) error { return nil }
