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

#include "cli.h"
#include "report.h"

/* A quote, a backslash, a newline and a control character: 9 bytes, within COMM_LEN. */
#define ODD_COMM         \
	"a\"b\\c\nd\x01" \
	"e"
#define ODD_COMM_JSON "\"a\\\"b\\\\c\\nd\\u0001e\""
#define ODD_TID 1236

_Static_assert(sizeof(ODD_COMM) == 10, "a hex escape swallowed the next letter");

static void namer(uint32_t pid, uint32_t tid, char comm[COMM_LEN])
{
	snprintf(comm, COMM_LEN, "%s", tid == ODD_TID ? ODD_COMM : tid == pid ? "main" : "worker");
}

static struct process_table *new_table(size_t max_allocations)
{
	struct process_limits limits = { max_allocations, 0 };
	struct process_table *pt = process_table__new(&limits, namer);

	assert_non_null(pt);
	return pt;
}

/* Runs a writer into memory; the caller frees the text. */
static char *write_report(int (*writer)(FILE *, const struct report_input *),
			  const struct report_input *in)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(writer(f, in), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	assert_int_equal(strlen(buf), len);
	return buf;
}

static struct json_object *get(struct json_object *o, const char *key, json_type type)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_non_null(v);
	assert_int_equal(json_object_get_type(v), type);
	return v;
}

static void assert_u64(struct json_object *o, const char *key, uint64_t expected)
{
	assert_int_equal(json_object_get_uint64(get(o, key, json_type_int)), expected);
}

static void assert_str(struct json_object *o, const char *key, const char *expected)
{
	assert_string_equal(json_object_get_string(get(o, key, json_type_string)), expected);
}

static void assert_bool(struct json_object *o, const char *key, int expected)
{
	assert_int_equal(json_object_get_boolean(get(o, key, json_type_boolean)), expected);
}

static void assert_thread(struct json_object *t, uint64_t tid, const char *comm, uint64_t live,
			  uint64_t live_allocs, uint64_t allocated, uint64_t allocs)
{
	assert_int_equal(json_object_object_length(t), 6);
	assert_u64(t, "tid", tid);
	assert_str(t, "comm", comm);
	assert_u64(t, "live_bytes", live);
	assert_u64(t, "live_allocations", live_allocs);
	assert_u64(t, "allocated_bytes_total", allocated);
	assert_u64(t, "allocations_total", allocs);
}

