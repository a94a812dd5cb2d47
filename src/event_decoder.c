// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <string.h>
#include "memscoped/events.h"
#include "event_decoder.h"
#include "runtime.h"

_Static_assert(sizeof(struct ms_event) == 64, "struct ms_event is shared with BPF");

int event_decoder__handle(struct event_decoder *d, const void *data, size_t len)
{
	struct ms_event e;
	struct process *p, *child;
	uint32_t task;
	unsigned int kind;

	d->stats.received++;
	if (len != sizeof(e)) {
		d->stats.malformed++;
		return -EINVAL;
	}
	memcpy(&e, data, sizeof(e));
	if (e.ts)
		event_decoder__time_passed(d, e.ts);
	else
		e.ts = d->clock_ns;
	p = process_table__find(d->procs, e.pid);
	if (!p) {
		d->stats.unknown_pid++;
		return 0;
	}
	/* Events of the new program after an exec belong to no report. */
	if (p->execed)
		return 0;
	switch (e.type) {
	case MS_EV_ALLOC:
		task = runtime__task_of(p, &e);
		kind = MS_FN_KIND(e.func);
		/* In place (xallocx, mi_expand): not resized leaves the block as it was. */
		if (kind == MS_FN_RESIZE) {
			if (e.addr)
				process__resize(p, e.tid, e.addr, e.size, task, e.ts);
			return 0;
		}
		if (e.old_addr && (kind == MS_FN_REALLOC || kind == MS_FN_REALLOCARRAY)) {
			process__realloc_end(p, e.tid, e.old_addr, e.addr, e.size, task, e.ts);
			/* reallocf: failing, it frees the block realloc would have kept. */
			if (!e.addr && e.size && (e.func & MS_FN_F_FREES_ON_FAIL))
				process__freed(p, e.tid, e.old_addr, e.ts);
		} else
			process__alloc(p, e.tid, e.addr, e.size, task, e.ts);
		return 0;
	case MS_EV_FREE:
		runtime__block_freed(p, e.addr, e.ts);
		process__freed(p, e.tid, e.addr, e.ts);
		return 0;
	case MS_EV_REALLOC_BEGIN:
		runtime__block_freed(p, e.addr, e.ts);
		process__realloc_begin(p, e.tid, e.addr);
		return 0;
	case MS_EV_EXEC:
		/* The exec this record begins at (the helper attached the new image) is not its end. */
		if (!p->exec_ns || e.addr != p->exec_ns) {
			p->execed = true;
			p->ended_ns = e.ts;
		}
		return 0;
	case MS_EV_FORK:
		/* In the parent's event order: its live blocks now are the child's at the fork. */
		child = process_table__fork(d->procs, p, (uint32_t)e.addr, e.ts);
		if (!child) {
			d->stats.malformed++;
			return 0;
		}
		/* size 1: its calls before its probes are live cannot be counted. */
		child->fork_window_uncounted = e.size == 1;
		child->fork_window_open = e.size != 1;
		return 0;
	case MS_EV_WINDOW_END:
		/* BPF on_exit took the child's entry out: its count then (it only grows). */
		if (!p->fork_window_open)
			return 0;
		if ((e.addr & ~MS_WINDOW_UNCOUNTED) > p->fork_window_missed)
			p->fork_window_missed = e.addr & ~MS_WINDOW_UNCOUNTED;
		p->fork_window_uncounted |= (e.addr & MS_WINDOW_UNCOUNTED) != 0;
		p->fork_window_open = false;
		return 0;
	default:
		/* The rest are the runtimes' (runtime.h), each to the rows that handle its type. */
		if (runtime__event(p, &e))
			return 0;
		d->stats.malformed++;
		return -EINVAL;
	}
}
