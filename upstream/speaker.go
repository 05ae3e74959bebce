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

// ConnectRetry is how often a session that is down is tried again: short,
// so routers learn the rules soon after they come back (BGP's usual 120 s
// would leave a flood unannounced for two minutes).
const ConnectRetry = 5 * time.Second

// GoBGP is the embedded GoBGP speaker. It connects out to its peers and
// never listens.
type GoBGP struct {
	s         *server.BgpServer
	community uint32
	mu        sync.Mutex
	peers     map[netip.Addr]Peer
}

// NewGoBGP starts a speaker with cfg's identity (peers come with SetPeers).
func NewGoBGP(ctx context.Context, cfg *Config, log zerolog.Logger) (*GoBGP, error) {
	community, err := ParseCommunity(cfg.Blackhole.Community)
	if err != nil {
		return nil, err
	}
	s := server.NewBgpServer(server.LoggerOption(&logAdapter{log: log.With().Str("component", "bgp").Logger()}))
	go s.Serve()
	g := &GoBGP{s: s, community: community, peers: map[netip.Addr]Peer{}}
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
	retry := uint64(ConnectRetry / time.Second)
	return &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address, PeerAsn: p.AS, AuthPassword: password},
		Timers: &api.Timers{Config: &api.TimersConfig{ConnectRetry: retry, HoldTime: hold,
			KeepaliveInterval: max(hold/3, 1), IdleHoldTimeAfterReset: retry}},
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
