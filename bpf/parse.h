/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The frame parser of floodguard_xdp (included by floodguard.c only): one
 * cursor, one parse_*() per header, a bounds check before every read. The
 * replay decoder (capture/decode*.go) applies the very same rules; see
 * DESIGN.md, "Parsing", and "Signature rules" for the packet fields.
 */
#ifndef FLOODGUARD_PARSE_H
#define FLOODGUARD_PARSE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "floodguard.h"

/* Named bounds of the two header loops; the replay decoder uses the same
 * (capture.MaxVLANTags, capture.MaxIPv6ExtHeaders). */
#define VLAN_MAX_DEPTH 2     /* 802.1Q and 802.1ad (QinQ) tags */
#define IPV6_EXT_MAX_CHAIN 6 /* IPv6 extension headers walked */

#define FG_IP_OFFSET 0x1fff  /* IPv4 fragment offset, host order mask */
#define FG_IP_MF 0x2000      /* IPv4 more fragments, host order */
#define FG_IP6_OFFSET 0xfff8 /* IPv6 fragment offset, host order mask */
#define FG_IP6_MF 0x0001     /* IPv6 more fragments, host order */

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

/* An address, addressable as bytes or words. */
union fg_key {
	struct fg_addr a;
	__u32 w[4];
	__u64 d[2];
};

/*
 * What the parser extracts from a frame: the source, and what a signature
 * rule can see of the packet (detector.PacketMeta). Addresses are in
 * network byte order, IPv4-mapped for IPv4; every other field in host
 * order.
 */
struct fg_pkt {
	union fg_key src;
	union fg_key dst;
	__u16 sport, dport; /* valid when l4 */
	/* IP total length; IPv6: payload length + 40, at most 65535. */
	__u16 length;
	__u16 udp_sport; /* the UDP source port when l4; 0 when not seen */
	/* IP protocol: for IPv6 the header that ends the extension chain (an
	 * extension header's number when the chain could not be walked). */
	__u8 proto;
	__u8 tcp_flags; /* byte 13 of the TCP header, valid when l4 */
	__u8 frag;      /* FG_FRAG_NONE, _FIRST or _LATER */
	/* The transport header was read: a first fragment (or no fragment)
	 * with a whole UDP header, or a whole TCP header with doff >= 5. */
	bool l4;
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
 * the IPv4-mapped source and destination, the total length and the
 * fragment kind, and moves the cursor past the header and its options.
 * Returns the IP protocol and sets *nonfirst for a fragment with a non-zero
 * offset; -1 if malformed.
 */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end,
				       struct fg_pkt *pkt, bool *nonfirst)
{
	struct iphdr *iph = nh->pos;
	__u32 hdrsize;
	__u16 frag;

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
	pkt->dst.d[0] = 0;
	pkt->dst.w[2] = bpf_htonl(0x0000ffff);
	pkt->dst.w[3] = iph->daddr;
	pkt->v4 = true;
	pkt->length = bpf_ntohs(iph->tot_len);
	frag = bpf_ntohs(iph->frag_off);
	*nonfirst = (frag & FG_IP_OFFSET) != 0;
	if (*nonfirst)
		pkt->frag = FG_FRAG_LATER;
	else if (frag & FG_IP_MF)
		pkt->frag = FG_FRAG_FIRST;
	else
		pkt->frag = FG_FRAG_NONE;
	return iph->protocol;
}

/*
 * parse_ip6hdr checks the version, stores source, destination and length
 * (payload length + 40, saturated at 65535) and moves the cursor past the
 * fixed header. Returns the first next-header value; -1 if malformed.
 */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end,
					struct fg_pkt *pkt)
{
	struct ipv6hdr *ip6h = nh->pos;
	__u32 length;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	nh->pos = ip6h + 1;

	pkt->src.w[0] = ip6h->saddr.in6_u.u6_addr32[0];
	pkt->src.w[1] = ip6h->saddr.in6_u.u6_addr32[1];
	pkt->src.w[2] = ip6h->saddr.in6_u.u6_addr32[2];
	pkt->src.w[3] = ip6h->saddr.in6_u.u6_addr32[3];
	pkt->dst.w[0] = ip6h->daddr.in6_u.u6_addr32[0];
	pkt->dst.w[1] = ip6h->daddr.in6_u.u6_addr32[1];
	pkt->dst.w[2] = ip6h->daddr.in6_u.u6_addr32[2];
	pkt->dst.w[3] = ip6h->daddr.in6_u.u6_addr32[3];
	pkt->v4 = false;
	length = (__u32)bpf_ntohs(ip6h->payload_len) + sizeof(*ip6h);
	pkt->length = length > 0xffff ? 0xffff : length;
	pkt->frag = FG_FRAG_NONE;
	return ip6h->nexthdr;
}

