// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ended_table.h"
#include "runtime.h"
#include "strpool.h"
#include "task_figures.h"

struct ended_table {
	struct process_summary *ring; /* cap slots; count from head, oldest first */
	size_t cap, head, count, max;
	size_t tasks_held; /* summaries with task figures of their own */
	struct ended_dropped dropped;
	struct strpool *strings;
};

static bool any_task_figure(const struct tasks_totals *t)
{
	static const struct tasks_totals zero;

	return memcmp(t, &zero, sizeof(zero)) != 0;
}

int process_summary__of(const struct process *p, uint64_t stuck_after_ns,
			struct process_summary *ret, struct tasks_totals *tasks_buf)
{
	const struct task_table *tt = p->tasks;
	struct process_summary s = { 0 };
	struct task_figures f = { 0 };
	size_t i;

	/* Its figures at its end: nothing it left changes after. */
	if (tt && task_figures__compute(tt, p->ended_ns, stuck_after_ns, &f))
		return -ENOMEM;
	*tasks_buf = (struct tasks_totals){
		.spawned = f.spawned,
		.live = f.live,
		.completed = f.completed,
		.cancelled = f.cancelled,
		.suspects = f.suspects,
		.blocking_spawned = f.blocking_spawned,
		.blocking_live = f.blocking_live,
		.async_allocations = f.async_allocations,
		.async_allocated_bytes = f.async_allocated_bytes,
		.async_live_bytes = f.async_live_bytes,
		.future_state_overhead_bytes = p->heap.cell_live_bytes + f.early_cells,
		.average_future_size_bytes =
			tt && tt->cells_seen ? tt->cells_bytes / tt->cells_seen : 0,
		.largest_future_size_bytes = tt ? tt->largest_cell : 0,
		.outlived_live_bytes = f.outlived_live_bytes,
		.tasks_dropped = tt ? tt->tasks_dropped : 0,
		.tasks_recycled = tt ? tt->tasks_recycled : 0,
	};
	task_figures__clear(&f);
	s.pid = p->pid;
	s.ns_pid = p->ns_pid;
	s.parent = p->parent;
	memcpy(s.comm, p->comm, sizeof(s.comm));
	s.exe = p->exe ? p->exe : "";
	s.cgroup = p->cgroup;
	s.container_id = p->cgroup ? p->container_id : NULL;
	s.unit = p->cgroup ? p->unit : NULL;
	s.alloc_family = p->allocator.family;
	s.alloc_object = p->allocator.family && p->allocator.object ? p->allocator.object : NULL;
	s.alloc_functions = p->allocator.functions;
	for (i = 0; i < nruntimes && i < 32; i++)
		if (runtimes[i]->listed && runtimes[i]->listed(p))
			s.runtimes |= 1u << i;
	s.exited = p->exited;
	s.execed = p->execed;
	s.complete = process__complete(p);
	s.attach_latency_ns = p->attach_latency_ns;
	s.fork_window_missed = p->fork_window_missed;
	s.fork_window_uncounted = p->fork_window_uncounted;
	s.heap = p->heap;
	s.blocks_dropped = p->blocks_dropped;
	s.thread_events_dropped = p->thread_events_dropped;
	s.tasks_dropped = tt ? tt->tasks_dropped : 0;
	s.types_dropped = tt ? tt->types_dropped : 0;
	s.blocks_replaced = p->blocks_replaced;
	s.tasks = any_task_figure(tasks_buf) ? tasks_buf : NULL;
	*ret = s;
	return 0;
}

struct ended_table *ended_table__new(size_t max)
{
	struct ended_table *et = calloc(1, sizeof(*et));

	if (!et)
		return NULL;
	et->max = max;
	et->strings = strpool__new();
	if (!et->strings) {
		free(et);
		return NULL;
	}
	return et;
}

