/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Records shared by the XDP program (floodguard.c) and its Go loader
 * (abi.go). Every layout here is mirrored field for field by a Go struct;
 * TestABIMatchesBTF compares the two through the BTF of the compiled object,
 * and the loader checks key and value sizes when it opens a map. Change both
 * sides together.
 *
 * Byte order: addresses and prefixes are stored as on the wire (network
 * byte order). Every other integer (counters, times, ports, prefix lengths)
 * is in host byte order. Times are nanoseconds of the kernel's
 * CLOCK_MONOTONIC, not wall-clock time. The program reads that clock at
 * tick resolution (bpf_ktime_get_coarse_ns, CLOCK_MONOTONIC_COARSE, at most
 * one tick behind); user space writes expiries from CLOCK_MONOTONIC.
 */
#ifndef FLOODGUARD_H
#define FLOODGUARD_H

#include <linux/types.h>

/* Protocol classes. Keep equal to detector.Class in detector/tick.go. */
#define FG_CLASS_SYN 0   /* TCP with SYN set and ACK clear */
#define FG_CLASS_TCP 1   /* other TCP, and non-first TCP fragments */
#define FG_CLASS_UDP 2   /* UDP, and non-first UDP fragments */
#define FG_CLASS_ICMP 3  /* ICMP (1) and ICMPv6 (58) */
#define FG_CLASS_OTHER 4 /* any other IP payload */
#define FG_NUM_CLASSES 5

/*
 * struct fg_addr is the key of the per-source map and of the exact-rule
 * map: a 16-byte IPv6 address in network byte order. IPv4 sources are
 * stored IPv4-mapped, ::ffff:a.b.c.d (bytes 10 and 11 are 0xff, the IPv4
 * address is in bytes 12..15), exactly like detector.Addr.
 */
struct fg_addr {
	__u8 addr[16];
};

/*
 * struct fg_source is the per-source entry (in its struct fg_slot, below:
 * one copy per source shared by all CPUs, whatever the number of CPUs). Counters are cumulative since the entry was created and
 * are added to with atomic adds; user space computes per-tick deltas and
 * deletes idle entries. A source gets an entry only once admitted (struct
 * fg_probe below); before that its frames count only in fg_stats.
 */
struct fg_source {
	/* Frames and frame bytes (data_end - data) per class, dropped or not. */
	__u64 packets[FG_NUM_CLASSES];
	__u64 bytes[FG_NUM_CLASSES];
	/* The part of the above that a drop rule discarded. */
	__u64 dropped_packets;
	__u64 dropped_bytes;
	/* CLOCK_MONOTONIC ns (coarse) of the last frame counted. */
	__u64 last_seen_ns;
	/*
	 * Rule cache, valid while rules_gen equals the generation in
	 * fg_control: expiry of the exact rule for this source and of the
	 * longest prefix rule that covers it (0 when there is none). The
	 * program refreshes both from the rule maps when the generation moved;
	 * two CPUs refreshing at once write the same values.
	 */
	__u64 exact_expires_ns;
	__u64 prefix_expires_ns;
	__u32 rules_gen;
	/* Last UDP source port seen, host byte order (0: none). */
	__u16 udp_sport;
	__u16 _pad;
	/*
	 * Trips (DESIGN.md, "Trips"): the counts before the source's first
	 * frame of the admission epoch base_epoch, so that packets and bytes
	 * minus them are its counts in the current tick; the epoch it last
	 * tripped in; and its own trip level (fg_trip_levels, or the global
	 * one), read once per epoch, level_epoch.
	 */
	__u64 base_packets;
	__u64 base_bytes;
	__u64 level_packets;
	__u64 level_bytes;
	__u32 base_epoch;
	__u32 tripped_epoch;
	__u32 level_epoch;
	__u32 _pad2;
};

/*
 * struct fg_slot is a value of fg_source_slots (BPF_MAP_TYPE_ARRAY,
 * BPF_F_MMAPABLE): the per-source entry and its address. fg_sources maps a
 * source's address to its slot (a __u32), so user space reads every entry
 * with a scan of the mapped array instead of batch lookups of the hash
 * (DESIGN.md, "Slots"). live is set once the hash entry exists and cleared
 * by user space when it deletes it; free slots are zero. A slot is taken
 * from fg_free_slots (a BPF_MAP_TYPE_STACK user space pushes freed slots
 * to, a tick after their delete) or, when that is empty, is the next never
 * used one (fg_admission.slots_next, below slot_count).
 */
