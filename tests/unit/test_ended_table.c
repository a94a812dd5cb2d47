// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Forgotten targets: their summary prints as the whole record did, and the list is bounded. */
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon.h"
#include "ended_table.h"
#include "report.h"
#include "strpool.h"
#include "timeseries.h"

#define SEC 1000000000ull

static void namer(uint32_t pid, uint32_t tid, char comm[COMM_LEN])
{
	snprintf(comm, COMM_LEN, "%s", tid == pid ? "main" : "worker");
}

static struct process_table *new_table(void)
{
	struct process_limits limits = { 0 };
	struct process_table *pt = process_table__new(&limits, namer);

	assert_non_null(pt);
	return pt;
}

/* The writer's text, from "processes" on: what the reports say of each process. */
static char *processes_text(int (*writer)(FILE *, const struct report_input *),
			    const struct report_input *in)
{
	char *buf = NULL, *from, *ret;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(writer(f, in), 0);
	assert_int_equal(fclose(f), 0);
	from = strstr(buf, writer == report_json__write ? "\"processes\"" : "\nprocess ");
	assert_non_null(from);
	ret = strdup(from);
	free(buf);
	assert_non_null(ret);
	return ret;
}

/* A target that ran in a container, with an allocator, two threads, heap and tasks, ended. */
static struct process *ended_target(struct process_table *pt, uint32_t pid, uint64_t ended_ns)
{
	/* Copies: the process's own strings are freed with it. */
	char exe[] = "/srv/app", cgroup[] = "/system.slice/app.service";
	struct process *p = process_table__add(pt, pid, "app", exe);
	struct task *t;
	uint32_t ty;

	assert_non_null(p);
	assert_int_equal(process__set_labels(p, cgroup, "", "app.service"), 0);
	p->ns_pid = 7;
	p->parent = 41;
	p->allocator.family = "glibc";
	p->allocator.object = strdup("/usr/lib/x86_64-linux-gnu/libc.so.6");
	p->allocator.functions = 9;
	p->attach_latency_ns = 4500000;
	p->start_ns = SEC / 2;
	ty = task_table__type(p->tasks, "tokio", "app::serve");
	t = task_table__spawn(p->tasks, 0xabc0, ty, TASK_ASYNC, TASK_FOUND_SPAWN, SEC / 2);
	assert_non_null(t);
	process__alloc(p, pid, 0x1000, 1111, 0, SEC / 2);
	process__alloc(p, pid, 0x2000, 2222, task_table__index(p->tasks, t), SEC / 2);
	process__alloc(p, pid + 1, 0x3000, 3333, 0, SEC / 2);
	process__freed(p, pid + 1, 0x1000, SEC / 2);
	process__freed(p, pid + 1, 0x9000, SEC / 2);
	p->exited = true;
	p->ended_ns = ended_ns;
	return p;
}

static int compact(struct process_table *pt, struct ended_table *et, struct process *p,
		   uint64_t stuck_after_ns)
{
	struct process_summary s;
	struct tasks_totals t;
	int err = process_summary__of(p, stuck_after_ns, &s, &t);

	if (err)
		return err;
	err = ended_table__add(et, &s);
	process_table__remove(pt, p);
	return err;
}

