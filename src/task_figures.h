/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Per-type and per-process task aggregates: computed here once, for every output. */
#ifndef MEMSCOPED_TASK_FIGURES_H
#define MEMSCOPED_TASK_FIGURES_H

#include <stddef.h>
#include <stdint.h>
#include "task_table.h"

/* What only the live tasks tell (counters are in struct task_type). */
struct type_figures {
	uint64_t live, suspects, live_bytes;
};

struct task_figures {
	/* Async tasks; blocking ones apart. */
	uint64_t spawned, live, completed, cancelled, suspects;
	uint64_t blocking_spawned, blocking_live;
	uint64_t async_allocations, async_allocated_bytes, async_live_bytes;
	uint64_t outlived_live_bytes;
	uint64_t early_cells;	    /* cells of live tasks allocated before attach */
	struct type_figures *types; /* one per task type, by index */
	size_t ntypes;
};

/* Sums t at now_ns (suspects by stuck_after_ns); 0 or -ENOMEM. */
int task_figures__compute(const struct task_table *t, uint64_t now_ns, uint64_t stuck_after_ns,
			  struct task_figures *ret);
void task_figures__clear(struct task_figures *f);

#endif
