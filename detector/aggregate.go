package detector

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/floodguard/floodguard/internal/humanize"
)

// aggName names an aggregate key in events.
func aggName(c int) string {
	if c == aggAll {
		return "all"
	}
	return Class(c).String()
}

// judgeAggregate judges all traffic and each protocol class on the passed
// traffic that flagged sources and prefixes do not already explain. An
// anomaly there is a distributed flood: no single key explains it.
func (e *Engine) judgeAggregate(t *Tick) {
	var pps, bps [NumClasses + 1]float64
	for c := range NumClasses {
		p := max(float64(t.Total.Packets[c])-e.scratch.dropP[c], 0)/e.scratch.secs - e.scratch.flagged[c]
		b := max(float64(t.Total.Bytes[c])-e.scratch.dropB[c], 0)*8/e.scratch.secs - e.scratch.flagBPS[c]
		pps[c], bps[c] = max(p, 0), max(b, 0)
		pps[aggAll] += pps[c]
		bps[aggAll] += bps[c]
	}
	thr := &e.cfg.Aggregate
	analysed := false
	var classesOver []string
	// Classes first, all traffic last: a class anomaly names the flood more
	// precisely, and the all-traffic analysis is skipped if one ran.
	for c := range aggAll + 1 {
		st := &e.agg[c]
		over := st.samples > 0 && e.overThreshold(thr, &st.pps, &st.bps, pps[c], bps[c])
		if over && c != aggAll {
			classesOver = append(classesOver, aggName(c))
		}
		if !st.anomalous {
			if over {
				st.over++
				if st.over >= thr.EnterTicks {
					st.anomalous, st.calm, st.peakPPS = true, 0, pps[c]
					i := e.emit(AttackStart, ScopeAggregate, "*", pps[c], bps[c], st.pps.mean, "")
					e.scratch.events[i].Class = aggName(c)
					var reason string
					var contrib []Contributor
					if analysed && c == aggAll {
						reason = "driven by the " + strings.Join(classesOver, " and ") + " flood above"
					} else {
						// A signature first: one rule drops a flood no
						// list of sources can name. Without one, the
						// out-of-band sources are banned as before.
						sigNote, sigOK := e.signature(t, c, pps[c], st)
						an := e.distributed(t, c, pps[c], st, !sigOK)
						reason, contrib = an.reason, an.top
						if sigNote != "" {
							reason += "; " + sigNote
						}
						e.scratch.events[i].ReflectionPort, e.scratch.events[i].Unexplained = an.reflectionPort, an.unexplained
						analysed = true
					}
					e.scratch.events[i].Reason = fmt.Sprintf("%s %s over max(baseline %.0f + %g·σ %.0f, %g× baseline, floor %.0f); %s",
						aggName(c), humanize.Rate(pps[c], bps[c]), st.pps.mean, thr.K, st.pps.sigma(), thr.Ratio, thr.FloorPPS, reason)
					e.scratch.events[i].Contributors = contrib
				}
				continue
			}
			st.over = 0
			if st.samples == 0 {
				st.pps.mean, st.bps.mean = pps[c], bps[c]
			} else {
				st.pps.update(pps[c], e.alpha)
				st.bps.update(bps[c], e.alpha)
			}
			st.samples++
			continue
		}
		st.peakPPS = max(st.peakPPS, pps[c])
		if c != aggAll {
			e.signatureWave(t, c, st)
		}
		if e.calm(thr, &st.pps, &st.bps, pps[c], bps[c]) {
			st.calm++
			if st.calm >= thr.ExitTicks {
				st.anomalous, st.over, st.calm = false, 0, 0
				i := e.emit(AttackEnd, ScopeAggregate, "*", pps[c], bps[c], st.pps.mean,
					fmt.Sprintf("%s below exit level for %d ticks (peak %.0f pps)", aggName(c), thr.ExitTicks, st.peakPPS))
				e.scratch.events[i].Class = aggName(c)
			}
			continue
		}
		st.calm = 0
		if over && (!analysed || c != aggAll) {
			// Still over: a signature may now stand out, and new waves
			// of contributors get banned too.
			if _, ok := e.signature(t, c, pps[c], st); !ok {
				e.distributed(t, c, pps[c], st, true)
			}
			analysed = true
		}
	}
}

