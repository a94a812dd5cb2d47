// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exporter_prometheus.h"
#include "scan_report.h"
#include "task_figures.h"

/* Per task_type label value of one process: the types it sums, and their figures. */
struct type_agg {
	const char *runtime;
	const char *label;
	double spawned, completed, cancelled, live, suspects, live_bytes, allocated, polls;
	double future_size;
};

struct proc_view {
	const struct process *p;
	char pid[16];
	struct type_agg *aggs;
	size_t naggs;
};

enum metric_source {
	SRC_HEAP_LIVE_BYTES,
	SRC_HEAP_LIVE_ALLOCS,
	SRC_HEAP_ALLOCATED,
	SRC_HEAP_ALLOCS,
	SRC_HEAP_FREES,
	SRC_UNTASKED_LIVE,
	SRC_PROBES,
	SRC_UP,
};

static const struct process_metric {
	const char *name, *type, *help;
	enum metric_source src;
} process_metrics[] = {
	{ "memscoped_heap_live_bytes", "gauge", "Heap bytes allocated since attach and not freed",
	  SRC_HEAP_LIVE_BYTES },
	{ "memscoped_heap_live_allocations", "gauge",
	  "Heap blocks allocated since attach and not freed", SRC_HEAP_LIVE_ALLOCS },
	{ "memscoped_heap_allocated_bytes_total", "counter", "Heap bytes allocated since attach",
	  SRC_HEAP_ALLOCATED },
	{ "memscoped_heap_allocations_total", "counter", "Heap blocks allocated since attach",
	  SRC_HEAP_ALLOCS },
	{ "memscoped_heap_frees_total", "counter", "Frees of blocks allocated since attach",
	  SRC_HEAP_FREES },
	{ "memscoped_untasked_live_bytes", "gauge",
	  "Live heap bytes allocated outside any task (runtime, block_on roots, plain threads)",
	  SRC_UNTASKED_LIVE },
	{ "memscoped_probes_attached", "gauge", "Uprobes attached to the process", SRC_PROBES },
	{ "memscoped_target_up", "gauge", "1 while the traced process runs, 0 once it exited",
	  SRC_UP },
};

static double process_value(const struct process *p, enum metric_source src)
{
	switch (src) {
	case SRC_HEAP_LIVE_BYTES:
		return (double)p->heap.live_bytes;
	case SRC_HEAP_LIVE_ALLOCS:
		return (double)p->heap.live_allocations;
	case SRC_HEAP_ALLOCATED:
		return (double)p->heap.allocated_bytes_total;
	case SRC_HEAP_ALLOCS:
		return (double)p->heap.allocations_total;
	case SRC_HEAP_FREES:
		return (double)p->heap.frees_total;
	case SRC_UNTASKED_LIVE:
		return (double)p->heap.untasked_live_bytes;
	case SRC_PROBES:
		return p->probes_attached;
	case SRC_UP:
		return !p->exited && !p->execed;
	}
	return 0;
}

enum type_field {
	F_SPAWNED,
	F_COMPLETED,
	F_CANCELLED,
	F_LIVE,
	F_SUSPECTS,
	F_LIVE_BYTES,
	F_ALLOCATED,
	F_POLLS,
	F_FUTURE_SIZE,
};

static const struct type_metric {
	const char *name, *type, *help;
	enum type_field field;
} type_metrics[] = {
	{ "memscoped_tasks_spawned_total", "counter", "Tasks spawned (or found at attach)",
	  F_SPAWNED },
	{ "memscoped_tasks_completed_total", "counter", "Tasks that completed", F_COMPLETED },
	{ "memscoped_tasks_cancelled_total", "counter", "Tasks that were cancelled", F_CANCELLED },
	{ "memscoped_tasks_live", "gauge", "Tasks alive now", F_LIVE },
	{ "memscoped_tasks_suspect", "gauge",
	  "Live tasks not polled (or polled continuously) for longer than --stuck-after",
	  F_SUSPECTS },
	{ "memscoped_task_live_bytes", "gauge", "Live heap bytes allocated by tasks of the type",
	  F_LIVE_BYTES },
	{ "memscoped_task_allocated_bytes_total", "counter",
	  "Heap bytes allocated by tasks of the type", F_ALLOCATED },
	{ "memscoped_task_polls_total", "counter", "Polls (or resumes) of tasks of the type",
	  F_POLLS },
	{ "memscoped_future_size_bytes", "gauge",
	  "Size of the task's state: the future's cell, or the largest in an aggregate",
	  F_FUTURE_SIZE },
};

