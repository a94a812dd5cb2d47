// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "ended_table.h"
#include "report.h"
#include "report_stacks.h"
#include "scan_report.h"
#include "runtime.h"
#include "task_figures.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)

/* json-c's setters take ownership of the value and fail only on allocation failure. */
static void put_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *heap_json(const struct heap_stats *heap)
{
	struct json_object *h = json_object_new_object();

	put_u64(h, "live_bytes", heap->live_bytes);
	put_u64(h, "live_allocations", heap->live_allocations);
	put_u64(h, "allocated_bytes_total", heap->allocated_bytes_total);
	put_u64(h, "allocations_total", heap->allocations_total);
	put_u64(h, "frees_total", heap->frees_total);
	put_u64(h, "frees_untracked_total", heap->frees_untracked_total);
	put_u64(h, "allocation_failures_total", heap->allocation_failures_total);
	return h;
}

static struct json_object *threads_json(const struct process *p)
{
	struct json_object *a = json_object_new_array(), *t;
	size_t i;

	for (i = 0; i < p->nthreads; i++) {
		const struct thread_stats *s = &p->threads[i];

		t = json_object_new_object();
		put_u64(t, "tid", s->tid);
		json_object_object_add(t, "comm", json_object_new_string(s->comm));
		put_u64(t, "live_bytes", s->live_bytes);
		put_u64(t, "live_allocations", s->live_allocations);
		put_u64(t, "allocated_bytes_total", s->allocated_bytes_total);
		put_u64(t, "allocations_total", s->allocations_total);
		json_object_array_add(a, t);
	}
	return a;
}

static struct json_object *limits_json(const struct process *p)
{
	struct json_object *l = json_object_new_object();

	put_u64(l, "allocations_dropped", p->blocks_dropped);
	put_u64(l, "thread_events_dropped", p->thread_events_dropped);
	put_u64(l, "tasks_dropped", p->tasks ? p->tasks->tasks_dropped : 0);
	put_u64(l, "task_types_dropped", p->tasks ? p->tasks->types_dropped : 0);
	put_u64(l, "allocations_replaced", p->blocks_replaced);
	return l;
}

static double seconds(uint64_t ns)
{
	return (double)ns / 1e9;
}

static void put_seconds(struct json_object *o, const char *key, double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.3f", v);
	json_object_object_add(o, key, json_object_new_double_s(v, buf));
}

static const char *runtime_of(const struct process *p, const struct task *t)
{
	return t && t->type < p->tasks->ntypes ? p->tasks->types[t->type].runtime : "?";
}

static void task_id(const struct process *p, uint32_t index, char *buf, size_t len)
{
	const struct task *t = task_table__at(p->tasks, index);

	/* A coroutine is its stack and the how-manieth lifetime on it: reuse stays visible. */
	if (t && t->stack_size && t->type < p->tasks->ntypes)
		snprintf(buf, len, "%s:0x%llx/%u", p->tasks->types[t->type].runtime,
			 (unsigned long long)t->stack_base, t->generation);
	else if (t && t->runtime_id)
		snprintf(buf, len, "%s:%llu", runtime_of(p, t), (unsigned long long)t->runtime_id);
	else
		snprintf(buf, len, "%s:#%u", runtime_of(p, t), index);
}

/* Stackful coroutines: the stack apart from the heap it holds, resumes, threads, time. */
static void add_coroutine_fields(struct json_object *o, const struct task *t, uint64_t end,
				 uint64_t born)
{
	uint64_t running = t->busy_ns + (t->running ? end - t->poll_start_ns : 0);

	put_u64(o, "stack_bytes", t->stack_size);
	put_u64(o, "generation", t->generation);
	put_u64(o, "resumes", t->polls);
	if (t->last_tid)
		put_u64(o, "last_tid", t->last_tid);
	else
		json_object_object_add(o, "last_tid", NULL);
	put_seconds(o, "running_seconds", seconds(running));
	put_seconds(o, "suspended_seconds",
		    end - born > running ? seconds(end - born - running) : 0);
}

static const char *const discovered_names[] = {
	[TASK_FOUND_SPAWN] = "spawn",
	[TASK_FOUND_ATTACH_SCAN] = "attach_scan",
	[TASK_FOUND_FIRST_POLL] = "first_poll",
};

