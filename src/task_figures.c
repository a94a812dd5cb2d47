// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "task_figures.h"

int task_figures__compute(const struct task_table *tt, uint64_t now_ns, uint64_t stuck_after_ns,
			  struct task_figures *ret)
{
	struct task_figures f = { 0 };
	char reason[8];
	size_t i;

	f.types = calloc(tt->ntypes + 1, sizeof(*f.types));
	if (!f.types)
		return -ENOMEM;
	f.ntypes = tt->ntypes;
	/* Live figures from the tasks; counters from the types (ended tasks are recycled). */
	for (i = 1; i < tt->ntasks; i++) {
		const struct task *t = &tt->tasks[i];
		bool alive = !task__ended(t);
		bool suspect;

		if (t->unused)
			continue;
		suspect = task__suspect(t, now_ns, stuck_after_ns, reason, sizeof(reason));
		if (t->type < tt->ntypes) {
			f.types[t->type].live += alive;
			f.types[t->type].suspects += suspect;
			f.types[t->type].live_bytes += alive ? t->live_bytes : 0;
		}
		/* Cells allocated before attach are not in the heap table: count them here. */
		if (alive && t->discovered != TASK_FOUND_SPAWN && !t->stack_size)
			f.early_cells += t->future_size;
		if (t->kind == TASK_BLOCKING) {
			f.blocking_live += alive;
			continue;
		}
		f.live += alive;
		f.suspects += suspect;
		f.async_live_bytes += t->live_bytes;
	}
	for (i = 0; i < tt->ntypes; i++) {
		const struct task_type *tp = &tt->types[i];

		f.outlived_live_bytes += tp->outlived_live_bytes;
		if (tp->kind == TASK_BLOCKING) {
			f.blocking_spawned += tp->spawned;
			continue;
		}
		f.spawned += tp->spawned;
		f.completed += tp->completed;
		f.cancelled += tp->cancelled;
		f.async_allocations += tp->allocations_total;
		f.async_allocated_bytes += tp->allocated_bytes_total;
	}
	*ret = f;
	return 0;
}

void task_figures__clear(struct task_figures *f)
{
	free(f->types);
	memset(f, 0, sizeof(*f));
}
