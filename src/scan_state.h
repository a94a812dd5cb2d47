/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What --mode scan learns about one process from its memory snapshots: the heap census, and
 * per task what the task table does not hold (first seen, state bits, future bytes' hash,
 * retained heap). Kept as the process's opaque state under scan mode's key.
 */
#ifndef MEMSCOPED_SCAN_STATE_H
#define MEMSCOPED_SCAN_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include "freeze.h"
#include "heap_census.h"

struct process;

#define SCAN_LEAKS_LISTED 20
/*
 * --freeze: a thread still running 1 s after its PTRACE_INTERRUPT (in an uninterruptible wait)
 * ends the attempt; that snapshot is taken unfrozen.
 */
#define SCAN_FREEZE_TIMEOUT_MS 1000

/* One task, by task index; key tells a recycled index from the task it was. */
struct scan_task {
	uint64_t key;
	uint64_t first_seen_ns;	 /* the snapshot that first found it */
	uint64_t last_change_ns; /* the last snapshot that saw progress */
	uint64_t state_bits;	 /* the runtime's state word, last snapshot */
	uint64_t future_hash;	 /* of the future's bytes, last snapshot */
	uint64_t retained_exclusive, retained_inclusive;
	uint64_t seen;	     /* the snapshot number that last found it */
	bool future_changed; /* its bytes differ from the previous snapshot's */
	bool retained_known;
	bool retained_truncated; /* a bound stopped the walk: lower bounds */
};

struct scan_process {
	/* The census: only for glibc's malloc; census_note says why not otherwise. */
	bool census_supported;
	const char *census_note;
	bool census_valid;
	struct heap_census census;
	uint64_t chunks_dropped; /* past --max-allocations: no retained figures then */
	/* Snapshots. */
	uint64_t snapshots, snapshot_errors;
	uint64_t last_snapshot_ns, last_duration_ns, last_bytes_read;
	uint64_t tasks_found; /* in the last snapshot */
	/* Retained heap, last snapshot. */
	bool retained_valid;
	uint64_t unreached_bytes, unreached_chunks, roots_truncated, retained_scanned_bytes;
	struct scan_task *tasks;
	size_t ntasks;
	/* Leak candidates (--leak-candidates), last snapshot: the largest listed. */
	bool leaks_valid, leaks_truncated;
	uint64_t leak_chunks, leak_bytes;
	struct {
		uint64_t addr, size;
	} leaks[SCAN_LEAKS_LISTED];
	size_t nleaks;
	/* --freeze: the threads held during the snapshot, and for how long. */
	struct freeze freeze;
	bool last_frozen;  /* the last snapshot was taken with every thread stopped */
	int freeze_error;  /* why the last one was not, -errno; 0 */
	int freeze_tracer; /* -EPERM: who traces the target */
	uint32_t frozen_threads, group_stopped_threads;
	uint64_t frozen_snapshots, unfrozen_snapshots;
	uint64_t refreezes; /* a heap caught mid-update by a stopped thread: frozen again */
	uint64_t last_freeze_ns, max_freeze_ns, last_freeze_bytes;
	uint64_t register_words; /* leak roots from the stopped threads' registers, last */
};

/* p's scan state, or NULL (trace mode). */
struct scan_process *scan_process__of(const struct process *p);
/* p's scan state, made if needed; NULL without memory. */
struct scan_process *scan_process__get(struct process *p);
/* The scan slot of task index (made, reset if it held another key); NULL without memory. */
struct scan_task *scan_process__task(struct scan_process *s, uint32_t index, uint64_t key);
/* The slot of task index if it is that task's, else NULL. */
const struct scan_task *scan_process__find_task(const struct scan_process *s, uint32_t index,
						uint64_t key);
/* Why --freeze could not stop the process, one line into buf; returns buf. */
const char *scan_process__freeze_error(const struct scan_process *s, char *buf, size_t len);

#endif