struct fg_slot {
	struct fg_source src;
	struct fg_addr addr;
	__u32 live;
	__u32 _pad;
};

/*
 * Admission (DESIGN.md, "Admission"): each CPU admits the first
 * fg_admission.budget new sources of a tick epoch at their first frame, as
 * every source was before admission existed. Past that budget (a spoofed
 * flood), a source that is not in fg_sources is on probation in its CPU's
 * table of FG_PROBE_SLOTS slots (its region of fg_probe, an mmapable
 * BPF_MAP_TYPE_ARRAY), one slot per hash of its address, where its frames
 * are counted until it has sent fg_admission.threshold frames; the frame
 * that reaches the threshold inserts its entry, carrying the frames the
 * slot recorded in the same epoch. A slot taken by another source restarts
 * the count. Spoofed sources that send a frame or two never get an entry;
 * their frames are counted in fg_stats (exact) and as probation_packets,
 * and user space reads the closed epoch's records to count them in their
 * prefixes.
 */
#define FG_PROBE_BITS 14
#define FG_PROBE_SLOTS (1 << FG_PROBE_BITS)
#define FG_ADMIT_MAX 4 /* the highest threshold */
#define FG_PROBE_RECORDS (FG_ADMIT_MAX - 1)
#define FG_PROBE_DROPPED 0x80 /* in class[]: the frame was dropped */

struct fg_probe {
	struct fg_addr addr;
	/* fg_admission.epoch when the records were taken. */
	__u32 epoch;
	/* Frames seen on probation since the slot was (re)taken. */
	__u8 seen;
	/* Frames recorded in epoch: class | FG_PROBE_DROPPED, and length. */
	__u8 n;
	__u8 class[FG_PROBE_RECORDS];
	__u8 _pad;
	/* Last UDP source port among the records (0: none). */
	__u16 udp_sport;
	__u32 len[FG_PROBE_RECORDS];
};

/*
 * struct fg_admission is the single value of fg_admission
 * (BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE), written by user space through its
 * memory mapping. threshold 0 or 1 admits every source at its first frame,
 * whatever the budget.
 * The epoch moves at every tick, so records of a frame counted in an
 * earlier tick are not added to a later one. The seed keys the slot hash
 * (FG_PROBE_SLOT), so that a sender cannot choose addresses that evict a
 * given source's slot.
 */
struct fg_admission {
	__u32 threshold;
	__u32 epoch;
	__u32 seed;
	/* Free admissions per CPU and epoch. */
	__u32 budget;
	/* Trips: the level of every source without one of its own in
	 * fg_trip_levels (packets and bytes in a tick; 0: never by that
	 * measure; both 0: trips off), and the most trips per CPU and epoch. */
	__u64 trip_packets;
	__u64 trip_bytes;
	__u32 trip_cap;
	/* Slots (struct fg_slot): how many there are (0 while user space
	 * takes stock of them at load: no admission then), and the next never
	 * used one, taken with an atomic add. */
	__u32 slot_count;
	__u32 slots_next;
	__u32 _pad;
};

/* The slot hash: words of the address as loaded on this little-endian
 * machine, each mixed in with a multiply; probe.go has the Go copy. */
#define FG_PROBE_MUL 0x9e3779b1U

/*
 * struct fg_stats is the single value (key 0) of fg_stats, a
 * BPF_MAP_TYPE_PERCPU_ARRAY. Its counts stay exact whatever happens to the
 * per-source map.
 */
struct fg_stats {
	/* Every frame with a readable IP source address, by class. */
	__u64 packets[FG_NUM_CLASSES];
	__u64 bytes[FG_NUM_CLASSES];
	__u64 dropped_packets;
	__u64 dropped_bytes;
	/* Frames passed without a readable IP source (non-IP, a third VLAN
	 * tag, PPPoE not carrying IPv4/IPv6, truncated, bad IHL or version).
	 * They are never dropped. The replay decoder counts the same frames
	 * as undecodable (DESIGN.md, Parsing). */
	__u64 unparsed_packets;
	__u64 unparsed_bytes;
	/* Frames whose source could not be inserted in fg_sources (full):
	 * the per-source view is partial while this grows. */
	__u64 source_insert_failures;
	/* The part of packets and bytes that a drop rule discarded, by class:
	 * they sum to dropped_packets and dropped_bytes. Appended last so
	 * that the fields above keep their offsets. */
	__u64 dropped_class_packets[FG_NUM_CLASSES];
	__u64 dropped_class_bytes[FG_NUM_CLASSES];
	/* Frames of sources on probation (struct fg_probe), not counted under
	 * any source when they arrived; some are added to their source's new
	 * entry when it is admitted in the same epoch. */
	__u64 probation_packets;
	__u64 probation_bytes;
	/* Sources admitted (entries inserted), and the probation frames
	 * added to their new entries (so probation_packets -
	 * probation_credited are the frames no entry counts). */
	__u64 admitted;
	__u64 probation_credited;
	/* Not counters: this CPU's free admissions (admit.h) used in the
	 * admission epoch budget_epoch. */
	__u32 budget_epoch;
	__u32 budget_used;
	/* Trips sent to fg_trips, and those over fg_admission.trip_cap (or
	 * refused by a full ring buffer), not sent. */
	__u64 trips;
	__u64 trips_capped;
	/* Not counters: this CPU's trips in the epoch trip_epoch. */
	__u32 trip_epoch;
	__u32 trip_used;
};