static double type_value(const struct type_agg *a, enum type_field f)
{
	const double v[] = {
		[F_SPAWNED] = a->spawned,	  [F_COMPLETED] = a->completed,
		[F_CANCELLED] = a->cancelled,	  [F_LIVE] = a->live,
		[F_SUSPECTS] = a->suspects,	  [F_LIVE_BYTES] = a->live_bytes,
		[F_ALLOCATED] = a->allocated,	  [F_POLLS] = a->polls,
		[F_FUTURE_SIZE] = a->future_size,
	};

	return v[f];
}

static struct type_agg *agg_for(struct proc_view *v, const char *runtime, const char *label)
{
	size_t i;

	for (i = 0; i < v->naggs; i++)
		if (v->aggs[i].runtime == runtime && !strcmp(v->aggs[i].label, label))
			return &v->aggs[i];
	return NULL;
}

/*
 * Sums the types of one process into label values: the first max_types types to have a task
 * keep their own label, so a label never changes meaning while memscoped runs; types that
 * never had a task get none.
 */
static int aggregate(struct proc_view *v, const struct exporter_input *in)
{
	const struct task_table *t = v->p->tasks;
	struct task_figures f;
	struct type_agg *a;
	const char *label;
	size_t i;

	v->aggs = calloc(t->ntypes + 1, sizeof(*v->aggs));
	if (!v->aggs || task_figures__compute(t, in->now_ns, in->stuck_after_ns, &f))
		return -ENOMEM;
	for (i = 0; i < t->ntypes; i++) {
		const struct task_type *ty = &t->types[i];

		if (!ty->rank)
			continue;
		label = (!in->max_task_types || ty->rank <= in->max_task_types) ? ty->name :
										  "other";
		a = agg_for(v, ty->runtime, label);
		if (!a) {
			a = &v->aggs[v->naggs++];
			a->runtime = ty->runtime;
			a->label = label;
		}
		a->spawned += (double)ty->spawned;
		a->completed += (double)ty->completed;
		a->cancelled += (double)ty->cancelled;
		a->allocated += (double)ty->allocated_bytes_total;
		a->polls += (double)ty->polls;
		if ((double)ty->future_size > a->future_size)
			a->future_size = (double)ty->future_size;
		a->live += (double)f.types[i].live;
		a->live_bytes += (double)f.types[i].live_bytes;
		a->suspects += (double)f.types[i].suspects;
	}
	task_figures__clear(&f);
	return 0;
}

static int render_self(struct prom_text *out, const struct proc_self_stats *s)
{
	const struct {
		const char *name, *type, *help;
		double value;
	} m[] = {
		{ "process_cpu_seconds_total", "counter",
		  "Total user and system CPU time spent in seconds", s->cpu_seconds },
		{ "process_resident_memory_bytes", "gauge", "Resident memory size in bytes",
		  (double)s->resident_bytes },
		{ "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes",
		  (double)s->virtual_bytes },
		{ "process_open_fds", "gauge", "Number of open file descriptors",
		  (double)s->open_fds },
		{ "process_max_fds", "gauge", "Maximum number of open file descriptors",
		  (double)s->max_fds },
		{ "process_start_time_seconds", "gauge",
		  "Start time of the process since unix epoch in seconds", s->start_time_seconds },
	};
	size_t i;
	int err = 0;

	for (i = 0; i < sizeof(m) / sizeof(m[0]) && !err; i++) {
		err = prom_text__family(out, m[i].name, m[i].type, m[i].help);
		if (!err)
			err = prom_text__sample(out, m[i].name, NULL, 0, m[i].value);
	}
	return err;
}

