// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * floodguard_xdp counts every IP frame by source address and protocol class
 * and drops frames from sources that a drop rule names. It never drops what
 * it cannot parse: frames without a readable IP source pass and are counted
 * as unparsed.
 *
 * Record layouts and byte order are documented in floodguard.h; the design
 * of the pass path (one per-source lookup, a rule cache tagged with a rules
 * generation) in DESIGN.md.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/errno.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "floodguard.h"

/* Defaults; the loader overrides max_entries before load. */
#define FG_DEFAULT_MAX_SOURCES (1 << 20)
#define FG_DEFAULT_MAX_RULES (1 << 16)

/* Named bounds of the two header loops; the replay decoder uses the same
 * (capture.MaxVLANTags, capture.MaxIPv6ExtHeaders). */
#define VLAN_MAX_DEPTH 2     /* 802.1Q and 802.1ad (QinQ) tags */
#define IPV6_EXT_MAX_CHAIN 6 /* IPv6 extension headers walked */

#define FG_IP_OFFSET 0x1fff  /* IPv4 fragment offset, host order mask */
#define FG_IP6_OFFSET 0xfff8 /* IPv6 fragment offset, host order mask */

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#ifndef IPPROTO_HOPOPTS
#define IPPROTO_HOPOPTS 0
#endif
#ifndef IPPROTO_ROUTING
#define IPPROTO_ROUTING 43
#endif
#ifndef IPPROTO_FRAGMENT
#define IPPROTO_FRAGMENT 44
#endif
#ifndef IPPROTO_DSTOPTS
#define IPPROTO_DSTOPTS 60
#endif

#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, FG_DEFAULT_MAX_SOURCES);
	__type(key, struct fg_addr);
	__type(value, struct fg_source);
} fg_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fg_stats);
} fg_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_DEFAULT_MAX_RULES);
	__type(key, struct fg_addr);
	__type(value, struct fg_exact_rule);
} fg_exact SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FG_DEFAULT_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fg_lpm4_key);
	__type(value, struct fg_prefix_rule);
} fg_prefix4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FG_DEFAULT_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fg_lpm6_key);
	__type(value, struct fg_prefix_rule);
} fg_prefix6 SEC(".maps");

/* Rules generation and FG_HAVE_* flags; see floodguard.h. Written only by
 * user space (8-byte CAS on the memory-mapped .bss). */
__u64 fg_control;

/* Header cursor: the one position pointer every parse_*() advances. */
struct hdr_cursor {
	void *pos;
};

/* 802.1Q/802.1ad tag; not in the UAPI headers. */
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

/* IPv6 fragment header; not in the UAPI headers. */
struct frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset in 8-byte units << 3, then 2 bits, then M */
	__be32 identification;
};

/* The per-source key, addressable as bytes or words. */
union fg_key {
	struct fg_addr a;
	__u32 w[4];
	__u64 d[2];
};

/* What the parser extracts from a frame. */
struct fg_pkt {
	union fg_key src; /* network byte order, IPv4-mapped for IPv4 */
	__u16 udp_sport;  /* host byte order; 0 when not seen */
	bool v4;
};

static __always_inline bool proto_is_vlan(__be16 proto)
{
	/* 0x9100 is the pre-802.1ad QinQ TPID some switches still send. */
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD) ||
	       proto == bpf_htons(0x9100);
}

/* PPPoE session header (RFC 2516) followed by the PPP protocol field. */
struct pppoe_sess {
	__u8 ver_type; /* 0x11: version 1, type 1 */
	__u8 code;     /* 0 for session data */
	__be16 session;
	__be16 length;
	__be16 ppp_proto; /* 0x0021 IPv4, 0x0057 IPv6 */
};