/*
 * struct fg_trip_level is the value of fg_trip_levels (BPF_MAP_TYPE_HASH
 * keyed by struct fg_addr, written by user space): a source's own trip
 * level, where the detector's threshold for it is not the global one.
 * Zero for both: never.
 */
struct fg_trip_level {
	__u64 packets;
	__u64 bytes;
};

/* struct fg_trip is one record of the fg_trips ring buffer: a source whose
 * counts in the current tick reached its trip level. */
struct fg_trip {
	struct fg_addr addr;
	__u64 packets; /* in the tick so far */
	__u64 bytes;
	__u64 time_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u32 epoch;
	__u8 class; /* of the frame that reached the level */
	__u8 _pad[3];
};
#define FG_TRIPS_BYTES (256 * 1024) /* ring buffer size */

/*
 * struct fg_exact_rule is the value of fg_exact (BPF_MAP_TYPE_HASH keyed by
 * struct fg_addr). The rule drops while now < expires_ns. Its hits are the
 * per-source dropped counters of the address (see DESIGN.md), so the drop
 * path for an exactly banned source needs no lookup beyond the per-source
 * entry.
 */
struct fg_exact_rule {
	__u64 expires_ns;
};

/*
 * struct fg_prefix_rule is the value of the two LPM tries (fg_prefix4,
 * fg_prefix6). The rule drops while now < expires_ns; packets and bytes
 * count what it dropped (atomic adds, shared by all CPUs). The longest
 * matching prefix decides, even if it has expired.
 */
struct fg_prefix_rule {
	__u64 expires_ns;
	__u64 packets;
	__u64 bytes;
};

/* Keys of the LPM tries: prefixlen in host byte order (bits, 0..32 or
 * 0..128), addr in network byte order with bits past prefixlen zero. */
struct fg_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct fg_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/*
 * The global variable fg_control (in .bss, a one-element array map that user
 * space memory-maps) packs the rules generation (low 32 bits, never 0 once
 * user space has written it) and FG_HAVE_* flags (high 32 bits). User space
 * writes it with one 8-byte compare-and-swap after every rule change, the
 * program reads it with one 8-byte load, so the two halves are always seen
 * together.
 */
#define FG_CTL_GEN(ctl) ((__u32)(ctl))
#define FG_CTL_FLAGS(ctl) ((__u32)((ctl) >> 32))
#define FG_HAVE_EXACT (1U << 0)   /* fg_exact may be non-empty */
#define FG_HAVE_PREFIX4 (1U << 1) /* fg_prefix4 may be non-empty */
#define FG_HAVE_PREFIX6 (1U << 2) /* fg_prefix6 may be non-empty */

#define FG_HAVE_SIGS (1U << 3)    /* fg_sig_index may hold rule slots */
#define FG_HAVE_EXEMPT (1U << 4)  /* fg_exempt may be non-empty */
#define FG_HAVE_TRIP_LEVELS (1U << 5) /* fg_trip_levels may be non-empty */
/* Bits 8..12 of the flags: one past the highest portless slot in use
 * (0..FG_SIG_PORTLESS); the program checks slots [0, bound). */
#define FG_CTL_PORTLESS(flags) (((flags) >> 8) & 0x1f)

/*
 * Signature rules (DESIGN.md, "Signature rules"): a match on the packet's
 * FlowSpec components (detector.Match) rather than its source, dropping or
 * rate-limiting what matches. FG_SIG_SLOTS slots in fg_sig_rules; slots
 * [0, FG_SIG_PORTLESS) hold rules without a port component ("portless",
 * checked one by one while any exist), the rest rules with a port range,
 * found through fg_sig_index by the packet's ports.
 */
