// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer: what an API client sends. Input: one byte choosing the endpoint, then a query
 * string "k=v&k&..." (as MHD hands it over: split at '&' and the first '='), answered from a
 * fixed snapshot of three tasks. Every answer must be 200, 400 or 404 and valid JSON, and a
 * 200 of /api/v1/tasks must return at most its limit.
 */
#include <assert.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "api_render.h"
#include "api_snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct api_snapshot *snapshot(void)
{
	static struct api_snapshot *s;
	struct process_limits limits = { 0 };
	struct process_table *pt;
	struct report_input in = { 0 };
	struct process *p;
	struct task *t;
	int i;

	if (s)
		return s;
	pt = process_table__new(&limits, NULL);
	p = pt ? process_table__add(pt, 7, "svc", "/svc") : NULL;
	assert(p);
	for (i = 0; i < 3; i++) {
		t = task_table__spawn(p->tasks, 0x100 * (i + 1),
				      task_table__type(p->tasks, "tokio", i ? "a::B" : "c::D"),
				      TASK_ASYNC, TASK_FOUND_SPAWN, 1);
		assert(t);
		t->runtime_id = i + 1;
		t->live_bytes = 10 * i;
	}
	in.procs = pt;
	in.now_ns = 100000000000ull;
	in.stuck_after_ns = 1;
	s = api_snapshot__new(&in, 2);
	assert(s);
	/* The snapshot owns copies of everything it serves: the tables can go. */
	process_table__free(pt);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_arg args[API_MAX_ARGS + 8];
	struct json_object *o, *v;
	size_t n = 0, len;
	char *buf, *kv, *save = NULL, *eq, *body;
	int status, endpoint;

	if (!size)
		return 0;
	endpoint = data[0] & 1 ? API_TASKS : API_PROCESSES;
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	for (kv = strtok_r(buf, "&", &save); kv && n < sizeof(args) / sizeof(args[0]);
	     kv = strtok_r(NULL, "&", &save)) {
		eq = strchr(kv, '=');
		if (eq)
			*eq = '\0';
		args[n++] = (struct api_arg){ kv, eq ? eq + 1 : NULL };
	}
	if (!api_render__answer(snapshot(), endpoint, args, n, &status, &body, &len)) {
		assert(status == 200 || status == 400 || status == 404);
		assert(strlen(body) == len);
		o = json_tokener_parse(body);
		assert(o);
		if (status != 200)
			assert(json_object_object_get_ex(o, "error", &v));
		else if (endpoint == API_TASKS)
			assert(json_object_object_get_ex(o, "tasks", &v) &&
			       json_object_array_length(v) <= API_MAX_LIMIT &&
			       json_object_array_length(v) <= 2);
		json_object_put(o);
		free(body);
	}
	free(buf);
	return 0;
}
