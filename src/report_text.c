// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include "ended_table.h"
#include "report.h"
#include "report_stacks.h"
#include "scan_report.h"

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

/* Text rows shown per process; the JSON report has every task. */
#define TEXT_MAX_TASKS 40

static void task_row(FILE *f, const struct process *p, const struct task *t,
		     const struct report_input *in, const char *reason)
{
	uint64_t now = in->now_ns, last = t->running ? now : t->last_poll_end_ns;
	char id[48], b1[32], b2[32];

	if (t->stack_size)
		snprintf(id, sizeof(id), "%s:0x%" PRIx64 "/%" PRIu32,
			 p->tasks->types[t->type].runtime, t->stack_base, t->generation);
	else if (t->runtime_id)
		snprintf(id, sizeof(id), "%s:%" PRIu64, p->tasks->types[t->type].runtime,
			 t->runtime_id);
	else
		snprintf(id, sizeof(id), "#%u", task_table__index(p->tasks, t));
	fprintf(f, "  %-12s %-8s %-11s %7" PRIu64 " %8.3f %8.1f %10s %12s  %s%s%s\n", id,
		t->kind == TASK_BLOCKING ? "blocking" : "async", task_state__name(t->state),
		t->polls, (double)(t->busy_ns + (t->running ? now - t->poll_start_ns : 0)) / 1e9,
		task__ended(t) || !last ? 0.0 : (double)(now - last) / 1e9,
		human(t->future_size, b1), human(t->live_bytes, b2), p->tasks->types[t->type].name,
		reason ? "\n      suspect: " : "", reason ? reason : "");
}

static void tasks_text(FILE *f, const struct process *p, const struct report_input *in)
{
	const struct task_table *tt = p->tasks;
	char reason[160], b1[32], b2[32];
	size_t shown = 0, i;
	int pass;

	if (tt->ntasks <= 1)
		return;
	fprintf(f, "\n  tasks (suspects first; busy and idle in seconds)\n");
	fprintf(f, "  %-12s %-8s %-11s %7s %8s %8s %10s %12s  %s\n", "ID", "KIND", "STATE", "POLLS",
		"BUSY", "IDLE", "FUTURE", "LIVE", "TYPE");
	for (pass = 0; pass < 2; pass++)
		for (i = 1; i < tt->ntasks; i++) {
			const struct task *t = &tt->tasks[i];
			bool suspect = task__suspect(t, in->now_ns, in->stuck_after_ns, reason,
						     sizeof(reason));

			if (t->unused || suspect != (pass == 0) || (pass == 1 && task__ended(t)))
				continue;
			if (shown++ < TEXT_MAX_TASKS)
				task_row(f, p, t, in, suspect ? reason : NULL);
		}
	if (shown > TEXT_MAX_TASKS)
		fprintf(f, "  ... %zu more live tasks in the JSON report\n",
			shown - TEXT_MAX_TASKS);
	fprintf(f, "\n  task types\n  %8s %8s %10s %10s %12s %12s  %s\n", "SPAWNED", "DONE",
		"CANCELLED", "FUTURE", "ALLOCATED", "OUTLIVED", "TYPE");
	for (i = 0; i < tt->ntypes; i++) {
		const struct task_type *ty = &tt->types[i];

		if (!ty->spawned)
			continue;
		fprintf(f, "  %8" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10s %12s %12s  %s\n",
			ty->spawned, ty->completed, ty->cancelled, human(ty->future_size, b1),
			human(ty->allocated_bytes_total, b2),
			human(ty->outlived_live_bytes, reason), ty->name);
	}
	fprintf(f, "  untasked live %s, task cells live %s\n",
		human(p->heap.untasked_live_bytes, b1), human(p->heap.cell_live_bytes, b2));
}

/* A forgotten process: its final heap figures; the JSON report has its task figures. */
static void summary_text(FILE *f, const struct process_summary *s)
{
	char b1[32];

	fprintf(f, "\nprocess %" PRIu32 " (%s) %s%s [forgotten: final figures only]\n", s->pid,
		s->comm, s->exe, s->execed ? " [exec'd: figures stop at the exec]" : " [exited]");
	fprintf(f, "  live heap      %s in %" PRIu64 " allocations\n",
		human(s->heap.live_bytes, b1), s->heap.live_allocations);
	fprintf(f,
		"  allocated      %s in %" PRIu64 " allocations, %" PRIu64 " frees"
		" (+%" PRIu64 " of blocks from before attach)\n",
		human(s->heap.allocated_bytes_total, b1), s->heap.allocations_total,
		s->heap.frees_total, s->heap.frees_untracked_total);
	if (s->heap.allocation_failures_total)
		fprintf(f, "  failed         %" PRIu64 " allocations returned NULL\n",
			s->heap.allocation_failures_total);
	if (!s->complete)
		fprintf(f,
			"  incomplete     %" PRIu64 " allocations over --max-allocations, %" PRIu64
			" events of threads over --max-threads, %" PRIu64 " frees missed, %" PRIu64
			" tasks over --max-tasks\n",
			s->blocks_dropped, s->thread_events_dropped, s->blocks_replaced,
			s->tasks_dropped);
}

