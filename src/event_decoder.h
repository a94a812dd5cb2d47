/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Turns raw ring-buffer records into process table updates. */
#ifndef MEMSCOPED_EVENT_DECODER_H
#define MEMSCOPED_EVENT_DECODER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "memscoped/events.h"
#include "process_table.h"

struct decoder_stats {
	uint64_t received;
	uint64_t malformed;   /* wrong size or unknown type */
	uint64_t unknown_pid; /* a pid that is not traced */
};

/*
 * Allocator events come without a time (a clock read would cost more than a tenth of their
 * programs): each is stamped with the latest time known to have passed before it, the time of
 * the previous timed event (task, coroutine) in the ring or the start of the previous drain,
 * whichever is later. So an allocation is at most a drain period (10 ms) early, never after a
 * task event that follows it, and block times are kept in centiseconds anyway.
 */
struct event_decoder {
	struct process_table *procs;
	struct decoder_stats stats;
	uint64_t clock_ns; /* the latest time known to have passed */
};

/* Every event still in the ring was submitted after ns, CLOCK_MONOTONIC. */
static inline void event_decoder__time_passed(struct event_decoder *d, uint64_t ns)
{
	if (ns > d->clock_ns)
		d->clock_ns = ns;
}

/* An allocator event as the ring carries it (ts left out), as a struct ms_event with ts 0. */
static inline void event_decoder__widen(struct ms_event *e, const struct ms_heap_event *h)
{
	memset(e, 0, sizeof(*e));
	e->type = h->type;
	e->func = h->func;
	e->pid = h->pid;
	e->tid = h->tid;
	e->addr = h->addr;
	e->old_addr = h->old_addr;
	e->size = h->size;
	e->sp = h->sp;
	e->task = h->task;
}

/* Returns 0, or -EINVAL for a record that is not a valid event (counted, otherwise ignored). */
int event_decoder__handle(struct event_decoder *d, const void *data, size_t len);

#endif
