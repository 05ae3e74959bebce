package upstream

import (
	"slices"
	"testing"
	"time"
)

// TestRedialSchedule drives the backoff with a fake clock, one poll a
// second as the stage polls: a peer that stays down is re-armed after 2,
// 4, 8, 16 and then every 30 s; a peer established again starts over at
// 2 s; a peer in its handshake is left alone; a peer gone from the config
// is forgotten.
func TestRedialSchedule(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const peer = "198.18.0.254"
	type phase struct {
		secs  int    // poll every second for this long
		state string // the peer's state meanwhile ("" : no longer configured)
		want  []int  // seconds (from the phase's start) at which it is re-armed
	}
	for _, tc := range []struct {
		name   string
		phases []phase
	}{
		{"stays down: windows double to the cap", []phase{
			{121, "active", []int{2, 6, 14, 30, 60, 90, 120}},
		}},
		{"idle counts as down", []phase{
			{7, "idle", []int{2, 6}},
		}},
		{"established resets the schedule", []phase{
			{15, "active", []int{2, 6, 14}},
			{3, "established", nil},
			{7, "active", []int{2, 6}},
		}},
		{"handshake keeps the window", []phase{
			{2, "active", nil},
			{5, "opensent", nil},
			{5, "active", []int{0, 4}},
		}},
		{"removed peer forgotten", []phase{
			{14, "active", []int{2, 6}},
			{2, "", nil},
			{3, "connect", []int{2}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRedialer(DefaultBackoff)
			now := t0
			for i, ph := range tc.phases {
				start := now
				var got []int
				for s := 0; s < ph.secs; s++ {
					var ps []PeerState
					if ph.state != "" {
						ps = []PeerState{{Address: peer, State: ph.state}}
					}
					if due := r.due(now, ps); slices.Contains(due, peer) {
						got = append(got, int(now.Sub(start)/time.Second))
					}
					now = now.Add(time.Second)
				}
				if !slices.Equal(got, ph.want) {
					t.Errorf("phase %d (%s for %ds): re-armed at %v s, want %v", i, ph.state, ph.secs, got, ph.want)
				}
			}
		})
	}
}

// TestRedialDownSince: a down peer is dated from when it was first seen
// down, however often it is re-armed; an established one is not dated.
func TestRedialDownSince(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := newRedialer(DefaultBackoff)
	down := []PeerState{{Address: "198.18.0.254", State: "active"}}
	for s := range 40 {
		r.due(t0.Add(time.Duration(s)*time.Second), down)
	}
	if got := r.downSince("198.18.0.254"); !got.Equal(t0) {
		t.Errorf("down since %v, want %v", got, t0)
	}
	r.due(t0.Add(time.Minute), []PeerState{{Address: "198.18.0.254", State: "established"}})
	if got := r.downSince("198.18.0.254"); !got.IsZero() {
		t.Errorf("established peer down since %v, want zero", got)
	}
}
