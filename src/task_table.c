// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "task_table.h"

#define OTHER_TYPE "other"
#define OTHER_BLOCKING_TYPE "other (blocking)"

const double task_poll_bounds[POLL_BUCKETS] = {
	0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5,
};

struct task_table *task_table__new(size_t max_tasks, size_t max_types)
{
	struct task_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->max_tasks = max_tasks;
	t->max_types = max_types;
	/* Small at first: daemon mode keeps a table per process it ever traced. */
	t->by_key_mask = 63;
	t->by_key = calloc(t->by_key_mask + 1, sizeof(*t->by_key));
	t->cap = 16;
	t->tasks = calloc(t->cap, sizeof(*t->tasks));
	if (!t->by_key || !t->tasks) {
		task_table__free(t);
		return NULL;
	}
	t->ntasks = 1; /* index 0 means "no task" */
	return t;
}

void task_table__free(struct task_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->ntypes; i++)
		free(t->types[i].name);
	free(t->types);
	free(t->tasks);
	free(t->retired);
	free(t->free_slots);
	free(t->by_key);
	free(t);
}

static bool find_type(const struct task_table *t, const char *runtime, const char *name,
		      uint32_t *ret_type)
{
	size_t i;

	for (i = 0; i < t->ntypes; i++)
		if (t->types[i].runtime == runtime && !strcmp(t->types[i].name, name)) {
			*ret_type = (uint32_t)i;
			return true;
		}
	return false;
}

/* Finds or adds a type regardless of the bound; 0 (the first type) when out of memory. */
static uint32_t add_type(struct task_table *t, const char *runtime, const char *name)
{
	struct task_type *types;
	uint32_t i;

	if (find_type(t, runtime, name, &i))
		return i;
	if (t->ntypes == t->types_cap) {
		size_t cap = t->types_cap ? t->types_cap * 2 : 16;

		types = realloc(t->types, cap * sizeof(*types));
		if (!types)
			return 0;
		t->types = types;
		t->types_cap = cap;
	}
	memset(&t->types[t->ntypes], 0, sizeof(*t->types));
	t->types[t->ntypes].name = strdup(name);
	t->types[t->ntypes].runtime = runtime;
	if (!t->types[t->ntypes].name)
		return 0;
	return (uint32_t)t->ntypes++;
}

uint32_t task_table__type(struct task_table *t, const char *runtime, const char *name)
{
	uint32_t i;

	if (find_type(t, runtime, name, &i))
		return i;
	if (t->max_types && t->ntypes >= t->max_types) {
		t->types_dropped++;
		/* Everything past the bound shares a type, one per kind (see task_table__spawn). */
		name = OTHER_TYPE;
	}
	return add_type(t, runtime, name);
}

static size_t key_slot(const struct task_table *t, uint64_t key)
{
	size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & t->by_key_mask;

	while (t->by_key[i] && t->tasks[t->by_key[i]].key != key)
		i = (i + 1) & t->by_key_mask;
	return i;
}

static void key_remove(struct task_table *t, uint64_t key)
{
	size_t i = key_slot(t, key), j, home;

	if (!t->by_key[i])
		return;
	/* Backward-shift deletion, as in the heap table. */
	for (j = i;;) {
		j = (j + 1) & t->by_key_mask;
		if (!t->by_key[j])
			break;
		home = (size_t)((t->tasks[t->by_key[j]].key * 0x9e3779b97f4a7c15ull) >> 20) &
		       t->by_key_mask;
		if (((j - home) & t->by_key_mask) >= ((j - i) & t->by_key_mask)) {
			t->by_key[i] = t->by_key[j];
			i = j;
		}
	}
	t->by_key[i] = 0;
	t->by_key_count--;
}

static int key_grow(struct task_table *t)
{
	size_t cap = (t->by_key_mask + 1) * 2, i;
	uint32_t *old = t->by_key;
	size_t old_cap = t->by_key_mask + 1;

	t->by_key = calloc(cap, sizeof(*t->by_key));
	if (!t->by_key) {
		t->by_key = old;
		return -ENOMEM;
	}
	t->by_key_mask = cap - 1;
	for (i = 0; i < old_cap; i++)
		if (old[i])
			t->by_key[key_slot(t, t->tasks[old[i]].key)] = old[i];
	free(old);
	return 0;
}

struct task *task_table__find(struct task_table *t, uint64_t key)
{
	size_t i = key_slot(t, key);

	return t->by_key[i] ? &t->tasks[t->by_key[i]] : NULL;
}

int task_table__set_max_retired(struct task_table *t, size_t n)
{
	/* The ring comes with the first retired task: most processes never have one. */
	free(t->retired);
	t->retired = NULL;
	t->max_retired = n;
	t->retired_head = t->retired_count = 0;
	return 0;
}

