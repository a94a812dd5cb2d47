// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api_render.h"
#include "cli.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct query {
	bool has_pid;
	uint32_t pid;
	struct task_row_order order;
	size_t limit;
	int suspects; /* -1 any, 0 only others, 1 only suspects */
	const char *type;
};

static void put_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void put_seconds(struct json_object *o, const char *key, double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.3f", v);
	json_object_object_add(o, key, json_object_new_double_s(v, buf));
}

static void put_string(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

int api_render__endpoint(const char *path)
{
	if (!path)
		return -ENOENT;
	if (!strcmp(path, "/api/v1/processes"))
		return API_PROCESSES;
	if (!strcmp(path, "/api/v1/tasks"))
		return API_TASKS;
	return -ENOENT;
}

static char *take_text(struct json_object *o, size_t *ret_len)
{
	const char *text = o ? json_object_to_json_string_ext(o, JSON_FLAGS) : NULL;
	size_t n = text ? strlen(text) : 0;
	char *body = text ? malloc(n + 2) : NULL;

	if (body) {
		memcpy(body, text, n);
		body[n++] = '\n';
		body[n] = '\0';
		*ret_len = n;
	}
	json_object_put(o);
	return body;
}

char *api_render__error(const char *msg, size_t *ret_len)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "error", json_object_new_string(msg));
	return take_text(o, ret_len);
}

/* A decimal in [min, max], nothing else. */
static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s || !*s || strlen(s) > 19)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static const char *const tasks_params[] = { "pid",	"sort", "order", "limit",
					    "suspects", "type", NULL };
static const char *const processes_params[] = { "pid", NULL };

static bool known(const char *const *params, const char *key)
{
	for (; *params; params++)
		if (!strcmp(*params, key))
			return true;
	return false;
}

/* Fills q from the query string; on a bad one writes the reason to err and returns -EINVAL. */
static int parse_query(enum api_endpoint endpoint, const struct api_arg *args, size_t nargs,
		       struct query *q, char *err, size_t len)
{
	const char *const *params = endpoint == API_TASKS ? tasks_params : processes_params;
	bool order_given = false;
	uint64_t v;
	size_t i, j;

	memset(q, 0, sizeof(*q));
	q->order.key = TASK_ROW_LIVE_BYTES;
	q->order.descending = true;
	q->limit = API_DEFAULT_LIMIT;
	q->suspects = -1;
	if (nargs > API_MAX_ARGS) {
		snprintf(err, len, "too many query parameters (at most %d)", API_MAX_ARGS);
		return -EINVAL;
	}
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key ? args[i].key : "", *val = args[i].value;

		if (!known(params, k)) {
			snprintf(err, len, "unknown parameter '%.64s' (expected one of: %s)", k,
				 endpoint == API_TASKS ? "pid, sort, order, limit, suspects, type" :
							 "pid");
			return -EINVAL;
		}
		for (j = 0; j < i; j++)
			if (args[j].key && !strcmp(args[j].key, k)) {
				snprintf(err, len, "parameter '%s' given twice", k);
				return -EINVAL;
			}
		if (!val) {
			snprintf(err, len, "parameter '%s' has no value", k);
			return -EINVAL;
		}
		if (!strcmp(k, "pid")) {
			if (parse_uint(val, 1, UINT32_MAX, &v)) {
				snprintf(err, len, "invalid pid '%.64s': expected a process id",
					 val);
				return -EINVAL;
			}
			q->has_pid = true;
			q->pid = (uint32_t)v;
		} else if (!strcmp(k, "sort")) {
			if (task_row_key__parse(val, &q->order.key)) {
				snprintf(
					err, len,
					"invalid sort '%.64s': expected one of id, kind, state, polls, "
					"busy_seconds, idle_seconds, future_size_bytes, live_bytes, "
					"type, age_seconds, live_allocations, allocated_bytes_total, "
					"allocations_total, pid",
					val);
				return -EINVAL;
			}
		} else if (!strcmp(k, "order")) {
			if (strcmp(val, "asc") && strcmp(val, "desc")) {
				snprintf(err, len, "invalid order '%.64s': expected asc or desc",
					 val);
				return -EINVAL;
			}
			order_given = true;
			q->order.descending = !strcmp(val, "desc");
		} else if (!strcmp(k, "limit")) {
			if (parse_uint(val, 1, API_MAX_LIMIT, &v)) {
				snprintf(err, len, "invalid limit '%.64s': expected 1 to %d", val,
					 API_MAX_LIMIT);
				return -EINVAL;
			}
			q->limit = (size_t)v;
		} else if (!strcmp(k, "suspects")) {
			if (strcmp(val, "0") && strcmp(val, "1")) {
				snprintf(err, len, "invalid suspects '%.64s': expected 0 or 1",
					 val);
				return -EINVAL;
			}
			q->suspects = val[0] == '1';
		} else if (!strcmp(k, "type")) {
			if (strlen(val) > 256) {
				snprintf(err, len, "invalid type: longer than 256 bytes");
				return -EINVAL;
			}
			q->type = val;
		}
	}
	if (!order_given)
		q->order.descending = task_row_key__descending_by_default(q->order.key);
	return 0;
}

