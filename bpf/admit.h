/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Admission of new sources (DESIGN.md, "Admission"), included by
 * floodguard.c after the maps. A source without an entry in fg_sources is
 * admitted at once while this CPU's budget of free admissions for the epoch
 * lasts; past it, on probation in its slot of fg_probe (this CPU's region)
 * until it has sent fg_admission.threshold frames; then the frame that
 * reached the threshold inserts its entry, with the frames recorded in the
 * current epoch.
 *
 * Everything here must be modelled exactly by the replay
 * (capture/admission.go): same hash, same slot rule, same records.
 */
#ifndef FG_ADMIT_H
#define FG_ADMIT_H

static __always_inline __u32 probe_slot(const union fg_key *a, __u32 seed)
{
	__u32 h = seed;

	h = (h ^ a->w[0]) * FG_PROBE_MUL;
	h ^= h >> 15;
	h = (h ^ a->w[1]) * FG_PROBE_MUL;
	h ^= h >> 15;
	h = (h ^ a->w[2]) * FG_PROBE_MUL;
	h ^= h >> 15;
	h = (h ^ a->w[3]) * FG_PROBE_MUL;
	h ^= h >> 15;
	return h >> (32 - FG_PROBE_BITS);
}

static __always_inline bool same_addr(const struct fg_addr *a, const union fg_key *b)
{
	const __u32 *w = (const __u32 *)a->addr;

	return w[0] == b->w[0] && w[1] == b->w[1] && w[2] == b->w[2] && w[3] == b->w[3];
}

/* zero_counts zeroes a new entry but for its rule cache (filled already),
 * its counts starting in epoch ep: its counts are its counts in the tick,
 * and it has not tripped yet nor read its own trip level. */
static __always_inline void zero_counts(struct fg_source *fresh, __u32 ep)
{
	__builtin_memset(fresh, 0, __builtin_offsetof(struct fg_source, exact_expires_ns));
	fresh->udp_sport = 0;
	fresh->_pad = 0;
	fresh->base_packets = 0;
	fresh->base_bytes = 0;
	fresh->level_packets = 0;
	fresh->level_bytes = 0;
	fresh->base_epoch = ep;
	fresh->tripped_epoch = ep - 1;
	fresh->level_epoch = ep - 1;
	fresh->_pad2 = 0;
}

/*
 * admit puts a frame of a source without an entry on probation, and
 * reports whether the source is admitted with it. When it is, fresh (only
 * its rule cache filled so far) is zeroed and gets the frames recorded in
 * this epoch, which the caller then counts the current frame on top of.
 */
static __always_inline bool admit(const struct fg_pkt *pkt, __u32 class, __u64 len,
				  int action, struct fg_source *fresh, struct fg_stats *st)
{
	struct fg_admission *ad;
	struct fg_probe *p;
	__u32 zero = 0, idx, i, c;
	__u8 rec;

	ad = bpf_map_lookup_elem(&fg_admission, &zero);
	if (!ad) {
		zero_counts(fresh, 0);
		return true;
	}
	if (ad->threshold <= 1) {
		zero_counts(fresh, ad->epoch);
		return true;
	}
	/* The epoch's free admissions: with fewer new sources than this per
	 * tick (no spoofed flood), every source is admitted at once. */
	if (st->budget_epoch != ad->epoch) {
		st->budget_epoch = ad->epoch;
		st->budget_used = 0;
	}
	if (st->budget_used < ad->budget) {
		st->budget_used += 1;
		st->admitted += 1;
		zero_counts(fresh, ad->epoch);
		return true;
	}
	/* This CPU's region: no other CPU writes it, as with a per-CPU map. */
	idx = bpf_get_smp_processor_id() * FG_PROBE_SLOTS + probe_slot(&pkt->src, ad->seed);
	p = bpf_map_lookup_elem(&fg_probe, &idx);
	if (!p) {
		zero_counts(fresh, ad->epoch);
		return true;
	}
	if (!same_addr(&p->addr, &pkt->src)) {
		__builtin_memcpy(p->addr.addr, pkt->src.a.addr, sizeof(p->addr.addr));
		p->seen = 0;
		p->n = 0;
		p->udp_sport = 0;
		p->epoch = ad->epoch;
	} else if (p->epoch != ad->epoch) {
		p->n = 0;
		p->udp_sport = 0;
		p->epoch = ad->epoch;
	}
	if (p->seen + 1 >= ad->threshold) {
		zero_counts(fresh, ad->epoch);
		for (i = 0; i < FG_PROBE_RECORDS; i++) {
			if (i >= p->n)
				break;
			rec = p->class[i];
			c = rec & ~FG_PROBE_DROPPED;
			if (c < FG_NUM_CLASSES) {
				fresh->packets[c] += 1;
				fresh->bytes[c] += p->len[i];
			}
			if (rec & FG_PROBE_DROPPED) {
				fresh->dropped_packets += 1;
				fresh->dropped_bytes += p->len[i];
			}
		}
		fresh->udp_sport = p->udp_sport;
		st->probation_credited += p->n;
		/* Free the slot: after its entry is evicted, the source starts
		 * its probation again. */
		__builtin_memset(p, 0, sizeof(*p));
		st->admitted += 1;
		return true;
	}
	rec = class | (action == XDP_DROP ? FG_PROBE_DROPPED : 0);
	/* Constant indexes: the verifier cannot bound one loaded from the
	 * slot once the compiler has moved the check away from the access. */
	switch (p->n) {
	case 0:
		p->class[0] = rec;
		p->len[0] = len;
		p->n = 1;
		break;
	case 1:
		p->class[1] = rec;
		p->len[1] = len;
		p->n = 2;
		break;
	case 2:
		p->class[2] = rec;
		p->len[2] = len;
		p->n = 3;
		break;
	}
	if (pkt->udp_sport)
		p->udp_sport = pkt->udp_sport;
	p->seen += 1;
	st->probation_packets += 1;
	st->probation_bytes += len;
	return false;
}

#endif /* FG_ADMIT_H */
