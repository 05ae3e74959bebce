package main

import (
	"flag"
	"fmt"

	"github.com/floodguard/floodguard/detector"
)

// matchFlags are the signature components `block` and `unblock` take:
// the components of a BGP FlowSpec rule, as detector.Match holds them.
type matchFlags struct {
	proto, sport, dport, length, flags, frag, dst string
	rate                                          uint64
}

func (m *matchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.proto, "proto", "", "signature rule: IP `protocol` (tcp, udp, icmp, icmpv6 or a number)")
	fs.StringVar(&m.sport, "sport", "", "signature rule: source `port` or LO-HI range (needs --proto tcp or udp)")
	fs.StringVar(&m.dport, "dport", "", "signature rule: destination `port` or LO-HI range")
	fs.StringVar(&m.length, "len", "", "signature rule: IP packet `length` or LO-HI range")
	fs.StringVar(&m.flags, "flags", "", "signature rule: TCP `flags` VALUE/MASK (0x02/0x12), or syn")
	fs.StringVar(&m.frag, "frag", "", "signature rule: `fragment` kind: none, first or later")
	fs.StringVar(&m.dst, "dst", "", "signature rule: destination `CIDR` (the protected address)")
	fs.Uint64Var(&m.rate, "rate", 0, "signature rule: rate-limit matching packets to `PPS` instead of dropping them")
}

// match builds the signature rule's match; isSig is false when no
// signature flag was given (a plain source ban).
func (m *matchFlags) match() (detector.Match, bool, error) {
	var out detector.Match
	var err error
	set := false
	parse := func(name, v string, f func(string) error) {
		if v == "" || err != nil {
			return
		}
		set = true
		if e := f(v); e != nil {
			err = fmt.Errorf("--%s: %w", name, e)
		}
	}
	parse("proto", m.proto, func(v string) (e error) { out.Proto, e = detector.ParseProto(v); return })
	parse("sport", m.sport, func(v string) (e error) { out.SrcPort, e = detector.ParseRange(v); return })
	parse("dport", m.dport, func(v string) (e error) { out.DstPort, e = detector.ParseRange(v); return })
	parse("len", m.length, func(v string) (e error) { out.Length, e = detector.ParseRange(v); return })
	parse("flags", m.flags, func(v string) (e error) { out.TCPFlags, out.TCPFlagsMask, e = detector.ParseTCPFlags(v); return })
	parse("frag", m.frag, func(v string) (e error) { out.Fragment, e = detector.ParseFragment(v); return })
	parse("dst", m.dst, func(v string) error {
		c, e := detector.ParseCIDR(v)
		out.Dst = c.Prefix
		return e
	})
	return out, set, err
}
