// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdbool.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api_snapshot.h"

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *keep_string(struct api_snapshot *s, const char *str)
{
	char **grown, *copy;
	size_t cap;

	if (s->nstrings == s->strings_cap) {
		cap = s->strings_cap ? 2 * s->strings_cap : 64;
		grown = realloc(s->strings, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		s->strings = grown;
		s->strings_cap = cap;
	}
	copy = strdup(str ? str : "");
	if (copy)
		s->strings[s->nstrings++] = copy;
	return copy;
}

static double seconds(uint64_t ns)
{
	return (double)ns / 1e9;
}

static const char *const discovered_names[] = {
	[TASK_FOUND_SPAWN] = "spawn",
	[TASK_FOUND_ATTACH_SCAN] = "attach_scan",
	[TASK_FOUND_FIRST_POLL] = "first_poll",
};

/* Decimal digits of v at dst; returns the end. snprintf was most of the copy's time. */
static char *put_decimal(char *dst, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*dst++ = tmp[--n];
	*dst = '\0';
	return dst;
}

static void put_hex(char *dst, uint64_t v)
{
	char tmp[16];
	int n = 0;

	*dst++ = '0';
	*dst++ = 'x';
	do
		tmp[n++] = "0123456789abcdef"[v & 0xf];
	while ((v >>= 4));
	while (n)
		*dst++ = tmp[--n];
	*dst = '\0';
}

static void put_tokio_id(char *dst, uint64_t id)
{
	memcpy(dst, "tokio:", 6);
	put_decimal(dst + 6, id);
}

/* The figures of the report's task object (report_json.c task_json), computed the same way. */
static int fill_row(struct api_snapshot *s, const struct process *p, uint32_t index,
		    const char *const *names, const char *const *runtimes,
		    const struct report_input *in, const char *reason, struct task_row *r)
{
	const struct task *t = &p->tasks->tasks[index];
	uint64_t end = t->dealloc_ns ? t->dealloc_ns : t->end_ns ? t->end_ns : in->now_ns;
	uint64_t born = t->spawn_ns ? t->spawn_ns : t->first_poll_ns ? t->first_poll_ns : end;
	uint64_t last = t->running ? end : t->last_poll_end_ns ? t->last_poll_end_ns : born;

	memset(r, 0, sizeof(*r));
	r->pid = p->pid;
	r->seq = index;
	r->suspect = reason != NULL;
	if (r->suspect && !(r->suspect_reason = keep_string(s, reason)))
		return -ENOMEM;
	if (t->stack_size && t->type < p->tasks->ntypes)
		snprintf(r->id, sizeof(r->id), "%s:0x%llx/%u", runtimes[t->type],
			 (unsigned long long)t->stack_base, t->generation);
	else if (t->runtime_id)
		put_tokio_id(r->id, t->runtime_id);
	else
		snprintf(r->id, sizeof(r->id), "tokio:#%u", index);
	if (t->parent_id)
		put_tokio_id(r->parent, t->parent_id);
	put_hex(r->address, t->stack_size ? t->stack_base : t->key);
	r->runtime = runtimes[t->type];
	r->type = names[t->type];
	strcpy(r->kind, t->kind == TASK_BLOCKING ? "blocking" : "async");
	strcpy(r->state, task_state__name(t->state));
	strcpy(r->discovered, discovered_names[t->discovered]);
	if (t->end_ns)
		strcpy(r->ended, task_state__name(t->end_state));
	r->detached = t->detached;
	r->age_known = t->spawn_ns != 0;
	r->age_seconds = seconds(end - born);
	r->spawned_known = t->spawn_ns != 0;
	r->spawned_at_seconds = t->spawn_ns ? seconds(t->spawn_ns - p->start_ns) : 0;
	r->first_poll_known = t->first_poll_ns != 0;
	r->first_poll_at_seconds = t->first_poll_ns ? seconds(t->first_poll_ns - p->start_ns) : 0;
	r->idle_seconds = task__ended(t) ? 0 : seconds(end - last);
	r->busy_seconds = seconds(t->busy_ns + (t->running ? end - t->poll_start_ns : 0));
	r->ended_known = t->end_ns != 0;
	r->ended_at_seconds = t->end_ns ? seconds(t->end_ns - p->start_ns) : 0;
	r->deallocated_known = t->dealloc_ns != 0;
	r->deallocated_at_seconds = t->dealloc_ns ? seconds(t->dealloc_ns - p->start_ns) : 0;
	if (t->stack_size) {
		uint64_t running = t->busy_ns + (t->running ? end - t->poll_start_ns : 0);

		r->stack_bytes = t->stack_size;
		r->generation = t->generation;
		r->last_tid = t->last_tid;
		r->running_seconds = seconds(running);
		r->suspended_seconds = end - born > running ? seconds(end - born - running) : 0;
	}
	r->polls = t->polls;
	r->future_size_bytes = t->future_size;
	r->live_bytes = t->live_bytes;
	r->live_allocations = t->live_allocations;
	r->allocated_bytes_total = t->allocated_bytes_total;
	r->allocations_total = t->allocations_total;
	return 0;
}

static int add_process_json(struct api_snapshot *s, const struct process *p,
			    const struct report_input *in)
{
	struct json_object *o = report_json__process(p, in);
	const char *text;
	char *copy;

	text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE) :
		   NULL;
	copy = text ? strdup(text) : NULL;
	json_object_put(o);
	if (!copy)
		return -ENOMEM;
	s->procs[s->nprocs].pid = p->pid;
	s->procs[s->nprocs++].json = copy;
	return 0;
}

