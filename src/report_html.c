// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The HTML report: a static page (src/report_html.html, linked in by report_html_data.S)
 * and a JSON data block its inline script renders. The data holds the JSON report's own
 * objects (report_json__process, report_json__task), so every figure is the same, cut to
 * a bounded size: the top rows of each table, the rest summed.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "ended_table.h"
#include "report.h"
#include "report_html.h"
#include "task_table.h"

extern const char report_html_template[], report_html_template_end[];

#define DATA_MARK "@MEMSCOPED_DATA@"
/* Future size buckets: powers of two up to 2^47 bytes. */
#define HIST_BUCKETS 48

/* The n largest keys seen; ties go to the smaller index (the earlier row). */
struct top {
	uint32_t idx[HTML_TOP_ROWS];
	uint64_t key[HTML_TOP_ROWS];
	size_t n, cap;
};

static bool worse(const struct top *t, size_t a, uint32_t idx, uint64_t key)
{
	return t->key[a] < key || (t->key[a] == key && t->idx[a] > idx);
}

static void swap_rows(struct top *t, size_t a, size_t b)
{
	uint32_t i = t->idx[a];
	uint64_t k = t->key[a];

	t->idx[a] = t->idx[b];
	t->key[a] = t->key[b];
	t->idx[b] = i;
	t->key[b] = k;
}

/* A min-heap on (key, -idx): its root is the row to drop first. */
static void sift_down(struct top *t, size_t i)
{
	size_t l, r, m;

	for (;;) {
		l = 2 * i + 1;
		r = l + 1;
		m = i;
		if (l < t->n && worse(t, l, t->idx[m], t->key[m]))
			m = l;
		if (r < t->n && worse(t, r, t->idx[m], t->key[m]))
			m = r;
		if (m == i)
			return;
		swap_rows(t, i, m);
		i = m;
	}
}

/* Offers a row; returns true if it is kept, *ret_dropped set when it pushed one out. */
static bool top_offer(struct top *t, uint32_t idx, uint64_t key, bool *ret_dropped,
		      uint32_t *ret_idx)
{
	size_t i;

	*ret_dropped = false;
	if (t->n < t->cap) {
		i = t->n++;
		t->idx[i] = idx;
		t->key[i] = key;
		while (i && worse(t, i, t->idx[(i - 1) / 2], t->key[(i - 1) / 2])) {
			swap_rows(t, i, (i - 1) / 2);
			i = (i - 1) / 2;
		}
		return true;
	}
	if (!t->n || !worse(t, 0, idx, key))
		return false;
	*ret_dropped = true;
	*ret_idx = t->idx[0];
	t->idx[0] = idx;
	t->key[0] = key;
	sift_down(t, 0);
	return true;
}

static int by_rank(const void *a, const void *b, void *ctx)
{
	const struct top *t = ctx;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;

	if (t->key[i] != t->key[j])
		return t->key[i] > t->key[j] ? -1 : 1;
	return t->idx[i] < t->idx[j] ? -1 : t->idx[i] > t->idx[j];
}

/* The kept rows' indices, best first. */
static void top_sorted(struct top *t, uint32_t *ret_idx)
{
	size_t order[HTML_TOP_ROWS], i;

	for (i = 0; i < t->n; i++)
		order[i] = i;
	qsort_r(order, t->n, sizeof(order[0]), by_rank, t);
	for (i = 0; i < t->n; i++)
		ret_idx[i] = t->idx[order[i]];
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

static void put_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	put_u64(o, key, get_u64(o, key) + v);
}

/* "threads": the top ones by live bytes, in report order; "threads_omitted" sums the rest. */
static void cut_threads(struct json_object *proc, size_t max)
{
	struct json_object *all = json_object_object_get(proc, "threads"), *kept, *omitted;
	struct top t = { .cap = max };
	uint32_t idx[HTML_TOP_ROWS], out;
	size_t i, n = json_object_array_length(all);
	bool dropped;

	omitted = json_object_new_object();
	put_u64(omitted, "threads", 0);
	put_u64(omitted, "live_bytes", 0);
	for (i = 0; i < n; i++) {
		uint64_t live = get_u64(json_object_array_get_idx(all, i), "live_bytes");

		if (!top_offer(&t, (uint32_t)i, live, &dropped, &out))
			out = (uint32_t)i;
		else if (!dropped)
			continue;
		add_u64(omitted, "threads", 1);
		add_u64(omitted, "live_bytes",
			get_u64(json_object_array_get_idx(all, out), "live_bytes"));
	}
	top_sorted(&t, idx);
	kept = json_object_new_array();
	for (i = 0; i < t.n; i++)
		json_object_array_add(kept,
				      json_object_get(json_object_array_get_idx(all, idx[i])));
	json_object_object_add(proc, "threads", kept);
	json_object_object_add(proc, "threads_omitted", omitted);
}

