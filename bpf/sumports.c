// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * fg_sum_ports adds up, over the CPUs, the port counters floodguard_xdp
 * keeps per CPU (fg_feat_ports, floodguard.h), for the blocks of counters
 * user space asks for, into fg_port_sums, which user space maps. It is a
 * BPF_PROG_TYPE_SYSCALL program the features reader runs once a read
 * (BPF_PROG_TEST_RUN): reading the per-CPU counters through the map would
 * cost a system call and a copy of every CPU's block per touched block, and
 * an mmapable layout with a region per CPU kept 4 MiB per CPU resident in
 * the daemon (DESIGN.md, "Features").
 *
 * The loader gives this object the XDP program's fg_feat_ports; the other
 * two maps are this object's own.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "floodguard.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The program's counters: replaced by the loaded map. */
#include "featports.h"

/* The sums over the CPUs, valid for the blocks of the latest request. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FG_PORT_BLOCKS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fg_port_block);
} fg_port_sums SEC(".maps");

/* The request: a bit per block, laid out as fg_feat_touched. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FG_PORT_TOUCHED_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} fg_port_want SEC(".maps");

/* Bound of the loop over the CPUs; bpf_map_lookup_percpu_elem ends it at
 * the first CPU id past the possible ones. */
#define FG_MAX_CPUS 8192

struct block {
	__u32 idx;			/* in fg_feat_ports */
	struct fg_port_block *sum;	/* its fg_port_sums entry */
};

/* add_cpu adds CPU cpu's copy of the block to the sum (the first CPU's
 * sets it). Returns 1, ending the loop, past the last possible CPU. */
static long add_cpu(__u32 cpu, void *data)
{
	struct block *b = data;
	const struct fg_port_block *v = bpf_map_lookup_percpu_elem(&fg_feat_ports, &b->idx, cpu);
	struct fg_port_block *s = b->sum;
	__u32 i;

	if (!v)
		return 1;
#pragma clang loop unroll(full)
	for (i = 0; i < FG_PORT_BLOCK; i++) {
		if (cpu == 0) {
			s->c[i].packets = v->c[i].packets;
			s->c[i].bytes = v->c[i].bytes;
		} else {
			s->c[i].packets += v->c[i].packets;
			s->c[i].bytes += v->c[i].bytes;
		}
	}
	return 0;
}

/* A word of the request, as sum_word hands it to sum_block. */
struct word {
	__u32 w;
	__u64 bits;
};

/* sum_block sums block bit of the word, if the request names it. */
static long sum_block(__u32 bit, void *data)
{
	const struct word *wd = data;
	struct block b = { .idx = wd->w * 64 + bit };

	if (!(wd->bits & (1ULL << (bit & 63))))
		return 0;
	b.sum = bpf_map_lookup_elem(&fg_port_sums, &b.idx);
	if (!b.sum)
		return 1;
	bpf_loop(FG_MAX_CPUS, add_cpu, &b, 0);
	return 0;
}

/* sum_word sums the blocks word w of the request names. */
static long sum_word(__u32 w, void *data)
{
	const __u64 *want = bpf_map_lookup_elem(&fg_port_want, &w);
	struct word wd = { .w = w };

	if (!want)
		return 1;
	wd.bits = *want;
	if (wd.bits)
		bpf_loop(64, sum_block, &wd, 0);
	return 0;
}

SEC("syscall")
int fg_sum_ports(void *ctx)
{
	bpf_loop(FG_PORT_TOUCHED_WORDS, sum_word, NULL, 0);
	return 0;
}
