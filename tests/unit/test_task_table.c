// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "process_table.h"
#include "task_table.h"

#define S 1000000000ull

static struct task_table *t;

static int setup(void **state)
{
	(void)state;
	t = task_table__new(0, 0);
	return t ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	task_table__free(t);
	return 0;
}

static void test_task_table_lifecycle_counts(void **state)
{
	uint32_t ty = task_table__type(t, "tokio", "worker");
	struct task *a;

	(void)state;
	a = task_table__spawn(t, 0x1000, ty, TASK_ASYNC, TASK_FOUND_SPAWN, 1 * S);
	assert_non_null(a);
	assert_ptr_equal(task_table__find(t, 0x1000), a);
	task_table__poll_begin(t, a, 2 * S);
	assert_int_equal(a->state, TASK_RUNNING);
	task_table__poll_end(t, a, 2 * S + 500, TASK_IDLE);
	assert_int_equal(a->state, TASK_IDLE);
	assert_int_equal(a->busy_ns, 500);
	task_table__poll_begin(t, a, 3 * S);
	task_table__poll_end(t, a, 3 * S + 100, TASK_COMPLETED);
	assert_int_equal(a->state, TASK_COMPLETED);
	assert_int_equal(a->polls, 2);
	assert_int_equal(t->types[ty].spawned, 1);
	assert_int_equal(t->types[ty].completed, 1);
	assert_int_equal(t->types[ty].polls, 2);
	task_table__dealloc(t, a, 4 * S);
	assert_int_equal(a->state, TASK_DEALLOCATED);
	assert_int_equal(a->end_state, TASK_COMPLETED);
	assert_null(task_table__find(t, 0x1000));
	/* Both polls landed in the histogram (500 ns and 100 ns: the first bucket). */
	assert_int_equal(t->poll_counts[0], 2);
}

static void test_task_table_address_reuse_is_a_new_lifetime(void **state)
{
	struct task *a, *b;

	(void)state;
	a = task_table__spawn(t, 0x2000, 0, TASK_ASYNC, TASK_FOUND_SPAWN, S);
	b = task_table__spawn(t, 0x2000, 0, TASK_ASYNC, TASK_FOUND_SPAWN, 2 * S);
	/* The table may move: look the first one up again by index 1. */
	a = task_table__at(t, 1);
	assert_ptr_not_equal(a, b);
	assert_int_equal(a->state, TASK_DEALLOCATED);
	assert_ptr_equal(task_table__find(t, 0x2000), b);
}

static void test_task_table_cancel_seen_before_a_dealloc_is_a_cancel(void **state)
{
	uint32_t ty = task_table__type(t, "tokio", "x");
	struct task *a = task_table__spawn(t, 0x3000, ty, TASK_ASYNC, TASK_FOUND_SPAWN, S);

	(void)state;
	a->cancel_seen = true;
	task_table__poll_begin(t, a, 2 * S);
	/* The poll freed its own cell: no exit event, the free ends it. */
	task_table__dealloc(t, a, 2 * S + 10);
	assert_int_equal(a->end_state, TASK_CANCELLED);
	assert_int_equal(a->polls, 1);
	assert_int_equal(a->busy_ns, 10);
	assert_int_equal(t->types[ty].cancelled, 1);
	assert_int_equal(t->types[ty].completed, 0);
}

