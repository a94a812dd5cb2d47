// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "task_table.h"
#include "timeseries.h"

/* Columns of a series: time, heap, untasked, task cells, then one per type slot. */
enum { COL_AT, COL_HEAP, COL_UNTASKED, COL_CELLS, COL_TYPES, NCOLS = COL_TYPES + TIMESERIES_TYPES };

struct slot {
	bool used;
	uint32_t type; /* task_types index */
	uint64_t peak;
};

/* Points a series holds at first (daemon mode keeps one per process it ever traced). */
#define SERIES_FIRST_CAP 16

struct series {
	uint32_t pid;
	size_t n;
	size_t cap;	      /* points each column holds now, up to max_points */
	uint64_t *col[NCOLS]; /* each cap long; COL_AT is ns since attach */
	struct slot slots[TIMESERIES_TYPES];
	uint64_t stride;    /* due ticks per point: doubles each time the series is thinned */
	uint64_t next_tick; /* the due tick of the next point */
};

struct timeseries {
	uint64_t step_ns;
	size_t max_points;
	uint64_t next_ns; /* when the next tick is due; 0 = at the first call */
	uint64_t ticks;	  /* due ticks so far */
	struct series *series;
	size_t nseries;
	uint64_t *held; /* scratch: bytes held per task type */
	size_t held_cap;
};

struct timeseries *timeseries__new(double step_seconds, size_t max_points)
{
	struct timeseries *ts;

	if (!(step_seconds > 0) || max_points < 2)
		return NULL;
	ts = calloc(1, sizeof(*ts));
	if (!ts)
		return NULL;
	ts->step_ns = (uint64_t)(step_seconds * 1e9);
	if (!ts->step_ns)
		ts->step_ns = 1;
	ts->max_points = max_points;
	return ts;
}

void timeseries__free(struct timeseries *ts)
{
	size_t i;

	if (!ts)
		return;
	for (i = 0; i < ts->nseries; i++)
		free(ts->series[i].col[0]);
	free(ts->series);
	free(ts->held);
	free(ts);
}

static struct series *series_find(const struct timeseries *ts, uint32_t pid)
{
	size_t i;

	for (i = 0; i < ts->nseries; i++)
		if (ts->series[i].pid == pid)
			return &ts->series[i];
	return NULL;
}

static struct series *series_get(struct timeseries *ts, uint32_t pid)
{
	struct series *s = series_find(ts, pid), *grown;
	uint64_t *block;
	int c;

