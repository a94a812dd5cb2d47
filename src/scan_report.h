/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What scan mode adds to the outputs: the "census", "scan" and "retained" objects of a process
 * and the scan fields of a task in the JSON report, a section of the text report, and the
 * census and retained-heap metrics. Each adds nothing for a process without scan state.
 */
#ifndef MEMSCOPED_SCAN_REPORT_H
#define MEMSCOPED_SCAN_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct json_object;
struct process;
struct process_table;
struct prom_text;

void scan_report__process_json(struct json_object *o, const struct process *p);
void scan_report__task_json(struct json_object *o, const struct process *p, uint32_t index);
void scan_report__text(FILE *f, const struct process *p);
/* The census and retained metrics; at most max_types task_type values per process. */
int scan_report__metrics(struct prom_text *out, struct process_table *procs, size_t max_types);

/* Per task type sums of the retained heap (index by task type). */
struct scan_type_sum {
	uint64_t tasks, exclusive, inclusive;
};
/* ret: p->tasks->ntypes entries, zeroed here. */
void scan_report__type_sums(const struct process *p, struct scan_type_sum *ret);

#endif