/*
 * skip_ip6hdrext walks up to IPV6_EXT_MAX_CHAIN extension headers
 * (hop-by-hop, routing, destination options, fragment, AH). Returns the
 * next-header value that ends the chain (the transport protocol) and sets
 * *nonfirst for a fragment with a non-zero offset, whose next header is the
 * protocol of the fragmented payload; sets pkt->frag from a fragment header
 * it reads. When an extension header is truncated, or the chain is longer
 * than IPV6_EXT_MAX_CHAIN (a seventh header is never read, not even a
 * fragment header), returns that extension header's number: the frame is
 * class other, as in the replay decoder.
 */
static __always_inline int skip_ip6hdrext(struct hdr_cursor *nh, void *data_end,
					  __u8 next_hdr, bool *nonfirst, struct fg_pkt *pkt)
{
#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX_CHAIN; i++) {
		struct ipv6_opt_hdr *hdr = nh->pos;
		struct frag_hdr *fh;
		void *next;

		switch (next_hdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(hdr + 1) > data_end)
				return next_hdr;
			/* hdrlen is in 8-octet units, not counting the first 8. */
			next = (char *)hdr + (hdr->hdrlen + 1) * 8;
			if (next > data_end)
				return next_hdr;
			nh->pos = next;
			next_hdr = hdr->nexthdr;
			break;
		case IPPROTO_AH:
			if ((void *)(hdr + 1) > data_end)
				return next_hdr;
			/* AH: hdrlen is in 4-octet units, minus 2. */
			next = (char *)hdr + (hdr->hdrlen + 2) * 4;
			if (next > data_end)
				return next_hdr;
			nh->pos = next;
			next_hdr = hdr->nexthdr;
			break;
		case IPPROTO_FRAGMENT:
			fh = nh->pos;
			if ((void *)(fh + 1) > data_end)
				return next_hdr;
			nh->pos = fh + 1;
			next_hdr = fh->nexthdr;
			if (fh->frag_off & bpf_htons(FG_IP6_OFFSET)) {
				*nonfirst = true;
				pkt->frag = FG_FRAG_LATER;
				return next_hdr;
			}
			/* Offset 0: a first fragment if more follow; an atomic
			 * fragment (RFC 6946) is no fragment. The last
			 * fragment header read decides. */
			pkt->frag = fh->frag_off & bpf_htons(FG_IP6_MF) ? FG_FRAG_FIRST : FG_FRAG_NONE;
			break;
		default:
			return next_hdr;
		}
	}
	return next_hdr; /* an extension header after IPV6_EXT_MAX_CHAIN: other */
}

/*
 * classify returns the class of a frame whose IP protocol is proto and
 * whose transport header, if the frame is not a non-first fragment, starts
 * at the cursor. A transport header that is truncated is classified by
 * protocol alone (tcp, not syn). Sets the transport fields of pkt when the
 * header was read.
 */
static __always_inline __u32 classify(struct hdr_cursor *nh, void *data_end,
				      __u8 proto, bool nonfirst, struct fg_pkt *pkt)
{
	struct tcphdr *th;
	struct udphdr *uh;

	pkt->proto = proto;
	switch (proto) {
	case IPPROTO_TCP:
		th = nh->pos;
		if (nonfirst || (void *)(th + 1) > data_end || th->doff < 5)
			return FG_CLASS_TCP;
		pkt->l4 = true;
		pkt->sport = bpf_ntohs(th->source);
		pkt->dport = bpf_ntohs(th->dest);
		pkt->tcp_flags = ((__u8 *)th)[13];
		return th->syn && !th->ack ? FG_CLASS_SYN : FG_CLASS_TCP;
	case IPPROTO_UDP:
		uh = nh->pos;
		if (!nonfirst && (void *)(uh + 1) <= data_end) {
			pkt->l4 = true;
			pkt->sport = bpf_ntohs(uh->source);
			pkt->dport = bpf_ntohs(uh->dest);
			pkt->udp_sport = pkt->sport;
		}
		return FG_CLASS_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return FG_CLASS_ICMP;
	default:
		return FG_CLASS_OTHER;
	}
}

/*
 * parse_packet fills pkt (which the caller zeroed) and returns the class of
 * the frame, or -1 when the frame has no readable IP source address.
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
		proto = skip_ip6hdrext(&nh, data_end, proto, &nonfirst, pkt);
	} else {
		return -1;
	}
	return classify(&nh, data_end, proto, nonfirst, pkt);
}

#endif /* FLOODGUARD_PARSE_H */