static struct json_object *header(const struct api_snapshot *s)
{
	struct json_object *o = json_object_new_object(), *events, *snap;
	char buf[32];

	if (!o)
		return NULL;
	put_u64(o, "api_version", API_VERSION);
	put_string(o, "memscoped_version", MEMSCOPED_VERSION);
	snprintf(buf, sizeof(buf), "%.3f", s->duration_seconds);
	json_object_object_add(o, "duration_seconds",
			       json_object_new_double_s(s->duration_seconds, buf));
	events = json_object_new_object();
	put_u64(events, "received", s->events_received);
	put_u64(events, "lost", s->events_lost);
	json_object_object_add(o, "events", events);
	snap = json_object_new_object();
	put_u64(snap, "tasks", s->ntasks);
	put_u64(snap, "tasks_omitted", s->tasks_omitted);
	put_seconds(snap, "build_seconds", (double)s->build_ns / 1e9);
	json_object_object_add(o, "snapshot", snap);
	return o;
}

/* The report's task object, field for field (report_json.c task_json). */
static struct json_object *task_json(const struct task_row *r)
{
	struct json_object *o = json_object_new_object();

	put_u64(o, "pid", r->pid);
	put_string(o, "id", r->id);
	put_string(o, "runtime", r->runtime);
	put_string(o, "kind", r->kind);
	put_string(o, "type", r->type);
	put_string(o, "state", r->state);
	put_string(o, "discovered", r->discovered);
	json_object_object_add(o, "suspect", json_object_new_boolean(r->suspect));
	if (r->suspect)
		put_string(o, "suspect_reason", r->suspect_reason);
	put_string(o, "parent", r->parent[0] ? r->parent : NULL);
	put_string(o, "address", r->address);
	if (r->stack_bytes) {
		put_u64(o, "stack_bytes", r->stack_bytes);
		put_u64(o, "generation", r->generation);
		put_u64(o, "resumes", r->polls);
		if (r->last_tid)
			put_u64(o, "last_tid", r->last_tid);
		else
			json_object_object_add(o, "last_tid", NULL);
		put_seconds(o, "running_seconds", r->running_seconds);
		put_seconds(o, "suspended_seconds", r->suspended_seconds);
	}
	if (r->age_known)
		put_seconds(o, "age_seconds", r->age_seconds);
	else
		json_object_object_add(o, "age_seconds", NULL);
	if (r->spawned_known)
		put_seconds(o, "spawned_at_seconds", r->spawned_at_seconds);
	else
		json_object_object_add(o, "spawned_at_seconds", NULL);
	if (r->first_poll_known)
		put_seconds(o, "first_poll_at_seconds", r->first_poll_at_seconds);
	else
		json_object_object_add(o, "first_poll_at_seconds", NULL);
	put_seconds(o, "idle_seconds", r->idle_seconds);
	put_seconds(o, "busy_seconds", r->busy_seconds);
	put_u64(o, "polls", r->polls);
	put_u64(o, "future_size_bytes", r->future_size_bytes);
	put_u64(o, "live_bytes", r->live_bytes);
	put_u64(o, "live_allocations", r->live_allocations);
	put_u64(o, "allocated_bytes_total", r->allocated_bytes_total);
	put_u64(o, "allocations_total", r->allocations_total);
	json_object_object_add(o, "detached", json_object_new_boolean(r->detached));
	put_string(o, "ended", r->ended[0] ? r->ended : NULL);
	if (r->ended_known)
		put_seconds(o, "ended_at_seconds", r->ended_at_seconds);
	if (r->deallocated_known)
		put_seconds(o, "deallocated_at_seconds", r->deallocated_at_seconds);
	return o;
}