	if (s)
		return s;
	grown = realloc(ts->series, (ts->nseries + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	ts->series = grown;
	block = calloc(NCOLS * SERIES_FIRST_CAP, sizeof(*block));
	if (!block)
		return NULL;
	s = &ts->series[ts->nseries++];
	memset(s, 0, sizeof(*s));
	s->pid = pid;
	s->stride = 1;
	s->next_tick = ts->ticks;
	s->cap = SERIES_FIRST_CAP;
	for (c = 0; c < NCOLS; c++)
		s->col[c] = block + (size_t)c * s->cap;
	return s;
}

/* Twice the points, at most max_points: a short-lived process's series stays small. */
static int series_grow(const struct timeseries *ts, struct series *s)
{
	size_t cap = s->cap * 2 < ts->max_points ? s->cap * 2 : ts->max_points;
	uint64_t *block = calloc(NCOLS * cap, sizeof(*block));
	int c;

	if (!block)
		return -ENOMEM;
	for (c = 0; c < NCOLS; c++)
		memcpy(block + (size_t)c * cap, s->col[c], s->n * sizeof(*block));
	free(s->col[0]);
	for (c = 0; c < NCOLS; c++)
		s->col[c] = block + (size_t)c * cap;
	s->cap = cap;
	return 0;
}

/* Full: keep every other point, from the first, and record half as often from now on. */
static void thin(struct series *s)
{
	size_t i;
	int c;

	for (c = 0; c < NCOLS; c++)
		for (i = 0; 2 * i < s->n; i++)
			s->col[c][i] = s->col[c][2 * i];
	s->n = (s->n + 1) / 2;
	s->stride *= 2;
}

/* Bytes held per task type now: its live tasks' live bytes plus what its ended tasks left. */
static int compute_held(struct timeseries *ts, const struct task_table *tt)
{
	uint64_t *grown;
	size_t i;

	if (tt->ntypes > ts->held_cap) {
		grown = realloc(ts->held, tt->ntypes * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		ts->held = grown;
		ts->held_cap = tt->ntypes;
	}
	for (i = 0; i < tt->ntypes; i++)
		ts->held[i] = tt->types[i].outlived_live_bytes;
	for (i = 1; i < tt->ntasks; i++) {
		const struct task *t = &tt->tasks[i];

		if (!t->unused && !task__ended(t) && t->type < tt->ntypes)
			ts->held[t->type] += t->live_bytes;
	}
	return 0;
}

static bool slotted(const struct series *s, uint32_t type)
{
	int i;

	for (i = 0; i < TIMESERIES_TYPES; i++)
		if (s->slots[i].used && s->slots[i].type == type)
			return true;
	return false;
}

/*
 * The largest holders without a slot take a free slot, or the slot with the smallest peak
 * when they hold more than that peak. A slot's earlier points are zeroed when it changes
 * hands: those bytes then count as "other", never under the wrong name.
 */
static void assign_slots(struct series *s, const uint64_t *held, size_t ntypes)
{
	uint32_t top[TIMESERIES_TYPES];
	size_t ntop = 0, i, j;
	int k, victim;

	for (i = 0; i < ntypes; i++) {
		if (!held[i] || slotted(s, (uint32_t)i))
			continue;
		if (ntop == TIMESERIES_TYPES && held[i] <= held[top[ntop - 1]])
			continue;
		if (ntop < TIMESERIES_TYPES)
			ntop++;
		for (j = ntop - 1; j > 0 && held[top[j - 1]] < held[i]; j--)
			top[j] = top[j - 1];
		top[j] = (uint32_t)i;
	}
	for (i = 0; i < ntop; i++) {
		victim = -1;
		for (k = 0; k < TIMESERIES_TYPES; k++) {
			if (!s->slots[k].used) {
				victim = k;
				break;
			}
			if (victim < 0 || s->slots[k].peak < s->slots[victim].peak)
				victim = k;
		}
		if (s->slots[victim].used && s->slots[victim].peak >= held[top[i]])
			break;
		s->slots[victim] =
			(struct slot){ .used = true, .type = top[i], .peak = held[top[i]] };
		memset(s->col[COL_TYPES + victim], 0, s->n * sizeof(uint64_t));
	}
}

static int record(struct timeseries *ts, struct series *s, const struct process *p, uint64_t now_ns)
{
	const struct task_table *tt = p->tasks;
	size_t n;
	int k;

	if (tt && compute_held(ts, tt))
		return -ENOMEM;
	if (s->n == ts->max_points)
		thin(s);
	else if (s->n == s->cap && series_grow(ts, s))
		return -ENOMEM;
	if (tt)
		assign_slots(s, ts->held, tt->ntypes);
	n = s->n++;
	s->col[COL_AT][n] = now_ns > p->start_ns ? now_ns - p->start_ns : 0;
	s->col[COL_HEAP][n] = p->heap.live_bytes;
	s->col[COL_UNTASKED][n] = p->heap.untasked_live_bytes;
	s->col[COL_CELLS][n] = p->heap.cell_live_bytes;
	for (k = 0; k < TIMESERIES_TYPES; k++) {
		uint64_t v = s->slots[k].used && tt ? ts->held[s->slots[k].type] : 0;

		s->col[COL_TYPES + k][n] = v;
		if (v > s->slots[k].peak)
			s->slots[k].peak = v;
	}
	return 0;
}

int timeseries__tick(struct timeseries *ts, struct process_table *procs, uint64_t now_ns,
		     bool force)
{
	bool due, series_due;
	size_t i;
	int err = 0;

	if (!ts)
		return 0;
	due = !ts->next_ns || now_ns >= ts->next_ns;
	if (!due && !force)
		return 0;
	if (due) {
		ts->next_ns = now_ns + ts->step_ns;
		ts->ticks++;
	}
	for (i = 0; i < process_table__count(procs); i++) {
		const struct process *p = process_table__at(procs, i);
		struct series *s = series_get(ts, p->pid);

		if (!s) {
			err = -ENOMEM;
			continue;
		}
		/* A forced point that was not due is extra: it leaves the schedule alone. */
		series_due = due && ts->ticks >= s->next_tick;
		if (!series_due && !force)
			continue;
		if (record(ts, s, p, now_ns))
			err = -ENOMEM;
		/* After record(): a point that thinned the series waits the doubled stride. */
		if (series_due)
			s->next_tick = ts->ticks + s->stride;
	}
	return err;
}

void timeseries__keep_only(struct timeseries *ts, struct process_table *procs)
{
	size_t i, j = 0;

	if (!ts)
		return;
	for (i = 0; i < ts->nseries; i++) {
		if (!process_table__find(procs, ts->series[i].pid)) {
			free(ts->series[i].col[0]);
			continue;
		}
		ts->series[j++] = ts->series[i];
	}
	ts->nseries = j;
}

size_t timeseries__points(const struct timeseries *ts, const struct process *p)
{
	const struct series *s = ts ? series_find(ts, p->pid) : NULL;

	return s ? s->n : 0;
}

static struct json_object *column(const struct series *s, int c)
{
	struct json_object *a = json_object_new_array_ext((int)s->n);
	size_t i;

	for (i = 0; i < s->n; i++)
		json_object_array_add(a, json_object_new_uint64(s->col[c][i]));
	return a;
}

struct json_object *timeseries__json(const struct timeseries *ts, const struct process *p)
{
	const struct series *s = ts ? series_find(ts, p->pid) : NULL;
	struct json_object *o, *a, *ty;
	int order[TIMESERIES_TYPES], k, j, m = 0;
	uint64_t other;
	char buf[32];
	size_t i;

	if (!s)
		return NULL;
	o = json_object_new_object();
	snprintf(buf, sizeof(buf), "%.3f", (double)(ts->step_ns * s->stride) / 1e9);
	json_object_object_add(
		o, "step_seconds",
		json_object_new_double_s((double)(ts->step_ns * s->stride) / 1e9, buf));
	json_object_object_add(o, "max_points", json_object_new_uint64(ts->max_points));
	a = json_object_new_array_ext((int)s->n);
	for (i = 0; i < s->n; i++) {
		snprintf(buf, sizeof(buf), "%.3f", (double)s->col[COL_AT][i] / 1e9);
		json_object_array_add(
			a, json_object_new_double_s((double)s->col[COL_AT][i] / 1e9, buf));
	}
	json_object_object_add(o, "seconds", a);
	json_object_object_add(o, "heap_live_bytes", column(s, COL_HEAP));
	json_object_object_add(o, "untasked_live_bytes", column(s, COL_UNTASKED));
	json_object_object_add(o, "task_cell_live_bytes", column(s, COL_CELLS));
	/* Slots by peak, largest first; ties in slot order. */
	for (k = 0; k < TIMESERIES_TYPES; k++) {
		if (!s->slots[k].used || !p->tasks || s->slots[k].type >= p->tasks->ntypes)
			continue;
		for (j = m++; j > 0 && s->slots[order[j - 1]].peak < s->slots[k].peak; j--)
			order[j] = order[j - 1];
		order[j] = k;
	}
	a = json_object_new_array();
	for (j = 0; j < m; j++) {
		const struct task_type *tp = &p->tasks->types[s->slots[order[j]].type];

		ty = json_object_new_object();
		json_object_object_add(ty, "name", json_object_new_string(tp->name));
		json_object_object_add(ty, "runtime", json_object_new_string(tp->runtime));
		json_object_object_add(ty, "held_bytes", column(s, COL_TYPES + order[j]));
		json_object_array_add(a, ty);
	}
	json_object_object_add(o, "task_types", a);
	/* The rest of the heap: the other types' tasks (and blocks of forgotten tasks). */
	a = json_object_new_array_ext((int)s->n);
	for (i = 0; i < s->n; i++) {
		uint64_t known = s->col[COL_UNTASKED][i] + s->col[COL_CELLS][i];

		for (k = 0; k < TIMESERIES_TYPES; k++)
			known += s->col[COL_TYPES + k][i];
		other = s->col[COL_HEAP][i] > known ? s->col[COL_HEAP][i] - known : 0;
		json_object_array_add(a, json_object_new_uint64(other));
	}
	json_object_object_add(o, "other_task_held_bytes", a);
	return o;
}