static void test_report_json_schema(void **state)
{
	struct process_table *pt = new_table(0);
	struct process *p = process_table__add(pt, 1234, ODD_COMM, "/usr/bin/target"), *q;
	struct report_input in = { .duration_seconds = 12.5, .events_received = 10, .procs = pt };
	struct json_object *root, *o, *h, *a, *l;
	char *text;

	(void)state;
	q = process_table__add(pt, 99, "idle", "/bin/idle");
	q->exited = true;
	process__alloc(p, 1234, 0x1000, 100, 0, 0);
	process__alloc(p, 1234, 0x2000, 50, 0, 0);
	process__alloc(p, 1235, 0x3000, 1000, 0, 0);
	process__freed(p, 1235, 0x2000, 0);
	process__freed(p, 1235, 0x9000, 0);
	process__alloc(p, ODD_TID, 0, 10, 0, 0);

	text = write_report(report_json__write, &in);
	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_int_equal(json_object_object_length(root), 6);
	assert_u64(root, "report_version", 1);
	/* No mode given: trace, the default. */
	assert_str(root, "mode", "trace");
	assert_str(root, "memscoped_version", MEMSCOPED_VERSION);
	assert_true(json_object_get_double(get(root, "duration_seconds", json_type_double)) ==
		    12.5);
	o = get(root, "events", json_type_object);
	assert_int_equal(json_object_object_length(o), 2);
	assert_u64(o, "received", 10);
	assert_u64(o, "lost", 0);

	a = get(root, "processes", json_type_array);
	assert_int_equal(json_object_array_length(a), 2);
	o = json_object_array_get_idx(a, 0);
	/* 8 keys of report_version 1, then exec, runtimes, tasks_summary, task_types, tasks. */
	assert_int_equal(json_object_object_length(o), 13);
	assert_u64(o, "pid", 1234);
	assert_str(o, "comm", ODD_COMM);
	assert_str(o, "exe", "/usr/bin/target");
	assert_bool(o, "exited", 0);
	assert_bool(o, "complete", 1);

	h = get(o, "heap", json_type_object);
	assert_int_equal(json_object_object_length(h), 7);
	assert_u64(h, "live_bytes", 1100);
	assert_u64(h, "live_allocations", 2);
	assert_u64(h, "allocated_bytes_total", 1150);
	assert_u64(h, "allocations_total", 3);
	assert_u64(h, "frees_total", 1);
	assert_u64(h, "frees_untracked_total", 1);
	assert_u64(h, "allocation_failures_total", 1);

	l = get(o, "limits", json_type_object);
	assert_int_equal(json_object_object_length(l), 5);
	assert_u64(l, "allocations_dropped", 0);
	assert_u64(l, "thread_events_dropped", 0);
	assert_u64(l, "allocations_replaced", 0);
	assert_u64(l, "tasks_dropped", 0);
	assert_u64(l, "task_types_dropped", 0);

	a = get(o, "threads", json_type_array);
	assert_int_equal(json_object_array_length(a), 3);
	assert_thread(json_object_array_get_idx(a, 0), 1234, "main", 100, 1, 150, 2);
	assert_thread(json_object_array_get_idx(a, 1), 1235, "worker", 1000, 1, 1000, 1);
	assert_thread(json_object_array_get_idx(a, 2), ODD_TID, ODD_COMM, 0, 0, 0, 0);

	o = json_object_array_get_idx(get(root, "processes", json_type_array), 1);
	assert_u64(o, "pid", 99);
	assert_str(o, "comm", "idle");
	assert_bool(o, "exited", 1);
	assert_bool(o, "complete", 1);
	assert_int_equal(json_object_array_length(get(o, "threads", json_type_array)), 0);
	assert_u64(get(o, "heap", json_type_object), "live_bytes", 0);

	json_object_put(root);
	free(text);
	process_table__free(pt);
}

static void test_report_json_escapes_strings(void **state)
{
	struct process_table *pt = new_table(0);
	struct process *p = process_table__add(pt, 1, ODD_COMM, "/tmp/a \"b\"\\c");
	struct report_input in = { .procs = pt };
	char *text;

	(void)state;
	process__alloc(p, ODD_TID, 0x1000, 1, 0, 0);
	text = write_report(report_json__write, &in);
	/* Once for the process, once for the thread. */
	assert_non_null(strstr(text, ODD_COMM_JSON));
	assert_non_null(strstr(strstr(text, ODD_COMM_JSON) + 1, ODD_COMM_JSON));
	assert_non_null(strstr(text, "\"/tmp/a \\\"b\\\"\\\\c\""));
	assert_null(strchr(text, '\x01'));
	free(text);
	process_table__free(pt);
}

static void test_report_json_incomplete(void **state)
{
	struct process_table *pt = new_table(1);
	struct process *q;
	struct report_input in = { .events_lost = 3, .procs = pt };
	struct json_object *root, *procs;
	char *text;

	(void)state;
	assert_non_null(process_table__add(pt, 1, "a", "/a"));
	q = process_table__add(pt, 2, "b", "/b");
	process__alloc(q, 2, 0x1000, 1, 0, 0);
	process__alloc(q, 2, 0x2000, 1, 0, 0); /* over max_allocations */

	text = write_report(report_json__write, &in);
	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_u64(get(root, "events", json_type_object), "lost", 3);
	procs = get(root, "processes", json_type_array);
	assert_bool(json_object_array_get_idx(procs, 0), "complete", 0);
	assert_bool(json_object_array_get_idx(procs, 1), "complete", 0);
	json_object_put(root);
	free(text);

	/* Without lost events only the process over its bound is incomplete. */
	in.events_lost = 0;
	text = write_report(report_json__write, &in);
	root = json_tokener_parse(text);
	procs = get(root, "processes", json_type_array);
	assert_bool(json_object_array_get_idx(procs, 0), "complete", 1);
	assert_bool(json_object_array_get_idx(procs, 1), "complete", 0);
	assert_u64(get(json_object_array_get_idx(procs, 1), "limits", json_type_object),
		   "allocations_dropped", 1);
	json_object_put(root);
	free(text);
	process_table__free(pt);
}

