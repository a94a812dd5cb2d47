/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the JSON API serves, copied from the tables on the main loop at a metrics tick: each
 * process as the JSON report writes it (without its tasks), and a flat row per task. The HTTP
 * thread holds a reference while it answers; the main loop is never waited for.
 */
#ifndef MEMSCOPED_API_SNAPSHOT_H
#define MEMSCOPED_API_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include "report.h"
#include "task_row.h"

/* Task rows copied per snapshot, suspects first: ~250 bytes each. */
#define API_SNAPSHOT_MAX_TASKS 200000

struct api_process {
	uint32_t pid;
	char *json; /* the report's process object, without "tasks" */
};

struct api_snapshot {
	unsigned int refs; /* atomic */
	uint64_t taken_ns; /* CLOCK_MONOTONIC */
	double duration_seconds;
	uint64_t events_received, events_lost;
	uint64_t build_ns; /* how long the copy took */
	struct api_process *procs;
	size_t nprocs;
	struct task_row *tasks; /* suspects first, then in order of discovery */
	size_t ntasks;
	uint64_t tasks_omitted; /* past max_tasks */
	char **strings;		/* type names, runtimes and reasons the rows point to */
	size_t nstrings, strings_cap;
};

/* Copies in's processes and up to max_tasks task rows; NULL if out of memory. */
struct api_snapshot *api_snapshot__new(const struct report_input *in, size_t max_tasks);
struct api_snapshot *api_snapshot__get(struct api_snapshot *s);
/* Drops a reference; the last frees. Accepts NULL. */
void api_snapshot__put(struct api_snapshot *s);

#endif