static const char *const type_sums[] = { "spawned",
					 "live",
					 "completed",
					 "cancelled",
					 "suspects",
					 "live_bytes",
					 "allocated_bytes_total",
					 "outlived_live_bytes",
					 "polls" };

/* Suspects first, then by bytes held (live and outlived). */
static uint64_t type_rank(struct json_object *ty)
{
	uint64_t held = get_u64(ty, "live_bytes") + get_u64(ty, "outlived_live_bytes");

	if (held >= 1ull << 63)
		held = (1ull << 63) - 1;
	return (get_u64(ty, "suspects") ? 1ull << 63 : 0) | held;
}

static int hist_bucket(uint64_t size)
{
	int b = 0;

	while (b < HIST_BUCKETS - 1 && size > (1ull << b))
		b++;
	return b;
}

/* Each kept type's "future_size_histogram": [[upper bound, tasks], ...] over the report's tasks. */
static int add_histograms(struct json_object *kept, const uint32_t *type_of,
			  const struct task_table *tt)
{
	size_t n = json_object_array_length(kept), i;
	int32_t *pos = malloc(tt->ntypes * sizeof(*pos));
	uint64_t(*counts)[HIST_BUCKETS] = calloc(n ? n : 1, sizeof(*counts));
	struct json_object *h, *pair;
	int b;

	if (!pos || !counts) {
		free(pos);
		free(counts);
		return -ENOMEM;
	}
	for (i = 0; i < tt->ntypes; i++)
		pos[i] = -1;
	for (i = 0; i < n; i++)
		if (type_of[i] < tt->ntypes)
			pos[type_of[i]] = (int32_t)i;
	for (i = 1; i < tt->ntasks; i++) {
		const struct task *t = &tt->tasks[i];

		if (!t->unused && t->type < tt->ntypes && pos[t->type] >= 0)
			counts[pos[t->type]][hist_bucket(t->future_size)]++;
	}
	for (i = 0; i < n; i++) {
		h = json_object_new_array();
		for (b = 0; b < HIST_BUCKETS; b++) {
			if (!counts[i][b])
				continue;
			pair = json_object_new_array();
			json_object_array_add(pair, json_object_new_uint64(1ull << b));
			json_object_array_add(pair, json_object_new_uint64(counts[i][b]));
			json_object_array_add(h, pair);
		}
		json_object_object_add(json_object_array_get_idx(kept, i), "future_size_histogram",
				       h);
	}
	free(pos);
	free(counts);
	return 0;
}

/* The index of the type a report row names, by name and runtime; UINT32_MAX if none. */
static uint32_t find_type(const struct task_table *tt, struct json_object *row)
{
	const char *name = json_object_get_string(json_object_object_get(row, "name"));
	const char *runtime = json_object_get_string(json_object_object_get(row, "runtime"));
	size_t k;

	for (k = 0; name && runtime && k < tt->ntypes; k++)
		if (!strcmp(tt->types[k].name, name) && !strcmp(tt->types[k].runtime, runtime))
			return (uint32_t)k;
	return UINT32_MAX;
}

/*
 * "task_types": the top ones (suspects first, then by bytes held), "task_types_omitted" sums
 * the rest. The report lists types with a task, in table order: pair each row with its index
 * as it goes, and look up by name the kept rows that do not pair (the order changed).
 */
