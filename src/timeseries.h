/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Live heap over time, per process: total, untasked, task cells and the top task types. */
#ifndef MEMSCOPED_TIMESERIES_H
#define MEMSCOPED_TIMESERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "process_table.h"

/* Task types with a series of their own, per process; the rest are summed as "other". */
#define TIMESERIES_TYPES 8
/* Points kept per process (default): past it every other point goes and the step doubles. */
#define TIMESERIES_POINTS 720

struct json_object;
struct timeseries;

/* One point every step_seconds (> 0), at most max_points (>= 2) per process; NULL on ENOMEM. */
struct timeseries *timeseries__new(double step_seconds, size_t max_points);
void timeseries__free(struct timeseries *ts);

/*
 * Records a point for every process of procs if one is due at now_ns (CLOCK_MONOTONIC), or
 * anyway if force (a report is being written). NULL ts does nothing. Returns 0 or -ENOMEM.
 */
int timeseries__tick(struct timeseries *ts, struct process_table *procs, uint64_t now_ns,
		     bool force);

/* Frees the series of every pid no process of procs has (they were forgotten). */
void timeseries__keep_only(struct timeseries *ts, struct process_table *procs);

/* Points recorded for p so far (0 if none). */
size_t timeseries__points(const struct timeseries *ts, const struct process *p);

/* p's series as the report's "timeseries" object, or NULL if it has none. */
struct json_object *timeseries__json(const struct timeseries *ts, const struct process *p);

#endif