#define FG_SIG_SLOTS 256
#define FG_SIG_PORTLESS 16
#define FG_SIG_WINDOW_NS 100000000ULL /* rate-limit window: 100 ms */

/* Port kinds, the rows of fg_sig_index and fg_feat_ports: equal to
 * detector.PortKind (UDP source, UDP destination, TCP source, TCP
 * destination). */
#define FG_PORT_UDP_SRC 0
#define FG_PORT_UDP_DST 1
#define FG_PORT_TCP_SRC 2
#define FG_PORT_TCP_DST 3
#define FG_NUM_PORT_KINDS 4
#define FG_NUM_PORTS 65536

/* Fragment kinds: equal to detector.Fragment. */
#define FG_FRAG_ANY 0   /* rules only: matches every packet */
#define FG_FRAG_NONE 1  /* not a fragment (an IPv6 atomic fragment is none) */
#define FG_FRAG_FIRST 2 /* offset 0, more fragments set */
#define FG_FRAG_LATER 3 /* offset > 0 */

/* struct fg_sig_rule flags. */
#define FG_SIG_L4 (1U << 0)      /* ports or TCP flags: needs the transport header */
#define FG_SIG_SRC_V6 (1U << 1)  /* src prefix is IPv6: the address must not be IPv4-mapped */
#define FG_SIG_DST_V6 (1U << 2)  /* same for dst */

/*
 * struct fg_sig_rule is one slot of fg_sig_rules (BPF_MAP_TYPE_ARRAY,
 * BPF_F_MMAPABLE, FG_SIG_SLOTS entries), written by user space through its
 * memory mapping: the match fields before expires_ns is stored, expires_ns
 * (and renewals) with single 8-byte stores. The program only writes the
 * rate limiter's window and count.
 *
 * Prefixes are in the 16-byte form of fg_addr with a mask: an address
 * matches when (addr & mask) == prefix, and, for an IPv6 prefix, when it is
 * not IPv4-mapped (netip.Prefix.Contains never matches across families).
 * An IPv4 prefix /n is the IPv4-mapped prefix /(96+n). No prefix: mask and
 * prefix zero. Ranges are inclusive; "any" is 0..65535.
 */
struct fg_sig_rule {
	/* CLOCK_MONOTONIC ns (the coarse clock, like the other rules); the
	 * rule applies while now < expires_ns. 0: the slot is free. */
	__u64 expires_ns;
	/* Rate limit in packets per second; 0 drops every matching packet. */
	__u64 rate_pps;
	/* Packets allowed per FG_SIG_WINDOW_NS window: max(1, ceil(rate/10)). */
	__u64 allowance;
	struct fg_addr src, src_mask, dst, dst_mask;
	__u16 sport_lo, sport_hi, dport_lo, dport_hi, len_lo, len_hi;
	__u8 proto;     /* 0: any */
	__u8 tcp_flags; /* match when (flags & tcp_mask) == tcp_flags */
	__u8 tcp_mask;
	__u8 frag;      /* FG_FRAG_* */
	__u8 flags;     /* FG_SIG_* */
	/* Where user space indexed the rule: 0 portless, else 1 + the port
	 * kind (FG_PORT_*) of the fg_sig_index row holding it. */
	__u8 indexed;
	__u8 _pad[22];
	/* Rate limiter, written by the program on every CPU: alone in the
	 * third cache line so that its writes do not evict the match fields
	 * from the other CPUs' caches. The current window
	 * (bpf_ktime_get_ns() / FG_SIG_WINDOW_NS) and the packets charged in
	 * it. */
	__u64 window;
	__u64 count;
	__u64 _pad2[6];
};

/*
 * fg_sig_index (BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE) has one __u64 per
 * (port kind, port): FG_NUM_PORT_KINDS * FG_NUM_PORTS entries, index
 * kind * FG_NUM_PORTS + port. Byte 0 (the low byte) is the number n of
 * candidate slots (0..FG_SIG_INDEX_SLOTS), bytes 1..n their slot numbers.
 * User space rewrites an entry with one 8-byte store.
 */
#define FG_SIG_INDEX_SLOTS 7

/* struct fg_sig_matched is the program's scratch space (fg_sig_scratch,
 * BPF_MAP_TYPE_PERCPU_ARRAY, one entry): the signature rules that match the
 * frame being decided. User space never reads it. */
