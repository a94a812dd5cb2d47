/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Ended targets past --forget-after, kept for the report as their final figures only (a few
 * hundred bytes each, instead of the heap, task and thread tables of a traced process). At most
 * max are listed; past it the oldest are folded into counted totals.
 */
#ifndef MEMSCOPED_ENDED_TABLE_H
#define MEMSCOPED_ENDED_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "process_table.h"

/* The report's "tasks_summary" of an ended process, at its end. */
struct tasks_totals {
	uint64_t spawned, live, completed, cancelled, suspects, blocking_spawned, blocking_live;
	uint64_t async_allocations, async_allocated_bytes, async_live_bytes;
	uint64_t future_state_overhead_bytes, average_future_size_bytes, largest_future_size_bytes;
	uint64_t outlived_live_bytes, tasks_dropped, tasks_recycled;
};

/* What the reports print of a forgotten process (see report_json.c). */
struct process_summary {
	uint32_t pid, ns_pid, parent;
	char comm[COMM_LEN];
	const char *exe;
	const char *cgroup, *container_id, *unit; /* cgroup NULL: no labels */
	const char *alloc_family;		  /* static; NULL: no allocator planned */
	const char *alloc_object;
	uint32_t alloc_functions;
	uint32_t runtimes; /* bit i: runtimes[i] listed it */
	bool exited, execed, complete;
	uint64_t attach_latency_ns;
	uint64_t fork_window_missed; /* a forked child's (parent != 0) */
	bool fork_window_uncounted;
	struct heap_stats heap;
	uint64_t blocks_dropped, thread_events_dropped, tasks_dropped, types_dropped;
	uint64_t blocks_replaced;
	const struct tasks_totals *tasks; /* NULL: every figure 0 */
};

/*
 * The summary of p at its end (ended_ns), borrowing p's strings; tasks_buf holds its task
 * figures. 0, or -ENOMEM.
 */
int process_summary__of(const struct process *p, uint64_t stuck_after_ns,
			struct process_summary *ret, struct tasks_totals *tasks_buf);

/* Folded summaries: the oldest forgotten processes past the bound, summed. */
struct ended_dropped {
	uint64_t processes;
	uint64_t live_bytes, live_allocations; /* at their ends */
	uint64_t allocated_bytes_total, allocations_total, frees_total;
	uint64_t allocation_failures_total;
};

struct ended_table;

/* Lists at most max summaries (0: none, every one folded); NULL on ENOMEM. */
struct ended_table *ended_table__new(size_t max);
void ended_table__free(struct ended_table *et);
/* Keeps a copy of s (its strings shared); the oldest is folded past the bound. 0 or -ENOMEM. */
int ended_table__add(struct ended_table *et, const struct process_summary *s);
size_t ended_table__count(const struct ended_table *et);
/* Oldest first; NULL past the end. */
const struct process_summary *ended_table__at(const struct ended_table *et, size_t i);
const struct ended_dropped *ended_table__dropped(const struct ended_table *et);
size_t ended_table__max(const struct ended_table *et);
/* Bytes the listed records hold: each, its task figures, the strings they share. */
size_t ended_table__bytes(const struct ended_table *et);

#endif