/* What a bound made memscoped drop: nonzero means the other figures are lower bounds. */
static int render_dropped(struct prom_text *out, const struct proc_view *views, size_t n)
{
	static const char *const bounds[] = { "max_allocations", "max_threads", "max_tasks",
					      "task_types" };
	struct prom_label labels[3] = { { "pid", NULL }, { "comm", NULL }, { "bound", NULL } };
	uint64_t v[4];
	size_t i, k;
	int err;

	err = prom_text__family(
		out, "memscoped_bound_dropped_total", "counter",
		"What a bound dropped: allocations, thread events, tasks, task types");
	for (i = 0; i < n && !err; i++) {
		const struct process *p = views[i].p;

		v[0] = p->blocks_dropped;
		v[1] = p->thread_events_dropped;
		v[2] = p->tasks->tasks_dropped;
		v[3] = p->tasks->types_dropped;
		labels[0].value = views[i].pid;
		labels[1].value = p->comm;
		for (k = 0; k < 4 && !err; k++) {
			labels[2].value = bounds[k];
			err = prom_text__sample(out, "memscoped_bound_dropped_total", labels, 3,
						(double)v[k]);
		}
	}
	return err;
}

/* Which allocator memscoped found serving each process (src/alloc_plan.c). */
static int render_allocator_info(struct prom_text *out, const struct proc_view *views, size_t n)
{
	struct prom_label labels[4] = {
		{ "pid", NULL }, { "comm", NULL }, { "family", NULL }, { "object", NULL }
	};
	size_t i;
	int err;

	err = prom_text__family(out, "memscoped_allocator_info", "gauge",
				"The allocator family serving the process and its object");
	for (i = 0; i < n && !err; i++) {
		const struct process *p = views[i].p;

		if (!p->allocator.family)
			continue;
		labels[0].value = views[i].pid;
		labels[1].value = p->comm;
		labels[2].value = p->allocator.family;
		labels[3].value = p->allocator.object ? p->allocator.object : "";
		err = prom_text__sample(out, "memscoped_allocator_info", labels, 4, 1);
	}
	return err;
}

/*
 * An ended target leaves the metrics --forget-after after its end; an exec'd one as soon as its
 * pid has a newer record (one series per pid and comm).
 */
static bool forgotten(const struct exporter_input *in, struct process *p)
{
	if (!p->exited && !p->execed)
		return false;
	if (process_table__find(in->procs, p->pid) != p)
		return true;
	return process__forgotten(p, in->now_ns, in->forget_after_ns);
}

/* Where each target runs: its cgroup, container and systemd unit. */
static int render_target_info(struct prom_text *out, const struct proc_view *views, size_t n)
{
	struct prom_label labels[6] = { { "pid", NULL },	  { "comm", NULL },
					{ "exe", NULL },	  { "cgroup", NULL },
					{ "container_id", NULL }, { "unit", NULL } };
	size_t i;
	int err;

	err = prom_text__family(out, "memscoped_target_info", "gauge",
				"The traced process: executable, cgroup v2 path, container, unit");
	for (i = 0; i < n && !err; i++) {
		const struct process *p = views[i].p;

		labels[0].value = views[i].pid;
		labels[1].value = p->comm;
		labels[2].value = p->exe ? p->exe : "";
		labels[3].value = p->cgroup ? p->cgroup : "";
		labels[4].value = p->container_id ? p->container_id : "";
		labels[5].value = p->unit ? p->unit : "";
		err = prom_text__sample(out, "memscoped_target_info", labels, 6, 1);
	}
	return err;
}

