/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * fg_feat_ports, the per-CPU port counters (layout in floodguard.h), as
 * both floodguard.c, which counts in it, and sumports.c, which sums it for
 * user space, declare it: the loader hands the program's map to the
 * summer, so the two declarations must be one.
 */
#ifndef FLOODGUARD_FEATPORTS_H
#define FLOODGUARD_FEATPORTS_H

#include "floodguard.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FG_PORT_BLOCKS);
	__type(key, __u32);
	__type(value, struct fg_port_block);
} fg_feat_ports SEC(".maps");

#endif /* FLOODGUARD_FEATPORTS_H */
