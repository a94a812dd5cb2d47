// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "report_stacks.h"
#include "stack_profile.h"

/* One stack's figures within a group of series (a task type, a task, the untasked heap). */
struct stack_sum {
	uint32_t stack;
	double alloc_objects, alloc_space, inuse_objects, inuse_space;
};

struct group {
	const struct stack_profile *sp;
	uint32_t *series; /* of one process, sorted by (task type, task, stack) */
	size_t n;
};

static int cmp_type(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static const struct stack_profile *sort_sp;

static int by_type_task_stack(const void *x, const void *y)
{
	const struct sp_series *a = &sort_sp->series[*(const uint32_t *)x];
	const struct sp_series *b = &sort_sp->series[*(const uint32_t *)y];
	int c = cmp_type(a->task_type, b->task_type);

	if (c)
		return c;
	if (a->task != b->task)
		return a->task < b->task ? -1 : 1;
	return a->stack < b->stack ? -1 : a->stack > b->stack;
}

static bool group_of(const struct stack_profile *sp, uint32_t pid, struct group *g)
{
	size_t i;

	g->sp = sp;
	g->n = 0;
	g->series = malloc((sp->nseries + 1) * sizeof(*g->series));
	if (!g->series)
		return false;
	for (i = 0; i < sp->nseries; i++)
		if (sp->series[i].pid == pid)
			g->series[g->n++] = (uint32_t)i;
	sort_sp = sp;
	qsort(g->series, g->n, sizeof(*g->series), by_type_task_stack);
	return true;
}

static int by_inuse(const void *x, const void *y)
{
	const struct stack_sum *a = x, *b = y;

	if (a->inuse_space != b->inuse_space)
		return a->inuse_space < b->inuse_space ? 1 : -1;
	return a->stack < b->stack ? -1 : a->stack > b->stack;
}

/* Sums series [from, to) of the group per stack; the stacks with live bytes, largest first. */
static size_t top_stacks(const struct group *g, size_t from, size_t to,
			 bool (*keep)(const struct sp_series *s, const void *arg), const void *arg,
			 struct stack_sum **ret)
{
	struct stack_sum *sums = calloc(to - from + 1, sizeof(*sums));
	size_t i, n = 0, j;

	*ret = sums;
	if (!sums)
		return 0;
	for (i = from; i < to; i++) {
		const struct sp_series *s = &g->sp->series[g->series[i]];

		if (keep && !keep(s, arg))
			continue;
		/* Same stack twice in the range only across tasks or threads: look back. */
		for (j = 0; j < n && sums[j].stack != s->stack; j++)
			;
		if (j == n)
			sums[n++].stack = s->stack;
		sums[j].alloc_objects += s->alloc_objects;
		sums[j].alloc_space += s->alloc_space;
		sums[j].inuse_objects += s->inuse_objects;
		sums[j].inuse_space += s->inuse_space;
	}
	qsort(sums, n, sizeof(*sums), by_inuse);
	while (n > 0 && llround(sums[n - 1].inuse_space) == 0)
		n--;
	return n;
}

static struct json_object *stack_json(const struct stack_profile *sp, const struct stack_sum *s)
{
	const struct sp_stack *st = &sp->stacks[s->stack];
	struct json_object *o = json_object_new_object(), *frames = json_object_new_array();
	char name[1024];
	uint32_t i;

	for (i = st->nframes; i-- > 0;) {
		stack_profile__frame_name(sp, st->frames[i], name, sizeof(name));
		json_object_array_add(frames, json_object_new_string(name));
	}
	json_object_object_add(o, "frames", frames);
	json_object_object_add(o, "truncated", json_object_new_boolean(st->truncated));
	json_object_object_add(o, "live_bytes", json_object_new_int64(llround(s->inuse_space)));
	json_object_object_add(o, "live_allocations",
			       json_object_new_int64(llround(s->inuse_objects)));
	json_object_object_add(o, "allocated_bytes",
			       json_object_new_int64(llround(s->alloc_space)));
	json_object_object_add(o, "allocations", json_object_new_int64(llround(s->alloc_objects)));
	return o;
}

static struct json_object *top_json(const struct group *g, size_t from, size_t to)
{
	struct json_object *a = json_object_new_array();
	struct stack_sum *sums;
	size_t n = top_stacks(g, from, to, NULL, NULL, &sums), i;

	for (i = 0; i < n && i < REPORT_STACKS_TOP; i++)
		json_object_array_add(a, stack_json(g->sp, &sums[i]));
	free(sums);
	return a;
}

/* Crates of the runtimes and of Rust's allocation path: a spawn site is outside them. */
static const char *const runtime_crates[] = {
	"tokio::",     "async_task::", "async_executor::", "async_global_executor::",
	"async_std::", "smol::",       "futures_lite::",   "alloc::",
	"core::",      "std::",	       "__rust",	   "__rdl",
	"__rg_",       "operator new",
};

static bool runtime_frame(const char *name)
{
	size_t i;

	/* "<tokio::runtime::task::core::Cell<T,S>>::new": the type's crate decides. */
	if (*name == '<')
		name++;
	for (i = 0; i < sizeof(runtime_crates) / sizeof(*runtime_crates); i++)
		if (!strncmp(name, runtime_crates[i], strlen(runtime_crates[i])))
			return true;
	return false;
}

/* The first frame outside the runtime in the stack of a task's cell, or -1. */
static long spawn_frame(const struct stack_profile *sp, const struct process *p,
			const struct task *t)
{
	long stack = stack_profile__live_stack(sp, p->pid, t->key);
	const struct sp_stack *st;
	uint32_t i;

	if (stack < 0)
		return -1;
	st = &sp->stacks[stack];
	for (i = 0; i < st->nframes; i++) {
		const struct sp_frame *f = &sp->frames[st->frames[i]];

		if (f->function && !runtime_frame(f->function))
			return st->frames[i];
	}
	return -1;
}

/* Per task type, the spawn site of the first of its tasks whose cell was sampled. */
static void spawn_sites(const struct process *p, const struct stack_profile *sp, long *ret)
{
	const struct task_table *tt = p->tasks;
	size_t i;

	for (i = 0; i < tt->ntypes; i++)
		ret[i] = -1;
	for (i = 1; i < tt->ntasks; i++) {
		const struct task *t = &tt->tasks[i];

		if (!t->unused && t->type < tt->ntypes && ret[t->type] < 0 && !t->stack_size)
			ret[t->type] = spawn_frame(sp, p, t);
	}
}

static struct json_object *spawn_json(const struct process *p, const struct stack_profile *sp)
{
	struct json_object *a = json_object_new_array(), *o;
	long *sites = malloc((p->tasks->ntypes + 1) * sizeof(*sites));
	size_t i;

	if (!sites)
		return a;
	spawn_sites(p, sp, sites);
	for (i = 0; i < p->tasks->ntypes; i++) {
		const struct sp_frame *f;

		if (sites[i] < 0)
			continue;
		f = &sp->frames[sites[i]];
		o = json_object_new_object();
		json_object_object_add(o, "task_type",
				       json_object_new_string(p->tasks->types[i].name));
		json_object_object_add(o, "function", json_object_new_string(f->function));
		if (f->file) {
			json_object_object_add(o, "file", json_object_new_string(f->file));
			json_object_object_add(o, "line", json_object_new_int64(f->line));
		}
		json_object_array_add(a, o);
	}
	free(sites);
	return a;
}

struct json_object *report_stacks__json(const struct process *p, const struct report_input *in)
{
	struct json_object *o, *types;
	struct group g;
	size_t i, j;

	if (!in->stacks || !group_of(in->stacks, p->pid, &g))
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "sample_bytes",
			       json_object_new_int64((int64_t)in->stacks->sample_bytes));
	json_object_object_add(o, "top", top_json(&g, 0, g.n));
	types = json_object_new_array();
	for (i = 0; i < g.n; i = j) {
		const char *type = in->stacks->series[g.series[i]].task_type;
		struct json_object *t, *top;

		for (j = i + 1;
		     j < g.n && !cmp_type(type, in->stacks->series[g.series[j]].task_type); j++)
			;
		if (!type)
			continue;
		top = top_json(&g, i, j);
		/* Types whose sampled blocks are all freed: nothing to show. */
		if (!json_object_array_length(top)) {
			json_object_put(top);
			continue;
		}
		t = json_object_new_object();
		json_object_object_add(t, "task_type", json_object_new_string(type));
		json_object_object_add(t, "top", top);
		json_object_array_add(types, t);
	}
	json_object_object_add(o, "task_types", types);
	json_object_object_add(o, "spawn_locations", spawn_json(p, in->stacks));
	free(g.series);
	return o;
}

