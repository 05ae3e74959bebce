package upstream

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/rs/zerolog"
)

// Speaker is the BGP side as the daemon and the tests see it.
type Speaker interface {
	// SetPeers makes the sessions those of peers: new ones added, gone
	// ones closed, changed ones replaced.
	SetPeers(ctx context.Context, peers []Peer) error
	Announce(ctx context.Context, a *Announcement) error
	Withdraw(ctx context.Context, a *Announcement) error
	// Peers lists the sessions and their state.
	Peers(ctx context.Context) []PeerState
	// Rearm makes the peer at address try to connect now (about a second
	// later) if its session is down, and does nothing otherwise: the
	// stage's backoff (Backoff) decides when.
	Rearm(ctx context.Context, address string) error
	// Stop closes every session (the routers withdraw what was announced).
	Stop()
}

// PeerState is one session as status shows it.
type PeerState struct {
	Address string    `json:"address"`
	AS      uint32    `json:"as"`
	State   string    `json:"state"` // idle, connect, active, opensent, openconfirm, established
	Since   time.Time `json:"since,omitzero"`
}

// connectRetry is GoBGP's own retry interval for a session that is down.
// The stage re-arms down peers on its own backoff schedule (Backoff, at
// most every Max), so GoBGP's fixed interval is only a fallback and must
// not be shorter than that schedule's longest window; BGP's usual 120 s
// would leave a flood unannounced for two minutes should the stage's
// re-arming fail.
var connectRetry = DefaultBackoff.Max

// GoBGP is the embedded GoBGP speaker. It connects out to its peers and
// never listens.
type GoBGP struct {
	s         *server.BgpServer
	community uint32
	mu        sync.Mutex
	peers     map[netip.Addr]Peer
	passwords map[netip.Addr]string // as read when the peer was added
}

// NewGoBGP starts a speaker with cfg's identity (peers come with SetPeers).
func NewGoBGP(ctx context.Context, cfg *Config, log zerolog.Logger) (*GoBGP, error) {
	community, err := ParseCommunity(cfg.Blackhole.Community)
	if err != nil {
		return nil, err
	}
	s := server.NewBgpServer(server.LoggerOption(&logAdapter{log: log.With().Str("component", "bgp").Logger()}))
	go s.Serve()
	g := &GoBGP{s: s, community: community, peers: map[netip.Addr]Peer{}, passwords: map[netip.Addr]string{}}
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.BGP.LocalAS, RouterId: cfg.BGP.RouterID, ListenPort: -1, // connect out only
	}}); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start BGP: %w", err)
	}
	return g, nil
}

func families() []*api.AfiSafi {
	var out []*api.AfiSafi
	for _, f := range []*api.Family{familyFlow4, familyFlow6, familyUni4, familyUni6} {
		out = append(out, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}})
	}
	return out
}

func apiPeer(p *Peer, password string) *api.Peer {
	hold := uint64(p.holdTime() / time.Second)
	retry := uint64(connectRetry / time.Second)
	return &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address, PeerAsn: p.AS, AuthPassword: password},
		Timers: &api.Timers{Config: &api.TimersConfig{ConnectRetry: retry, HoldTime: hold,
			KeepaliveInterval: max(hold/3, 1), IdleHoldTimeAfterReset: 1}},
		Transport: &api.Transport{RemotePort: uint32(p.port())},
		AfiSafis:  families(),
	}
}

// SetPeers applies the configured peers; a password that cannot be read
// fails that peer only (the others are still applied).
func (g *GoBGP) SetPeers(ctx context.Context, peers []Peer) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []string
	want := map[netip.Addr]Peer{}
	for _, p := range peers {
		a, _ := netip.ParseAddr(p.Address)
		want[a] = p
	}
	for a, old := range g.peers {
		if p, ok := want[a]; ok && p == old {
			continue
		}
		if err := g.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Sprintf("remove peer %s: %v", a, err))
		}
		delete(g.peers, a)
		delete(g.passwords, a)
	}
	for a, p := range want {
		if _, ok := g.peers[a]; ok {
			continue
		}
		pw := ""
		if p.Password.IsSet() {
			v, err := p.Password.Value()
			if err != nil {
				errs = append(errs, fmt.Sprintf("peer %s password: %v", a, err))
				continue
			}
			pw = v
		}
		if err := g.s.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(&p, pw)}); err != nil {
			errs = append(errs, fmt.Sprintf("add peer %s: %v", a, err))
			continue
		}
		g.peers[a] = p
		g.passwords[a] = pw
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Announce adds a's route to the RIB every peer is sent (replacing one
// with the same NLRI).
func (g *GoBGP) Announce(ctx context.Context, a *Announcement) error {
	p, err := Path(a, g.community)
	if err != nil {
		return err
	}
	_, err = g.s.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
	return err
}