/* The JSON and text of a forgotten process are the same bytes before and after compaction. */
static void test_compaction_keeps_report(void **state)
{
	struct process_table *pt = new_table();
	struct ended_table *et = ended_table__new(10);
	struct process *p = ended_target(pt, 100, 2 * SEC), *live;
	struct report_input in = { .procs = pt,
				   .now_ns = 5 * SEC,
				   .stuck_after_ns = 30 * SEC,
				   .daemon_mode = true,
				   .forget_after_ns = 3 * SEC,
				   .ended = et };
	char *json_before, *json_after, *text_before, *text_after;
	struct json_object *root, *o;

	(void)state;
	assert_non_null(et);
	live = process_table__add(pt, 200, "live", "/bin/live");
	process__alloc(live, 200, 0x1000, 10, 0, SEC);
	assert_true(report__forgotten(p, &in));
	assert_false(report__forgotten(live, &in));
	json_before = processes_text(report_json__write, &in);
	text_before = processes_text(report_text__write, &in);

	assert_int_equal(compact(pt, et, p, in.stuck_after_ns), 0);
	assert_int_equal(process_table__count(pt), 1);
	assert_int_equal(ended_table__count(et), 1);
	json_after = processes_text(report_json__write, &in);
	text_after = processes_text(report_text__write, &in);
	assert_string_equal(json_after, json_before);
	assert_string_equal(text_after, text_before);

	/* Its final figures: the heap, the labels, the task it had. */
	root = json_tokener_parse(strchr(json_after, '['));
	assert_non_null(root);
	assert_int_equal(json_object_array_length(root), 2);
	o = json_object_array_get_idx(root, 0);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "pid")), 100);
	assert_true(json_object_get_boolean(json_object_object_get(o, "forgotten")));
	assert_true(json_object_get_boolean(json_object_object_get(o, "exited")));
	assert_string_equal(json_object_get_string(json_object_object_get(o, "unit")),
			    "app.service");
	assert_int_equal(json_object_get_int(json_object_object_get(
				 json_object_object_get(o, "heap"), "live_bytes")),
			 2222 + 3333);
	assert_int_equal(json_object_get_int(json_object_object_get(
				 json_object_object_get(o, "tasks_summary"), "async_live_bytes")),
			 2222);
	assert_null(json_object_object_get(o, "threads"));
	o = json_object_array_get_idx(root, 1);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "pid")), 200);
	assert_non_null(json_object_object_get(o, "threads"));
	json_object_put(root);
	free(json_before);
	free(json_after);
	free(text_before);
	free(text_after);
	ended_table__free(et);
	process_table__free(pt);
}

static struct process_summary summary(uint32_t pid, const char *exe, uint64_t live)
{
	struct process_summary s = { .pid = pid, .exe = exe, .exited = true, .complete = true };

	s.heap.live_bytes = live;
	s.heap.live_allocations = 1;
	s.heap.allocated_bytes_total = 10 * live;
	s.heap.allocations_total = 10;
	s.heap.frees_total = 9;
	return s;
}

/* Past the bound the oldest are folded: counted and summed, and the bytes stop growing. */
static void test_bound_folds_oldest(void **state)
{
	struct ended_table *et = ended_table__new(3);
	const struct ended_dropped *d;
	struct process_summary s;
	char exe[32];
	size_t full = 0;
	uint32_t i;

	(void)state;
	assert_non_null(et);
	for (i = 1; i <= 100; i++) {
		/* A fresh copy each time: the table keeps its own. */
		snprintf(exe, sizeof(exe), "/srv/app");
		s = summary(i, exe, i);
		assert_int_equal(ended_table__add(et, &s), 0);
		memset(exe, 'x', sizeof(exe) - 1);
		if (i == 3)
			full = ended_table__bytes(et);
		if (i >= 3)
			assert_int_equal(ended_table__bytes(et), full);
	}
	assert_int_equal(ended_table__count(et), 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ended_table__at(et, i)->pid, 98 + i);
		assert_string_equal(ended_table__at(et, i)->exe, "/srv/app");
	}
	assert_null(ended_table__at(et, 3));
	d = ended_table__dropped(et);
	assert_int_equal(d->processes, 97);
	assert_int_equal(d->live_bytes, 97 * 98 / 2);
	assert_int_equal(d->live_allocations, 97);
	assert_int_equal(d->allocated_bytes_total, 10 * 97 * 98 / 2);
	assert_int_equal(d->allocations_total, 970);
	assert_int_equal(d->frees_total, 873);
	ended_table__free(et);

	/* 0: nothing listed, every one counted. */
	et = ended_table__new(0);
	assert_non_null(et);
	s = summary(1, "/a", 5);
	assert_int_equal(ended_table__add(et, &s), 0);
	assert_int_equal(ended_table__count(et), 0);
	assert_int_equal(ended_table__dropped(et)->processes, 1);
	assert_int_equal(ended_table__dropped(et)->live_bytes, 5);
	ended_table__free(et);
}

