/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-tick features of floodguard_xdp (included by floodguard.c after its
 * maps): traffic by port, by protocol class and IP length, and by
 * destination, for every frame with an IP source, dropped or not. Layouts in
 * floodguard.h; the choices and their costs in DESIGN.md, "Features".
 */
#ifndef FLOODGUARD_FEATURES_H
#define FLOODGUARD_FEATURES_H

#include "parse.h"

/*
 * count_port adds a frame to this CPU's counter idx (kind * FG_NUM_PORTS +
 * port) and marks its block touched.
 */
static __always_inline void count_port(__u32 idx, __u64 len)
{
	__u32 blk = idx / FG_PORT_BLOCK, w = blk / 64;
	__u64 bit = 1ULL << (blk & 63);
	struct fg_port_block *b;
	struct fg_port_count *pc;
	__u64 *t;

	b = bpf_map_lookup_elem(&fg_feat_ports, &blk);
	if (b) {
		pc = &b->c[idx & (FG_PORT_BLOCK - 1)];
		pc->packets += 1;
		pc->bytes += len;
	}
	t = bpf_map_lookup_elem(&fg_feat_touched, &w);
	/* Shared by the CPUs: written only when the bit is clear, about once
	 * per active block and tick. */
	if (t && !(READ_ONCE(*t) & bit))
		__sync_fetch_and_or(t, bit);
}

/* dst_slot_is reports whether slot counts the destination of pkt. */
static __always_inline bool dst_slot_is(__u32 slot, const struct fg_pkt *pkt)
{
	const union fg_key *o = bpf_map_lookup_elem(&fg_feat_dsts, &slot);

	return o && o->d[0] == pkt->dst.d[0] && o->d[1] == pkt->dst.d[1];
}

/* count_dst adds a frame to its destination's slot, if it has one. */
static __always_inline void count_dst(struct fg_feat *f, const struct fg_pkt *pkt)
{
	__u32 x = pkt->dst.w[0] ^ pkt->dst.w[1] ^ pkt->dst.w[2] ^ pkt->dst.w[3];
	__u32 slot = FG_DST_SLOT(x, FG_DST_HASH1);

	if (!dst_slot_is(slot, pkt)) {
		slot = FG_DST_SLOT(x, FG_DST_HASH2);
		if (!dst_slot_is(slot, pkt)) {
			f->dsts_other += 1;
			f->dst_sample = pkt->dst.a;
			return;
		}
	}
	f->dst_packets[slot & (FG_FEAT_DST_SLOTS - 1)] += 1;
}

/* count_features counts a frame of class and len bytes. */
static __always_inline void count_features(const struct fg_pkt *pkt, __u32 class, __u64 len)
{
	__u32 zero = 0, bucket;
	struct fg_feat *f;

	f = bpf_map_lookup_elem(&fg_feat, &zero);
	if (!f)
		return; /* cannot happen: a one-element array */

	bucket = pkt->length >> FG_LEN_BUCKET_SHIFT;
	if (bucket >= FG_NUM_LEN_BUCKETS)
		bucket = FG_NUM_LEN_BUCKETS - 1;
	if (class < FG_NUM_CLASSES)
		f->lengths[class][bucket] += 1;

	if (pkt->l4) {
		__u32 kind = pkt->proto == IPPROTO_TCP ? FG_PORT_TCP_SRC : FG_PORT_UDP_SRC;

		count_port(kind * FG_NUM_PORTS + pkt->sport, len);
		count_port((kind + 1) * FG_NUM_PORTS + pkt->dport, len);
	}
	count_dst(f, pkt);
}

#endif /* FLOODGUARD_FEATURES_H */
