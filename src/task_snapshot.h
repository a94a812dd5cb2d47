/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Tasks from memory snapshots (--mode scan): each snapshot finds the live task cells by their
 * vtables, as the attach scan does, and carries identity (header address and id), first seen,
 * state bits and a hash of the future's bytes from one snapshot to the next. A task whose
 * bytes did not change and that was neither running nor notified made no progress.
 */
#ifndef MEMSCOPED_TASK_SNAPSHOT_H
#define MEMSCOPED_TASK_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

struct process;
struct scan_process;

/* A task cell found by a snapshot, for the retained-heap pass. */
struct snapshot_cell {
	uint32_t task;	     /* task index */
	uint64_t header;     /* the cell */
	uint64_t start, end; /* the part walked: the future */
	uint64_t skip;	     /* a word not walked (tokio's scheduler handle), or 0 */
};

struct snapshot_cells {
	struct snapshot_cell *v;
	size_t n, cap;
};

/* FNV-1a over len bytes, continuing from h (start with TASK_SNAPSHOT_HASH_INIT). */
#define TASK_SNAPSHOT_HASH_INIT 0xcbf29ce484222325ull
uint64_t task_snapshot__hash(uint64_t h, const void *buf, size_t len);

/*
 * One snapshot of p's tasks, for each runtime whose state p has (tokio, async-task): updates
 * the task table (new tasks found, tasks gone since the last snapshot ended) and s's per-task
 * state; appends each live cell to cells. 0 or -errno (no task is ended then).
 */
int task_snapshot__take(struct process *p, struct scan_process *s, uint64_t now_ns,
			struct snapshot_cells *cells);

#endif