// candidate is a source that may be banned as part of a distributed flood.
type candidate struct {
	addr Addr
	pps  float64 // in the anomalous class
	bps  float64
	band float64
	port uint16
}

// analysis is what distributed found out about an aggregate attack.
type analysis struct {
	reason         string
	top            []Contributor
	reflectionPort uint16 // the UDP source port carrying the excess, or 0
	unexplained    bool   // no small set of sources explains it
}

// distributed looks for the heavy contributors of an anomalous aggregate key
// and, if ban is set, bans the smallest set of out-of-band sources that
// brings it back to its baseline. It returns a description, the top
// contributors and what it concluded.
func (e *Engine) distributed(t *Tick, c int, rate float64, st *aggState, ban bool) analysis {
	thr := &e.cfg.Source
	dc := &e.cfg.Distributed
	excess := rate - st.pps.mean
	if excess <= 0 {
		return analysis{reason: "no excess over baseline"}
	}
	clear(e.scratch.ports)
	e.scratch.cands = e.scratch.cands[:0]
	var top []Contributor
	var nsrc int
	var udpTotal float64
	for i := range t.Sources {
		src := &t.Sources[i]
		if src.DroppedPackets > 0 {
			continue
		}
		s := e.sources.get(src.Addr)
		if s != nil && s.flags&(flagBanned|flagAnomalous) != 0 {
			continue
		}
		pkts := src.TotalPackets()
		var cp, cb uint64
		if c == aggAll {
			cp, cb = pkts, src.TotalBytes()
		} else {
			cp, cb = src.Packets[c], src.Bytes[c]
		}
		if cp == 0 {
			continue
		}
		nsrc++
		cpps := float64(cp) / e.scratch.secs
		top = pushTop(top, src.Addr, cpps, cpps/excess, 5)
		if c == int(ClassUDP) || c == aggAll {
			u := float64(src.Packets[ClassUDP]) / e.scratch.secs
			if u > 0 && src.UDPSrcPort != 0 {
				e.scratch.ports[src.UDPSrcPort] += u
				udpTotal += u
			}
		}
		// A contributor sends mostly in this class, at a rate above the
		// distributed floor and outside its own normal band.
		if cpps < dc.MinSourcePPS || 2*cp < pkts {
			continue
		}
		pb, _ := baselines(s, &e.srcPrior)
		band := max(pb.mean+thr.K*pb.sigma(), pb.mean*thr.Ratio)
		if float64(pkts)/e.scratch.secs <= band {
			continue
		}
		e.scratch.cands = append(e.scratch.cands, candidate{addr: src.Addr, pps: cpps, bps: float64(cb) * 8 / e.scratch.secs, band: band, port: src.UDPSrcPort})
	}
	var notes []string
	var an analysis
	// Reflection: one UDP source port carries most of the excess.
	if port, share := e.topPort(excess); share >= dc.ReflectionShare && udpTotal > 0 {
		an.reflectionPort = port
		notes = append(notes, fmt.Sprintf("reflection from udp source port %d%s carries %.0f%% of the excess", port, portName(port), 100*min(share, 1)))
		e.scratch.cands = slices.DeleteFunc(e.scratch.cands, func(cd candidate) bool { return cd.port != port })
	}
	slices.SortFunc(e.scratch.cands, func(a, b candidate) int {
		if a.pps != b.pps {
			if a.pps > b.pps {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.addr[:], b.addr[:])
	})
	exitLevel := threshold(&st.pps, e.cfg.Aggregate.K, e.cfg.Aggregate.Ratio, e.cfg.Aggregate.FloorPPS) * e.cfg.Aggregate.ExitFraction
	need := rate - max(exitLevel, st.pps.mean)
	var all float64
	for _, cd := range e.scratch.cands {
		all += cd.pps
	}
	n := 0
	for removed := 0.0; n < len(e.scratch.cands) && removed < need; n++ {
		removed += e.scratch.cands[n].pps
	}
	if unt := t.ProbationPackets; unt > 0 {
		// New sources past the admission budget: each packet may be a
		// source of its own (a spoofed flood), so the average is a floor.
		notes = append(notes, fmt.Sprintf("%d sources and up to %d more not tracked (on probation), at least %.1f pps each on average", nsrc, unt, rate/float64(nsrc+int(unt))))
	} else if nsrc > 0 {
		notes = append(notes, fmt.Sprintf("%d sources, %.1f pps each on average", nsrc, rate/float64(nsrc)))
	}
	switch {
	case !ban:
		// Analysis only: a signature rule drops this flood.
	case len(e.scratch.cands) == 0 || all < dc.MinExcessShare*excess:
		an.unexplained = true
		notes = append(notes, fmt.Sprintf("no small set of out-of-band sources explains it (%d candidates, %.0f%% of the excess): spoofed sources or a flash crowd; nothing banned",
			len(e.scratch.cands), 100*all/excess))
	case ban:
		banned := 0
		for _, cd := range e.scratch.cands[:n] {
			if banned >= dc.MaxBansPerTick {
				notes = append(notes, fmt.Sprintf("ban limit %d per tick reached", dc.MaxBansPerTick))
				break
			}
			s := e.sources.get(cd.addr)
			if s == nil {
				s = e.sources.add(cd.addr, e.tick)
			}
			reason := fmt.Sprintf("contributor to distributed %s flood: %.0f pps (%.1f%% of the excess) vs its band %.1f", aggName(c), cd.pps, 100*cd.pps/excess, cd.band)
			if ok, _ := e.tryBan(cd.addr.Prefix(), ScopeSource, cd.pps, cd.bps, 0, dc.MinSourcePPS, reason); ok {
				s.flags |= flagBanned
				e.listSource(s, cd.addr)
				e.noteTripLevel(cd.addr, s)
				banned++
			}
		}
		notes = append(notes, fmt.Sprintf("banning %d of %d out-of-band sources", banned, len(e.scratch.cands)))
	}
	an.reason, an.top = strings.Join(notes, "; "), top
	return an
}

// topPort returns the UDP source port with the largest rate and its share of
// the excess.
func (e *Engine) topPort(excess float64) (uint16, float64) {
	var best uint16
	var rate float64
	for p, r := range e.scratch.ports {
		if r > rate || (r == rate && p < best) {
			best, rate = p, r
		}
	}
	return best, rate / excess
}

// pushTop inserts a contributor into top, the n busiest so far, largest
// first, and names it only if it gets in: formatting every source's
// address, most of which never get in, was the loop's largest cost.
func pushTop(top []Contributor, a Addr, pps, share float64, n int) []Contributor {
	i, _ := slices.BinarySearchFunc(top, pps, func(x Contributor, v float64) int {
		if x.PPS > v {
			return -1
		}
		if x.PPS < v {
			return 1
		}
		return 0
	})
	if i >= n {
		return top
	}
	top = slices.Insert(top, i, Contributor{Target: a.String(), PPS: pps, Share: share})
	if len(top) > n {
		top = top[:n]
	}
	return top
}

var reflectionPorts = map[uint16]string{
	19: "chargen", 53: "dns", 123: "ntp", 161: "snmp", 389: "cldap", 1900: "ssdp",
	11211: "memcached", 3702: "ws-discovery", 47808: "bacnet", 500: "isakmp", 4500: "ipsec-nat-t",
}

func portName(p uint16) string {
	if n, ok := reflectionPorts[p]; ok {
		return " (" + n + ")"
	}
	return ""
}