static void test_task_table_suspects(void **state)
{
	struct task *idle, *busy, *blocking, *done;
	char reason[128];

	(void)state;
	idle = task_table__spawn(t, 0x10, 0, TASK_ASYNC, TASK_FOUND_SPAWN, S);
	task_table__poll_begin(t, idle, S);
	task_table__poll_end(t, idle, 2 * S, TASK_IDLE);
	idle->live_bytes = 100;
	idle->future_size = 28;
	busy = task_table__spawn(t, 0x20, 0, TASK_ASYNC, TASK_FOUND_SPAWN, S);
	task_table__poll_begin(t, busy, 2 * S);
	blocking = task_table__spawn(t, 0x30, 0, TASK_BLOCKING, TASK_FOUND_SPAWN, S);
	task_table__poll_begin(t, blocking, 2 * S);
	done = task_table__spawn(t, 0x40, 0, TASK_ASYNC, TASK_FOUND_SPAWN, S);
	task_table__poll_begin(t, done, S);
	task_table__poll_end(t, done, 2 * S, TASK_COMPLETED);
	idle = task_table__at(t, 1);
	busy = task_table__at(t, 2);
	blocking = task_table__at(t, 3);
	done = task_table__at(t, 4);

	assert_false(task__suspect(idle, 30 * S, 30 * S, reason, sizeof(reason)));
	assert_true(task__suspect(idle, 33 * S, 30 * S, reason, sizeof(reason)));
	assert_string_equal(reason, "not polled for 31.0 s while holding 128 bytes");
	assert_true(task__suspect(busy, 33 * S, 30 * S, reason, sizeof(reason)));
	assert_string_equal(reason, "polled continuously for 31.0 s without completing");
	/* Blocking tasks run to completion by design. */
	assert_false(task__suspect(blocking, 33 * S, 30 * S, reason, sizeof(reason)));
	assert_false(task__suspect(done, 33 * S, 30 * S, reason, sizeof(reason)));
}

static void test_task_table_outlived_bytes(void **state)
{
	uint32_t ty = task_table__type(t, "tokio", "y");
	struct task *a = task_table__spawn(t, 0x50, ty, TASK_ASYNC, TASK_FOUND_SPAWN, S);
	uint32_t idx = task_table__index(t, a);

	(void)state;
	task_table__alloc(t, idx, 64);
	task_table__live(t, idx, 64, true);
	task_table__alloc(t, idx, 32);
	task_table__live(t, idx, 32, true);
	task_table__poll_begin(t, a, S);
	task_table__poll_end(t, a, 2 * S, TASK_COMPLETED);
	assert_int_equal(t->types[ty].outlived_live_bytes, 96);
	task_table__live(t, idx, 32, false);
	assert_int_equal(t->types[ty].outlived_live_bytes, 64);
	assert_int_equal(a->live_bytes, 64);
	assert_int_equal(a->allocated_bytes_total, 96);
	assert_int_equal(t->types[ty].allocated_bytes_total, 96);
}

static void test_task_table_bounds(void **state)
{
	struct task_table *small = task_table__new(2, 2);
	uint32_t a, b, c;

	(void)state;
	assert_non_null(small);
	a = task_table__type(small, "tokio", "a");
	b = task_table__type(small, "tokio", "b");
	/* Past the bound every new name shares one "other" type. */
	c = task_table__type(small, "tokio", "c");
	assert_int_not_equal(a, b);
	assert_string_equal(small->types[c].name, "other");
	assert_int_equal(task_table__type(small, "tokio", "d"), c);
	assert_int_equal(small->types_dropped, 2);
	assert_non_null(task_table__spawn(small, 1, a, TASK_ASYNC, TASK_FOUND_SPAWN, 0));
	assert_non_null(task_table__spawn(small, 2, a, TASK_ASYNC, TASK_FOUND_SPAWN, 0));
	assert_null(task_table__spawn(small, 3, a, TASK_ASYNC, TASK_FOUND_SPAWN, 0));
	assert_int_equal(small->tasks_dropped, 1);
	task_table__free(small);

	/* A type has one kind: past the bound, blocking tasks are "other (blocking)". */
	small = task_table__new(10, 1);
	assert_non_null(small);
	a = task_table__type(small, "tokio", "a");
	c = task_table__type(small, "tokio", "launch");
	assert_non_null(task_table__spawn(small, 1, c, TASK_BLOCKING, TASK_FOUND_SPAWN, 0));
	assert_non_null(task_table__spawn(small, 2, c, TASK_ASYNC, TASK_FOUND_SPAWN, 0));
	assert_string_equal(small->types[task_table__find(small, 1)->type].name,
			    "other (blocking)");
	assert_int_equal(small->types[task_table__find(small, 1)->type].kind, TASK_BLOCKING);
	assert_int_equal(task_table__find(small, 2)->type, c);
	assert_int_equal(small->types[c].kind, TASK_ASYNC);
	task_table__free(small);
}