/* Suspects first, then the rest, like the report: the bound cuts the rest. */
static int add_tasks(struct api_snapshot *s, const struct process *p, const struct report_input *in,
		     size_t max_tasks)
{
	const struct task_table *tt = p->tasks;
	const char **names, **runtimes;
	bool *others;
	char reason[160];
	uint32_t i;
	int err = 0;

	if (!tt)
		return 0;
	names = calloc(tt->ntypes + 1, sizeof(*names));
	runtimes = calloc(tt->ntypes + 1, sizeof(*runtimes));
	others = calloc(tt->ntasks + 1, sizeof(*others));
	for (i = 0; names && runtimes && i < tt->ntypes; i++) {
		names[i] = keep_string(s, tt->types[i].name);
		runtimes[i] = keep_string(s, tt->types[i].runtime);
		if (!names[i] || !runtimes[i])
			err = -ENOMEM;
	}
	if (!names || !runtimes || !others)
		err = -ENOMEM;
	/* One suspect test per task: the reason is kept as it is found. */
	for (i = 1; i < tt->ntasks && !err; i++) {
		const struct task *t = &tt->tasks[i];

		if (t->unused || t->type >= tt->ntypes)
			continue;
		if (!task__suspect(t, in->now_ns, in->stuck_after_ns, reason, sizeof(reason))) {
			others[i] = true;
		} else if (s->ntasks >= max_tasks) {
			s->tasks_omitted++;
		} else {
			err = fill_row(s, p, i, names, runtimes, in, reason, &s->tasks[s->ntasks]);
			s->ntasks += !err;
		}
	}
	for (i = 1; i < tt->ntasks && !err; i++) {
		if (!others[i])
			continue;
		if (s->ntasks >= max_tasks) {
			s->tasks_omitted++;
			continue;
		}
		err = fill_row(s, p, i, names, runtimes, in, NULL, &s->tasks[s->ntasks]);
		s->ntasks += !err;
	}
	free(others);
	free(names);
	free(runtimes);
	return err;
}

static size_t count_tasks(const struct report_input *in)
{
	size_t i, n = 0;

	for (i = 0; i < process_table__count(in->procs); i++) {
		const struct process *p = process_table__at(in->procs, i);

		if (p->tasks)
			n += p->tasks->ntasks;
	}
	return n;
}

struct api_snapshot *api_snapshot__new(const struct report_input *in, size_t max_tasks)
{
	size_t i, nprocs = process_table__count(in->procs), ntasks = count_tasks(in);
	uint64_t start = monotonic_ns();
	struct api_snapshot *s;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->refs = 1;
	s->taken_ns = in->now_ns;
	s->duration_seconds = in->duration_seconds;
	s->events_received = in->events_received;
	s->events_lost = in->events_lost;
	s->procs = calloc(nprocs + 1, sizeof(*s->procs));
	s->tasks = malloc((ntasks < max_tasks ? ntasks : max_tasks) * sizeof(*s->tasks) + 1);
	if (!s->procs || !s->tasks)
		goto err;
	for (i = 0; i < nprocs; i++) {
		const struct process *p = process_table__at(in->procs, i);

		if (add_process_json(s, p, in) || add_tasks(s, p, in, max_tasks))
			goto err;
	}
	s->build_ns = monotonic_ns() - start;
	return s;
err:
	api_snapshot__put(s);
	return NULL;
}

struct api_snapshot *api_snapshot__get(struct api_snapshot *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void api_snapshot__put(struct api_snapshot *s)
{
	size_t i;

	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL))
		return;
	for (i = 0; i < s->nprocs; i++)
		free(s->procs[i].json);
	for (i = 0; i < s->nstrings; i++)
		free(s->strings[i]);
	free(s->strings);
	free(s->procs);
	free(s->tasks);
	free(s);
}
