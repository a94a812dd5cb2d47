/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The JSON and text reports (report_version 1). */
#ifndef MEMSCOPED_REPORT_H
#define MEMSCOPED_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "process_table.h"
#include "timeseries.h"

struct ended_table;
struct process_summary;
struct stack_profile;

struct report_input {
	double duration_seconds;
	uint64_t events_received;
	uint64_t events_lost;
	struct process_table *procs;
	uint64_t now_ns;		     /* CLOCK_MONOTONIC at the report */
	uint64_t stuck_after_ns;	     /* --stuck-after */
	const struct timeseries *timeseries; /* NULL: no "timeseries" field */
	const struct stack_profile *stacks;  /* sampled stacks; NULL: none (--sample-bytes 0) */
	const char *mode;		     /* "trace" or "scan"; NULL: trace */
	bool daemon_mode;		     /* selectors: "targets_missed" is reported */
	uint64_t targets_missed;	     /* selected processes not attached */
	/* Daemon mode: ended targets past --forget-after print their final figures only. */
	uint64_t forget_after_ns;	 /* 0: none is forgotten */
	const struct ended_table *ended; /* those already compacted, listed first; may be NULL */
};

/* Whether the reports print p as forgotten: its summary (ended_table.h) only. */
bool report__forgotten(const struct process *p, const struct report_input *in);

/* Writes the JSON report; returns 0 or -errno. */
int report_json__write(FILE *f, const struct report_input *in);
struct json_object;
/* One process of the JSON report without its "tasks", and one of its tasks (by index). */
struct json_object *report_json__process(const struct process *p, const struct report_input *in);
/* A forgotten process as the JSON report has it. */
struct json_object *report_json__summary(const struct process_summary *s,
					 const struct report_input *in);
struct json_object *report_json__task(const struct process *p, uint32_t index,
				      const struct report_input *in);
/* Writes the self-contained HTML report (report_html.c); returns 0 or -errno. */
int report_html__write(FILE *f, const struct report_input *in);
/* Writes the readable report. */
int report_text__write(FILE *f, const struct report_input *in);
/* One line per process, for --interval. */
int report_text__summary(FILE *f, const struct report_input *in);

#endif