/* The heap side: blocks attributed to tasks, and a task's cell freed ends the task. */
static void test_task_table_cells_through_the_process_table(void **state)
{
	struct process_limits limits = { 0 };
	struct process_table *pt = process_table__new(&limits, NULL);
	struct process *p = process_table__add(pt, 7, "x", "/x");
	struct task *task;
	uint32_t idx;

	(void)state;
	/* Untasked code allocates the cell; the task then allocates 100 bytes. */
	process__alloc(p, 7, 0xa000, 256, 0, S);
	task = task_table__spawn(p->tasks, 0xa000, 0, TASK_ASYNC, TASK_FOUND_SPAWN, S);
	idx = task_table__index(p->tasks, task);
	assert_true(process__claim_cell(p, 0xa000, idx, NULL));
	assert_int_equal(p->heap.cell_live_bytes, 256);
	assert_int_equal(p->heap.untasked_live_bytes, 0);
	process__alloc(p, 7, 0xb000, 100, idx, S);
	assert_int_equal(task_table__at(p->tasks, idx)->live_bytes, 100);
	process__freed(p, 7, 0xa000, 3 * S);
	task = task_table__at(p->tasks, idx);
	assert_int_equal(task->state, TASK_DEALLOCATED);
	assert_int_equal(p->heap.cell_live_bytes, 0);
	/* What it allocated outlives it. */
	assert_int_equal(task->live_bytes, 100);
	process_table__free(pt);
}

/* A churn of short tasks: the table stops growing, the counters keep counting. */
static void test_task_table_recycles_ended_tasks_past_the_bound(void **state)
{
	struct task_table *small = task_table__new(0, 0);
	uint32_t ty, held;
	struct task *task;
	uint64_t i;

	(void)state;
	assert_non_null(small);
	assert_int_equal(task_table__set_max_retired(small, 4), 0);
	ty = task_table__type(small, "tokio", "short");
	/* One task keeps a block: it is never recycled. */
	task = task_table__spawn(small, 0x1000, ty, TASK_ASYNC, TASK_FOUND_SPAWN, 1);
	task->runtime_id = 1;
	held = task_table__index(small, task);
	task_table__alloc(small, held, 10);
	task_table__live(small, held, 10, true);
	task_table__dealloc(small, task, 2);
	for (i = 0; i < 1000; i++) {
		task = task_table__spawn(small, 0x2000 + 16 * i, ty, TASK_ASYNC, TASK_FOUND_SPAWN,
					 3);
		assert_non_null(task);
		task->runtime_id = 2 + i;
		task_table__poll_begin(small, task, 4);
		task_table__poll_end(small, task, 5, TASK_COMPLETED);
		task_table__dealloc(small, task, 6);
	}
	/* The holder, 4 retired tasks and at most one slot in flight. */
	assert_true(small->ntasks <= 1 + 1 + 4 + 1);
	assert_int_equal(small->tasks_recycled, 1000 - 4);
	assert_int_equal(small->types[ty].spawned, 1001);
	assert_int_equal(small->types[ty].completed, 1001);
	assert_int_equal(task_table__at(small, held)->runtime_id, 1);
	assert_int_equal(task_table__at(small, held)->live_bytes, 10);
	/* Once its block is freed, the holder retires too. */
	task_table__live(small, held, 10, false);
	assert_true(task_table__at(small, held)->retired);
	task_table__free(small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_task_table_lifecycle_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_table_address_reuse_is_a_new_lifetime,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_task_table_cancel_seen_before_a_dealloc_is_a_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_table_suspects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_table_outlived_bytes, setup, teardown),
		cmocka_unit_test(test_task_table_bounds),
		cmocka_unit_test(test_task_table_recycles_ended_tasks_past_the_bound),
		cmocka_unit_test(test_task_table_cells_through_the_process_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