/*
 * parse_ethhdr moves the cursor past the Ethernet header and up to
 * VLAN_MAX_DEPTH VLAN tags and a PPPoE session header. Returns the inner
 * EtherType in network byte order (PPPoE carrying IPv4 or IPv6 returns
 * ETH_P_IP or ETH_P_IPV6), or -1 if the frame is too short. A third tag is
 * returned as its EtherType, which the caller does not recognise as IP.
 */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end)
{
	struct ethhdr *eth = nh->pos;
	struct vlan_hdr *vlh;
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return -1;
	nh->pos = eth + 1;
	proto = eth->h_proto;

#pragma unroll
	for (int depth = 0; depth < VLAN_MAX_DEPTH; depth++) {
		if (!proto_is_vlan(proto))
			break;
		vlh = nh->pos;
		if ((void *)(vlh + 1) > data_end)
			return -1;
		proto = vlh->h_vlan_encapsulated_proto;
		nh->pos = vlh + 1;
	}
	if (proto == bpf_htons(ETH_P_PPP_SES)) {
		/* PPPoE session, as the replay decoder reads it: IP inside
		 * counts like any IP; anything else (LCP, ...) is not IP. One
		 * fixed-size header, no loop; its length field is not trusted
		 * (data_end bounds everything, as for the IP lengths). */
		struct pppoe_sess *ph = nh->pos;

		if ((void *)(ph + 1) > data_end)
			return -1;
		if (ph->ver_type != 0x11 || ph->code != 0)
			return 0;
		nh->pos = ph + 1;
		if (ph->ppp_proto == bpf_htons(0x0021))
			return bpf_htons(ETH_P_IP);
		if (ph->ppp_proto == bpf_htons(0x0057))
			return bpf_htons(ETH_P_IPV6);
		return 0;
	}
	return proto;
}

/*
 * parse_iphdr checks version and IHL (>= 5 and within the frame), stores
 * the IPv4-mapped source and moves the cursor past the header and its
 * options. Returns the IP protocol and sets *nonfirst for a fragment with a
 * non-zero offset; -1 if malformed.
 */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end,
				       struct fg_pkt *pkt, bool *nonfirst)
{
	struct iphdr *iph = nh->pos;
	__u32 hdrsize;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4 || iph->ihl < 5)
		return -1;
	hdrsize = iph->ihl * 4;
	if (nh->pos + hdrsize > data_end)
		return -1;
	nh->pos += hdrsize;

	pkt->src.d[0] = 0;
	pkt->src.w[2] = bpf_htonl(0x0000ffff);
	pkt->src.w[3] = iph->saddr;
	pkt->v4 = true;
	*nonfirst = (iph->frag_off & bpf_htons(FG_IP_OFFSET)) != 0;
	return iph->protocol;
}

/*
 * parse_ip6hdr checks the version, stores the source and moves the cursor
 * past the fixed header. Returns the first next-header value; -1 if
 * malformed.
 */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end,
					struct fg_pkt *pkt)
{
	struct ipv6hdr *ip6h = nh->pos;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	nh->pos = ip6h + 1;

	pkt->src.w[0] = ip6h->saddr.in6_u.u6_addr32[0];
	pkt->src.w[1] = ip6h->saddr.in6_u.u6_addr32[1];
	pkt->src.w[2] = ip6h->saddr.in6_u.u6_addr32[2];
	pkt->src.w[3] = ip6h->saddr.in6_u.u6_addr32[3];
	pkt->v4 = false;
	return ip6h->nexthdr;
}

/*
 * skip_ip6hdrext walks up to IPV6_EXT_MAX_CHAIN extension headers
 * (hop-by-hop, routing, destination options, fragment, AH). Returns the
 * next-header value that ends the chain (the transport protocol) and sets
 * *nonfirst for a fragment with a non-zero offset, whose next header is the
 * protocol of the fragmented payload. Returns -1 when an extension header is
 * truncated or the chain is longer than IPV6_EXT_MAX_CHAIN.
 */
static __always_inline int skip_ip6hdrext(struct hdr_cursor *nh, void *data_end,
					  __u8 next_hdr, bool *nonfirst)
{
#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX_CHAIN; i++) {
		struct ipv6_opt_hdr *hdr = nh->pos;
		struct frag_hdr *fh;

		switch (next_hdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(hdr + 1) > data_end)
				return -1;
			/* hdrlen is in 8-octet units, not counting the first 8. */
			nh->pos = (char *)hdr + (hdr->hdrlen + 1) * 8;
			if (nh->pos > data_end)
				return -1;
			next_hdr = hdr->nexthdr;
			break;
		case IPPROTO_AH:
			if ((void *)(hdr + 1) > data_end)
				return -1;
			/* AH: hdrlen is in 4-octet units, minus 2. */
			nh->pos = (char *)hdr + (hdr->hdrlen + 2) * 4;
			if (nh->pos > data_end)
				return -1;
			next_hdr = hdr->nexthdr;
			break;
		case IPPROTO_FRAGMENT:
			fh = nh->pos;
			if ((void *)(fh + 1) > data_end)
				return -1;
			nh->pos = fh + 1;
			next_hdr = fh->nexthdr;
			if (fh->frag_off & bpf_htons(FG_IP6_OFFSET)) {
				*nonfirst = true;
				return next_hdr;
			}
			break;
		default:
			return next_hdr;
		}
	}
	switch (next_hdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_FRAGMENT:
	case IPPROTO_AH:
		return -1; /* chain longer than IPV6_EXT_MAX_CHAIN */
	}
	return next_hdr;
}

