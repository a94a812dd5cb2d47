// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <json-c/json.h>
#include "cli.h"
#include "report.h"

/* json-c's setters take ownership of the value and fail only on allocation failure. */
static void put_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *heap_json(const struct process *p)
{
	struct json_object *h = json_object_new_object();

	put_u64(h, "live_bytes", p->heap.live_bytes);
	put_u64(h, "live_allocations", p->heap.live_allocations);
	put_u64(h, "allocated_bytes_total", p->heap.allocated_bytes_total);
	put_u64(h, "allocations_total", p->heap.allocations_total);
	put_u64(h, "frees_total", p->heap.frees_total);
	put_u64(h, "frees_untracked_total", p->heap.frees_untracked_total);
	put_u64(h, "allocation_failures_total", p->heap.allocation_failures_total);
	return h;
}

static struct json_object *threads_json(const struct process *p)
{
	struct json_object *a = json_object_new_array(), *t;
	size_t i;

	for (i = 0; i < p->nthreads; i++) {
		const struct thread_stats *s = &p->threads[i];

		t = json_object_new_object();
		put_u64(t, "tid", s->tid);
		json_object_object_add(t, "comm", json_object_new_string(s->comm));
		put_u64(t, "live_bytes", s->live_bytes);
		put_u64(t, "live_allocations", s->live_allocations);
		put_u64(t, "allocated_bytes_total", s->allocated_bytes_total);
		put_u64(t, "allocations_total", s->allocations_total);
		json_object_array_add(a, t);
	}
	return a;
}

static struct json_object *limits_json(const struct process *p)
{
	struct json_object *l = json_object_new_object();

	put_u64(l, "allocations_dropped", p->blocks_dropped);
	put_u64(l, "thread_events_dropped", p->thread_events_dropped);
	put_u64(l, "allocations_replaced", p->blocks_replaced);
	return l;
}

static struct json_object *process_json(const struct process *p, bool events_lost)
{
	struct json_object *o = json_object_new_object();

	put_u64(o, "pid", p->pid);
	json_object_object_add(o, "comm", json_object_new_string(p->comm));
	json_object_object_add(o, "exe", json_object_new_string(p->exe));
	json_object_object_add(o, "exited", json_object_new_boolean(p->exited));
	/* Lost events or a bound hit make every figure a lower bound. */
	json_object_object_add(o, "complete",
			       json_object_new_boolean(!events_lost && process__complete(p)));
	json_object_object_add(o, "heap", heap_json(p));
	json_object_object_add(o, "threads", threads_json(p));
	json_object_object_add(o, "limits", limits_json(p));
	return o;
}

int report_json__write(FILE *f, const struct report_input *in)
{
	struct json_object *root = json_object_new_object(), *events, *procs;
	size_t i, n = process_table__count(in->procs);
	char duration[32];
	const char *s;
	int ret = 0;

	if (!root)
		return -ENOMEM;
	put_u64(root, "report_version", 1);
	json_object_object_add(root, "memscoped_version",
			       json_object_new_string(MEMSCOPED_VERSION));
	snprintf(duration, sizeof(duration), "%.3f", in->duration_seconds);
	json_object_object_add(root, "duration_seconds",
			       json_object_new_double_s(in->duration_seconds, duration));
	events = json_object_new_object();
	put_u64(events, "received", in->events_received);
	put_u64(events, "lost", in->events_lost);
	json_object_object_add(root, "events", events);
	procs = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(procs, process_json(process_table__at(in->procs, i),
							  in->events_lost > 0));
	json_object_object_add(root, "processes", procs);

	s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s || fputs(s, f) < 0 || fputc('\n', f) < 0 || fflush(f))
		ret = -EIO;
	json_object_put(root);
	return ret;
}