static void release(struct ended_table *et, struct process_summary *s)
{
	strpool__put(et->strings, s->exe);
	strpool__put(et->strings, s->cgroup);
	strpool__put(et->strings, s->container_id);
	strpool__put(et->strings, s->unit);
	strpool__put(et->strings, s->alloc_object);
	if (s->tasks)
		et->tasks_held--;
	free((void *)s->tasks);
}

void ended_table__free(struct ended_table *et)
{
	size_t i;

	if (!et)
		return;
	for (i = 0; i < et->count; i++)
		release(et, &et->ring[(et->head + i) % et->cap]);
	free(et->ring);
	strpool__free(et->strings);
	free(et);
}

static void fold(struct ended_table *et, const struct process_summary *s)
{
	struct ended_dropped *d = &et->dropped;

	d->processes++;
	d->live_bytes += s->heap.live_bytes;
	d->live_allocations += s->heap.live_allocations;
	d->allocated_bytes_total += s->heap.allocated_bytes_total;
	d->allocations_total += s->heap.allocations_total;
	d->frees_total += s->heap.frees_total;
	d->allocation_failures_total += s->heap.allocation_failures_total;
}

/* Room for one more: the ring grows (twice, up to max) until it holds max. */
static int grow(struct ended_table *et)
{
	size_t cap = et->cap ? et->cap * 2 : 64, i;
	struct process_summary *ring;

	if (cap > et->max)
		cap = et->max;
	ring = malloc(cap * sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	for (i = 0; i < et->count; i++)
		ring[i] = et->ring[(et->head + i) % et->cap];
	free(et->ring);
	et->ring = ring;
	et->cap = cap;
	et->head = 0;
	return 0;
}

/* c's strings, pointing at s's, become the pool's; NULL ones stay NULL. */
static int share(struct ended_table *et, struct process_summary *c)
{
	const char **fields[] = { &c->exe, &c->cgroup, &c->container_id, &c->unit,
				  &c->alloc_object };
	size_t i, j;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!*fields[i] || (*fields[i] = strpool__get(et->strings, *fields[i])))
			continue;
		for (j = 0; j < i; j++)
			strpool__put(et->strings, *fields[j]);
		return -ENOMEM;
	}
	return 0;
}

int ended_table__add(struct ended_table *et, const struct process_summary *s)
{
	struct process_summary c = *s;
	struct tasks_totals *tasks = NULL;

	if (!et->max) {
		fold(et, s);
		return 0;
	}
	/* Out of memory, s is folded: counted, never lost. */
	if (et->count == et->cap && et->cap < et->max && grow(et))
		goto err;
	if (s->tasks) {
		tasks = malloc(sizeof(*tasks));
		if (!tasks)
			goto err;
		*tasks = *s->tasks;
	}
	c.tasks = tasks;
	if (share(et, &c)) {
		free(tasks);
		goto err;
	}
	if (et->count == et->max) {
		struct process_summary *oldest = &et->ring[et->head];

		fold(et, oldest);
		release(et, oldest);
		et->head = (et->head + 1) % et->cap;
		et->count--;
	}
	et->ring[(et->head + et->count) % et->cap] = c;
	et->count++;
	et->tasks_held += tasks != NULL;
	return 0;
err:
	fold(et, s);
	return -ENOMEM;
}

size_t ended_table__count(const struct ended_table *et)
{
	return et ? et->count : 0;
}

const struct process_summary *ended_table__at(const struct ended_table *et, size_t i)
{
	return et && i < et->count ? &et->ring[(et->head + i) % et->cap] : NULL;
}

const struct ended_dropped *ended_table__dropped(const struct ended_table *et)
{
	return &et->dropped;
}

size_t ended_table__max(const struct ended_table *et)
{
	return et->max;
}

size_t ended_table__bytes(const struct ended_table *et)
{
	return et->count * sizeof(*et->ring) + et->tasks_held * sizeof(struct tasks_totals) +
	       strpool__bytes(et->strings);
}