// Withdraw removes a's route.
func (g *GoBGP) Withdraw(ctx context.Context, a *Announcement) error {
	p, err := Path(a, g.community)
	if err != nil {
		return err
	}
	return g.s.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p})
}

// Rearm replaces the peer at address with a fresh one when its session is
// idle, connecting or active: GoBGP's new peer dials 1 to 2 s later,
// instead of after its fixed idle hold (5 s) and retry interval. The
// announced routes live in the global RIB, not in the peer, so the new
// session is sent all of them. A peer in its handshake or established is
// left alone.
func (g *GoBGP) Rearm(ctx context.Context, address string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, err := netip.ParseAddr(address)
	if err != nil {
		return fmt.Errorf("rearm peer %q: %w", address, err)
	}
	p, ok := g.peers[a]
	if !ok {
		return nil // removed by a reload meanwhile
	}
	// A peer GoBGP does not know (an earlier re-add failed) is added.
	state, missing := api.PeerState_UNKNOWN, true
	if err := g.s.ListPeer(ctx, &api.ListPeerRequest{Address: a.String()}, func(p *api.Peer) {
		state, missing = p.GetState().GetSessionState(), false
	}); err != nil {
		return fmt.Errorf("rearm peer %s: list: %w", a, err)
	}
	switch {
	case missing:
	case state == api.PeerState_IDLE, state == api.PeerState_CONNECT, state == api.PeerState_ACTIVE:
		if err := g.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			return fmt.Errorf("rearm peer %s: remove: %w", a, err)
		}
	default:
		return nil
	}
	if err := g.s.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(&p, g.passwords[a])}); err != nil {
		return fmt.Errorf("rearm peer %s: add: %w", a, err)
	}
	return nil
}

// Peers lists the sessions in address order.
func (g *GoBGP) Peers(ctx context.Context) []PeerState {
	var out []PeerState
	_ = g.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		ps := PeerState{Address: p.GetConf().GetNeighborAddress(), AS: p.GetConf().GetPeerAsn(),
			State: strings.ToLower(p.GetState().GetSessionState().String())}
		if ps.State == "established" {
			if up := p.GetTimers().GetState().GetUptime(); up != nil {
				ps.Since = up.AsTime()
			}
		} else if down := p.GetTimers().GetState().GetDowntime(); down != nil && down.AsTime().Unix() > 0 {
			ps.Since = down.AsTime()
		}
		out = append(out, ps)
	})
	slices.SortFunc(out, func(a, b PeerState) int { return strings.Compare(a.Address, b.Address) })
	return out
}

// Stop closes the sessions (a NOTIFICATION Cease to each) and the server.
func (g *GoBGP) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.s.StopBgp(ctx, &api.StopBgpRequest{})
	g.s.Stop()
}

// logAdapter sends GoBGP's logs to zerolog: warnings and errors as they
// are, its info chatter at debug.
type logAdapter struct {
	log   zerolog.Logger
	level gobgplog.LogLevel
}

func (l *logAdapter) emit(e *zerolog.Event, msg string, f gobgplog.Fields) {
	for k, v := range f {
		e = e.Interface(strings.ToLower(k), v)
	}
	e.Msg(msg)
}

func (l *logAdapter) Panic(msg string, f gobgplog.Fields) { l.emit(l.log.Error(), msg, f) }
func (l *logAdapter) Fatal(msg string, f gobgplog.Fields) { l.emit(l.log.Error(), msg, f) }
func (l *logAdapter) Error(msg string, f gobgplog.Fields) { l.emit(l.log.Error(), msg, f) }
func (l *logAdapter) Warn(msg string, f gobgplog.Fields)  { l.emit(l.log.Warn(), msg, f) }
func (l *logAdapter) Info(msg string, f gobgplog.Fields)  { l.emit(l.log.Debug(), msg, f) }
func (l *logAdapter) Debug(msg string, f gobgplog.Fields) { l.emit(l.log.Trace(), msg, f) }
func (l *logAdapter) SetLevel(level gobgplog.LogLevel)    { l.level = level }
func (l *logAdapter) GetLevel() gobgplog.LogLevel         { return gobgplog.DebugLevel }