/*
 * classify returns the class of a frame whose IP protocol is proto (-1: the
 * IPv6 extension chain could not be walked) and whose transport header, if
 * the frame is not a non-first fragment, starts at the cursor. A transport
 * header that is truncated is classified by protocol alone (tcp, not syn).
 * Sets pkt->udp_sport (host order) for UDP.
 */
static __always_inline __u32 classify(struct hdr_cursor *nh, void *data_end,
				      int proto, bool nonfirst, struct fg_pkt *pkt)
{
	struct tcphdr *th;
	struct udphdr *uh;

	switch (proto) {
	case IPPROTO_TCP:
		th = nh->pos;
		if (nonfirst || (void *)(th + 1) > data_end || th->doff < 5)
			return FG_CLASS_TCP;
		return th->syn && !th->ack ? FG_CLASS_SYN : FG_CLASS_TCP;
	case IPPROTO_UDP:
		uh = nh->pos;
		if (!nonfirst && (void *)(uh + 1) <= data_end)
			pkt->udp_sport = bpf_ntohs(uh->source);
		return FG_CLASS_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return FG_CLASS_ICMP;
	default:
		return FG_CLASS_OTHER;
	}
}

/*
 * parse_packet fills pkt and returns the class of the frame, or -1 when the
 * frame has no readable IP source address.
 */
static __always_inline int parse_packet(void *data, void *data_end, struct fg_pkt *pkt)
{
	struct hdr_cursor nh = { .pos = data };
	bool nonfirst = false;
	int eth_type, proto;

	eth_type = parse_ethhdr(&nh, data_end);
	if (eth_type == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, pkt, &nonfirst);
		if (proto < 0)
			return -1;
	} else if (eth_type == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, pkt);
		if (proto < 0)
			return -1;
		/* The source is known from here on: a chain we cannot walk
		 * still counts (class other) and is still subject to rules. */
		proto = skip_ip6hdrext(&nh, data_end, proto, &nonfirst);
	} else {
		return -1;
	}
	return classify(&nh, data_end, proto, nonfirst, pkt);
}

/*
 * load_rules reads the rules that apply to the source into the cache fields
 * of s, tagged with the generation of ctl. The caller has read ctl before
 * calling, so a rule written before a generation bump is always seen by a
 * cache tagged with that generation.
 */
static __always_inline void load_rules(struct fg_source *s, const struct fg_pkt *pkt, __u64 ctl)
{
	__u32 flags = FG_CTL_FLAGS(ctl);
	struct fg_exact_rule *er;
	struct fg_prefix_rule *pr;
	__u64 exact = 0, prefix = 0;

	if (flags & FG_HAVE_EXACT) {
		er = bpf_map_lookup_elem(&fg_exact, &pkt->src.a);
		if (er)
			exact = READ_ONCE(er->expires_ns);
	}
	if (pkt->v4 && (flags & FG_HAVE_PREFIX4)) {
		struct fg_lpm4_key k4 = { .prefixlen = 32 };

		__builtin_memcpy(k4.addr, &pkt->src.w[3], sizeof(k4.addr));
		pr = bpf_map_lookup_elem(&fg_prefix4, &k4);
		if (pr)
			prefix = READ_ONCE(pr->expires_ns);
	} else if (!pkt->v4 && (flags & FG_HAVE_PREFIX6)) {
		struct fg_lpm6_key k6 = { .prefixlen = 128 };

		__builtin_memcpy(k6.addr, pkt->src.a.addr, sizeof(k6.addr));
		pr = bpf_map_lookup_elem(&fg_prefix6, &k6);
		if (pr)
			prefix = READ_ONCE(pr->expires_ns);
	}
	s->exact_expires_ns = exact;
	s->prefix_expires_ns = prefix;
	s->rules_gen = FG_CTL_GEN(ctl);
}