static struct json_object *task_json(const struct process *p, uint32_t index,
				     const struct report_input *in)
{
	const struct task *t = task_table__at(p->tasks, index);
	const struct task_type *ty = &p->tasks->types[t->type];
	struct json_object *o = json_object_new_object();
	uint64_t end = t->dealloc_ns ? t->dealloc_ns : t->end_ns ? t->end_ns : in->now_ns;
	uint64_t born = t->spawn_ns ? t->spawn_ns : t->first_poll_ns ? t->first_poll_ns : end;
	uint64_t last = t->running ? end : t->last_poll_end_ns ? t->last_poll_end_ns : born;
	char buf[64], reason[160] = "";
	bool suspect = task__suspect(t, in->now_ns, in->stuck_after_ns, reason, sizeof(reason));

	task_id(p, index, buf, sizeof(buf));
	json_object_object_add(o, "id", json_object_new_string(buf));
	json_object_object_add(o, "runtime", json_object_new_string(ty->runtime));
	json_object_object_add(
		o, "kind", json_object_new_string(t->kind == TASK_BLOCKING ? "blocking" : "async"));
	json_object_object_add(o, "type", json_object_new_string(ty->name));
	json_object_object_add(o, "state", json_object_new_string(task_state__name(t->state)));
	json_object_object_add(o, "discovered",
			       json_object_new_string(discovered_names[t->discovered]));
	json_object_object_add(o, "suspect", json_object_new_boolean(suspect));
	if (suspect)
		json_object_object_add(o, "suspect_reason", json_object_new_string(reason));
	if (t->parent_id) {
		snprintf(buf, sizeof(buf), "%s:%llu", ty->runtime,
			 (unsigned long long)t->parent_id);
		json_object_object_add(o, "parent", json_object_new_string(buf));
	} else {
		json_object_object_add(o, "parent", NULL);
	}
	snprintf(buf, sizeof(buf), "0x%llx",
		 (unsigned long long)(t->stack_size ? t->stack_base : t->key));
	json_object_object_add(o, "address", json_object_new_string(buf));
	if (t->stack_size)
		add_coroutine_fields(o, t, end, born);
	/* Made before attach (found in memory, or at a first poll): when is unknown. */
	if (!t->spawn_ns)
		json_object_object_add(o, "age_seconds", NULL);
	else
		put_seconds(o, "age_seconds", seconds(end - born));
	if (t->spawn_ns)
		put_seconds(o, "spawned_at_seconds", seconds(t->spawn_ns - p->start_ns));
	else
		json_object_object_add(o, "spawned_at_seconds", NULL);
	if (t->first_poll_ns)
		put_seconds(o, "first_poll_at_seconds", seconds(t->first_poll_ns - p->start_ns));
	else
		json_object_object_add(o, "first_poll_at_seconds", NULL);
	put_seconds(o, "idle_seconds", task__ended(t) ? 0 : seconds(end - last));
	put_seconds(o, "busy_seconds",
		    seconds(t->busy_ns + (t->running ? end - t->poll_start_ns : 0)));
	put_u64(o, "polls", t->polls);
	put_u64(o, "future_size_bytes", t->future_size);
	put_u64(o, "live_bytes", t->live_bytes);
	put_u64(o, "live_allocations", t->live_allocations);
	put_u64(o, "allocated_bytes_total", t->allocated_bytes_total);
	put_u64(o, "allocations_total", t->allocations_total);
	json_object_object_add(o, "detached", json_object_new_boolean(t->detached));
	json_object_object_add(o, "ended",
			       !t->end_ns ? NULL :
					    json_object_new_string(task_state__name(t->end_state)));
	if (t->end_ns)
		put_seconds(o, "ended_at_seconds", seconds(t->end_ns - p->start_ns));
	if (t->dealloc_ns)
		put_seconds(o, "deallocated_at_seconds", seconds(t->dealloc_ns - p->start_ns));
	scan_report__task_json(o, p, index);
	return o;
}