static int cut_types(struct json_object *proc, const struct process *p, size_t max)
{
	struct json_object *all = json_object_object_get(proc, "task_types"), *kept, *omitted;
	const struct task_table *tt = p->tasks;
	size_t n = json_object_array_length(all), i, j, k = 0;
	uint32_t *type_of = calloc(n ? n : 1, sizeof(*type_of));
	uint32_t idx[HTML_TOP_ROWS], kept_type[HTML_TOP_ROWS], out;
	struct top t = { .cap = max };
	bool dropped;
	int err;

	if (!type_of)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const char *name = json_object_get_string(
			json_object_object_get(json_object_array_get_idx(all, i), "name"));

		while (k < tt->ntypes && !tt->types[k].spawned)
			k++;
		type_of[i] = k < tt->ntypes && !strcmp(tt->types[k].name, name) ? (uint32_t)k++ :
										  UINT32_MAX;
	}
	omitted = json_object_new_object();
	put_u64(omitted, "types", 0);
	for (j = 0; j < sizeof(type_sums) / sizeof(type_sums[0]); j++)
		put_u64(omitted, type_sums[j], 0);
	for (i = 0; i < n; i++) {
		struct json_object *ty;

		if (!top_offer(&t, (uint32_t)i, type_rank(json_object_array_get_idx(all, i)),
			       &dropped, &out))
			out = (uint32_t)i;
		else if (!dropped)
			continue;
		ty = json_object_array_get_idx(all, out);
		add_u64(omitted, "types", 1);
		for (j = 0; j < sizeof(type_sums) / sizeof(type_sums[0]); j++)
			add_u64(omitted, type_sums[j], get_u64(ty, type_sums[j]));
	}
	top_sorted(&t, idx);
	kept = json_object_new_array();
	for (i = 0; i < t.n; i++) {
		json_object_array_add(kept,
				      json_object_get(json_object_array_get_idx(all, idx[i])));
		kept_type[i] = type_of[idx[i]] != UINT32_MAX ?
				       type_of[idx[i]] :
				       find_type(tt, json_object_array_get_idx(all, idx[i]));
	}
	err = add_histograms(kept, kept_type, tt);
	free(type_of);
	json_object_object_add(proc, "task_types", kept);
	json_object_object_add(proc, "task_types_omitted", omitted);
	return err;
}

/* A list of tasks from the top rows, and what the rows left out hold. */
static void put_tasks(struct json_object *proc, const char *key, struct top *t,
		      const struct process *p, const struct report_input *in, uint64_t total,
		      uint64_t total_bytes)
{
	struct json_object *a = json_object_new_array(), *omitted = json_object_new_object();
	uint32_t idx[HTML_TOP_ROWS];
	uint64_t shown = 0;
	char name[64];
	size_t i;

	top_sorted(t, idx);
	for (i = 0; i < t->n; i++) {
		json_object_array_add(a, report_json__task(p, idx[i], in));
		shown += t->key[i];
	}
	json_object_object_add(proc, key, a);
	put_u64(omitted, "tasks", total - t->n);
	put_u64(omitted, "live_bytes", total_bytes - shown);
	snprintf(name, sizeof(name), "%s_omitted", key);
	json_object_object_add(proc, name, omitted);
}

/* "suspect_tasks" by live bytes, and "top_tasks": every task holding bytes, by live bytes. */
static void add_tasks(struct json_object *proc, const struct process *p,
		      const struct report_input *in, size_t max)
{
	const struct task_table *tt = p->tasks;
	struct top suspects = { .cap = max }, holders = { .cap = max };
	uint64_t nsuspects = 0, suspect_bytes = 0, nholders = 0, holder_bytes = 0;
	uint32_t i, out;
	char reason[8];
	bool dropped;

	for (i = 1; tt && i < tt->ntasks; i++) {
		const struct task *t = &tt->tasks[i];

		if (t->unused)
			continue;
		if (task__suspect(t, in->now_ns, in->stuck_after_ns, reason, sizeof(reason))) {
			nsuspects++;
			suspect_bytes += t->live_bytes;
			top_offer(&suspects, i, t->live_bytes, &dropped, &out);
		}
		if (t->live_bytes) {
			nholders++;
			holder_bytes += t->live_bytes;
			top_offer(&holders, i, t->live_bytes, &dropped, &out);
		}
	}
	put_tasks(proc, "suspect_tasks", &suspects, p, in, nsuspects, suspect_bytes);
	put_tasks(proc, "top_tasks", &holders, p, in, nholders, holder_bytes);
}

