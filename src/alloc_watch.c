// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdio.h>
#include "alloc_watch.h"

/* "Keeps using CPU": a tenth of a CPU on average, far above an idle service's wakeups. */
#define BUSY_FRACTION 0.1

static bool no_allocator_events(const struct heap_stats *h)
{
	return !h->allocations_total && !h->frees_total && !h->frees_untracked_total &&
	       !h->allocation_failures_total;
}

bool alloc_watch__blind(struct process *p, double elapsed, double cpu_seconds, double stuck_after)
{
	if (p->allocator.blind_warned || !p->allocator.family || p->exited || p->execed)
		return false;
	if (elapsed < stuck_after || !no_allocator_events(&p->heap))
		return false;
	if (cpu_seconds - p->allocator.cpu_at_attach < BUSY_FRACTION * elapsed)
		return false;
	p->allocator.blind_warned = true;
	return true;
}

void alloc_watch__message(const struct process *p, double elapsed, double cpu_seconds, char *buf,
			  size_t len)
{
	snprintf(buf, len,
		 "pid %u: no allocator events in %.0f s while it used %.1f s of CPU; probed %s: "
		 "its allocator may be one memscoped does not know",
		 p->pid, elapsed, cpu_seconds - p->allocator.cpu_at_attach,
		 p->allocator.probed ? p->allocator.probed : p->allocator.family);
}

bool alloc_watch__frees_missed(struct process *p, double elapsed, double stuck_after)
{
	if (p->allocator.frees_warned || !p->allocator.family || elapsed < stuck_after ||
	    !p->blocks_replaced)
		return false;
	p->allocator.frees_warned = true;
	return true;
}
