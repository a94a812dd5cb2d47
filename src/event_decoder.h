/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Turns raw ring-buffer records into process table updates. */
#ifndef MEMSCOPED_EVENT_DECODER_H
#define MEMSCOPED_EVENT_DECODER_H

#include <stddef.h>
#include <stdint.h>
#include "process_table.h"

struct decoder_stats {
	uint64_t received;
	uint64_t malformed;   /* wrong size or unknown type */
	uint64_t unknown_pid; /* a pid that is not traced */
};

struct event_decoder {
	struct process_table *procs;
	struct decoder_stats stats;
};

/* Returns 0, or -EINVAL for a record that is not a valid event (counted, otherwise ignored). */
int event_decoder__handle(struct event_decoder *d, const void *data, size_t len);

#endif
