// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * floodguard_xdp counts every IP frame by source address and protocol class
 * (and, for the detector's signature logic, by port, length and
 * destination), drops frames from sources that a drop rule names, and drops
 * or rate-limits frames that a signature rule matches. It never drops what
 * it cannot parse: frames without a readable IP source pass and are counted
 * as unparsed.
 *
 * Record layouts and byte order are documented in floodguard.h; the parser
 * is parse.h, the features features.h, the signature rules sig.h. The
 * design of the pass path (one per-source lookup, a rule cache tagged with
 * a rules generation) and of the signature rules is in DESIGN.md.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>

#include "floodguard.h"

/* Defaults; the loader overrides max_entries before load. */
#define FG_DEFAULT_MAX_SOURCES (1 << 20)
#define FG_DEFAULT_MAX_RULES (1 << 16)

#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The per-source entries: the address's slot in fg_source_slots, and the
 * free slots (struct fg_slot in floodguard.h). All three have
 * Options.MaxSources entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_DEFAULT_MAX_SOURCES);
	__type(key, struct fg_addr);
	__type(value, __u32);
} fg_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FG_DEFAULT_MAX_SOURCES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fg_slot);
} fg_source_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, FG_DEFAULT_MAX_SOURCES);
	__type(value, __u32);
} fg_free_slots SEC(".maps");

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

/* Admission: sources on probation, per CPU, and the threshold, epoch and
 * hash seed user space sets. Layouts in floodguard.h. */
/* One region of FG_PROBE_SLOTS per possible CPU (max_entries set at load):
 * a plain array rather than a per-CPU one so that user space can map it and
 * read the closed epoch's records every tick (DESIGN.md, "Admission"). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FG_PROBE_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fg_probe);
} fg_probe SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fg_admission);
} fg_admission SEC(".maps");

/* Trips: sources' own trip levels, and the ring buffer trips go to.
 * Layouts in floodguard.h. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_DEFAULT_MAX_RULES);
	__type(key, struct fg_addr);
	__type(value, struct fg_trip_level);
} fg_trip_levels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FG_TRIPS_BYTES);
} fg_trips SEC(".maps");

/* Rules generation and FG_HAVE_* flags; see floodguard.h. Written only by
 * user space (8-byte CAS on the memory-mapped .bss). */
__u64 fg_control;

/* Signature rules: the rules, an index by port, their counters, and the
 * sources they never drop. Layouts in floodguard.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FG_SIG_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fg_sig_rule);
} fg_sig_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FG_NUM_PORT_KINDS * FG_NUM_PORTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} fg_sig_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FG_SIG_SLOTS);
	__type(key, __u32);
	__type(value, struct fg_sig_stats);
} fg_sig_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fg_sig_matched);
} fg_sig_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_MAX_EXEMPT);
	__type(key, struct fg_addr);
	__type(value, __u8);
} fg_exempt SEC(".maps");

/* Features: per-CPU port counters and the blocks touched (summed for user
 * space by sumports.c), per-CPU length buckets and destination counts, the
 * destinations counted. Layouts in floodguard.h. */
#include "featports.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FG_PORT_TOUCHED_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} fg_feat_touched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fg_feat);
} fg_feat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FG_FEAT_DST_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fg_addr);
} fg_feat_dsts SEC(".maps");

#include "parse.h"
#include "features.h"
#include "sig.h"
#include "admit.h"
#include "trip.h"

/*
 * src_is4 reports whether the source rules of pkt are IPv4 ones: an IPv4
 * source, or an IPv6 source that is IPv4-mapped (::ffff:a.b.c.d). The
 * parser keys both the same way, so they share one fg_sources entry and its
 * rule cache; and the replay (detector.Addr.Netip unmaps) treats a mapped
 * source as IPv4. Looking a mapped source up in fg_prefix6 would miss the
 * IPv4 prefix rules (the IPv6 trie never holds a mapped prefix: AddRule
 * moves them to fg_prefix4) and cache that miss for the IPv4 source too.
 */