void task_table__cell(struct task_table *t, struct task *task, uint64_t size)
{
	task->future_size = size;
	t->cells_seen++;
	t->cells_bytes += size;
	if (size > t->largest_cell)
		t->largest_cell = size;
	if (t->ntypes)
		t->types[task->type].future_size = size;
}

/*
 * An ended tokio task whose cell is freed and which holds no block joins the retired ring;
 * the oldest one past max_retired gives its slot back. Nothing refers to it any more: no key,
 * no live block (parents are kept by runtime id). Coroutines are kept: stacks refer to them.
 */
static void retire(struct task_table *t, struct task *task)
{
	uint32_t old;
	size_t *slots_cap = &t->free_cap;

	if (!t->max_retired || task->retired || task->unused || task->stack_size ||
	    task->state != TASK_DEALLOCATED || task->live_allocations)
		return;
	if (!t->retired && !(t->retired = calloc(t->max_retired, sizeof(*t->retired))))
		return;
	if (t->retired_count == t->max_retired) {
		if (t->nfree == *slots_cap) {
			size_t cap = *slots_cap ? *slots_cap * 2 : 1024;
			uint32_t *slots = realloc(t->free_slots, cap * sizeof(*slots));

			if (!slots)
				return;
			t->free_slots = slots;
			*slots_cap = cap;
		}
		old = t->retired[t->retired_head];
		t->retired_head = (t->retired_head + 1) % t->max_retired;
		t->retired_count--;
		memset(&t->tasks[old], 0, sizeof(t->tasks[old]));
		t->tasks[old].unused = true;
		t->tasks[old].state = TASK_DEALLOCATED;
		t->free_slots[t->nfree++] = old;
		t->tasks_recycled++;
	}
	task->retired = true;
	t->retired[(t->retired_head + t->retired_count) % t->max_retired] =
		task_table__index(t, task);
	t->retired_count++;
}

struct task *task_table__spawn(struct task_table *t, uint64_t key, uint32_t type,
			       enum task_kind kind, enum task_discovery how, uint64_t spawn_ns)
{
	struct task *old = task_table__find(t, key), *task;
	uint32_t idx;

	/* Tokio reuses addresses: a new lifetime never continues an old one. */
	if (old)
		task_table__dealloc(t, old, old->last_poll_end_ns);
	if (t->max_tasks && t->ntasks - 1 - t->nfree >= t->max_tasks) {
		t->tasks_dropped++;
		return NULL;
	}
	if ((t->by_key_count + 1) * 2 > t->by_key_mask + 1 && key_grow(t))
		return NULL;
	if (t->nfree) {
		idx = t->free_slots[--t->nfree];
		goto fill;
	}
	if (t->ntasks == t->cap) {
		struct task *tasks = realloc(t->tasks, t->cap * 2 * sizeof(*tasks));

		if (!tasks)
			return NULL;
		t->tasks = tasks;
		t->cap *= 2;
	}
	idx = (uint32_t)t->ntasks++;
fill:
	task = &t->tasks[idx];
	memset(task, 0, sizeof(*task));
	task->key = key;
	task->type = type < t->ntypes ? type : 0;
	task->kind = kind;
	task->state = TASK_IDLE;
	task->discovered = how;
	task->spawn_ns = spawn_ns;
	t->by_key[key_slot(t, key)] = idx;
	t->by_key_count++;
	/* Past --max-types, blocking tasks get a type of their own: a type has one kind. */
	if (t->ntypes && kind == TASK_BLOCKING && !strcmp(t->types[task->type].name, OTHER_TYPE))
		task->type = add_type(t, t->types[task->type].runtime, OTHER_BLOCKING_TYPE);
	if (t->ntypes) {
		/* Types are ranked by their first task: metric labels go to those that ran. */
		if (!t->types[task->type].spawned++) {
			t->types[task->type].rank = ++t->types_ranked;
			t->types[task->type].kind = kind;
		}
	}
	return task;
}

void task_table__retype(struct task_table *t, struct task *task, uint32_t type)
{
	if (!t->ntypes || type >= t->ntypes || type == task->type)
		return;
	if (t->types[task->type].spawned)
		t->types[task->type].spawned--;
	task->type = type;
	if (!t->types[type].spawned++) {
		t->types[type].rank = ++t->types_ranked;
		t->types[type].kind = task->kind;
	}
}

void task_table__poll_begin(struct task_table *t, struct task *task, uint64_t ts)
{
	(void)t;
	if (!task->first_poll_ns)
		task->first_poll_ns = ts;
	task->poll_start_ns = ts;
	task->running = true;
	/* Counted here: a poll that frees its own cell never reports its exit. */
	task->polls++;
	if (t->ntypes)
		t->types[task->type].polls++;
	if (!task__ended(task))
		task->state = TASK_RUNNING;
}

