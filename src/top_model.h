/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What `memscoped top` shows, without the terminal: the API's answers parsed into processes,
 * task types and task rows, and the rows in display order (suspects first, then the sort key,
 * filtered by type text). Pure: unit tests drive it with JSON strings.
 */
#ifndef MEMSCOPED_TOP_MODEL_H
#define MEMSCOPED_TOP_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "task_row.h"

/* Rows kept from one refresh: two answers (suspects, then the rest) of at most 1000 each. */
#define TOP_MAX_ROWS 2000

struct top_type {
	const char *name, *runtime;
	uint64_t future_size_bytes, spawned, live, completed, cancelled, suspects, live_bytes;
	uint64_t polls;
};

struct top_process {
	uint32_t pid;
	char comm[32];
	bool exited;
	uint64_t live_bytes, untasked_live_bytes, tasks_live, tasks_spawned, suspects;
	uint64_t blocking_live;
};

struct top_model {
	double duration_seconds;
	uint64_t events_received, events_lost;
	struct top_process *procs;
	size_t nprocs;
	struct top_type *types; /* of the process the tasks are of */
	size_t ntypes;
	struct task_row *rows;
	size_t nrows;
	uint64_t matched; /* tasks the daemon matched (rows may be fewer: the limit) */
	char **strings;	  /* names, runtimes and reasons the types and rows point to */
	size_t nstrings, strings_cap;
	/* Display order, from top_model__view. */
	const struct task_row **view;
	size_t nview;
	const struct top_type **type_view;
	size_t ntype_view;
};

struct top_model *top_model__new(void);
void top_model__free(struct top_model *m);
/* Forgets the rows (before the answers of a new refresh are added). */
void top_model__clear_rows(struct top_model *m);

/*
 * Takes a /api/v1/processes answer; the task types kept are those of pid (0: the first
 * process). Returns 0, or -EINVAL (a reason in err) for an answer that is not the API's.
 */
int top_model__set_processes(struct top_model *m, const char *json, uint32_t pid, char *err,
			     size_t len);
/* Adds the rows of a /api/v1/tasks answer; rows already there (same pid and id) are kept. */
int top_model__add_tasks(struct top_model *m, const char *json, char *err, size_t len);
/* The process pid, or NULL. */
const struct top_process *top_model__process(const struct top_model *m, uint32_t pid);

/* Orders and filters the rows and types: suspects first, then order; filter matches types. */
int top_model__view(struct top_model *m, const struct task_row_order *order, const char *filter);

/* "99999", "977K", "4.5M", "1.2G": at most 5 characters below 10 EiB. */
void top__format_bytes(uint64_t bytes, char *buf, size_t len);
/* "0.25s", "12.3s", "4.5m", "2.1h", "3.0d", "42d": at most 5 characters below 10^5 days. */
void top__format_seconds(double seconds, char *buf, size_t len);

#endif
