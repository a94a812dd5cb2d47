// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "task_table.h"
#include "timeseries.h"

#define S 1000000000ull

static void namer(uint32_t pid, uint32_t tid, char comm[COMM_LEN])
{
	(void)pid;
	(void)tid;
	snprintf(comm, COMM_LEN, "t");
}

static struct process_table *new_table(void)
{
	struct process_limits limits = { 0 };
	struct process_table *pt = process_table__new(&limits, namer);

	assert_non_null(pt);
	return pt;
}

/* The series as text: "key": [..] compared exactly. */
static const char *member(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

/* A task of type name holding size bytes at addr; returns its index. */
static uint32_t task_with(struct process *p, const char *name, uint64_t key, uint64_t addr,
			  uint64_t size)
{
	uint32_t ty = task_table__type(p->tasks, "tokio", name);
	struct task *t = task_table__spawn(p->tasks, key, ty, TASK_ASYNC, TASK_FOUND_SPAWN, 1);
	uint32_t index;

	assert_non_null(t);
	index = task_table__index(p->tasks, t);
	process__alloc(p, 1, addr, size, index, 1);
	return index;
}

static void test_timeseries_one_point_per_step_and_forced_points(void **state)
{
	struct process_table *pt = new_table();
	struct timeseries *ts = timeseries__new(1.0, 100);
	struct process *p = process_table__add(pt, 10, "svc", "/svc");
	struct json_object *o;

	(void)state;
	assert_non_null(ts);
	p->start_ns = 100 * S;
	process__alloc(p, 1, 0x1000, 100, 0, 0);
	assert_int_equal(timeseries__tick(ts, pt, 100 * S, false), 0); /* the first is due */
	process__alloc(p, 1, 0x2000, 50, 0, 0);
	assert_int_equal(timeseries__tick(ts, pt, 100 * S + S / 2, false), 0); /* not due */
	assert_int_equal(timeseries__points(ts, p), 1);
	assert_int_equal(timeseries__tick(ts, pt, 101 * S, false), 0);
	process__freed(p, 1, 0x1000, 0);
	assert_int_equal(timeseries__tick(ts, pt, 101 * S + S / 4, true), 0); /* a report */
	assert_int_equal(timeseries__points(ts, p), 3);
	/* The forced point left the schedule alone: 102 s is due, 102.5 s is not. */
	assert_int_equal(timeseries__tick(ts, pt, 102 * S, false), 0);
	assert_int_equal(timeseries__tick(ts, pt, 102 * S + S / 2, false), 0);
	o = timeseries__json(ts, p);
	assert_non_null(o);
	assert_string_equal(member(o, "seconds"), "[0.000,1.000,1.250,2.000]");
	assert_string_equal(member(o, "heap_live_bytes"), "[100,150,50,50]");
	assert_string_equal(member(o, "untasked_live_bytes"), "[100,150,50,50]");
	assert_string_equal(member(o, "task_cell_live_bytes"), "[0,0,0,0]");
	assert_string_equal(member(o, "other_task_held_bytes"), "[0,0,0,0]");
	assert_string_equal(member(o, "task_types"), "[]");
	assert_string_equal(member(o, "step_seconds"), "1.000");
	assert_string_equal(member(o, "max_points"), "100");
	json_object_put(o);
	timeseries__free(ts);
	process_table__free(pt);
}

static void test_timeseries_thins_to_every_other_point_when_full(void **state)
{
	struct process_table *pt = new_table();
	struct timeseries *ts = timeseries__new(1.0, 4);
	struct process *p = process_table__add(pt, 10, "svc", "/svc");
	struct json_object *o;
	uint64_t t;

	(void)state;
	p->start_ns = 0;
	for (t = 0; t < 10; t++) {
		process__alloc(p, 1, 0x1000 + t * 0x100, 1, 0, 0);
		assert_int_equal(timeseries__tick(ts, pt, t * S, false), 0);
	}
	/* 0,1,2,3 fill it; 4 thins to 0,2 (step 2): 0,2,4,6; 8 thins to 0,4 (step 4): 0,4,8. */
	o = timeseries__json(ts, p);
	assert_string_equal(member(o, "seconds"), "[0.000,4.000,8.000]");
	assert_string_equal(member(o, "heap_live_bytes"), "[1,5,9]");
	assert_string_equal(member(o, "step_seconds"), "4.000");
	json_object_put(o);
	timeseries__free(ts);
	process_table__free(pt);
}

static void test_timeseries_top_types_and_the_rest(void **state)
{
	struct process_table *pt = new_table();
	struct timeseries *ts = timeseries__new(1.0, 10);
	struct process *p = process_table__add(pt, 10, "svc", "/svc");
	char name[16];
	struct json_object *o, *types;
	uint32_t i, big;

	(void)state;
	p->start_ns = 0;
	process__alloc(p, 1, 0x100, 7, 0, 0); /* untasked */
	/* Nine types holding 10..90 bytes: the eight largest get a series, "t0" is the rest. */
	for (i = 0; i < 9; i++) {
		snprintf(name, sizeof(name), "t%u", i);
		task_with(p, name, 0x10000 * (i + 1), 0x1000 * (i + 1), 10 * (i + 1));
	}
	assert_int_equal(timeseries__tick(ts, pt, 0, false), 0);
	/* A type ended: what its task still holds counts for it (outlived). */
	big = task_with(p, "late", 0xA00000, 0xA000, 1000);
	task_table__poll_begin(p->tasks, task_table__at(p->tasks, big), 1);
	task_table__poll_end(p->tasks, task_table__at(p->tasks, big), 2, TASK_COMPLETED);
	assert_int_equal(timeseries__tick(ts, pt, S, false), 0);
	o = timeseries__json(ts, p);
	types = json_object_object_get(o, "task_types");
	assert_int_equal(json_object_array_length(types), TIMESERIES_TYPES);
	/* "late" took the slot of the smallest peak (t1, 20 bytes): its first point is now 0. */
	assert_string_equal(member(json_object_array_get_idx(types, 0), "name"), "\"late\"");
	assert_string_equal(member(json_object_array_get_idx(types, 0), "held_bytes"), "[0,1000]");
	assert_string_equal(member(json_object_array_get_idx(types, 1), "name"), "\"t8\"");
	assert_string_equal(member(json_object_array_get_idx(types, 1), "held_bytes"), "[90,90]");
	assert_string_equal(member(json_object_array_get_idx(types, 7), "name"), "\"t2\"");
	assert_string_equal(member(o, "heap_live_bytes"), "[457,1457]");
	assert_string_equal(member(o, "untasked_live_bytes"), "[7,7]");
	/* The rest: t0 (10) at first, then t0 and t1 (30). */
	assert_string_equal(member(o, "other_task_held_bytes"), "[30,30]");
	json_object_put(o);
	timeseries__free(ts);
	process_table__free(pt);
}

static void test_timeseries_none_and_bad_arguments(void **state)
{
	struct process_table *pt = new_table();
	struct process *p = process_table__add(pt, 10, "svc", "/svc");

	(void)state;
	assert_null(timeseries__new(0, 10));
	assert_null(timeseries__new(1, 1));
	assert_int_equal(timeseries__tick(NULL, pt, 0, true), 0);
	assert_null(timeseries__json(NULL, p));
	assert_int_equal(timeseries__points(NULL, p), 0);
	timeseries__free(NULL);
	process_table__free(pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeseries_one_point_per_step_and_forced_points),
		cmocka_unit_test(test_timeseries_thins_to_every_other_point_when_full),
		cmocka_unit_test(test_timeseries_top_types_and_the_rest),
		cmocka_unit_test(test_timeseries_none_and_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
