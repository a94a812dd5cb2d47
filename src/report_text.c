// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <inttypes.h>
#include "report.h"

static const char *human(uint64_t bytes, char buf[32])
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, 32, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, 32, "%.1f %s", v, units[u]);
	return buf;
}

int report_text__write(FILE *f, const struct report_input *in)
{
	size_t i, j, n = process_table__count(in->procs);
	char b1[32], b2[32];

	fprintf(f, "memscoped report: %.1f s, %" PRIu64 " events, %" PRIu64 " lost%s\n",
		in->duration_seconds, in->events_received, in->events_lost,
		in->events_lost ? " (figures below are lower bounds)" : "");
	for (i = 0; i < n; i++) {
		const struct process *p = process_table__at(in->procs, i);

		fprintf(f, "\nprocess %" PRIu32 " (%s) %s%s\n", p->pid, p->comm, p->exe,
			p->exited ? " [exited]" : "");
		fprintf(f, "  live heap      %s in %" PRIu64 " allocations\n",
			human(p->heap.live_bytes, b1), p->heap.live_allocations);
		fprintf(f, "  allocated      %s in %" PRIu64 " allocations, %" PRIu64 " frees"
			   " (+%" PRIu64 " of blocks from before attach)\n",
			human(p->heap.allocated_bytes_total, b1), p->heap.allocations_total,
			p->heap.frees_total, p->heap.frees_untracked_total);
		if (p->heap.allocation_failures_total)
			fprintf(f, "  failed         %" PRIu64 " allocations returned NULL\n",
				p->heap.allocation_failures_total);
		if (!process__complete(p))
			fprintf(f, "  incomplete     %" PRIu64 " allocations over --max-allocations, %" PRIu64
				   " events of threads over --max-threads, %" PRIu64 " frees missed\n",
				p->blocks_dropped, p->thread_events_dropped, p->blocks_replaced);
		fprintf(f, "  %-8s %-16s %14s %10s %14s %10s\n", "TID", "COMM", "LIVE", "LIVE#",
			"ALLOCATED", "ALLOCS");
		for (j = 0; j < p->nthreads; j++) {
			const struct thread_stats *t = &p->threads[j];

			fprintf(f, "  %-8" PRIu32 " %-16s %14s %10" PRIu64 " %14s %10" PRIu64 "\n",
				t->tid, t->comm, human(t->live_bytes, b1), t->live_allocations,
				human(t->allocated_bytes_total, b2), t->allocations_total);
		}
	}
	return fflush(f) ? -errno : 0;
}

int report_text__summary(FILE *f, const struct report_input *in)
{
	size_t i, n = process_table__count(in->procs);
	char b1[32];

	for (i = 0; i < n; i++) {
		const struct process *p = process_table__at(in->procs, i);

		fprintf(f, "memscoped: %.0fs pid %" PRIu32 " (%s): live %s in %" PRIu64
			   " allocations, %" PRIu64 " allocs, %" PRIu64 " frees, %" PRIu64
			   " events lost%s\n",
			in->duration_seconds, p->pid, p->comm, human(p->heap.live_bytes, b1),
			p->heap.live_allocations, p->heap.allocations_total, p->heap.frees_total,
			in->events_lost, p->exited ? ", exited" : "");
	}
	return fflush(f) ? -errno : 0;
}