static void end(struct task_table *t, struct task *task, enum task_state state, uint64_t ts)
{
	if (task__ended(task))
		return;
	task->state = state;
	task->end_state = state;
	task->end_ns = ts;
	if (!t->ntypes)
		return;
	if (state == TASK_CANCELLED)
		t->types[task->type].cancelled++;
	else
		t->types[task->type].completed++;
	/* From now on what it still holds has outlived it. */
	t->types[task->type].outlived_live_bytes += task->live_bytes;
}

/* Closes the poll in progress: busy time and the poll duration histogram. */
static void close_poll(struct task_table *t, struct task *task, uint64_t ts)
{
	uint64_t d;
	size_t b;

	if (task->running && ts >= task->poll_start_ns) {
		d = ts - task->poll_start_ns;
		task->busy_ns += d;
		for (b = 0; b < POLL_BUCKETS && (double)d / 1e9 > task_poll_bounds[b]; b++)
			;
		t->poll_counts[b]++;
		t->poll_sum_seconds += (double)d / 1e9;
		task->last_poll_end_ns = ts;
	}
	task->running = false;
}

void task_table__poll_end(struct task_table *t, struct task *task, uint64_t ts,
			  enum task_state ended)
{
	close_poll(t, task, ts);
	task->last_poll_end_ns = ts;
	if (ended == TASK_COMPLETED || ended == TASK_CANCELLED)
		end(t, task, ended, ts);
	else if (!task__ended(task))
		task->state = TASK_IDLE;
}

void task_table__dealloc(struct task_table *t, struct task *task, uint64_t ts)
{
	if (task->state == TASK_DEALLOCATED)
		return;
	close_poll(t, task, ts);
	/* A cell freed without a completion seen: it ended with the free. */
	end(t, task, task->cancel_seen ? TASK_CANCELLED : TASK_COMPLETED, ts);
	task->state = TASK_DEALLOCATED;
	task->dealloc_ns = ts;
	key_remove(t, task->key);
	retire(t, task);
}

void task_table__alloc(struct task_table *t, uint32_t index, uint64_t size)
{
	struct task *task = task_table__at(t, index);

	if (!task)
		return;
	task->allocated_bytes_total += size;
	task->allocations_total++;
	if (t->ntypes) {
		t->types[task->type].allocated_bytes_total += size;
		t->types[task->type].allocations_total++;
	}
}

void task_table__live(struct task_table *t, uint32_t index, uint64_t size, bool live)
{
	struct task *task = task_table__at(t, index);

	if (!task)
		return;
	if (live) {
		task->live_bytes += size;
		task->live_allocations++;
	} else {
		task->live_bytes -= size;
		task->live_allocations--;
	}
	if (!live)
		retire(t, task);
	if (task__ended(task) && t->ntypes) {
		if (live)
			t->types[task->type].outlived_live_bytes += size;
		else
			t->types[task->type].outlived_live_bytes -= size;
	}
}

bool task__ended(const struct task *task)
{
	return task->state == TASK_COMPLETED || task->state == TASK_CANCELLED ||
	       task->state == TASK_DEALLOCATED;
}

bool task__suspect(const struct task *task, uint64_t now_ns, uint64_t stuck_after_ns, char *reason,
		   size_t len)
{
	uint64_t since;

	if (task__ended(task))
		return false;
	if (task->running) {
		since = now_ns - task->poll_start_ns;
		/* Blocking tasks run to completion by design: long is not stuck. */
		if (task->kind == TASK_BLOCKING || since < stuck_after_ns)
			return false;
		snprintf(reason, len, "polled continuously for %.1f s without completing",
			 (double)since / 1e9);
		return true;
	}
	/* The attach scan sets last_poll_end_ns to the attach time: idle at least since. */
	since = now_ns - (task->last_poll_end_ns ? task->last_poll_end_ns : task->spawn_ns);
	if (since < stuck_after_ns)
		return false;
	snprintf(reason, len, "not %s for %.1f s while holding %" PRIu64 " bytes",
		 task->stack_size ? "resumed" : "polled", (double)since / 1e9,
		 task->live_bytes + task->future_size);
	return true;
}

const char *task_state__name(enum task_state s)
{
	static const char *const names[] = {
		[TASK_RUNNING] = "running",	    [TASK_IDLE] = "idle",
		[TASK_COMPLETED] = "completed",	    [TASK_CANCELLED] = "cancelled",
		[TASK_DEALLOCATED] = "deallocated",
	};

	return s <= TASK_DEALLOCATED ? names[s] : "unknown";
}
