package upstream

import (
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
	apb "google.golang.org/protobuf/types/known/anypb"

	"github.com/floodguard/floodguard/detector"
)

// FlowSpec component types (RFC 8955 §4.2.2, RFC 8956 §3) and operator
// bits (§4.2.1.1 numeric, §4.2.1.2 bitmask). The end-of-list bit and the
// value length are set by GoBGP when it encodes the NLRI.
const (
	fsDstPrefix = 1
	fsSrcPrefix = 2
	fsProto     = 3 // IPv6: next header
	fsDstPort   = 5
	fsSrcPort   = 6
	fsTCPFlags  = 9
	fsLength    = 10
	fsFragment  = 12

	opEQ  = 0x01
	opGT  = 0x02
	opLT  = 0x04
	opAND = 0x40

	bmMatch = 0x01 // all the value's bits set (else: any of them)
	bmNot   = 0x02

	// Fragment bitmask bits (RFC 8955 §4.2.2.12).
	fragIsF = 0x02 // a fragment other than the first
	fragFF  = 0x04 // the first fragment
)

var (
	familyFlow4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_FLOW_SPEC_UNICAST}
	familyFlow6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_FLOW_SPEC_UNICAST}
	familyUni4  = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyUni6  = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// noExport is the well-known NO_EXPORT community, sent with the blackhole
// community as RFC 7999 asks.
const noExport = 0xFFFFFF01

// Path builds the GoBGP path announcing a: a FlowSpec rule with its
// traffic-rate action, or an RTBH route with the community.
func Path(a *Announcement, blackholeCommunity uint32) (*api.Path, error) {
	if a.Blackhole {
		return blackholePath(a.Match.Dst, blackholeCommunity)
	}
	nlri, fam, err := FlowSpecNLRI(&a.Match)
	if err != nil {
		return nil, err
	}
	nh := "0.0.0.0"
	if fam == familyFlow6 {
		nh = "::"
	}
	attrs, err := anys(&api.OriginAttribute{Origin: 0},
		&api.MpReachNLRIAttribute{Family: fam, NextHops: []string{nh}, Nlris: []*apb.Any{nlri}},
		&api.ExtendedCommunitiesAttribute{Communities: []*apb.Any{mustAny(&api.TrafficRateExtended{Asn: 0, Rate: a.RateBytes})}})
	if err != nil {
		return nil, err
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: attrs}, nil
}

func blackholePath(dst netip.Prefix, community uint32) (*api.Path, error) {
	if !dst.IsValid() {
		return nil, fmt.Errorf("blackhole without an address")
	}
	nlri, err := apb.New(&api.IPAddressPrefix{PrefixLen: uint32(dst.Bits()), Prefix: dst.Masked().Addr().String()})
	if err != nil {
		return nil, err
	}
	// The next hop is the protected address itself: RTBH routers act on
	// the community, not on where the route points.
	fam := familyUni4
	var hop proto.Message = &api.NextHopAttribute{NextHop: dst.Addr().String()}
	if !dst.Addr().Is4() {
		fam = familyUni6
		hop = &api.MpReachNLRIAttribute{Family: fam, NextHops: []string{dst.Addr().String()}, Nlris: []*apb.Any{nlri}}
	}
	attrs, err := anys(&api.OriginAttribute{Origin: 0}, hop,
		&api.CommunitiesAttribute{Communities: []uint32{community, noExport}})
	if err != nil {
		return nil, err
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: attrs}, nil
}

// FlowSpecNLRI encodes m as a FlowSpec NLRI of its family (IPv4, RFC 8955,
// or IPv6, RFC 8956), components in ascending type order. A match whose
// family no prefix fixes is refused: the policy always gives it one.
func FlowSpecNLRI(m *detector.Match) (*apb.Any, *api.Family, error) {
	if err := m.Validate(); err != nil {
		return nil, nil, fmt.Errorf("flowspec %s: %w", m, err)
	}
	f := m.Family()
	if f == 0 {
		return nil, nil, fmt.Errorf("flowspec %s: no source or destination prefix fixes the address family", m)
	}
	fam := familyFlow4
	if f == 6 {
		fam = familyFlow6
	}
	var rules []proto.Message
	for _, c := range []struct {
		typ uint32
		p   netip.Prefix
	}{{fsDstPrefix, m.Dst}, {fsSrcPrefix, m.Src}} {
		if c.p.IsValid() {
			rules = append(rules, &api.FlowSpecIPPrefix{Type: c.typ, PrefixLen: uint32(c.p.Bits()), Prefix: c.p.Masked().Addr().String()})
		}
	}
	if m.Proto != 0 {
		rules = append(rules, component(fsProto, item(opEQ, uint64(m.Proto))))
	}
	if !m.DstPort.Any() {
		rules = append(rules, component(fsDstPort, rangeItems(m.DstPort)...))
	}
	if !m.SrcPort.Any() {
		rules = append(rules, component(fsSrcPort, rangeItems(m.SrcPort)...))
	}
	if m.TCPFlagsMask != 0 {
		rules = append(rules, component(fsTCPFlags, flagItems(m.TCPFlags, m.TCPFlagsMask)...))
	}
	if !m.Length.Any() {
		rules = append(rules, component(fsLength, rangeItems(m.Length)...))
	}
	switch m.Fragment {
	case detector.FragNone: // neither kind of fragment
		rules = append(rules, component(fsFragment, item(bmNot, fragIsF|fragFF)))
	case detector.FragFirst:
		rules = append(rules, component(fsFragment, item(bmMatch, fragFF)))
	case detector.FragLater:
		rules = append(rules, component(fsFragment, item(bmMatch, fragIsF)))
	}
	rs, err := anys(rules...)
	if err != nil {
		return nil, nil, err
	}
	nlri, err := apb.New(&api.FlowSpecNLRI{Rules: rs})
	return nlri, fam, err
}

func item(op uint32, v uint64) *api.FlowSpecComponentItem {
	return &api.FlowSpecComponentItem{Op: op, Value: v}
}

func component(typ uint32, items ...*api.FlowSpecComponentItem) *api.FlowSpecComponent {
	return &api.FlowSpecComponent{Type: typ, Items: items}
}

// rangeItems is =v for one value, >=lo&&<=hi for a range (<=hi from 0).
func rangeItems(r detector.Range) []*api.FlowSpecComponentItem {
	switch {
	case r.Lo == r.Hi:
		return []*api.FlowSpecComponentItem{item(opEQ, uint64(r.Lo))}
	case r.Lo == 0:
		return []*api.FlowSpecComponentItem{item(opLT|opEQ, uint64(r.Hi))}
	}
	return []*api.FlowSpecComponentItem{item(opGT|opEQ, uint64(r.Lo)), item(opAND|opLT|opEQ, uint64(r.Hi))}
}

// flagItems matches flags & mask == value: the value's bits all set
// (match), and the mask's other bits all clear (not any).
func flagItems(value, mask uint8) []*api.FlowSpecComponentItem {
	var out []*api.FlowSpecComponentItem
	if value != 0 {
		out = append(out, item(bmMatch, uint64(value)))
	}
	if clear := mask &^ value; clear != 0 {
		op := uint32(bmNot)
		if len(out) > 0 {
			op |= opAND
		}
		out = append(out, item(op, uint64(clear)))
	}
	return out
}

func anys(ms ...proto.Message) ([]*apb.Any, error) {
	out := make([]*apb.Any, 0, len(ms))
	for _, m := range ms {
		a, err := apb.New(m)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func mustAny(m proto.Message) *apb.Any {
	a, err := apb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}