/* The runtimes p has, and what each adds to the report. */
static void add_runtimes(struct json_object *o, const struct process *p)
{
	struct json_object *list = json_object_new_array(), *sec;
	struct runtime_section rs;
	size_t i, j;

	json_object_object_add(o, "runtimes", list);
	for (i = 0; i < nruntimes; i++)
		if (runtimes[i]->listed && runtimes[i]->listed(p))
			json_object_array_add(list, json_object_new_string(runtimes[i]->name));
	for (i = 0; i < nruntimes; i++) {
		if (!runtimes[i]->section || !runtimes[i]->section(p, &rs) ||
		    json_object_object_get(o, rs.name))
			continue;
		sec = json_object_new_object();
		for (j = 0; j < rs.n; j++)
			put_u64(sec, rs.fields[j].key, rs.fields[j].value);
		if (rs.note)
			json_object_object_add(sec, "note", json_object_new_string(rs.note));
		json_object_object_add(o, rs.name, sec);
	}
}

static void add_tasks(struct json_object *o, const struct process *p, const struct report_input *in)
{
	const struct task_table *tt = p->tasks;
	struct json_object *summary, *types, *ty;
	struct task_figures f;
	bool have;
	uint32_t i;

	add_runtimes(o, p);
	have = !task_figures__compute(tt, in->now_ns, in->stuck_after_ns, &f);
	if (!have)
		memset(&f, 0, sizeof(f));
	summary = json_object_new_object();
	put_u64(summary, "spawned", f.spawned);
	put_u64(summary, "live", f.live);
	put_u64(summary, "completed", f.completed);
	put_u64(summary, "cancelled", f.cancelled);
	put_u64(summary, "suspects", f.suspects);
	put_u64(summary, "blocking_spawned", f.blocking_spawned);
	put_u64(summary, "blocking_live", f.blocking_live);
	put_u64(summary, "async_allocation_count", f.async_allocations);
	put_u64(summary, "async_allocated_bytes_total", f.async_allocated_bytes);
	put_u64(summary, "async_live_bytes", f.async_live_bytes);
	put_u64(summary, "future_state_overhead_bytes", p->heap.cell_live_bytes + f.early_cells);
	put_u64(summary, "average_future_size_bytes",
		tt->cells_seen ? tt->cells_bytes / tt->cells_seen : 0);
	put_u64(summary, "largest_future_size_bytes", tt->largest_cell);
	put_u64(summary, "untasked_live_bytes", p->heap.untasked_live_bytes);
	put_u64(summary, "untasked_allocated_bytes_total", p->heap.untasked_allocated_bytes_total);
	put_u64(summary, "outlived_live_bytes", f.outlived_live_bytes);
	put_u64(summary, "tasks_dropped", tt->tasks_dropped);
	put_u64(summary, "ended_tasks_recycled", tt->tasks_recycled);
	types = json_object_new_array();
	for (i = 0; i < tt->ntypes; i++) {
		const struct task_type *t = &tt->types[i];

		if (!t->spawned)
			continue;
		ty = json_object_new_object();
		json_object_object_add(ty, "name", json_object_new_string(t->name));
		json_object_object_add(ty, "runtime", json_object_new_string(t->runtime));
		put_u64(ty, "future_size_bytes", t->future_size);
		put_u64(ty, "spawned", t->spawned);
		put_u64(ty, "live", have ? f.types[i].live : 0);
		put_u64(ty, "completed", t->completed);
		put_u64(ty, "cancelled", t->cancelled);
		put_u64(ty, "suspects", have ? f.types[i].suspects : 0);
		put_u64(ty, "live_bytes", have ? f.types[i].live_bytes : 0);
		put_u64(ty, "allocated_bytes_total", t->allocated_bytes_total);
		put_u64(ty, "outlived_live_bytes", t->outlived_live_bytes);
		put_u64(ty, "polls", t->polls);
		json_object_array_add(types, ty);
	}
	task_figures__clear(&f);
	json_object_object_add(o, "tasks_summary", summary);
	json_object_object_add(o, "task_types", types);
}

/* An object's text without its closing brace, to append members to as it is written. */
static int put_open(FILE *f, struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);
	size_t n = s ? strlen(s) : 0;

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	if (!n || s[n - 1] != '}')
		return -EIO;
	n--;
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	return fwrite(s, 1, n, f) == n ? 0 : -EIO;
}

