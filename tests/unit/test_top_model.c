// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* memscoped top's model: the API's answers parsed, merged, ordered and filtered. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "task_row.h"
#include "top_model.h"

static const char processes[] =
	"{\"api_version\":1,\"duration_seconds\":12.5,\"events\":{\"received\":900,\"lost\":3},"
	"\"processes\":["
	"{\"pid\":7,\"comm\":\"svc\",\"exited\":false,\"heap\":{\"live_bytes\":5000},"
	"\"tasks_summary\":{\"live\":3,\"spawned\":4,\"suspects\":2,\"untasked_live_bytes\":700},"
	"\"task_types\":[{\"name\":\"app::Leak\",\"runtime\":\"tokio\",\"spawned\":2,\"live\":2,"
	"\"suspects\":2,\"live_bytes\":7000,\"future_size_bytes\":256,\"polls\":2},"
	"{\"name\":\"app::worker\",\"runtime\":\"tokio\",\"spawned\":2,\"live\":1,\"suspects\":0,"
	"\"live_bytes\":9000,\"future_size_bytes\":512,\"polls\":9}]},"
	"{\"pid\":8,\"comm\":\"other\",\"exited\":true,\"heap\":{\"live_bytes\":1},"
	"\"task_types\":[{\"name\":\"x\",\"runtime\":\"tokio\"}]}]}";

#define TASK(id, type, suspect, live, fut, polls)                                                \
	"{\"pid\":7,\"id\":\"" id "\",\"runtime\":\"tokio\",\"kind\":\"async\",\"type\":\"" type \
	"\",\"state\":\"idle\",\"discovered\":\"spawn\",\"suspect\":" suspect                    \
	",\"parent\":null,\"address\":\"0x10\",\"age_seconds\":null,\"idle_seconds\":1.5,"       \
	"\"busy_seconds\":0.25,\"polls\":" polls ",\"future_size_bytes\":" fut                   \
	",\"live_bytes\":" live ",\"live_allocations\":1,\"allocated_bytes_total\":9,"           \
	"\"allocations_total\":1,\"detached\":false,\"ended\":null}"

static const char suspects[] = "{\"api_version\":1,\"matched\":2,\"tasks\":[" TASK(
	"tokio:10", "app::Leak", "true", "4000", "256",
	"1") "," TASK("tokio:11", "app::Leak", "true", "3000", "256", "1") "]}";
static const char all[] = "{\"api_version\":1,\"matched\":4,\"tasks\":[" TASK(
	"tokio:12", "app::worker", "false", "9000", "512",
	"9") "," TASK("tokio:10", "app::Leak", "true", "4000", "256",
		      "1") "," TASK("tokio:11", "app::Leak", "true", "3000", "256",
				    "1") "," TASK("tokio:13", "app::worker", "false", "0", "512",
						  "2") "]}";

static struct top_model *load(void)
{
	struct top_model *m = top_model__new();
	char err[128];

	assert_non_null(m);
	assert_int_equal(top_model__set_processes(m, processes, 7, err, sizeof(err)), 0);
	assert_int_equal(top_model__add_tasks(m, suspects, err, sizeof(err)), 0);
	assert_int_equal(top_model__add_tasks(m, all, err, sizeof(err)), 0);
	return m;
}

static void view_ids(struct top_model *m, enum task_row_key key, bool desc, const char *filter,
		     const char *want)
{
	struct task_row_order o = { key, desc, true };
	char buf[256] = "";
	size_t i, off = 0;

	assert_int_equal(top_model__view(m, &o, filter), 0);
	for (i = 0; i < m->nview; i++)
		off += snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? "," : "", m->view[i]->id);
	if (strcmp(buf, want))
		fail_msg("sort %s %s filter '%s': %s, want %s", task_row_key__name(key),
			 desc ? "desc" : "asc", filter ? filter : "", buf, want);
}

static void test_top_model_parses_and_merges(void **state)
{
	struct top_model *m = load();
	const struct top_process *p = top_model__process(m, 7);

	(void)state;
	assert_non_null(p);
	assert_string_equal(p->comm, "svc");
	assert_int_equal(p->live_bytes, 5000);
	assert_int_equal(p->untasked_live_bytes, 700);
	assert_int_equal(p->tasks_live, 3);
	assert_int_equal(p->tasks_spawned, 4);
	assert_int_equal(p->suspects, 2);
	assert_true(top_model__process(m, 8)->exited);
	assert_null(top_model__process(m, 9));
	assert_int_equal(m->events_received, 900);
	assert_int_equal(m->events_lost, 3);
	/* The second answer repeats the suspects: each task once. */
	assert_int_equal(m->nrows, 4);
	assert_int_equal(m->matched, 4);
	/* The types are those of pid 7. */
	assert_int_equal(m->ntypes, 2);
	assert_string_equal(m->types[1].name, "app::worker");
	assert_int_equal(m->types[1].polls, 9);
	assert_false(m->rows[0].age_known);
	assert_true(m->rows[0].idle_seconds == 1.5);
	top_model__free(m);
}