static __always_inline bool src_is4(const struct fg_pkt *pkt)
{
	return pkt->v4 || (pkt->src.d[0] == 0 && pkt->src.w[2] == bpf_htonl(0x0000ffff));
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
	bool is4 = src_is4(pkt);

	if (flags & FG_HAVE_EXACT) {
		er = bpf_map_lookup_elem(&fg_exact, &pkt->src.a);
		if (er)
			exact = READ_ONCE(er->expires_ns);
	}
	if (is4 && (flags & FG_HAVE_PREFIX4)) {
		struct fg_lpm4_key k4 = { .prefixlen = 32 };

		__builtin_memcpy(k4.addr, &pkt->src.w[3], sizeof(k4.addr));
		pr = bpf_map_lookup_elem(&fg_prefix4, &k4);
		if (pr)
			prefix = READ_ONCE(pr->expires_ns);
	} else if (!is4 && (flags & FG_HAVE_PREFIX6)) {
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

	if (src_is4(pkt)) {
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

/* banned reports whether a source rule (exact or prefix) drops the
 * source's frames: such a source never trips, it is dealt with. */
static __always_inline bool banned(const struct fg_source *s, __u64 now)
{
	return now < s->exact_expires_ns || now < s->prefix_expires_ns;
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

/*
 * decide returns the verdict for a frame from a source whose rule cache s
 * is fresh: source rules first (a frame they drop is not checked against
 * signature rules, whose counters do not see it), then signature rules if
 * the control word says any exist.
 */
static __always_inline int decide(const struct fg_source *s, const struct fg_pkt *pkt,
				  __u64 ctl, __u64 now, __u64 len)
{
	__u32 flags = FG_CTL_FLAGS(ctl);
	int action = verdict(s, pkt, now, len);

	if (action == XDP_PASS && (flags & FG_SIGS_ANY))
		action = sig_verdict(pkt, flags, now, len);
	return action;
}

/*
 * count_source counts a frame in the shared entry s. The counters take
 * atomic adds: a source whose flows RSS spreads over several CPUs updates
 * the same entry from all of them. The last-seen time and the UDP port
 * are plain stores, made only when they change (a coarse clock moves every
 * few milliseconds), so a flood from one source does not write the line
 * for them on every frame.
 */
static __always_inline void count_source(struct fg_source *s, const struct fg_pkt *pkt,
					 __u32 class, __u64 len, __u64 now, int action)
{
	__sync_fetch_and_add(&s->packets[class], 1);
	__sync_fetch_and_add(&s->bytes[class], len);
	if (action == XDP_DROP) {
		__sync_fetch_and_add(&s->dropped_packets, 1);
		__sync_fetch_and_add(&s->dropped_bytes, len);
	}
	if (READ_ONCE(s->last_seen_ns) != now)
		WRITE_ONCE(s->last_seen_ns, now);
	if (pkt->udp_sport && READ_ONCE(s->udp_sport) != pkt->udp_sport)
		WRITE_ONCE(s->udp_sport, pkt->udp_sport);
}

/* merge_fresh adds the counts of fresh (a new entry another CPU beat us
 * to inserting) to the entry s. */
static __always_inline void merge_fresh(struct fg_source *s, const struct fg_source *fresh)
{
	__u32 c;

	for (c = 0; c < FG_NUM_CLASSES; c++) {
		if (fresh->packets[c]) {
			__sync_fetch_and_add(&s->packets[c], fresh->packets[c]);
			__sync_fetch_and_add(&s->bytes[c], fresh->bytes[c]);
		}
	}
	if (fresh->dropped_packets) {
		__sync_fetch_and_add(&s->dropped_packets, fresh->dropped_packets);
		__sync_fetch_and_add(&s->dropped_bytes, fresh->dropped_bytes);
	}
	WRITE_ONCE(s->last_seen_ns, fresh->last_seen_ns);
	if (fresh->udp_sport)
		WRITE_ONCE(s->udp_sport, fresh->udp_sport);
}

/* lookup_source returns the entry of the source, NULL if it has none. */
static __always_inline struct fg_source *lookup_source(const struct fg_pkt *pkt)
{
	__u32 *slot = bpf_map_lookup_elem(&fg_sources, &pkt->src.a);

	if (!slot)
		return NULL;
	/* A struct fg_slot begins with its struct fg_source. */
	return bpf_map_lookup_elem(&fg_source_slots, slot);
}

/* take_slot takes a free slot: one freed earlier, else the next never
 * used one. */
static __always_inline struct fg_slot *take_slot(__u32 *idx)
{
	struct fg_admission *ad;
	__u32 zero = 0;

	if (bpf_map_pop_elem(&fg_free_slots, idx) == 0)
		return bpf_map_lookup_elem(&fg_source_slots, idx);
	ad = bpf_map_lookup_elem(&fg_admission, &zero);
	/* Checked before the add, so that a full table does not move
	 * slots_next on with every new source (CPUs racing past the check
	 * overshoot by one each, read as full). */
	if (!ad || READ_ONCE(ad->slots_next) >= READ_ONCE(ad->slot_count))
		return NULL;
	*idx = __sync_fetch_and_add(&ad->slots_next, 1);
	if (*idx >= READ_ONCE(ad->slot_count))
		return NULL;
	return bpf_map_lookup_elem(&fg_source_slots, idx);
}

/*
 * insert_source gives an admitted source (its entry so far in fresh) a slot
 * and its fg_sources entry, and returns the entry; NULL when the table is
 * full or another CPU inserted the source first (then fresh's counts went
 * to that CPU's entry).
 */
static __always_inline struct fg_source *insert_source(struct fg_stats *st, const struct fg_pkt *pkt,
							const struct fg_source *fresh)
{
	struct fg_source *s;
	struct fg_slot *slot;
	__u32 idx;
	long err;

	slot = take_slot(&idx);
	if (!slot) {
		st->source_insert_failures += 1;
		return NULL;
	}
	/* Nobody else sees the slot before the hash entry exists, nor reads
	 * it (user space) before live is set; a never used slot was never
	 * live but for a corrupt table (slots.go clears free ones below
	 * slots_next only). */
	WRITE_ONCE(slot->live, 0);
	slot->src = *fresh;
	__builtin_memcpy(slot->addr.addr, pkt->src.a.addr, sizeof(slot->addr.addr));
	err = bpf_map_update_elem(&fg_sources, &pkt->src.a, &idx, BPF_NOEXIST);
	if (!err) {
		WRITE_ONCE(slot->live, 1);
		return &slot->src;
	}
	/* Unused: give it back as user space would, zero. */
	__builtin_memset(slot, 0, sizeof(*slot));
	bpf_map_push_elem(&fg_free_slots, &idx, 0);
	if (err == -EEXIST) {
		/* Another CPU inserted the source since our lookup. */
		s = lookup_source(pkt);
		if (s) {
			merge_fresh(s, fresh);
			return NULL;
		}
	}
	st->source_insert_failures += 1;
	return NULL;
}

/*
 * track_source counts the frame against its source, admitting the source
 * if it is new and has sent enough (admit.h), and returns the verdict. The
 * pass path for a known source with a current rule cache is one lookup in
 * fg_sources and one (inlined) array access.
 */
static __always_inline int track_source(struct fg_stats *st, const struct fg_pkt *pkt,
					__u32 class, __u64 len, __u64 ctl, __u64 now)
{
	struct fg_source *s;
	struct fg_source fresh;
	int action;

	s = lookup_source(pkt);
	if (s) {
		if (READ_ONCE(s->rules_gen) != FG_CTL_GEN(ctl))
			load_rules(s, pkt, ctl);
		action = decide(s, pkt, ctl, now, len);
		count_source(s, pkt, class, len, now, action);
		if (!banned(s, now))
			check_trip(s, pkt, class, len, ctl, st);
		return action;
	}

	/* Only the rule cache now: a source on probation (a spoofed flood's)
	 * never needs the rest, which admit() zeroes when it admits. */
	load_rules(&fresh, pkt, ctl);
	action = decide(&fresh, pkt, ctl, now, len);
	if (!admit(pkt, class, len, action, &fresh, st))
		return action;
	fresh.packets[class] += 1;
	fresh.bytes[class] += len;
	if (action == XDP_DROP) {
		fresh.dropped_packets += 1;
		fresh.dropped_bytes += len;
	}
	fresh.last_seen_ns = now;
	if (pkt->udp_sport)
		fresh.udp_sport = pkt->udp_sport;
	/* The admitting frame is checked too, as the replay checks every
	 * frame of an admitted source. */
	s = insert_source(st, pkt, &fresh);
	if (s && !banned(s, now))
		check_trip(s, pkt, class, len, ctl, st);
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
	__u64 now, ctl;
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

	/* CLOCK_MONOTONIC at tick resolution: half the cost of the pass path
	 * with bpf_ktime_get_ns() on kvm-clock (DESIGN.md). It never runs
	 * ahead of CLOCK_MONOTONIC, so a rule never expires early. */
	now = bpf_ktime_get_coarse_ns();
	ctl = READ_ONCE(fg_control);
	count_features(&pkt, class, len);
	action = track_source(st, &pkt, class, len, ctl, now);

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