#define FG_SIG_MAX_MATCHED 32 /* > 2 * FG_SIG_INDEX_SLOTS + FG_SIG_PORTLESS */
struct fg_sig_matched {
	__u8 slot[FG_SIG_MAX_MATCHED];
	__u32 n;
	__u32 drops; /* bit i: slot[i] is a drop rule */
};

/* struct fg_sig_stats is one slot's counters in fg_sig_stats
 * (BPF_MAP_TYPE_PERCPU_ARRAY, FG_SIG_SLOTS entries). */
struct fg_sig_stats {
	__u64 hit_packets; /* matched, from a source that is not exempt */
	__u64 hit_bytes;
	__u64 dropped_packets; /* the part of the hits this rule dropped */
	__u64 dropped_bytes;
};

/*
 * Features: per-tick traffic counts for the detector (detector.Features),
 * counted for every frame with an IP source, dropped or not; cumulative,
 * user space reads and diffs them every tick. DESIGN.md, "Features", has
 * the measurements behind the layout.
 *
 * fg_feat_ports (BPF_MAP_TYPE_PERCPU_ARRAY, FG_PORT_BLOCKS entries) counts
 * frames by (kind, port): counter kind * FG_NUM_PORTS + port is c[counter %
 * 64] of block counter / 64, each CPU counting in its own copy without
 * atomics. Only frames whose transport header was read count.
 * fg_feat_touched (BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE, FG_PORT_TOUCHED_WORDS
 * __u64, shared by the CPUs) has one bit per block (word = block / 64): the
 * program sets it (atomic or, only when it is clear) after counting in the
 * block, user space takes and clears the words every tick and has only the
 * blocks touched since summed over the CPUs (fg_sum_ports, sumports.c, into
 * fg_port_sums, laid out as one CPU's fg_feat_ports), so an idle read costs
 * next to nothing.
 */
#define FG_PORT_COUNTERS (FG_NUM_PORT_KINDS * FG_NUM_PORTS)
#define FG_PORT_BLOCK 64
#define FG_PORT_BLOCKS (FG_PORT_COUNTERS / FG_PORT_BLOCK)
#define FG_PORT_TOUCHED_WORDS (FG_PORT_BLOCKS / 64)

struct fg_port_count {
	__u64 packets;
	__u64 bytes;
};

struct fg_port_block {
	struct fg_port_count c[FG_PORT_BLOCK];
};

/* IP length buckets: 64 bytes wide, the last from 1536 up
 * (detector.LengthBucket). */
#define FG_LEN_BUCKET_SHIFT 6
#define FG_NUM_LEN_BUCKETS 25

/*
 * Destinations: fg_feat_dsts (BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE,
 * FG_FEAT_DST_SLOTS struct fg_addr) names the destination each slot counts
 * (zero: none); user space assigns them. A destination may sit in one of
 * two slots, FG_DST_SLOT(x, FG_DST_HASH1) or FG_DST_SLOT(x, FG_DST_HASH2)
 * with x the xor of its four 32-bit words as loaded on this (little-endian)
 * machine; frames to a destination in neither count in dsts_other, and the
 * last of them leaves its destination in dst_sample, from which user space
 * picks the destinations to give slots to.
 */
#define FG_FEAT_DST_BITS 6
#define FG_FEAT_DST_SLOTS (1 << FG_FEAT_DST_BITS)
#define FG_DST_HASH1 0x9e3779b1U
#define FG_DST_HASH2 0x85ebca6bU
#define FG_DST_SLOT(x, k) (((__u32)(x) * (k)) >> (32 - FG_FEAT_DST_BITS))

/* fg_feat (BPF_MAP_TYPE_PERCPU_ARRAY, one entry): cumulative counts. */
struct fg_feat {
	/* Frames by class and IP length bucket. */
	__u64 lengths[FG_NUM_CLASSES][FG_NUM_LEN_BUCKETS];
	/* Frames by destination slot of fg_feat_dsts. */
	__u64 dst_packets[FG_FEAT_DST_SLOTS];
	/* Frames to destinations without a slot. */
	__u64 dsts_other;
	/* The destination of the last of those (network order). */
	struct fg_addr dst_sample;
};

/* fg_exempt (BPF_MAP_TYPE_HASH keyed by struct fg_addr, value __u8):
 * sources no signature rule drops. */
#define FG_MAX_EXEMPT 1024

#endif /* FLOODGUARD_H */