static bool untasked(const struct sp_series *s, const void *arg)
{
	(void)arg;
	return s->task == 0;
}

static bool of_task(const struct sp_series *s, const void *arg)
{
	return s->task == *(const uint32_t *)arg;
}

static void text_top(FILE *f, const struct group *g, const char *title,
		     bool (*keep)(const struct sp_series *s, const void *arg), const void *arg)
{
	struct stack_sum *sums;
	size_t n = top_stacks(g, 0, g->n, keep, arg, &sums), i;
	const struct stack_profile *sp = g->sp;
	char name[1024];
	uint32_t k;

	if (n)
		fprintf(f, "\n  %s (sampled, estimated live bytes; leaf first)\n", title);
	for (i = 0; i < n && i < REPORT_STACKS_TEXT_TOP; i++) {
		const struct sp_stack *st = &sp->stacks[sums[i].stack];

		fprintf(f, "  %12lld B in %lld allocations%s\n", llround(sums[i].inuse_space),
			llround(sums[i].inuse_objects), st->truncated ? " (truncated)" : "");
		for (k = 0; k < st->nframes; k++) {
			stack_profile__frame_name(sp, st->frames[k], name, sizeof(name));
			fprintf(f, "      %s\n", name);
		}
	}
	free(sums);
}

static void spawn_text(FILE *f, const struct process *p, const struct stack_profile *sp)
{
	long *sites = malloc((p->tasks->ntypes + 1) * sizeof(*sites));
	bool first = true;
	size_t i;

	if (!sites)
		return;
	spawn_sites(p, sp, sites);
	for (i = 0; i < p->tasks->ntypes; i++) {
		const struct sp_frame *fr;

		if (sites[i] < 0)
			continue;
		if (first)
			fprintf(f, "\n  spawn locations (from sampled task cells)\n");
		first = false;
		fr = &sp->frames[sites[i]];
		fprintf(f, "  %s\n      spawned in %s", p->tasks->types[i].name, fr->function);
		if (fr->file)
			fprintf(f, " (%s:%" PRIu32 ")", fr->file, fr->line);
		fputc('\n', f);
	}
	free(sites);
}

void report_stacks__text(FILE *f, const struct process *p, const struct report_input *in)
{
	const struct task_table *tt = p->tasks;
	char reason[160], title[256];
	size_t shown = 0;
	struct group g;
	uint32_t i;

	if (!in->stacks || !group_of(in->stacks, p->pid, &g))
		return;
	text_top(f, &g, "stacks of the untasked live heap", untasked, NULL);
	for (i = 1; i < tt->ntasks && shown < 40; i++) {
		const struct task *t = &tt->tasks[i];

		if (t->unused ||
		    !task__suspect(t, in->now_ns, in->stuck_after_ns, reason, sizeof(reason)))
			continue;
		shown++;
		snprintf(title, sizeof(title), "stacks of suspect task #%" PRIu32 " (%s)", i,
			 tt->types[t->type].name);
		text_top(f, &g, title, of_task, &i);
	}
	free(g.series);
	spawn_text(f, p, in->stacks);
}