static void test_top_model_suspects_first_then_sort_key(void **state)
{
	struct top_model *m = load();

	(void)state;
	view_ids(m, TASK_ROW_LIVE_BYTES, true, NULL, "tokio:10,tokio:11,tokio:12,tokio:13");
	view_ids(m, TASK_ROW_LIVE_BYTES, false, NULL, "tokio:11,tokio:10,tokio:13,tokio:12");
	view_ids(m, TASK_ROW_POLLS, true, "", "tokio:10,tokio:11,tokio:12,tokio:13");
	view_ids(m, TASK_ROW_ID, false, NULL, "tokio:10,tokio:11,tokio:12,tokio:13");
	view_ids(m, TASK_ROW_ID, true, NULL, "tokio:11,tokio:10,tokio:13,tokio:12");
	view_ids(m, TASK_ROW_LIVE_BYTES, true, "WORK", "tokio:12,tokio:13");
	view_ids(m, TASK_ROW_LIVE_BYTES, true, "leak", "tokio:10,tokio:11");
	view_ids(m, TASK_ROW_LIVE_BYTES, true, "nothing", "");
	/* Types: suspects first, then the key; the filter applies to them too. */
	assert_int_equal(
		top_model__view(m, &(struct task_row_order){ TASK_ROW_LIVE_BYTES, true, true },
				NULL),
		0);
	assert_int_equal(m->ntype_view, 2);
	assert_string_equal(m->type_view[0]->name, "app::Leak");
	assert_int_equal(
		top_model__view(m, &(struct task_row_order){ TASK_ROW_POLLS, true, false }, "app"),
		0);
	assert_string_equal(m->type_view[0]->name, "app::worker");
	assert_int_equal(
		top_model__view(m, &(struct task_row_order){ TASK_ROW_POLLS, true, false }, "leak"),
		0);
	assert_int_equal(m->ntype_view, 1);
	top_model__clear_rows(m);
	assert_int_equal(m->nrows, 0);
	top_model__free(m);
}

static void test_top_model_rejects_other_answers(void **state)
{
	struct top_model *m = top_model__new();
	char err[128];

	(void)state;
	assert_int_equal(top_model__set_processes(m, "not json", 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the answer is not JSON");
	assert_int_equal(top_model__set_processes(m, "{\"api_version\":2,\"processes\":[]}", 0, err,
						  sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "the answer is not of api_version 1");
	assert_int_equal(top_model__add_tasks(m, "{\"api_version\":1}", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the answer has no \"tasks\"");
	assert_int_equal(top_model__set_processes(m, NULL, 0, err, sizeof(err)), -EINVAL);
	top_model__free(m);
	top_model__free(NULL);
}

static void test_top_format(void **state)
{
	static const struct {
		uint64_t bytes;
		const char *text;
	} bytes[] = {
		{ 0, "0" },	     { 99999, "99999" },     { 100000, "98K" },
		{ 1048576, "1.0M" }, { 5ull << 30, "5.0G" }, { 999999, "977K" },
	};
	static const struct {
		double s;
		const char *text;
	} secs[] = {
		{ 0, "0.00s" },	  { 1.234, "1.23s" }, { 59.95, "60.0s" }, { 600, "10.0m" },
		{ 7200, "2.0h" }, { 36000, "10.0h" }, { 86400, "1.0d" },  { 864000, "10d" },
	};
	char buf[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
		top__format_bytes(bytes[i].bytes, buf, sizeof(buf));
		assert_string_equal(buf, bytes[i].text);
	}
	for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		top__format_seconds(secs[i].s, buf, sizeof(buf));
		assert_string_equal(buf, secs[i].text);
	}
}

static void test_task_row_keys(void **state)
{
	enum task_row_key k;
	int i;

	(void)state;
	for (i = 0; i < TASK_ROW_NKEYS; i++) {
		assert_int_equal(task_row_key__parse(task_row_key__name(i), &k), 0);
		assert_int_equal(k, i);
	}
	assert_int_equal(task_row_key__parse("size", &k), -EINVAL);
	assert_int_equal(task_row_key__parse(NULL, &k), -EINVAL);
	assert_null(task_row_key__name(TASK_ROW_NKEYS));
	assert_true(task_row_key__descending_by_default(TASK_ROW_LIVE_BYTES));
	assert_false(task_row_key__descending_by_default(TASK_ROW_TYPE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_top_model_parses_and_merges),
		cmocka_unit_test(test_top_model_suspects_first_then_sort_key),
		cmocka_unit_test(test_top_model_rejects_other_answers),
		cmocka_unit_test(test_top_format),
		cmocka_unit_test(test_task_row_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