static struct json_object *process_data(const struct process *p, const struct report_input *in,
					const struct report_html_bounds *b)
{
	struct json_object *o = report_json__process(p, in);

	if (!o)
		return NULL;
	cut_threads(o, b->threads);
	if (p->tasks && cut_types(o, p, b->task_types)) {
		json_object_put(o);
		return NULL;
	}
	add_tasks(o, p, in, b->tasks);
	return o;
}

static struct json_object *report_data(const struct report_input *in,
				       const struct report_html_bounds *b)
{
	struct json_object *root = json_object_new_object(), *o, *procs;
	size_t i, n = process_table__count(in->procs), forgotten;
	char buf[32];

	put_u64(root, "report_version", 1);
	json_object_object_add(root, "memscoped_version",
			       json_object_new_string(MEMSCOPED_VERSION));
	snprintf(buf, sizeof(buf), "%.3f", in->duration_seconds);
	json_object_object_add(root, "duration_seconds",
			       json_object_new_double_s(in->duration_seconds, buf));
	o = json_object_new_object();
	put_u64(o, "received", in->events_received);
	put_u64(o, "lost", in->events_lost);
	json_object_object_add(root, "events", o);
	snprintf(buf, sizeof(buf), "%.3f", (double)in->stuck_after_ns / 1e9);
	json_object_object_add(root, "stuck_after_seconds",
			       json_object_new_double_s((double)in->stuck_after_ns / 1e9, buf));
	o = json_object_new_object();
	put_u64(o, "task_types", b->task_types);
	put_u64(o, "tasks", b->tasks);
	put_u64(o, "threads", b->threads);
	json_object_object_add(root, "bounds", o);
	procs = json_object_new_array();
	json_object_object_add(root, "processes", procs);
	/* Forgotten targets (daemon mode) are in the JSON report: here they are counted. */
	forgotten = ended_table__count(in->ended);
	if (in->ended)
		forgotten += ended_table__dropped(in->ended)->processes;
	for (i = 0; i < n; i++) {
		if (report__forgotten(process_table__at(in->procs, i), in)) {
			forgotten++;
			continue;
		}
		o = process_data(process_table__at(in->procs, i), in, b);
		if (!o) {
			json_object_put(root);
			return NULL;
		}
		json_object_array_add(procs, o);
	}
	if (in->ended)
		put_u64(root, "forgotten_processes", forgotten);
	return root;
}

/*
 * JSON inside <script>: '<', '>' and '&' only occur in strings there, where \u escapes mean
 * the same; so no "</script>" or "<!--" a task name carries can end the element.
 */
static int write_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		int r = *s == '<' ? fputs("\\u003c", f) :
			*s == '>' ? fputs("\\u003e", f) :
			*s == '&' ? fputs("\\u0026", f) :
				    fputc(*s, f);

		if (r < 0)
			return -EIO;
	}
	return 0;
}

int report_html__write_bounded(FILE *f, const struct report_input *in,
			       const struct report_html_bounds *b)
{
	size_t len = (size_t)(report_html_template_end - report_html_template);
	const char *mark = memmem(report_html_template, len, DATA_MARK, strlen(DATA_MARK));
	struct json_object *data;
	size_t head;
	int err;

	if (!mark || b->task_types > HTML_TOP_ROWS || b->tasks > HTML_TOP_ROWS ||
	    b->threads > HTML_TOP_ROWS)
		return -EINVAL;
	data = report_data(in, b);
	if (!data)
		return -ENOMEM;
	head = (size_t)(mark - report_html_template);
	err = fwrite(report_html_template, 1, head, f) == head ? 0 : -EIO;
	if (!err)
		err = write_escaped(f,
				    json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
	json_object_put(data);
	head += strlen(DATA_MARK);
	if (!err && fwrite(report_html_template + head, 1, len - head, f) != len - head)
		err = -EIO;
	if (!err && fflush(f))
		err = -EIO;
	return err;
}

int report_html__write(FILE *f, const struct report_input *in)
{
	const struct report_html_bounds b = { .task_types = HTML_TOP_ROWS,
					      .tasks = HTML_TOP_ROWS,
					      .threads = 20 };

	return report_html__write_bounded(f, in, &b);
}
