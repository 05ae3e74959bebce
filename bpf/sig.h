/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Signature rules in floodguard_xdp (included by floodguard.c after its
 * maps). The semantics are detector.Match.Matches plus the order-free
 * decision below, which the replay's simulated plane implements too; see
 * DESIGN.md, "Signature rules".
 */
#ifndef FLOODGUARD_SIG_H
#define FLOODGUARD_SIG_H

#include "parse.h"

/* Every bit of the control flags that says some signature rule exists. */
#define FG_SIGS_ANY (FG_HAVE_SIGS | (0x1fU << 8))

/* addr_in reports whether a is in the prefix (prefix, mask); an IPv6
 * prefix (v6) never holds an IPv4-mapped address. */
static __always_inline bool addr_in(const union fg_key *a, const struct fg_addr *prefix,
				    const struct fg_addr *mask, bool v6)
{
	const union fg_key *p = (const void *)prefix, *m = (const void *)mask;

	if ((a->d[0] & m->d[0]) != p->d[0] || (a->d[1] & m->d[1]) != p->d[1])
		return false;
	return !v6 || a->d[0] != 0 || a->w[2] != bpf_htonl(0x0000ffff);
}

/* sig_matches is detector.Match.Matches. */
static __always_inline bool sig_matches(const struct fg_sig_rule *r, const struct fg_pkt *pkt)
{
	if (r->proto && r->proto != pkt->proto)
		return false;
	if (r->flags & FG_SIG_L4) {
		if (!pkt->l4)
			return false;
		if (pkt->sport < r->sport_lo || pkt->sport > r->sport_hi)
			return false;
		if (pkt->dport < r->dport_lo || pkt->dport > r->dport_hi)
			return false;
		if ((pkt->tcp_flags & r->tcp_mask) != r->tcp_flags)
			return false;
	}
	if (pkt->length < r->len_lo || pkt->length > r->len_hi)
		return false;
	if (r->frag && r->frag != pkt->frag)
		return false;
	return addr_in(&pkt->src, &r->src, &r->src_mask, r->flags & FG_SIG_SRC_V6) &&
	       addr_in(&pkt->dst, &r->dst, &r->dst_mask, r->flags & FG_SIG_DST_V6);
}

/* What sig_check_slot found. */
#define FG_SIG_NOMATCH 0
#define FG_SIG_MATCH_LIMIT 1 /* a rate-limit rule in force matches */
#define FG_SIG_MATCH_DROP 2  /* a drop rule in force matches */

/* sig_check_slot tells whether the rule in slot is in force and matches
 * pkt. */
static __always_inline int sig_check_slot(__u32 slot, const struct fg_pkt *pkt, __u64 now)
{
	struct fg_sig_rule *r;

	r = bpf_map_lookup_elem(&fg_sig_rules, &slot);
	/* A free slot has expires_ns 0. */
	if (!r || now >= READ_ONCE(r->expires_ns))
		return FG_SIG_NOMATCH;
	/* user space writes the fields before expires_ns: read them after. */
	asm volatile("" ::: "memory");
	if (!sig_matches(r, pkt))
		return FG_SIG_NOMATCH;
	return READ_ONCE(r->rate_pps) ? FG_SIG_MATCH_LIMIT : FG_SIG_MATCH_DROP;
}


/* sig_collect adds slot to m if its rule is in force and matches pkt. */
static __always_inline void sig_collect(__u32 slot, const struct fg_pkt *pkt, __u64 now,
					struct fg_sig_matched *m)
{
	int found = sig_check_slot(slot, pkt, now);
	__u32 n = m->n;

	if (found == FG_SIG_NOMATCH || n >= FG_SIG_MAX_MATCHED)
		return; /* (never more candidates than FG_SIG_MAX_MATCHED) */
	m->slot[n] = slot;
	if (found == FG_SIG_MATCH_DROP)
		m->drops |= 1U << n;
	m->n = n + 1;
}

/* sig_collect_index checks the rules fg_sig_index lists under key. */
static __always_inline void sig_collect_index(__u32 key, const struct fg_pkt *pkt, __u64 now,
					      struct fg_sig_matched *m)
{
	__u64 *e = bpf_map_lookup_elem(&fg_sig_index, &key);
	__u64 v;
	__u32 cnt;

	if (!e)
		return;
	v = READ_ONCE(*e);
	cnt = v & 0xff;
	for (int i = 0; i < FG_SIG_INDEX_SLOTS; i++) {
		if (i >= cnt)
			break;
		v >>= 8;
		sig_collect(v & 0xff, pkt, now, m);
	}
}

