// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The JSON API: snapshot, query parsing, sorting, filtering and the exact answers. */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_render.h"
#include "api_snapshot.h"
#include "report.h"

#define S 1000000000ull

static struct process_table *pt;
static struct report_input in;

/* Tasks of pid 7: two idle for 100 s (suspects past 30 s), one busy, one completed. */
static int setup(void **state)
{
	struct process_limits limits = { 0 };
	struct process *p;
	struct task *t;
	uint32_t leak, work;
	int i;

	(void)state;
	pt = process_table__new(&limits, NULL);
	assert_non_null(pt);
	p = process_table__add(pt, 7, "svc", "/svc");
	assert_non_null(p);
	p->start_ns = 1 * S;
	leak = task_table__type(p->tasks, "tokio", "app::Leak");
	work = task_table__type(p->tasks, "tokio", "app::worker::{{closure}}");
	for (i = 0; i < 4; i++) {
		t = task_table__spawn(p->tasks, 0x1000 * (i + 1), i < 2 ? leak : work, TASK_ASYNC,
				      TASK_FOUND_SPAWN, 2 * S);
		assert_non_null(t);
		t->runtime_id = 10 + i;
		t->future_size = 128 * (i + 1);
		t->live_bytes = 1000 * (4 - i);
		t->live_allocations = 1;
		t->allocated_bytes_total = 5000 + i;
		t->allocations_total = 2 + i;
		task_table__poll_begin(p->tasks, t, 2 * S);
		task_table__poll_end(p->tasks, t, 2 * S + 1000,
				     i == 3 ? TASK_COMPLETED : TASK_IDLE);
		if (i == 2) {
			/* Polled again, recently: not a suspect. */
			task_table__poll_begin(p->tasks, t, 100 * S);
			task_table__poll_end(p->tasks, t, 101 * S, TASK_IDLE);
		}
	}
	in = (struct report_input){ .duration_seconds = 101,
				    .events_received = 55,
				    .procs = pt,
				    .now_ns = 102 * S,
				    .stuck_after_ns = 30 * S };
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	process_table__free(pt);
	return 0;
}

static struct json_object *answer(const struct api_snapshot *s, enum api_endpoint e,
				  const char *query, int want_status)
{
	struct api_arg args[API_MAX_ARGS + 2];
	char buf[512], *save = NULL, *kv, *eq, *body;
	struct json_object *o;
	size_t n = 0, len;
	int status = 0;

	snprintf(buf, sizeof(buf), "%s", query);
	for (kv = strtok_r(buf, "&", &save); kv && n < API_MAX_ARGS + 2;
	     kv = strtok_r(NULL, "&", &save)) {
		eq = strchr(kv, '=');
		if (eq)
			*eq = '\0';
		args[n++] = (struct api_arg){ kv, eq ? eq + 1 : NULL };
	}
	assert_int_equal(api_render__answer(s, e, args, n, &status, &body, &len), 0);
	if (status != want_status)
		fail_msg("?%s: status %d, want %d: %s", query, status, want_status, body);
	assert_int_equal(strlen(body), len);
	assert_int_equal(body[len - 1], '\n');
	o = json_tokener_parse(body);
	assert_non_null(o);
	free(body);
	return o;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_string(v);
}

static int64_t num(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_int64(v);
}

static struct json_object *tasks_of(struct json_object *o)
{
	struct json_object *a;

	assert_true(json_object_object_get_ex(o, "tasks", &a));
	return a;
}

/* The ids of an answer's tasks, comma-separated. */
static void ids(struct json_object *o, char *buf, size_t len)
{
	struct json_object *a = tasks_of(o);
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < json_object_array_length(a); i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? "," : "",
				str(json_object_array_get_idx(a, i), "id"));
}

