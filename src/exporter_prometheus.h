/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The metrics of the memscoped(8) contract, rendered in the Prometheus text format. */
#ifndef MEMSCOPED_EXPORTER_PROMETHEUS_H
#define MEMSCOPED_EXPORTER_PROMETHEUS_H

#include <stddef.h>
#include <stdint.h>
#include "proc.h"
#include "process_table.h"
#include "prom_text.h"

struct exporter_input {
	struct process_table *procs;
	uint64_t events_received;
	uint64_t events_lost;
	uint64_t now_ns; /* CLOCK_MONOTONIC, for suspects */
	uint64_t stuck_after_ns;
	size_t max_task_types;	  /* task_type label values per runtime; the rest are "other" */
	uint64_t forget_after_ns; /* an ended target's series go this long after its end */
	bool daemon_mode;	  /* selectors: memscoped_targets_missed_total is rendered */
	uint64_t targets_missed;
	const struct proc_self_stats *self; /* NULL: no process_* metrics */
};

/* Renders every metric into out (reset first); returns 0 or -ENOMEM. */
int exporter_prometheus__render(struct prom_text *out, const struct exporter_input *in);

#endif