static struct process_table *small_table(void)
{
	struct process_table *pt = new_table(0);
	struct process *p = process_table__add(pt, 42, "demo", "/bin/demo");

	process__alloc(p, 42, 0x1000, 100, 0, 0);
	process__alloc(p, 42, 0x2000, 2048, 0, 0);
	process__alloc(p, 43, 0x3000, 1536, 0, 0);
	process__freed(p, 42, 0x2000, 0);
	return pt;
}

static void test_report_text_exact(void **state)
{
	struct report_input in = { .duration_seconds = 2, .events_received = 10 };
	char *text;

	(void)state;
	in.procs = small_table();
	text = write_report(report_text__write, &in);
	assert_string_equal(
		text,
		"memscoped report: 2.0 s, 10 events, 0 lost\n"
		"\n"
		"process 42 (demo) /bin/demo\n"
		"  live heap      1.6 KiB in 2 allocations\n"
		"  allocated      3.6 KiB in 3 allocations, 1 frees (+0 of blocks from before attach)\n"
		"  TID      COMM                       LIVE      LIVE#      ALLOCATED     ALLOCS\n"
		"  42       main                      100 B          1        2.1 KiB          2\n"
		"  43       worker                  1.5 KiB          1        1.5 KiB          1\n");
	free(text);

	text = write_report(report_text__summary, &in);
	assert_string_equal(text, "memscoped: 2s pid 42 (demo): live 1.6 KiB in 2 allocations, "
				  "3 allocs, 1 frees, 0 events lost\n");
	free(text);
	process_table__free(in.procs);
}

static void test_report_text_incomplete(void **state)
{
	struct report_input in = { .duration_seconds = 1.5,
				   .events_received = 6,
				   .events_lost = 3 };
	struct process *p;
	char *text;

	(void)state;
	in.procs = new_table(1);
	p = process_table__add(in.procs, 7, "x", "/bin/x");
	p->exited = true;
	process__alloc(p, 7, 0x1000, 3u << 20, 0, 0);
	process__freed(p, 7, 0x1000, 0);
	process__alloc(p, 7, 0x2000, 10, 0, 0);
	process__alloc(p, 7, 0x3000, 20, 0, 0); /* over max_allocations */
	process__alloc(p, 7, 0, 5, 0, 0);
	process__freed(p, 7, 0x4000, 0);

	text = write_report(report_text__write, &in);
	assert_string_equal(
		text,
		"memscoped report: 1.5 s, 6 events, 3 lost (figures below are lower bounds)\n"
		"\n"
		"process 7 (x) /bin/x [exited]\n"
		"  live heap      10 B in 1 allocations\n"
		"  allocated      3.0 MiB in 3 allocations, 1 frees (+1 of blocks from before attach)\n"
		"  failed         1 allocations returned NULL\n"
		"  incomplete     1 allocations over --max-allocations, 0 events of threads over --max-threads, 0 frees missed\n"
		"  TID      COMM                       LIVE      LIVE#      ALLOCATED     ALLOCS\n"
		"  7        main                       10 B          1        3.0 MiB          3\n");
	free(text);
	process_table__free(in.procs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_json_schema),
		cmocka_unit_test(test_report_json_escapes_strings),
		cmocka_unit_test(test_report_json_incomplete),
		cmocka_unit_test(test_report_text_exact),
		cmocka_unit_test(test_report_text_incomplete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