static void forgotten_text(FILE *f, const struct report_input *in)
{
	const struct ended_dropped *d;
	char b1[32], b2[32];
	size_t i;

	if (!in->ended)
		return;
	d = ended_table__dropped(in->ended);
	if (d->processes)
		fprintf(f,
			"\n%" PRIu64 " older forgotten processes (past --max-ended-targets %zu): "
			"%s allocated in %" PRIu64 " allocations, %" PRIu64 " frees, %s live at "
			"their ends\n",
			d->processes, ended_table__max(in->ended),
			human(d->allocated_bytes_total, b1), d->allocations_total, d->frees_total,
			human(d->live_bytes, b2));
	for (i = 0; i < ended_table__count(in->ended); i++)
		summary_text(f, ended_table__at(in->ended, i));
}

int report_text__write(FILE *f, const struct report_input *in)
{
	size_t i, j, n = process_table__count(in->procs);
	struct process_summary sum;
	struct tasks_totals tasks;
	char b1[32], b2[32];

	fprintf(f, "memscoped report: %.1f s, %" PRIu64 " events, %" PRIu64 " lost%s\n",
		in->duration_seconds, in->events_received, in->events_lost,
		in->events_lost ? " (figures below are lower bounds)" : "");
	forgotten_text(f, in);
	for (i = 0; i < n; i++) {
		const struct process *p = process_table__at(in->procs, i);

		if (report__forgotten(p, in)) {
			if (!process_summary__of(p, in->stuck_after_ns, &sum, &tasks))
				summary_text(f, &sum);
			continue;
		}
		fprintf(f, "\nprocess %" PRIu32 " (%s) %s%s\n", p->pid, p->comm, p->exe,
			p->execed ? " [exec'd: figures stop at the exec]" :
			p->exited ? " [exited]" :
				    "");
		fprintf(f, "  live heap      %s in %" PRIu64 " allocations\n",
			human(p->heap.live_bytes, b1), p->heap.live_allocations);
		fprintf(f,
			"  allocated      %s in %" PRIu64 " allocations, %" PRIu64 " frees"
			" (+%" PRIu64 " of blocks from before attach)\n",
			human(p->heap.allocated_bytes_total, b1), p->heap.allocations_total,
			p->heap.frees_total, p->heap.frees_untracked_total);
		if (p->heap.allocation_failures_total)
			fprintf(f, "  failed         %" PRIu64 " allocations returned NULL\n",
				p->heap.allocation_failures_total);
		if (!process__complete(p)) {
			fprintf(f,
				"  incomplete     %" PRIu64
				" allocations over --max-allocations, %" PRIu64
				" events of threads over --max-threads, %" PRIu64 " frees missed\n",
				p->blocks_dropped, p->thread_events_dropped, p->blocks_replaced);
			if (p->fork_window_uncounted)
				fprintf(f,
					"  incomplete     allocator calls after the fork, before its "
					"probes were live, were not counted\n");
			else if (p->fork_window_missed)
				fprintf(f,
					"  incomplete     %" PRIu64
					" allocator calls missed after the "
					"fork, before its probes were live\n",
					p->fork_window_missed);
			if (p->tasks->tasks_dropped || p->tasks->types_dropped)
				fprintf(f,
					"  incomplete     %" PRIu64
					" tasks over --max-tasks, %" PRIu64
					" task types over --max-types (counted as \"other\")\n",
					p->tasks->tasks_dropped, p->tasks->types_dropped);
		}
		fprintf(f, "  %-8s %-16s %14s %10s %14s %10s\n", "TID", "COMM", "LIVE", "LIVE#",
			"ALLOCATED", "ALLOCS");
		for (j = 0; j < p->nthreads; j++) {
			const struct thread_stats *t = &p->threads[j];

			fprintf(f, "  %-8" PRIu32 " %-16s %14s %10" PRIu64 " %14s %10" PRIu64 "\n",
				t->tid, t->comm, human(t->live_bytes, b1), t->live_allocations,
				human(t->allocated_bytes_total, b2), t->allocations_total);
		}
		scan_report__text(f, p);
		tasks_text(f, p, in);
		report_stacks__text(f, p, in);
	}
	return fflush(f) ? -errno : 0;
}

int report_text__summary(FILE *f, const struct report_input *in)
{
	size_t i, n = process_table__count(in->procs);
	char b1[32];

	for (i = 0; i < n; i++) {
		const struct process *p = process_table__at(in->procs, i);

		fprintf(f,
			"memscoped: %.0fs pid %" PRIu32 " (%s): live %s in %" PRIu64
			" allocations, %" PRIu64 " allocs, %" PRIu64 " frees, %" PRIu64
			" events lost%s\n",
			in->duration_seconds, p->pid, p->comm, human(p->heap.live_bytes, b1),
			p->heap.live_allocations, p->heap.allocations_total, p->heap.frees_total,
			in->events_lost, p->exited ? ", exited" : "");
	}
	return fflush(f) ? -errno : 0;
}