/*
 * sig_exhausted charges one packet to a rate-limit rule and reports whether
 * its allowance for the current 100 ms window is used up. The counter is
 * global (one per rule, shared by the CPUs). A packet passes if fewer than
 * the allowance were counted in the window, and is then counted: the same
 * decisions as counting every packet with a fetch-and-add and passing
 * while the count is within the allowance, but a packet over the limit
 * (most of a flood) only reads the shared line. Two races, both letting at
 * most one more packet per other CPU through in a window: the read and
 * the add are not one operation, and the reset at a window change may wipe
 * a count another CPU made in the new window (DESIGN.md).
 */
static __always_inline bool sig_exhausted(struct fg_sig_rule *r, __u64 now)
{
	__u64 window = now / FG_SIG_WINDOW_NS;

	if (READ_ONCE(r->window) != window) {
		WRITE_ONCE(r->window, window);
		WRITE_ONCE(r->count, 0);
	}
	if (READ_ONCE(r->count) >= READ_ONCE(r->allowance))
		return true;
	__sync_fetch_and_add(&r->count, 1);
	return false;
}

/*
 * sig_verdict decides a frame that no source rule dropped. Only rules in
 * force that match count. If one matches and the source is exempt: pass,
 * counting nothing. Otherwise every matching rule counts a hit; if any is
 * a drop rule, drop (counted as dropped on every matching drop rule); else
 * charge every matching rate-limit rule and drop if any is exhausted
 * (counted as dropped on those).
 *
 * A global (not inlined) function: the verifier checks it once, not once
 * for each of the many states in which the main program reaches it. (The
 * candidate checks are inlined here: making them global functions too
 * verifies faster but costs a call per candidate.)
 */
__attribute__((noinline)) int sig_verdict(const struct fg_pkt *pkt, __u32 flags, __u64 now,
					  __u64 len)
{
	__u32 portless = FG_CTL_PORTLESS(flags), zero = 0;
	struct fg_sig_matched *m;
	__u64 clock = 0;
	bool limited = false;

	/* The set lives in a per-CPU scratch map, not on the stack: the
	 * verifier tracks stack constants (which rules matched, how many) path
	 * by path, which does not converge over 30 candidates; values loaded
	 * from a map are unknown to it. */
	m = bpf_map_lookup_elem(&fg_sig_scratch, &zero);
	if (!pkt || !m)
		return XDP_PASS;
	m->n = 0;
	m->drops = 0;
	if ((flags & FG_HAVE_SIGS) && pkt->l4) {
		__u32 kind = pkt->proto == IPPROTO_TCP ? FG_PORT_TCP_SRC : FG_PORT_UDP_SRC;

		sig_collect_index(kind * FG_NUM_PORTS + pkt->sport, pkt, now, m);
		sig_collect_index((kind + 1) * FG_NUM_PORTS + pkt->dport, pkt, now, m);
	}
	for (__u32 i = 0; i < FG_SIG_PORTLESS; i++) {
		if (i >= portless)
			break;
		sig_collect(i, pkt, now, m);
	}
	if (m->n == 0)
		return XDP_PASS;
	if ((flags & FG_HAVE_EXEMPT) && bpf_map_lookup_elem(&fg_exempt, &pkt->src.a))
		return XDP_PASS;

	for (__u32 i = 0; i < FG_SIG_MAX_MATCHED; i++) {
		struct fg_sig_stats *st;
		struct fg_sig_rule *r;
		__u32 slot;

		if (i >= m->n)
			break;
		slot = m->slot[i];
		st = bpf_map_lookup_elem(&fg_sig_stats, &slot);
		if (!st)
			continue;
		st->hit_packets += 1;
		st->hit_bytes += len;
		if (m->drops) {
			if (m->drops & (1U << i)) {
				st->dropped_packets += 1;
				st->dropped_bytes += len;
			}
			continue;
		}
		r = bpf_map_lookup_elem(&fg_sig_rules, &slot);
		if (!r)
			continue;
		if (!clock)
			clock = bpf_ktime_get_ns();
		if (sig_exhausted(r, clock)) {
			st->dropped_packets += 1;
			st->dropped_bytes += len;
			limited = true;
		}
	}
	return m->drops || limited ? XDP_DROP : XDP_PASS;
}

#endif /* FLOODGUARD_SIG_H */
