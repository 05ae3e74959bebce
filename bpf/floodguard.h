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
 * struct fg_source is the value of the per-source map (fg_sources, a
 * BPF_MAP_TYPE_PERCPU_HASH: each CPU has its own copy, written without
 * atomics; user space sums the copies). Counters are cumulative since the
 * entry was created; user space computes per-tick deltas and deletes idle
 * entries.
 */
struct fg_source {
	/* Frames and frame bytes (data_end - data) per class, dropped or not. */
	__u64 packets[FG_NUM_CLASSES];
	__u64 bytes[FG_NUM_CLASSES];
	/* The part of the above that a drop rule discarded. */
	__u64 dropped_packets;
	__u64 dropped_bytes;
	/* CLOCK_MONOTONIC ns of the last frame counted on this CPU. */
	__u64 last_seen_ns;
	/*
	 * Rule cache, valid while rules_gen equals the generation in
	 * fg_control: expiry of the exact rule for this source and of the
	 * longest prefix rule that covers it (0 when there is none). The
	 * program refreshes both from the rule maps when the generation moved.
	 */
	__u64 exact_expires_ns;
	__u64 prefix_expires_ns;
	__u32 rules_gen;
	/* Last UDP source port seen on this CPU, host byte order (0: none). */
	__u16 udp_sport;
	__u16 _pad;
};

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
};

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

#endif /* FLOODGUARD_H */