static bool has_process(const struct api_snapshot *s, uint32_t pid)
{
	size_t i;

	for (i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid)
			return true;
	return false;
}

static int processes_answer(const struct api_snapshot *s, const struct query *q,
			    struct json_object *o)
{
	struct json_object *a = json_object_new_array(), *p;
	size_t i;

	if (!a)
		return -ENOMEM;
	json_object_object_add(o, "processes", a);
	for (i = 0; i < s->nprocs; i++) {
		if (q->has_pid && s->procs[i].pid != q->pid)
			continue;
		p = json_tokener_parse(s->procs[i].json);
		if (!p || json_object_array_add(a, p))
			return -ENOMEM;
	}
	return 0;
}

static int tasks_answer(const struct api_snapshot *s, const struct query *q, struct json_object *o)
{
	const struct task_row **rows;
	struct json_object *a;
	size_t i, n = 0;

	rows = malloc((s->ntasks + 1) * sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (i = 0; i < s->ntasks; i++) {
		const struct task_row *r = &s->tasks[i];

		if ((q->has_pid && r->pid != q->pid) ||
		    (q->suspects >= 0 && r->suspect != (q->suspects == 1)) ||
		    !task_row__type_matches(r, q->type))
			continue;
		rows[n++] = r;
	}
	task_row__sort(rows, n, &q->order);
	put_string(o, "sort", task_row_key__name(q->order.key));
	put_string(o, "order", q->order.descending ? "desc" : "asc");
	put_u64(o, "limit", q->limit);
	put_u64(o, "matched", n);
	put_u64(o, "returned", n < q->limit ? n : q->limit);
	a = json_object_new_array();
	if (!a) {
		free(rows);
		return -ENOMEM;
	}
	json_object_object_add(o, "tasks", a);
	for (i = 0; i < n && i < q->limit; i++)
		json_object_array_add(a, task_json(rows[i]));
	free(rows);
	return 0;
}

int api_render__answer(const struct api_snapshot *s, enum api_endpoint endpoint,
		       const struct api_arg *args, size_t nargs, int *ret_status, char **ret_body,
		       size_t *ret_len)
{
	struct json_object *o;
	struct query q;
	char err[512];
	size_t len;
	char *body;
	int status = 200;

	if (parse_query(endpoint, args, nargs, &q, err, sizeof(err))) {
		status = 400;
	} else if (q.has_pid && !has_process(s, q.pid)) {
		snprintf(err, sizeof(err), "pid %u is not traced", q.pid);
		status = 404;
	}
	if (status != 200) {
		body = api_render__error(err, &len);
	} else {
		o = header(s);
		if (!o ||
		    (endpoint == API_TASKS ? tasks_answer(s, &q, o) : processes_answer(s, &q, o))) {
			json_object_put(o);
			return -ENOMEM;
		}
		body = take_text(o, &len);
	}
	if (!body)
		return -ENOMEM;
	*ret_status = status;
	*ret_body = body;
	*ret_len = len;
	return 0;
}