static void test_api_snapshot_suspects_first_and_bounded(void **state)
{
	struct api_snapshot *s = api_snapshot__new(&in, API_SNAPSHOT_MAX_TASKS), *small;

	(void)state;
	assert_non_null(s);
	assert_int_equal(s->ntasks, 4);
	assert_int_equal(s->nprocs, 1);
	assert_string_equal(s->tasks[0].id, "tokio:10");
	assert_true(s->tasks[0].suspect);
	assert_string_equal(s->tasks[0].suspect_reason,
			    "not polled for 100.0 s while holding 4128 bytes");
	assert_string_equal(s->tasks[1].id, "tokio:11");
	assert_true(s->tasks[1].suspect);
	assert_false(s->tasks[2].suspect);
	assert_string_equal(s->tasks[3].ended, "completed");
	/* The bound keeps the suspects and counts the rest. */
	small = api_snapshot__new(&in, 3);
	assert_non_null(small);
	assert_int_equal(small->ntasks, 3);
	assert_int_equal(small->tasks_omitted, 1);
	assert_true(small->tasks[1].suspect);
	api_snapshot__put(api_snapshot__get(small));
	api_snapshot__put(small);
	api_snapshot__put(s);
	api_snapshot__put(NULL);
}

/* Every task object equals the JSON report's, plus the pid. */
static void test_api_tasks_equal_the_report(void **state)
{
	struct api_snapshot *s = api_snapshot__new(&in, API_SNAPSHOT_MAX_TASKS);
	struct json_object *o, *report, *procs, *rtasks, *a, *t, *r;
	char *buf = NULL;
	size_t len = 0, i, j;
	FILE *f;

	(void)state;
	f = open_memstream(&buf, &len);
	assert_int_equal(report_json__write(f, &in), 0);
	fclose(f);
	report = json_tokener_parse(buf);
	assert_non_null(report);
	assert_true(json_object_object_get_ex(report, "processes", &procs));
	rtasks = tasks_of(json_object_array_get_idx(procs, 0));
	o = answer(s, API_TASKS, "sort=id", 200);
	a = tasks_of(o);
	assert_int_equal(json_object_array_length(a), json_object_array_length(rtasks));
	for (i = 0; i < json_object_array_length(a); i++) {
		t = json_object_array_get_idx(a, i);
		assert_int_equal(num(t, "pid"), 7);
		json_object_object_del(t, "pid");
		for (j = 0; j < json_object_array_length(rtasks); j++) {
			r = json_object_array_get_idx(rtasks, j);
			if (!strcmp(str(r, "id"), str(t, "id")))
				break;
		}
		assert_true(j < json_object_array_length(rtasks));
		assert_string_equal(json_object_to_json_string(t), json_object_to_json_string(r));
	}
	json_object_put(o);
	/* And the process object is the report's, without its tasks. */
	o = answer(s, API_PROCESSES, "", 200);
	assert_true(json_object_object_get_ex(o, "processes", &a));
	r = json_object_array_get_idx(procs, 0);
	json_object_object_del(r, "tasks");
	assert_string_equal(json_object_to_json_string(json_object_array_get_idx(a, 0)),
			    json_object_to_json_string(r));
	assert_int_equal(num(o, "api_version"), 1);
	json_object_put(o);
	json_object_put(report);
	free(buf);
	api_snapshot__put(s);
}

