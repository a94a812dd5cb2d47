/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * One task as the JSON API serves it and `memscoped top` shows it: the figures of the JSON
 * report's task object, flat, with the sort keys and filters both sides share.
 */
#ifndef MEMSCOPED_TASK_ROW_H
#define MEMSCOPED_TASK_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sort keys: the report's field names. */
enum task_row_key {
	TASK_ROW_ID,
	TASK_ROW_KIND,
	TASK_ROW_STATE,
	TASK_ROW_POLLS,
	TASK_ROW_BUSY,
	TASK_ROW_IDLE,
	TASK_ROW_FUTURE_SIZE,
	TASK_ROW_LIVE_BYTES,
	TASK_ROW_TYPE,
	TASK_ROW_AGE,
	TASK_ROW_LIVE_ALLOCATIONS,
	TASK_ROW_ALLOCATED_BYTES_TOTAL,
	TASK_ROW_ALLOCATIONS_TOTAL,
	TASK_ROW_PID,
	TASK_ROW_NKEYS,
};

#define TASK_ROW_ID_LEN 48

struct task_row {
	uint32_t pid;
	uint32_t seq; /* order of discovery in its process: ties keep it */
	char id[TASK_ROW_ID_LEN];
	char parent[32]; /* "" = none */
	char address[24];
	char kind[12];
	char state[12];
	char ended[12]; /* "" = not ended */
	char discovered[12];
	const char *runtime; /* owned by whoever holds the rows (a snapshot, top's model) */
	const char *type;
	const char *suspect_reason; /* NULL unless suspect */
	bool suspect, detached;
	bool age_known, spawned_known, first_poll_known, ended_known, deallocated_known;
	/* Seconds, as the report prints them (%.3f). */
	double age_seconds, spawned_at_seconds, first_poll_at_seconds, idle_seconds, busy_seconds;
	double ended_at_seconds, deallocated_at_seconds;
	uint64_t polls, future_size_bytes, live_bytes, live_allocations;
	uint64_t allocated_bytes_total, allocations_total;
	/* Stackful coroutines (stack_bytes 0 for tokio): polls count resumes. */
	uint64_t stack_bytes;
	uint32_t generation, last_tid; /* last_tid 0: unknown */
	double running_seconds, suspended_seconds;
};

/* The key's field name ("live_bytes"), or NULL for an invalid key. */
const char *task_row_key__name(enum task_row_key key);
/* The key named name; -EINVAL if none. */
int task_row_key__parse(const char *name, enum task_row_key *ret_key);
/* Figures sort largest first, text (id, kind, state, type) in ascending order. */
bool task_row_key__descending_by_default(enum task_row_key key);

struct task_row_order {
	enum task_row_key key;
	bool descending;
	bool suspects_first;
};

/* qsort-style comparison; ties fall back to pid, then order of discovery. */
int task_row__compare(const struct task_row *a, const struct task_row *b,
		      const struct task_row_order *order);
/* Sorts n row pointers. */
void task_row__sort(const struct task_row **rows, size_t n, const struct task_row_order *order);
/* Whether type contains text, ignoring case; NULL or "" matches every row. */
bool task_row__type_matches(const struct task_row *row, const char *text);

#endif
