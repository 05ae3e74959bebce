package upstream

import (
	"time"
)

// Backoff is how a session that is down is retried: one connection attempt
// per window, the window doubling from Min to Max and back to Min once the
// session is established. GoBGP retries at a fixed interval (and waits a
// fixed 5 s in Idle after a session drops), so the stage re-arms the peer
// itself on this schedule (Speaker.Rearm): a router that comes back is
// tried again within seconds, one that stays away is tried every Max, not
// hammered every second.
type Backoff struct {
	Min, Max time.Duration
}

// DefaultBackoff is the schedule the daemon uses. Min is 2 s, not 1 s:
// GoBGP dials 1 to 2 s (jittered) after a peer is (re)armed, and a window
// shorter than that would re-arm the peer before it ever dialled.
var DefaultBackoff = Backoff{Min: 2 * time.Second, Max: 30 * time.Second}

// redialer keeps, per peer that is down, when to re-arm it next. It is
// pure (time comes in as an argument), so the schedule is unit-tested
// without waiting.
type redialer struct {
	b     Backoff
	peers map[string]*redialState
}

type redialState struct {
	down time.Time     // first seen down
	step time.Duration // the current window
	next time.Time     // when the window ends: re-arm then
}

func newRedialer(b Backoff) *redialer {
	return &redialer{b: b, peers: map[string]*redialState{}}
}

// due returns the peers to re-arm at now, given their states. A peer seen
// down for the first time is left to GoBGP for one window (at start GoBGP
// dials by itself, and re-arming would cancel that dial); after each window
// without a session it is re-armed and the window doubles, up to Max. An
// established peer starts afresh; one in the middle of its handshake
// (opensent, openconfirm) is left alone and keeps its window.
func (r *redialer) due(now time.Time, peers []PeerState) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range peers {
		seen[p.Address] = true
		switch p.State {
		case "established":
			delete(r.peers, p.Address)
			continue
		case "opensent", "openconfirm":
			continue
		}
		s, ok := r.peers[p.Address]
		if !ok {
			r.peers[p.Address] = &redialState{down: now, step: r.b.Min, next: now.Add(r.b.Min)}
			continue
		}
		if now.Before(s.next) {
			continue
		}
		out = append(out, p.Address)
		s.step = min(2*s.step, r.b.Max)
		s.next = now.Add(s.step)
	}
	for a := range r.peers {
		if !seen[a] {
			delete(r.peers, a) // a peer removed by a reload
		}
	}
	return out
}

// downSince is when the peer was first seen down (zero if it is not).
func (r *redialer) downSince(addr string) time.Time {
	if s, ok := r.peers[addr]; ok {
		return s.down
	}
	return time.Time{}
}