/* count_prefix_hit adds a dropped frame to the prefix rule covering pkt. */
static __always_inline void count_prefix_hit(const struct fg_pkt *pkt, __u64 len)
{
	struct fg_prefix_rule *pr;

	if (pkt->v4) {
		struct fg_lpm4_key k4 = { .prefixlen = 32 };

		__builtin_memcpy(k4.addr, &pkt->src.w[3], sizeof(k4.addr));
		pr = bpf_map_lookup_elem(&fg_prefix4, &k4);
	} else {
		struct fg_lpm6_key k6 = { .prefixlen = 128 };

		__builtin_memcpy(k6.addr, pkt->src.a.addr, sizeof(k6.addr));
		pr = bpf_map_lookup_elem(&fg_prefix6, &k6);
	}
	if (pr) {
		__sync_fetch_and_add(&pr->packets, 1);
		__sync_fetch_and_add(&pr->bytes, len);
	}
}

/* verdict decides from a source's (fresh) rule cache. */
static __always_inline int verdict(const struct fg_source *s, const struct fg_pkt *pkt,
				   __u64 now, __u64 len)
{
	if (now < s->exact_expires_ns)
		return XDP_DROP;
	if (now < s->prefix_expires_ns) {
		count_prefix_hit(pkt, len);
		return XDP_DROP;
	}
	return XDP_PASS;
}

static __always_inline void count_source(struct fg_source *s, const struct fg_pkt *pkt,
					 __u32 class, __u64 len, __u64 now, int action)
{
	s->packets[class] += 1;
	s->bytes[class] += len;
	if (action == XDP_DROP) {
		s->dropped_packets += 1;
		s->dropped_bytes += len;
	}
	s->last_seen_ns = now;
	if (pkt->udp_sport)
		s->udp_sport = pkt->udp_sport;
}

/*
 * track_source counts the frame against its source, inserting the source if
 * it is new, and returns the verdict. The pass path for a known source with
 * a current rule cache is one lookup in fg_sources.
 */
static __always_inline int track_source(struct fg_stats *st, const struct fg_pkt *pkt,
					__u32 class, __u64 len)
{
	/* CLOCK_MONOTONIC at tick resolution: half the cost of the pass path
	 * with bpf_ktime_get_ns() on kvm-clock (DESIGN.md). It never runs
	 * ahead of CLOCK_MONOTONIC, so a rule never expires early. */
	__u64 now = bpf_ktime_get_coarse_ns();
	__u64 ctl = READ_ONCE(fg_control);
	struct fg_source *s;
	struct fg_source fresh;
	int action;
	long err;

	s = bpf_map_lookup_elem(&fg_sources, &pkt->src.a);
	if (s) {
		if (s->rules_gen != FG_CTL_GEN(ctl))
			load_rules(s, pkt, ctl);
		action = verdict(s, pkt, now, len);
		count_source(s, pkt, class, len, now, action);
		return action;
	}

	__builtin_memset(&fresh, 0, sizeof(fresh));
	load_rules(&fresh, pkt, ctl);
	action = verdict(&fresh, pkt, now, len);
	count_source(&fresh, pkt, class, len, now, action);
	err = bpf_map_update_elem(&fg_sources, &pkt->src.a, &fresh, BPF_NOEXIST);
	if (err == -EEXIST) {
		/* Another CPU inserted the source since our lookup; this CPU's
		 * copy in its entry is still zero. */
		s = bpf_map_lookup_elem(&fg_sources, &pkt->src.a);
		if (s) {
			*s = fresh;
			return action;
		}
	}
	if (err)
		st->source_insert_failures += 1;
	return action;
}

SEC("xdp")
int floodguard_xdp(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	__u64 len = data_end - data;
	struct fg_pkt pkt = {};
	struct fg_stats *st;
	__u32 zero = 0;
	int action = XDP_PASS;
	int class;

	st = bpf_map_lookup_elem(&fg_stats, &zero);
	if (!st)
		goto out; /* cannot happen: a one-element array */

	class = parse_packet(data, data_end, &pkt);
	if (class < 0 || class >= FG_NUM_CLASSES) {
		st->unparsed_packets += 1;
		st->unparsed_bytes += len;
		goto out;
	}

	action = track_source(st, &pkt, class, len);

	st->packets[class] += 1;
	st->bytes[class] += len;
	if (action == XDP_DROP) {
		st->dropped_packets += 1;
		st->dropped_bytes += len;
		st->dropped_class_packets[class] += 1;
		st->dropped_class_bytes[class] += len;
	}
out:
	return action;
}
