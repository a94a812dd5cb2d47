// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "top_model.h"

struct top_model *top_model__new(void)
{
	return calloc(1, sizeof(struct top_model));
}

static void free_strings(struct top_model *m)
{
	size_t i;

	for (i = 0; i < m->nstrings; i++)
		free(m->strings[i]);
	m->nstrings = 0;
}

void top_model__free(struct top_model *m)
{
	if (!m)
		return;
	free_strings(m);
	free(m->strings);
	free(m->procs);
	free(m->types);
	free(m->rows);
	free(m->view);
	free(m->type_view);
	free(m);
}

/*
 * Strings live until the model is freed or cleared: types and rows of one refresh point into
 * them. A refresh clears both at once (top_model__clear_rows then set_processes).
 */
static const char *keep(struct top_model *m, const char *s)
{
	char **grown, *copy;
	size_t cap;

	if (m->nstrings == m->strings_cap) {
		cap = m->strings_cap ? 2 * m->strings_cap : 64;
		grown = realloc(m->strings, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		m->strings = grown;
		m->strings_cap = cap;
	}
	copy = strdup(s ? s : "");
	if (copy)
		m->strings[m->nstrings++] = copy;
	return copy;
}

void top_model__clear_rows(struct top_model *m)
{
	m->nrows = 0;
	m->nview = 0;
	m->matched = 0;
	m->ntypes = 0;
	m->ntype_view = 0;
	free_strings(m);
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_uint64(v) : 0;
}

static double get_double(struct json_object *o, const char *key, bool *ret_known)
{
	struct json_object *v;
	bool known = json_object_object_get_ex(o, key, &v) && v;

	if (ret_known)
		*ret_known = known;
	return known ? json_object_get_double(v) : 0;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

static bool get_bool(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static struct json_object *parse(const char *json, const char *array, char *err, size_t len,
				 struct json_object **ret_array)
{
	struct json_object *o = json ? json_tokener_parse(json) : NULL, *a, *v;

	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, len, "the answer is not JSON");
		json_object_put(o);
		return NULL;
	}
	if (!json_object_object_get_ex(o, "api_version", &v) || json_object_get_int(v) != 1) {
		snprintf(err, len, "the answer is not of api_version 1");
		json_object_put(o);
		return NULL;
	}
	if (!json_object_object_get_ex(o, array, &a) || !json_object_is_type(a, json_type_array)) {
		snprintf(err, len, "the answer has no \"%s\"", array);
		json_object_put(o);
		return NULL;
	}
	*ret_array = a;
	return o;
}

static void set_header(struct top_model *m, struct json_object *o)
{
	struct json_object *events;

	m->duration_seconds = get_double(o, "duration_seconds", NULL);
	if (json_object_object_get_ex(o, "events", &events)) {
		m->events_received = get_u64(events, "received");
		m->events_lost = get_u64(events, "lost");
	}
}

static int set_types(struct top_model *m, struct json_object *proc)
{
	struct json_object *types, *t;
	struct top_type *grown;
	size_t i, n;

	m->ntypes = 0;
	if (!json_object_object_get_ex(proc, "task_types", &types) ||
	    !json_object_is_type(types, json_type_array))
		return 0;
	n = json_object_array_length(types);
	grown = realloc(m->types, (n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	m->types = grown;
	for (i = 0; i < n; i++) {
		struct top_type *ty = &m->types[m->ntypes];

		t = json_object_array_get_idx(types, i);
		ty->name = keep(m, get_str(t, "name"));
		ty->runtime = keep(m, get_str(t, "runtime"));
		if (!ty->name || !ty->runtime)
			return -ENOMEM;
		ty->future_size_bytes = get_u64(t, "future_size_bytes");
		ty->spawned = get_u64(t, "spawned");
		ty->live = get_u64(t, "live");
		ty->completed = get_u64(t, "completed");
		ty->cancelled = get_u64(t, "cancelled");
		ty->suspects = get_u64(t, "suspects");
		ty->live_bytes = get_u64(t, "live_bytes");
		ty->polls = get_u64(t, "polls");
		m->ntypes++;
	}
	return 0;
}

int top_model__set_processes(struct top_model *m, const char *json, uint32_t pid, char *err,
			     size_t len)
{
	struct json_object *root, *procs, *p, *heap, *sum;
	struct top_process *grown;
	size_t i, n;
	int ret = 0;

	root = parse(json, "processes", err, len, &procs);
	if (!root)
		return -EINVAL;
	set_header(m, root);
	n = json_object_array_length(procs);
	grown = realloc(m->procs, (n + 1) * sizeof(*grown));
	if (!grown) {
		json_object_put(root);
		return -ENOMEM;
	}
	m->procs = grown;
	m->nprocs = 0;
	m->ntypes = 0;
	for (i = 0; i < n; i++) {
		struct top_process *tp = &m->procs[m->nprocs++];

		p = json_object_array_get_idx(procs, i);
		memset(tp, 0, sizeof(*tp));
		tp->pid = (uint32_t)get_u64(p, "pid");
		snprintf(tp->comm, sizeof(tp->comm), "%s", get_str(p, "comm") ?: "");
		tp->exited = get_bool(p, "exited");
		if (json_object_object_get_ex(p, "heap", &heap))
			tp->live_bytes = get_u64(heap, "live_bytes");
		if (json_object_object_get_ex(p, "tasks_summary", &sum)) {
			tp->untasked_live_bytes = get_u64(sum, "untasked_live_bytes");
			tp->tasks_live = get_u64(sum, "live");
			tp->tasks_spawned = get_u64(sum, "spawned");
			tp->suspects = get_u64(sum, "suspects");
			tp->blocking_live = get_u64(sum, "blocking_live");
		}
		if (tp->pid == pid || (!pid && i == 0))
			ret = set_types(m, p);
	}
	json_object_put(root);
	return ret;
}

const struct top_process *top_model__process(const struct top_model *m, uint32_t pid)
{
	size_t i;

	for (i = 0; i < m->nprocs; i++)
		if (m->procs[i].pid == pid)
			return &m->procs[i];
	return NULL;
}

static bool has_row(const struct top_model *m, uint32_t pid, const char *id)
{
	size_t i;

	for (i = 0; i < m->nrows; i++)
		if (m->rows[i].pid == pid && !strcmp(m->rows[i].id, id))
			return true;
	return false;
}

static void copy_field(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static int parse_row(struct top_model *m, struct json_object *t, struct task_row *r)
{
	memset(r, 0, sizeof(*r));
	r->pid = (uint32_t)get_u64(t, "pid");
	r->seq = (uint32_t)m->nrows;
	copy_field(r->id, sizeof(r->id), get_str(t, "id"));
	copy_field(r->parent, sizeof(r->parent), get_str(t, "parent"));
	copy_field(r->address, sizeof(r->address), get_str(t, "address"));
	copy_field(r->kind, sizeof(r->kind), get_str(t, "kind"));
	copy_field(r->state, sizeof(r->state), get_str(t, "state"));
	copy_field(r->ended, sizeof(r->ended), get_str(t, "ended"));
	copy_field(r->discovered, sizeof(r->discovered), get_str(t, "discovered"));
	r->runtime = keep(m, get_str(t, "runtime"));
	r->type = keep(m, get_str(t, "type"));
	if (!r->runtime || !r->type)
		return -ENOMEM;
	r->suspect = get_bool(t, "suspect");
	if (r->suspect && !(r->suspect_reason = keep(m, get_str(t, "suspect_reason"))))
		return -ENOMEM;
	r->detached = get_bool(t, "detached");
	r->age_seconds = get_double(t, "age_seconds", &r->age_known);
	r->spawned_at_seconds = get_double(t, "spawned_at_seconds", &r->spawned_known);
	r->first_poll_at_seconds = get_double(t, "first_poll_at_seconds", &r->first_poll_known);
	r->ended_at_seconds = get_double(t, "ended_at_seconds", &r->ended_known);
	r->deallocated_at_seconds = get_double(t, "deallocated_at_seconds", &r->deallocated_known);
	r->idle_seconds = get_double(t, "idle_seconds", NULL);
	r->busy_seconds = get_double(t, "busy_seconds", NULL);
	r->polls = get_u64(t, "polls");
	r->stack_bytes = get_u64(t, "stack_bytes");
	r->generation = (uint32_t)get_u64(t, "generation");
	r->last_tid = (uint32_t)get_u64(t, "last_tid");
	r->running_seconds = get_double(t, "running_seconds", NULL);
	r->suspended_seconds = get_double(t, "suspended_seconds", NULL);
	r->future_size_bytes = get_u64(t, "future_size_bytes");
	r->live_bytes = get_u64(t, "live_bytes");
	r->live_allocations = get_u64(t, "live_allocations");
	r->allocated_bytes_total = get_u64(t, "allocated_bytes_total");
	r->allocations_total = get_u64(t, "allocations_total");
	return 0;
}

int top_model__add_tasks(struct top_model *m, const char *json, char *err, size_t len)
{
	struct json_object *root, *tasks, *t;
	struct task_row *grown;
	size_t i, n;
	int ret = 0;

	root = parse(json, "tasks", err, len, &tasks);
	if (!root)
		return -EINVAL;
	n = json_object_array_length(tasks);
	if (get_u64(root, "matched") > m->matched)
		m->matched = get_u64(root, "matched");
	grown = realloc(m->rows, (m->nrows + n + 1) * sizeof(*grown));
	if (!grown) {
		json_object_put(root);
		return -ENOMEM;
	}
	m->rows = grown;
	for (i = 0; i < n && !ret && m->nrows < TOP_MAX_ROWS; i++) {
		const char *id;

		t = json_object_array_get_idx(tasks, i);
		id = get_str(t, "id");
		if (!id || has_row(m, (uint32_t)get_u64(t, "pid"), id))
			continue;
		ret = parse_row(m, t, &m->rows[m->nrows]);
		if (!ret)
			m->nrows++;
	}
	json_object_put(root);
	return ret;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* Types sort on the keys they have (live bytes otherwise); suspects first, as tasks. */
static int type_cmp(const struct top_type *a, const struct top_type *b,
		    const struct task_row_order *o)
{
	int c;

	if (o->suspects_first && !a->suspects != !b->suspects)
		return a->suspects ? -1 : 1;
	switch (o->key) {
	case TASK_ROW_TYPE:
		c = strcmp(a->name, b->name);
		break;
	case TASK_ROW_POLLS:
		c = cmp_u64(a->polls, b->polls);
		break;
	case TASK_ROW_FUTURE_SIZE:
		c = cmp_u64(a->future_size_bytes, b->future_size_bytes);
		break;
	case TASK_ROW_LIVE_BYTES:
		c = cmp_u64(a->live_bytes, b->live_bytes);
		break;
	default:
		/* A key types do not have: live bytes, largest first. */
		c = -cmp_u64(a->live_bytes, b->live_bytes);
		return c ? c : strcmp(a->name, b->name);
	}
	if (o->descending)
		c = -c;
	return c ? c : strcmp(a->name, b->name);
}

int top_model__view(struct top_model *m, const struct task_row_order *order, const char *filter)
{
	const struct top_type **tv;
	const struct task_row **v;
	size_t i, j, n = 0;

	v = realloc(m->view, (m->nrows + 1) * sizeof(*v));
	tv = v ? realloc(m->type_view, (m->ntypes + 1) * sizeof(*tv)) : NULL;
	if (v)
		m->view = v;
	if (!v || !tv)
		return -ENOMEM;
	m->type_view = tv;
	for (i = 0; i < m->nrows; i++)
		if (task_row__type_matches(&m->rows[i], filter))
			v[n++] = &m->rows[i];
	task_row__sort(v, n, order);
	m->nview = n;
	n = 0;
	for (i = 0; i < m->ntypes; i++)
		if (!filter || !*filter || strcasestr(m->types[i].name, filter))
			tv[n++] = &m->types[i];
	/* A few types (bounded by --max-types): insertion sort. */
	for (i = 1; i < n; i++)
		for (j = i; j && type_cmp(tv[j], tv[j - 1], order) < 0; j--) {
			const struct top_type *t = tv[j];

			tv[j] = tv[j - 1];
			tv[j - 1] = t;
		}
	m->ntype_view = n;
	return 0;
}

void top__format_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	int u = -1;

	if (bytes < 100000) {
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
		return;
	}
	while (v >= 1000 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

void top__format_seconds(double s, char *buf, size_t len)
{
	if (s < 10)
		snprintf(buf, len, "%.2fs", s);
	else if (s < 60)
		snprintf(buf, len, "%.1fs", s);
	else if (s < 3600)
		snprintf(buf, len, "%.1fm", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%.1fh", s / 3600);
	else if (s < 864000)
		snprintf(buf, len, "%.1fd", s / 86400);
	else
		snprintf(buf, len, "%.0fd", s / 86400);
}