/*
 * "tasks" is written one task at a time: a report may hold a million, and as one json-c tree
 * they took ~2.5 KiB each (572 MB for the report of a 10-minute churn).
 */
static int write_tasks(FILE *f, const struct process *p, const struct report_input *in)
{
	const struct task_table *tt = p->tasks;
	struct json_object *t;
	const char *sep = "";
	char reason[8];
	uint32_t i;
	int pass, err = fputs(",\n  \"tasks\": [", f) < 0 ? -EIO : 0;

	/* Suspects first, then the rest, each in order of discovery. */
	for (pass = 0; pass < 2 && !err; pass++)
		for (i = 1; i < tt->ntasks && !err; i++) {
			const struct task *task = &tt->tasks[i];

			if (task->unused || task__suspect(task, in->now_ns, in->stuck_after_ns,
							  reason, sizeof(reason)) != (pass == 0))
				continue;
			t = task_json(p, i, in);
			if (!t || fprintf(f, "%s\n    %s", sep,
					  json_object_to_json_string_ext(t, JSON_FLAGS)) < 0)
				err = -EIO;
			json_object_put(t);
			sep = ",";
		}
	return err || fputs("\n  ]\n}", f) < 0 ? -EIO : 0;
}

static struct json_object *process_json(const struct process *p, const struct report_input *in)
{
	struct json_object *o = json_object_new_object(), *ts;

	put_u64(o, "pid", p->pid);
	json_object_object_add(o, "comm", json_object_new_string(p->comm));
	json_object_object_add(o, "exe", json_object_new_string(p->exe));
	if (p->allocator.family) {
		struct json_object *a = json_object_new_object();

		json_object_object_add(a, "family", json_object_new_string(p->allocator.family));
		json_object_object_add(
			a, "object",
			json_object_new_string(p->allocator.object ? p->allocator.object : ""));
		put_u64(a, "functions", p->allocator.functions);
		json_object_object_add(o, "allocator", a);
	}
	json_object_object_add(o, "exited", json_object_new_boolean(p->exited));
	json_object_object_add(o, "exec", json_object_new_boolean(p->execed));
	/* Daemon mode: where it runs, and how it became a target. */
	if (p->ns_pid)
		put_u64(o, "ns_pid", p->ns_pid);
	if (p->parent)
		put_u64(o, "parent", p->parent);
	if (p->cgroup) {
		json_object_object_add(o, "cgroup", json_object_new_string(p->cgroup));
		json_object_object_add(o, "container_id", json_object_new_string(p->container_id));
		json_object_object_add(o, "unit", json_object_new_string(p->unit));
	}
	if (p->attach_latency_ns)
		json_object_object_add(o, "attach_latency_seconds",
				       json_object_new_double((double)p->attach_latency_ns / 1e9));
	/* A forked child's allocator calls before its probes were live: not in its figures. */
	if (p->parent) {
		put_u64(o, "fork_window_calls_missed", p->fork_window_missed);
		json_object_object_add(o, "fork_window_counted",
				       json_object_new_boolean(!p->fork_window_uncounted));
	}
	/* Lost events or a bound hit make every figure a lower bound. */
	json_object_object_add(o, "complete",
			       json_object_new_boolean(!in->events_lost && process__complete(p)));
	json_object_object_add(o, "heap", heap_json(&p->heap));
	json_object_object_add(o, "threads", threads_json(p));
	json_object_object_add(o, "limits", limits_json(p));
	add_tasks(o, p, in);
	scan_report__process_json(o, p);
	ts = timeseries__json(in->timeseries, p);
	if (ts)
		json_object_object_add(o, "timeseries", ts);
	return o;
}

bool report__forgotten(const struct process *p, const struct report_input *in)
{
	return process__forgotten(p, in->now_ns, in->forget_after_ns);
}

/*
 * A forgotten process: who it was, its allocator, its heap and task figures at its end, its
 * bounds; no threads, task rows, series or stacks (ended_table.h). Keys in process_json's order.
 */
