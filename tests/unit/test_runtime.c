// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The runtime table (runtime.h) and the per-type aggregates every output uses (task_figures.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memscoped/events.h"
#include "process_table.h"
#include "runtime.h"
#include "task_figures.h"

#define S 1000000000ull

static void test_runtime_table_names(void **state)
{
	static const char *const names[] = { "tokio", "async-task", "ucontext", "pcl", "fcontext" };
	char buf[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_non_null(runtime__find(names[i]));
		assert_string_equal(runtime__find(names[i])->name, names[i]);
		assert_non_null(runtime__find(names[i])->attach);
		assert_non_null(runtime__find(names[i])->attached);
	}
	assert_int_equal(nruntimes, sizeof(names) / sizeof(names[0]));
	assert_null(runtime__find("auto"));
	assert_null(runtime__find("tokyo"));
	/* pcl runs on ucontext; libraries of pcl and fcontext may come later (watched). */
	assert_string_equal(runtime__find("pcl")->needs, "ucontext");
	assert_non_null(runtime__find("pcl")->library);
	assert_non_null(runtime__find("fcontext")->library);
	runtime__names(buf, sizeof(buf), ", ");
	assert_string_equal(buf, "auto, ucontext, pcl, fcontext, tokio, async-task, none");
}

/* Each event type reaches the rows that declare it; one nobody declares is not handled. */
static void test_runtime_event_dispatch(void **state)
{
	struct process_limits limits = { 0 };
	struct process_table *pt = process_table__new(&limits, NULL);
	struct process *p = process_table__add(pt, 1, "t", "/t");
	struct ms_event e = { .type = MS_EV_TASK_ENTER, .pid = 1, .addr = 0x1000 };
	size_t i, rows;

	(void)state;
	assert_non_null(p);
	for (i = rows = 0; i < nruntimes; i++)
		rows += !!(runtimes[i]->events & (1u << MS_EV_TASK_ENTER));
	assert_int_equal(rows, 2); /* tokio and async-task, told apart by ms_event.func */
	/* No runtime state: handled (ignored), nothing made. */
	assert_true(runtime__event(p, &e));
	assert_int_equal(p->tasks->ntasks, 1);
	e.type = MS_EV_PCL;
	assert_true(runtime__event(p, &e));
	e.type = MS_EV_ALLOC; /* the decoder's own */
	assert_false(runtime__event(p, &e));
	e.type = 40;
	assert_false(runtime__event(p, &e));
	assert_int_equal(runtime__task_of(p, &(struct ms_event){ .type = MS_EV_ALLOC }), 0);
	process_table__free(pt);
}

/* One task per state in two types; blocking apart; per-type live figures. */
static void test_task_figures_sum_by_type(void **state)
{
	struct task_table *t = task_table__new(0, 0);
	struct task_figures f;
	struct task *a, *b, *c, *d;
	uint32_t ta, tb, tc;

	(void)state;
	assert_non_null(t);
	ta = task_table__type(t, "tokio", "A");
	tb = task_table__type(t, "tokio", "B");
	tc = task_table__type(t, "tokio", "C");
	a = task_table__spawn(t, 0x10, ta, TASK_ASYNC, TASK_FOUND_SPAWN, 1 * S);
	task_table__poll_begin(t, a, 1 * S);
	task_table__poll_end(t, a, 1 * S, TASK_IDLE);
	task_table__alloc(t, task_table__index(t, a), 100);
	task_table__live(t, task_table__index(t, a), 100, true);
	b = task_table__spawn(t, 0x20, ta, TASK_ASYNC, TASK_FOUND_SPAWN, 1 * S);
	task_table__poll_begin(t, b, 1 * S);
	task_table__poll_end(t, b, 2 * S, TASK_COMPLETED);
	c = task_table__spawn(t, 0x30, tb, TASK_ASYNC, TASK_FOUND_SPAWN, 1 * S);
	task_table__poll_begin(t, c, 1 * S);
	task_table__poll_end(t, c, 1 * S, TASK_CANCELLED);
	d = task_table__spawn(t, 0x40, tc, TASK_BLOCKING, TASK_FOUND_SPAWN, 1 * S);
	task_table__poll_begin(t, d, 1 * S);
	assert_int_equal(task_figures__compute(t, 10 * S, 5 * S, &f), 0);
	assert_int_equal(f.ntypes, 3);
	assert_int_equal(f.spawned, 3);
	assert_int_equal(f.live, 1);
	assert_int_equal(f.completed, 1);
	assert_int_equal(f.cancelled, 1);
	/* a idle for 9 s past a 5 s --stuck-after; d busy for 9 s, but blocking. */
	assert_int_equal(f.suspects, 1);
	assert_int_equal(f.blocking_spawned, 1);
	assert_int_equal(f.blocking_live, 1);
	assert_int_equal(f.async_live_bytes, 100);
	assert_int_equal(f.async_allocated_bytes, 100);
	assert_int_equal(f.types[ta].live, 1);
	assert_int_equal(f.types[ta].live_bytes, 100);
	assert_int_equal(f.types[ta].suspects, 1);
	assert_int_equal(f.types[tb].live, 0);
	assert_int_equal(f.types[tb].suspects, 0);
	assert_int_equal(f.types[tc].live, 1);
	task_figures__clear(&f);
	assert_null(f.types);
	task_table__free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtime_table_names),
		cmocka_unit_test(test_runtime_event_dispatch),
		cmocka_unit_test(test_task_figures_sum_by_type),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