static int render(struct prom_text *out, const struct exporter_input *in, struct proc_view *views,
		  size_t n)
{
	struct prom_label labels[4];
	bool any_types = false;
	size_t i, j, k;
	int err;

	labels[0].name = "pid";
	labels[1].name = "comm";
	labels[2].name = "runtime";
	labels[3].name = "task_type";
	for (k = 0; k < sizeof(process_metrics) / sizeof(process_metrics[0]); k++) {
		const struct process_metric *m = &process_metrics[k];

		err = prom_text__family(out, m->name, m->type, m->help);
		for (i = 0; i < n && !err; i++) {
			labels[0].value = views[i].pid;
			labels[1].value = views[i].p->comm;
			err = prom_text__sample(out, m->name, labels, 2,
						process_value(views[i].p, m->src));
		}
		if (err)
			return err;
	}
	err = render_dropped(out, views, n);
	if (!err)
		err = render_allocator_info(out, views, n);
	if (!err)
		err = scan_report__metrics(out, in->procs, in->max_task_types);
	if (!err)
		err = render_target_info(out, views, n);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		any_types |= views[i].naggs > 0;
	}
	/* Task metrics appear once some runtime's tasks have been seen. */
	for (k = 0; any_types && k < sizeof(type_metrics) / sizeof(type_metrics[0]); k++) {
		const struct type_metric *m = &type_metrics[k];

		err = prom_text__family(out, m->name, m->type, m->help);
		for (i = 0; i < n && !err; i++) {
			labels[0].value = views[i].pid;
			labels[1].value = views[i].p->comm;
			for (j = 0; j < views[i].naggs && !err; j++) {
				labels[2].value = views[i].aggs[j].runtime;
				labels[3].value = views[i].aggs[j].label;
				err = prom_text__sample(out, m->name, labels, 4,
							type_value(&views[i].aggs[j], m->field));
			}
		}
		if (err)
			return err;
	}
	/* Aggregates exist only for types that had a task: the histogram has data too. */
	if (any_types) {
		err = prom_text__family(out, "memscoped_task_poll_duration_seconds", "histogram",
					"Duration of task polls (resumes)");
		for (i = 0; i < n && !err; i++) {
			const struct task_table *t = views[i].p->tasks;

			if (!views[i].naggs)
				continue;
			labels[0].value = views[i].pid;
			labels[1].value = views[i].p->comm;
			labels[2].value = views[i].aggs[0].runtime;
			err = prom_text__histogram(out, "memscoped_task_poll_duration_seconds",
						   labels, 3, task_poll_bounds, t->poll_counts,
						   POLL_BUCKETS, t->poll_sum_seconds);
		}
		if (err)
			return err;
	}
	err = prom_text__family(out, "memscoped_events_total", "counter",
				"Events received from the BPF ring buffer");
	if (!err)
		err = prom_text__sample(out, "memscoped_events_total", NULL, 0,
					(double)in->events_received);
	if (!err)
		err = prom_text__family(out, "memscoped_events_lost_total", "counter",
					"Events dropped because the ring buffer was full");
	if (!err)
		err = prom_text__sample(out, "memscoped_events_lost_total", NULL, 0,
					(double)in->events_lost);
	if (!err && in->daemon_mode)
		err = prom_text__family(
			out, "memscoped_targets_missed_total", "counter",
			"Selected processes not attached: gone before their attach, "
			"or --max-targets reached");
	if (!err && in->daemon_mode)
		err = prom_text__sample(out, "memscoped_targets_missed_total", NULL, 0,
					(double)in->targets_missed);
	if (!err && in->self)
		err = render_self(out, in->self);
	return err;
}

int exporter_prometheus__render(struct prom_text *out, const struct exporter_input *in)
{
	size_t i, n = process_table__count(in->procs);
	struct proc_view *views = calloc(n + 1, sizeof(*views));
	int err = views ? 0 : -ENOMEM;

	prom_text__reset(out);
	size_t nviews = 0;

	for (i = 0; i < n && !err; i++) {
		struct process *p = process_table__at(in->procs, i);

		if (forgotten(in, p))
			continue;
		views[nviews].p = p;
		snprintf(views[nviews].pid, sizeof(views[nviews].pid), "%u", p->pid);
		err = aggregate(&views[nviews++], in);
	}
	if (!err)
		err = render(out, in, views, nviews);
	for (i = 0; views && i < nviews; i++)
		free(views[i].aggs);
	free(views);
	return err;
}