struct json_object *report_json__summary(const struct process_summary *s,
					 const struct report_input *in)
{
	struct json_object *o = json_object_new_object(), *a, *sum;
	const struct tasks_totals *t = s->tasks;
	static const struct tasks_totals zero;
	size_t i;

	if (!t)
		t = &zero;
	put_u64(o, "pid", s->pid);
	json_object_object_add(o, "comm", json_object_new_string(s->comm));
	json_object_object_add(o, "exe", json_object_new_string(s->exe));
	if (s->alloc_family) {
		a = json_object_new_object();
		json_object_object_add(a, "family", json_object_new_string(s->alloc_family));
		json_object_object_add(
			a, "object",
			json_object_new_string(s->alloc_object ? s->alloc_object : ""));
		put_u64(a, "functions", s->alloc_functions);
		json_object_object_add(o, "allocator", a);
	}
	json_object_object_add(o, "exited", json_object_new_boolean(s->exited));
	json_object_object_add(o, "exec", json_object_new_boolean(s->execed));
	if (s->ns_pid)
		put_u64(o, "ns_pid", s->ns_pid);
	if (s->parent)
		put_u64(o, "parent", s->parent);
	if (s->cgroup) {
		json_object_object_add(o, "cgroup", json_object_new_string(s->cgroup));
		json_object_object_add(o, "container_id", json_object_new_string(s->container_id));
		json_object_object_add(o, "unit", json_object_new_string(s->unit));
	}
	if (s->attach_latency_ns)
		json_object_object_add(o, "attach_latency_seconds",
				       json_object_new_double((double)s->attach_latency_ns / 1e9));
	if (s->parent) {
		put_u64(o, "fork_window_calls_missed", s->fork_window_missed);
		json_object_object_add(o, "fork_window_counted",
				       json_object_new_boolean(!s->fork_window_uncounted));
	}
	json_object_object_add(o, "complete",
			       json_object_new_boolean(!in->events_lost && s->complete));
	json_object_object_add(o, "forgotten", json_object_new_boolean(true));
	json_object_object_add(o, "heap", heap_json(&s->heap));
	a = json_object_new_object();
	put_u64(a, "allocations_dropped", s->blocks_dropped);
	put_u64(a, "thread_events_dropped", s->thread_events_dropped);
	put_u64(a, "tasks_dropped", s->tasks_dropped);
	put_u64(a, "task_types_dropped", s->types_dropped);
	put_u64(a, "allocations_replaced", s->blocks_replaced);
	json_object_object_add(o, "limits", a);
	a = json_object_new_array();
	for (i = 0; i < nruntimes && i < 32; i++)
		if (s->runtimes & (1u << i))
			json_object_array_add(a, json_object_new_string(runtimes[i]->name));
	json_object_object_add(o, "runtimes", a);
	sum = json_object_new_object();
	put_u64(sum, "spawned", t->spawned);
	put_u64(sum, "live", t->live);
	put_u64(sum, "completed", t->completed);
	put_u64(sum, "cancelled", t->cancelled);
	put_u64(sum, "suspects", t->suspects);
	put_u64(sum, "blocking_spawned", t->blocking_spawned);
	put_u64(sum, "blocking_live", t->blocking_live);
	put_u64(sum, "async_allocation_count", t->async_allocations);
	put_u64(sum, "async_allocated_bytes_total", t->async_allocated_bytes);
	put_u64(sum, "async_live_bytes", t->async_live_bytes);
	put_u64(sum, "future_state_overhead_bytes", t->future_state_overhead_bytes);
	put_u64(sum, "average_future_size_bytes", t->average_future_size_bytes);
	put_u64(sum, "largest_future_size_bytes", t->largest_future_size_bytes);
	put_u64(sum, "untasked_live_bytes", s->heap.untasked_live_bytes);
	put_u64(sum, "untasked_allocated_bytes_total", s->heap.untasked_allocated_bytes_total);
	put_u64(sum, "outlived_live_bytes", t->outlived_live_bytes);
	put_u64(sum, "tasks_dropped", t->tasks_dropped);
	put_u64(sum, "ended_tasks_recycled", t->tasks_recycled);
	json_object_object_add(o, "tasks_summary", sum);
	return o;
}

