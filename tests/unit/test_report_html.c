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

#include "report.h"
#include "report_html.h"
#include "task_table.h"

#define S 1000000000ull
#define DATA_OPEN "<script type=\"application/json\" id=\"memscoped-data\">"
#define EVIL "</script><script>alert(1)</script><!--&"

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

static char *write_html(const struct report_input *in, const struct report_html_bounds *b,
			size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(b ? report_html__write_bounded(f, in, b) : report_html__write(f, in), 0);
	assert_int_equal(fclose(f), 0);
	*ret_len = len;
	return buf;
}

/* The page's data block, parsed; it holds no '<' at all, so nothing in it ends the element. */
static struct json_object *data_of(const char *html)
{
	const char *start = strstr(html, DATA_OPEN), *end;
	struct json_object *o;
	char *text;

	assert_non_null(start);
	start += strlen(DATA_OPEN);
	end = strstr(start, "</script>");
	assert_non_null(end);
	text = strndup(start, (size_t)(end - start));
	assert_null(strchr(text, '<'));
	assert_null(strchr(text, '>'));
	assert_null(strchr(text, '&'));
	o = json_tokener_parse(text);
	assert_non_null(o);
	free(text);
	return o;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static uint64_t u64(struct json_object *o, const char *key)
{
	return json_object_get_uint64(get(o, key));
}

static const char *str(struct json_object *o, const char *key)
{
	return json_object_get_string(get(o, key));
}

/* A task of type name with a cell of cell bytes, holding size bytes at addr. */
static struct task *task_with(struct process *p, const char *name, uint64_t key, uint64_t cell,
			      uint64_t addr, uint64_t size)
{
	uint32_t ty = task_table__type(p->tasks, "tokio", name);
	struct task *t = task_table__spawn(p->tasks, key, ty, TASK_ASYNC, TASK_FOUND_SPAWN, S);

	assert_non_null(t);
	task_table__cell(p->tasks, t, cell);
	task_table__poll_begin(p->tasks, t, S);
	task_table__poll_end(p->tasks, t, S + 1, TASK_IDLE);
	if (size)
		process__alloc(p, p->pid, addr, size, task_table__index(p->tasks, t), S);
	return t;
}

static void test_report_html_bounded_tables_sum_the_rest(void **state)
{
	struct process_table *pt = new_table();
	struct process *p = process_table__add(pt, 7, "svc", "/svc");
	struct report_input in = { .duration_seconds = 2.5,
				   .events_received = 40,
				   .procs = pt,
				   .now_ns = 100 * S,
				   .stuck_after_ns = 1000 * S };
	const struct report_html_bounds b = { .task_types = 2, .tasks = 2, .threads = 1 };
	struct json_object *d, *proc, *types, *om, *hist, *tasks;
	struct task *t;
	size_t len;
	char *html;

	(void)state;
	p->start_ns = 0;
	process__alloc(p, 7, 0x10, 5, 0, S); /* untasked, main thread */
	process__alloc(p, 8, 0x20, 3, 0, S); /* another thread */
	process__alloc(p, 9, 0x30, 1, 0, S); /* a third */
	/* a: 2 tasks of 64 and 100-byte cells holding 10 + 20; b: 1 holding 500; c: 1 holding 1. */
	task_with(p, "a", 0x1000, 64, 0x100, 10);
	task_with(p, "a", 0x2000, 100, 0x200, 20);
	task_with(p, "b", 0x3000, 64, 0x300, 500);
	t = task_with(p, "c", 0x4000, 64, 0x400, 1);
	task_table__poll_begin(p->tasks, t, 2 * S);
	task_table__poll_end(p->tasks, t, 2 * S + 1, TASK_COMPLETED); /* its byte outlives it */
	html = write_html(&in, &b, &len);
	d = data_of(html);
	assert_int_equal(u64(d, "report_version"), 1);
	assert_int_equal(u64(get(d, "events"), "received"), 40);
	assert_int_equal(u64(get(d, "bounds"), "task_types"), 2);
	proc = json_object_array_get_idx(get(d, "processes"), 0);
	assert_int_equal(u64(proc, "pid"), 7);
	assert_int_equal(u64(get(proc, "heap"), "live_bytes"), 5 + 3 + 1 + 10 + 20 + 500 + 1);
	/* Types by bytes held: b (500), a (30); c (1 outlived) summed. */
	types = get(proc, "task_types");
	assert_int_equal(json_object_array_length(types), 2);
	assert_string_equal(str(json_object_array_get_idx(types, 0), "name"), "b");
	assert_string_equal(str(json_object_array_get_idx(types, 1), "name"), "a");
	hist = get(json_object_array_get_idx(types, 1), "future_size_histogram");
	assert_string_equal(json_object_to_json_string_ext(hist, JSON_C_TO_STRING_PLAIN),
			    "[[64,1],[128,1]]");
	om = get(proc, "task_types_omitted");
	assert_int_equal(u64(om, "types"), 1);
	assert_int_equal(u64(om, "spawned"), 1);
	assert_int_equal(u64(om, "completed"), 1);
	assert_int_equal(u64(om, "live"), 0);
	assert_int_equal(u64(om, "outlived_live_bytes"), 1);
	/* Top tasks by live bytes: 500, 20; the 10 and the 1 summed. */
	tasks = get(proc, "top_tasks");
	assert_int_equal(json_object_array_length(tasks), 2);
	assert_int_equal(u64(json_object_array_get_idx(tasks, 0), "live_bytes"), 500);
	assert_int_equal(u64(json_object_array_get_idx(tasks, 1), "live_bytes"), 20);
	assert_string_equal(str(json_object_array_get_idx(tasks, 1), "type"), "a");
	assert_int_equal(u64(get(proc, "top_tasks_omitted"), "tasks"), 2);
	assert_int_equal(u64(get(proc, "top_tasks_omitted"), "live_bytes"), 11);
	assert_int_equal(json_object_array_length(get(proc, "suspect_tasks")), 0);
	/* Threads: the main thread holds the most (5 + every task's bytes). */
	assert_int_equal(json_object_array_length(get(proc, "threads")), 1);
	assert_int_equal(u64(json_object_array_get_idx(get(proc, "threads"), 0), "tid"), 7);
	assert_int_equal(u64(get(proc, "threads_omitted"), "threads"), 2);
	assert_int_equal(u64(get(proc, "threads_omitted"), "live_bytes"), 4);
	json_object_put(d);
	free(html);

	/* Past --stuck-after the idle ones are suspects: listed, and their types first. */
	in.stuck_after_ns = 10 * S;
	html = write_html(&in, &b, &len);
	d = data_of(html);
	proc = json_object_array_get_idx(get(d, "processes"), 0);
	tasks = get(proc, "suspect_tasks");
	assert_int_equal(json_object_array_length(tasks), 2);
	assert_int_equal(u64(json_object_array_get_idx(tasks, 0), "live_bytes"), 500);
	assert_true(json_object_get_boolean(get(json_object_array_get_idx(tasks, 0), "suspect")));
	assert_int_equal(u64(get(proc, "suspect_tasks_omitted"), "tasks"), 1);
	assert_int_equal(u64(get(proc, "suspect_tasks_omitted"), "live_bytes"), 10);
	assert_int_equal(u64(get(proc, "tasks_summary"), "suspects"), 3);
	json_object_put(d);
	free(html);
	process_table__free(pt);
}

static void test_report_html_names_cannot_end_the_script(void **state)
{
	struct process_table *pt = new_table();
	struct process *p = process_table__add(pt, 7, "<b>x</b>", "/a/</script>");
	struct report_input in = { .procs = pt, .now_ns = S, .stuck_after_ns = S };
	struct json_object *d, *proc;
	size_t len;
	char *html;

	(void)state;
	task_with(p, EVIL, 0x1000, 64, 0x100, 10);
	html = write_html(&in, NULL, &len);
	d = data_of(html);
	proc = json_object_array_get_idx(get(d, "processes"), 0);
	assert_string_equal(str(proc, "comm"), "<b>x</b>");
	assert_string_equal(str(proc, "exe"), "/a/</script>");
	assert_string_equal(str(json_object_array_get_idx(get(proc, "task_types"), 0), "name"),
			    EVIL);
	/* The page's own scripts: one data block and one program, nothing more. */
	assert_null(strstr(html, "<script>alert"));
	assert_non_null(strstr(html, "\\u003c\\/script\\u003e\\u003cscript\\u003ealert(1)"));
	assert_null(strstr(strstr(strstr(html, "<script") + 1, "<script") + 1, "<script"));
	json_object_put(d);
	free(html);
	process_table__free(pt);
}

/* 100k tasks of 2000 types: the page stays small, every row past the bound summed. */
static void test_report_html_size_is_bounded(void **state)
{
	struct process_table *pt = new_table();
	struct process *p = process_table__add(pt, 7, "svc", "/svc");
	struct report_input in = { .procs = pt, .now_ns = 10 * S, .stuck_after_ns = 1 * S };
	struct json_object *d, *proc, *om;
	uint64_t i, bytes = 0;
	char name[32];
	size_t len;
	char *html;

	(void)state;
	for (i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "type_%05llu", (unsigned long long)(i % 2000));
		task_with(p, name, 0x100000 + i * 0x100, 128, 0x10000000 + i * 0x100, 1 + i % 1000);
		bytes += 1 + i % 1000;
	}
	html = write_html(&in, NULL, &len);
	assert_true(len < 1024 * 1024);
	d = data_of(html);
	proc = json_object_array_get_idx(get(d, "processes"), 0);
	assert_int_equal(json_object_array_length(get(proc, "task_types")), HTML_TOP_ROWS);
	om = get(proc, "task_types_omitted");
	assert_int_equal(u64(om, "types"), 2000 - HTML_TOP_ROWS);
	assert_int_equal(u64(om, "spawned"), 100000 - 50 * HTML_TOP_ROWS);
	assert_int_equal(json_object_array_length(get(proc, "suspect_tasks")), HTML_TOP_ROWS);
	assert_int_equal(u64(get(proc, "suspect_tasks_omitted"), "tasks"), 100000 - HTML_TOP_ROWS);
	/* The largest holders hold 1000 bytes each: 100 of them, the rest summed exactly. */
	assert_int_equal(u64(json_object_array_get_idx(get(proc, "top_tasks"), 0), "live_bytes"),
			 1000);
	assert_int_equal(u64(get(proc, "top_tasks_omitted"), "live_bytes"),
			 bytes - 1000 * HTML_TOP_ROWS);
	assert_int_equal(u64(get(proc, "tasks_summary"), "spawned"), 100000);
	json_object_put(d);
	free(html);
	process_table__free(pt);
}

/* The page itself names no host: its only URL is the SVG namespace, which loads nothing. */
static void test_report_html_page_names_no_host(void **state)
{
	struct process_table *pt = new_table();
	struct report_input in = { .procs = pt };
	const char *s;
	size_t len, n = 0;
	char *html;

	(void)state;
	html = write_html(&in, NULL, &len);
	for (s = strstr(html, "//"); s; s = strstr(s + 2, "//")) {
		if (s > html && s[-1] == ':') {
			assert_true(s - html >= 5 &&
				    !strncmp(s - 5, "http://www.w3.org/2000/svg", 26));
			n++;
		}
	}
	assert_int_equal(n, 1);
	assert_null(strstr(html, "https:"));
	assert_null(strstr(html, "src="));
	assert_non_null(strstr(html, "Content-Security-Policy"));
	free(html);
	process_table__free(pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_html_bounded_tables_sum_the_rest),
		cmocka_unit_test(test_report_html_names_cannot_end_the_script),
		cmocka_unit_test(test_report_html_size_is_bounded),
		cmocka_unit_test(test_report_html_page_names_no_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