/* The summary's task figures and strings are its own: the report after the bound folds. */
static void test_report_counts_dropped(void **state)
{
	struct process_table *pt = new_table();
	struct ended_table *et = ended_table__new(1);
	struct report_input in = { .procs = pt,
				   .now_ns = 10 * SEC,
				   .stuck_after_ns = 30 * SEC,
				   .daemon_mode = true,
				   .forget_after_ns = SEC,
				   .ended = et };
	struct json_object *root, *f, *d;
	char *buf = NULL;
	size_t len = 0;
	FILE *mf;

	(void)state;
	assert_non_null(et);
	assert_int_equal(compact(pt, et, ended_target(pt, 100, 2 * SEC), 0), 0);
	assert_int_equal(compact(pt, et, ended_target(pt, 101, 3 * SEC), 0), 0);
	mf = open_memstream(&buf, &len);
	assert_non_null(mf);
	assert_int_equal(report_json__write(mf, &in), 0);
	assert_int_equal(fclose(mf), 0);
	root = json_tokener_parse(buf);
	free(buf);
	assert_non_null(root);
	f = json_object_object_get(root, "forgotten_targets");
	assert_non_null(f);
	assert_int_equal(json_object_get_int(json_object_object_get(f, "listed")), 1);
	assert_int_equal(json_object_get_int(json_object_object_get(f, "max_listed")), 1);
	d = json_object_object_get(f, "dropped");
	assert_int_equal(json_object_get_int(json_object_object_get(d, "processes")), 1);
	assert_int_equal(json_object_get_int(json_object_object_get(d, "live_bytes")), 2222 + 3333);
	assert_int_equal(json_object_get_int(json_object_object_get(d, "allocations_total")), 3);
	assert_int_equal(json_object_array_length(json_object_object_get(root, "processes")), 1);
	assert_int_equal(
		json_object_get_int(json_object_object_get(
			json_object_array_get_idx(json_object_object_get(root, "processes"), 0),
			"pid")),
		101);
	json_object_put(root);
	ended_table__free(et);
	process_table__free(pt);
}

/* The daemon compacts what is forgotten, and only that; the series of its pid go too. */
static void test_daemon_compacts(void **state)
{
	struct daemon d = { 0 };
	struct process q = { 0 };
	struct process *live;

	(void)state;
	d.decoder.procs = new_table();
	d.ended = ended_table__new(10);
	d.series = timeseries__new(1, 16);
	d.opts.forget_after = 3;
	d.opts.stuck_after = 30;
	assert_non_null(d.ended);
	assert_non_null(d.series);
	ended_target(d.decoder.procs, 100, 2 * SEC);
	ended_target(d.decoder.procs, 101, 4 * SEC);
	live = process_table__add(d.decoder.procs, 200, "live", "/bin/live");
	assert_non_null(live);
	assert_int_equal(timeseries__tick(d.series, d.decoder.procs, 4 * SEC, true), 0);
	/* 100 ended 3 s ago: forgotten; 101 only 1 s ago. */
	assert_int_equal(daemon__compact(&d, 5 * SEC), 1);
	assert_int_equal(process_table__count(d.decoder.procs), 2);
	assert_int_equal(process_table__at(d.decoder.procs, 0)->pid, 101);
	assert_int_equal(ended_table__count(d.ended), 1);
	assert_int_equal(ended_table__at(d.ended, 0)->pid, 100);
	q.pid = 100;
	assert_int_equal(timeseries__points(d.series, &q), 0);
	q.pid = 101;
	assert_int_equal(timeseries__points(d.series, &q), 1);
	assert_int_equal(daemon__compact(&d, 7 * SEC), 1);
	assert_int_equal(daemon__compact(&d, 1000 * SEC), 0);
	assert_int_equal(process_table__count(d.decoder.procs), 1);
	/* --forget-after 0: never. */
	live->exited = true;
	live->ended_ns = 8 * SEC;
	d.opts.forget_after = 0;
	assert_int_equal(daemon__compact(&d, 1000 * SEC), 0);
	timeseries__free(d.series);
	ended_table__free(d.ended);
	process_table__free(d.decoder.procs);
}

static void test_strpool_shares(void **state)
{
	struct strpool *sp = strpool__new();
	char a[] = "/srv/app", b[] = "/srv/app";
	const char *x, *y, *z;
	size_t one;

	(void)state;
	assert_non_null(sp);
	x = strpool__get(sp, a);
	one = strpool__bytes(sp);
	y = strpool__get(sp, b);
	assert_ptr_equal(x, y);
	assert_int_equal(strpool__bytes(sp), one);
	z = strpool__get(sp, "/other");
	assert_ptr_not_equal(x, z);
	strpool__put(sp, x);
	assert_string_equal(y, "/srv/app");
	strpool__put(sp, y);
	strpool__put(sp, z);
	assert_true(strpool__bytes(sp) < one);
	strpool__put(sp, NULL);
	strpool__free(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compaction_keeps_report),
		cmocka_unit_test(test_bound_folds_oldest),
		cmocka_unit_test(test_report_counts_dropped),
		cmocka_unit_test(test_daemon_compacts),
		cmocka_unit_test(test_strpool_shares),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