static int write_summary(FILE *f, const struct process_summary *s, const struct report_input *in)
{
	struct json_object *o = report_json__summary(s, in);
	const char *text = o ? json_object_to_json_string_ext(o, JSON_FLAGS) : NULL;
	int err = text && fputs(text, f) >= 0 ? 0 : -EIO;

	json_object_put(o);
	return err;
}

static int write_process(FILE *f, const struct process *p, const struct report_input *in)
{
	struct json_object *o, *stacks;
	struct process_summary sum;
	struct tasks_totals tasks;
	int err;

	if (report__forgotten(p, in)) {
		err = process_summary__of(p, in->stuck_after_ns, &sum, &tasks);
		return err ? err : write_summary(f, &sum, in);
	}
	o = process_json(p, in);
	stacks = report_stacks__json(p, in);

	if (o && stacks)
		json_object_object_add(o, "stacks", stacks);
	else
		json_object_put(stacks);
	err = o ? put_open(f, o) : -ENOMEM;

	json_object_put(o);
	return err ? err : write_tasks(f, p, in);
}

struct json_object *report_json__process(const struct process *p, const struct report_input *in)
{
	return process_json(p, in);
}

struct json_object *report_json__task(const struct process *p, uint32_t index,
				      const struct report_input *in)
{
	return task_json(p, index, in);
}

/* How many forgotten processes are listed, their bytes, and those folded past the bound. */
static struct json_object *forgotten_json(const struct ended_table *et)
{
	const struct ended_dropped *d = ended_table__dropped(et);
	struct json_object *o = json_object_new_object(), *dr = json_object_new_object();

	put_u64(o, "listed", ended_table__count(et));
	put_u64(o, "max_listed", ended_table__max(et));
	put_u64(o, "bytes", ended_table__bytes(et));
	put_u64(dr, "processes", d->processes);
	put_u64(dr, "live_bytes", d->live_bytes);
	put_u64(dr, "live_allocations", d->live_allocations);
	put_u64(dr, "allocated_bytes_total", d->allocated_bytes_total);
	put_u64(dr, "allocations_total", d->allocations_total);
	put_u64(dr, "frees_total", d->frees_total);
	put_u64(dr, "allocation_failures_total", d->allocation_failures_total);
	json_object_object_add(o, "dropped", dr);
	return o;
}

int report_json__write(FILE *f, const struct report_input *in)
{
	struct json_object *root = json_object_new_object(), *events;
	size_t i, n = process_table__count(in->procs), nended = ended_table__count(in->ended);
	char duration[32];
	int ret;

	if (!root)
		return -ENOMEM;
	put_u64(root, "report_version", 1);
	json_object_object_add(root, "mode", json_object_new_string(in->mode ? in->mode : "trace"));
	json_object_object_add(root, "memscoped_version",
			       json_object_new_string(MEMSCOPED_VERSION));
	snprintf(duration, sizeof(duration), "%.3f", in->duration_seconds);
	json_object_object_add(root, "duration_seconds",
			       json_object_new_double_s(in->duration_seconds, duration));
	events = json_object_new_object();
	put_u64(events, "received", in->events_received);
	put_u64(events, "lost", in->events_lost);
	json_object_object_add(root, "events", events);
	if (in->daemon_mode)
		put_u64(root, "targets_missed", in->targets_missed);
	if (in->ended)
		json_object_object_add(root, "forgotten_targets", forgotten_json(in->ended));
	/* Written a process at a time, tasks one by one: memory does not grow with the report. */
	ret = put_open(f, root);
	json_object_put(root);
	if (!ret && fputs(",\n  \"processes\": [", f) < 0)
		ret = -EIO;
	/* The compacted forgotten processes first, oldest first; then the table. */
	for (i = 0; i < nended + n && !ret; i++) {
		if (i && fputs(",\n", f) < 0)
			ret = -EIO;
		if (!ret && i < nended)
			ret = write_summary(f, ended_table__at(in->ended, i), in);
		else if (!ret)
			ret = write_process(f, process_table__at(in->procs, i - nended), in);
	}
	if (!ret && (fputs("]\n}\n", f) < 0 || fflush(f)))
		ret = -EIO;
	return ret;
}
