/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Trips (DESIGN.md, "Trips"), included by floodguard.c after the maps: a
 * source whose counts in the current tick reach its trip level (the count
 * at which the detector's tick-end judgement would find it over its
 * threshold) is reported at once through the fg_trips ring buffer, once
 * per tick, so that the daemon can ban it without waiting for the tick's
 * end. The replay models the same (capture/aggregate.go).
 */
#ifndef FG_TRIP_H
#define FG_TRIP_H

/* tick_counts returns the source's counts in the current epoch, setting
 * the base at its first frame of the epoch (the frame just counted is in
 * the epoch: the base is what came before it). Two CPUs starting the epoch
 * at once set nearly the same base. */
static __always_inline void tick_counts(struct fg_source *s, __u32 epoch, __u64 len,
					__u64 *pkts, __u64 *bytes)
{
	__u64 p = 0, b = 0;
	__u32 c;

	for (c = 0; c < FG_NUM_CLASSES; c++) {
		p += READ_ONCE(s->packets[c]);
		b += READ_ONCE(s->bytes[c]);
	}
	if (READ_ONCE(s->base_epoch) != epoch) {
		s->base_packets = p - 1;
		s->base_bytes = b - len;
		WRITE_ONCE(s->base_epoch, epoch);
	}
	*pkts = p - READ_ONCE(s->base_packets);
	*bytes = b - READ_ONCE(s->base_bytes);
}

static __always_inline bool over_level(__u64 pkts, __u64 bytes, __u64 lp, __u64 lb)
{
	return (lp && pkts >= lp) || (lb && bytes >= lb);
}

/*
 * check_trip runs after a frame of source s (with an entry) was counted and
 * not dropped by a source rule. The common case, under the global level,
 * costs the admission lookup (an inlined array access), the sums and two
 * compares.
 */
static __always_inline void check_trip(struct fg_source *s, const struct fg_pkt *pkt, __u32 class,
				       __u64 len, __u64 ctl, struct fg_stats *st)
{
	struct fg_admission *ad;
	struct fg_trip_level *own;
	struct fg_trip *ev;
	__u64 pkts, bytes, lp, lb;
	__u32 zero = 0, ep, old;

	ad = bpf_map_lookup_elem(&fg_admission, &zero);
	if (!ad || !(ad->trip_packets | ad->trip_bytes))
		return;
	ep = ad->epoch;
	tick_counts(s, ep, len, &pkts, &bytes);
	lp = ad->trip_packets;
	lb = ad->trip_bytes;
	if (!over_level(pkts, bytes, lp, lb))
		return;
	old = READ_ONCE(s->tripped_epoch);
	if (old == ep)
		return;
	/* A source with a level of its own (the detector's threshold for it
	 * is above the global level, or it must never trip) is over the
	 * global level on every frame: read its level once per epoch. */
	if (FG_CTL_FLAGS(ctl) & FG_HAVE_TRIP_LEVELS) {
		if (READ_ONCE(s->level_epoch) != ep) {
			own = bpf_map_lookup_elem(&fg_trip_levels, &pkt->src.a);
			s->level_packets = own ? own->packets : lp;
			s->level_bytes = own ? own->bytes : lb;
			WRITE_ONCE(s->level_epoch, ep);
		}
		if (!over_level(pkts, bytes, s->level_packets, s->level_bytes))
			return;
	}
	if (__sync_val_compare_and_swap(&s->tripped_epoch, old, ep) != old)
		return; /* another CPU tripped it */
	if (st->trip_epoch != ep) {
		st->trip_epoch = ep;
		st->trip_used = 0;
	}
	if (st->trip_used >= ad->trip_cap) {
		st->trips_capped += 1;
		return;
	}
	ev = bpf_ringbuf_reserve(&fg_trips, sizeof(*ev), 0);
	if (!ev) {
		st->trips_capped += 1;
		return;
	}
	__builtin_memcpy(ev->addr.addr, pkt->src.a.addr, sizeof(ev->addr.addr));
	ev->packets = pkts;
	ev->bytes = bytes;
	ev->time_ns = bpf_ktime_get_ns();
	ev->epoch = ep;
	ev->class = class;
	ev->_pad[0] = ev->_pad[1] = ev->_pad[2] = 0;
	bpf_ringbuf_submit(ev, 0);
	st->trip_used += 1;
	st->trips += 1;
}

#endif /* FG_TRIP_H */