static void test_api_tasks_sort_filter_limit(void **state)
{
	struct api_snapshot *s = api_snapshot__new(&in, API_SNAPSHOT_MAX_TASKS);
	static const struct {
		const char *query, *ids, *sort, *order;
		int matched;
	} cases[] = {
		{ "", "tokio:10,tokio:11,tokio:12,tokio:13", "live_bytes", "desc", 4 },
		{ "sort=live_bytes&order=asc", "tokio:13,tokio:12,tokio:11,tokio:10", "live_bytes",
		  "asc", 4 },
		{ "sort=future_size_bytes", "tokio:13,tokio:12,tokio:11,tokio:10",
		  "future_size_bytes", "desc", 4 },
		{ "sort=polls", "tokio:12,tokio:10,tokio:11,tokio:13", "polls", "desc", 4 },
		{ "sort=type&order=desc", "tokio:12,tokio:13,tokio:10,tokio:11", "type", "desc",
		  4 },
		{ "sort=id", "tokio:10,tokio:11,tokio:12,tokio:13", "id", "asc", 4 },
		{ "suspects=1", "tokio:10,tokio:11", "live_bytes", "desc", 2 },
		{ "suspects=0&sort=idle_seconds", "tokio:12,tokio:13", "idle_seconds", "desc", 2 },
		{ "type=WORKER", "tokio:12,tokio:13", "live_bytes", "desc", 2 },
		{ "type=nothing", "", "live_bytes", "desc", 0 },
		{ "limit=1&pid=7", "tokio:10", "live_bytes", "desc", 4 },
	};
	struct json_object *o;
	char buf[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = answer(s, API_TASKS, cases[i].query, 200);
		ids(o, buf, sizeof(buf));
		if (strcmp(buf, cases[i].ids))
			fail_msg("?%s: %s, want %s", cases[i].query, buf, cases[i].ids);
		assert_string_equal(str(o, "sort"), cases[i].sort);
		assert_string_equal(str(o, "order"), cases[i].order);
		assert_int_equal(num(o, "matched"), cases[i].matched);
		json_object_put(o);
	}
	o = answer(s, API_TASKS, "", 200);
	assert_int_equal(num(o, "limit"), API_DEFAULT_LIMIT);
	json_object_put(o);
	api_snapshot__put(s);
}

static void test_api_bad_parameters(void **state)
{
	struct api_snapshot *s = api_snapshot__new(&in, API_SNAPSHOT_MAX_TASKS);
	static const struct {
		const char *query, *error;
		int status;
	} cases[] = {
		{ "limit=0", "invalid limit '0': expected 1 to 1000", 400 },
		{ "limit=1001", "invalid limit '1001': expected 1 to 1000", 400 },
		{ "limit=99999999999999999999",
		  "invalid limit '99999999999999999999': expected 1 "
		  "to 1000",
		  400 },
		{ "limit=1x", "invalid limit '1x': expected 1 to 1000", 400 },
		{ "order=sideways", "invalid order 'sideways': expected asc or desc", 400 },
		{ "suspects=true", "invalid suspects 'true': expected 0 or 1", 400 },
		{ "pid=4294967296", "invalid pid '4294967296': expected a process id", 400 },
		{ "pid=8", "pid 8 is not traced", 404 },
		{ "sort", "parameter 'sort' has no value", 400 },
		{ "limit=1&limit=2", "parameter 'limit' given twice", 400 },
		{ "x=1",
		  "unknown parameter 'x' (expected one of: pid, sort, order, limit, "
		  "suspects, type)",
		  400 },
	};
	struct json_object *o;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = answer(s, API_TASKS, cases[i].query, cases[i].status);
		assert_string_equal(str(o, "error"), cases[i].error);
		json_object_put(o);
	}
	o = answer(s, API_PROCESSES, "limit=1", 400);
	assert_string_equal(str(o, "error"), "unknown parameter 'limit' (expected one of: pid)");
	json_object_put(o);
	assert_int_equal(api_render__endpoint("/api/v1/tasks"), API_TASKS);
	assert_int_equal(api_render__endpoint("/api/v1/processes"), API_PROCESSES);
	assert_int_equal(api_render__endpoint("/api/v1/tasks/"), -ENOENT);
	assert_int_equal(api_render__endpoint(NULL), -ENOENT);
	api_snapshot__put(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_snapshot_suspects_first_and_bounded),
		cmocka_unit_test(test_api_tasks_equal_the_report),
		cmocka_unit_test(test_api_tasks_sort_filter_limit),
		cmocka_unit_test(test_api_bad_parameters),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
