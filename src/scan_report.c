// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "process_table.h"
#include "prom_text.h"
#include "scan_report.h"
#include "scan_state.h"

static void put_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void put_double(struct json_object *o, const char *key, double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.4f", v);
	json_object_object_add(o, key, json_object_new_double_s(v, buf));
}

/* The share of the arenas' memory in free chunks (the top chunks included). */
static double fragmentation(const struct heap_census *c)
{
	return c->arena_bytes ? (double)c->free_bytes / (double)c->arena_bytes : 0;
}

static struct json_object *census_json(const struct scan_process *s)
{
	struct json_object *o = json_object_new_object();
	const struct heap_census *c = &s->census;

	json_object_object_add(o, "supported", json_object_new_boolean(s->census_supported));
	if (!s->census_supported || !s->census_valid) {
		json_object_object_add(o, "note",
				       json_object_new_string(s->census_note ? s->census_note :
									       "no snapshot yet"));
		return o;
	}
	put_u64(o, "inuse_bytes", c->inuse_bytes);
	put_u64(o, "inuse_chunks", c->inuse_chunks);
	put_u64(o, "free_bytes", c->free_bytes);
	put_u64(o, "free_chunks", c->free_chunks);
	put_u64(o, "arena_bytes", c->arena_bytes);
	put_u64(o, "arenas", c->arenas);
	put_u64(o, "heaps", c->heaps);
	put_u64(o, "mmapped_bytes", c->mmapped_bytes);
	put_u64(o, "mmapped_chunks", c->mmapped_chunks);
	put_double(o, "fragmentation", fragmentation(c));
	put_u64(o, "damaged_heaps", c->damaged);
	return o;
}

void scan_report__type_sums(const struct process *p, struct scan_type_sum *ret)
{
	const struct scan_process *s = scan_process__of(p);
	const struct task_table *tt = p->tasks;
	const struct scan_task *st;
	uint32_t i;

	memset(ret, 0, tt->ntypes * sizeof(*ret));
	for (i = 1; s && i < tt->ntasks; i++) {
		const struct task *t = &tt->tasks[i];

		if (t->unused || task__ended(t) || t->type >= tt->ntypes)
			continue;
		st = scan_process__find_task(s, i, t->key);
		if (!st || !st->retained_known)
			continue;
		ret[t->type].tasks++;
		ret[t->type].exclusive += st->retained_exclusive;
		ret[t->type].inclusive += st->retained_inclusive;
	}
}

static struct json_object *retained_json(const struct process *p, const struct scan_process *s)
{
	struct json_object *o = json_object_new_object(), *types, *ty;
	const struct task_table *tt = p->tasks;
	struct scan_type_sum *sums;
	size_t i;

	json_object_object_add(o, "valid", json_object_new_boolean(s->retained_valid));
	if (!s->retained_valid) {
		json_object_object_add(
			o, "note",
			json_object_new_string(
				s->chunks_dropped    ? "more chunks than --max-allocations" :
				!s->census_supported ? "needs the heap census (glibc's malloc)" :
						       "no complete snapshot yet"));
		return o;
	}
	put_u64(o, "unreached_bytes", s->unreached_bytes);
	put_u64(o, "unreached_chunks", s->unreached_chunks);
	put_u64(o, "tasks_truncated", s->roots_truncated);
	put_u64(o, "scanned_bytes", s->retained_scanned_bytes);
	types = json_object_new_array();
	sums = calloc(tt->ntypes + 1, sizeof(*sums));
	if (sums)
		scan_report__type_sums(p, sums);
	for (i = 0; sums && i < tt->ntypes; i++) {
		if (!sums[i].tasks)
			continue;
		ty = json_object_new_object();
		json_object_object_add(ty, "runtime", json_object_new_string(tt->types[i].runtime));
		json_object_object_add(ty, "type", json_object_new_string(tt->types[i].name));
		put_u64(ty, "tasks", sums[i].tasks);
		put_u64(ty, "retained_exclusive_bytes", sums[i].exclusive);
		put_u64(ty, "retained_inclusive_bytes", sums[i].inclusive);
		json_object_array_add(types, ty);
	}
	free(sums);
	json_object_object_add(o, "task_types", types);
	return o;
}

static struct json_object *leaks_json(const struct scan_process *s)
{
	struct json_object *o = json_object_new_object(), *list = json_object_new_array(), *c;
	char buf[32];
	size_t i;

	put_u64(o, "chunks", s->leak_chunks);
	put_u64(o, "bytes", s->leak_bytes);
	json_object_object_add(o, "truncated", json_object_new_boolean(s->leaks_truncated));
	for (i = 0; i < s->nleaks; i++) {
		c = json_object_new_object();
		snprintf(buf, sizeof(buf), "0x%" PRIx64, s->leaks[i].addr);
		json_object_object_add(c, "address", json_object_new_string(buf));
		put_u64(c, "size", s->leaks[i].size);
		json_object_array_add(list, c);
	}
	json_object_object_add(o, "largest", list);
	return o;
}

/* --freeze: how the last snapshots were frozen, and for how long. */
static struct json_object *freeze_json(const struct scan_process *s)
{
	struct json_object *o = json_object_new_object();
	double gib = (double)s->last_freeze_bytes / (1ull << 30);
	char buf[128];

	json_object_object_add(o, "frozen", json_object_new_boolean(s->last_frozen));
	put_u64(o, "frozen_snapshots", s->frozen_snapshots);
	put_u64(o, "unfrozen_snapshots", s->unfrozen_snapshots);
	put_u64(o, "refreezes", s->refreezes);
	put_u64(o, "frozen_threads", s->frozen_threads);
	put_u64(o, "group_stopped_threads", s->group_stopped_threads);
	put_double(o, "last_freeze_seconds", (double)s->last_freeze_ns / 1e9);
	put_double(o, "max_freeze_seconds", (double)s->max_freeze_ns / 1e9);
	put_u64(o, "last_freeze_bytes_read", s->last_freeze_bytes);
	put_double(o, "freeze_seconds_per_gib",
		   gib > 0 ? (double)s->last_freeze_ns / 1e9 / gib : 0);
	put_u64(o, "signals_reinjected", s->freeze.signals_reinjected);
	put_u64(o, "register_words", s->register_words);
	json_object_object_add(o, "error",
			       s->freeze_error ? json_object_new_string(scan_process__freeze_error(
							 s, buf, sizeof(buf))) :
						 NULL);
	return o;
}

void scan_report__process_json(struct json_object *o, const struct process *p)
{
	const struct scan_process *s = scan_process__of(p);
	struct json_object *sc;

	if (!s)
		return;
	json_object_object_add(o, "census", census_json(s));
	sc = json_object_new_object();
	put_u64(sc, "snapshots", s->snapshots);
	put_u64(sc, "errors", s->snapshot_errors);
	put_double(sc, "last_snapshot_seconds", (double)s->last_duration_ns / 1e9);
	put_u64(sc, "last_bytes_read", s->last_bytes_read);
	put_u64(sc, "tasks_found", s->tasks_found);
	json_object_object_add(o, "scan", sc);
	json_object_object_add(o, "retained", retained_json(p, s));
	if (s->leaks_valid)
		json_object_object_add(o, "leak_candidates", leaks_json(s));
	if (s->frozen_snapshots || s->unfrozen_snapshots)
		json_object_object_add(o, "freeze", freeze_json(s));
}

void scan_report__task_json(struct json_object *o, const struct process *p, uint32_t index)
{
	const struct scan_process *s = scan_process__of(p);
	const struct task *t = task_table__at(p->tasks, index);
	const struct scan_task *st = t ? scan_process__find_task(s, index, t->key) : NULL;
	char buf[32];

	if (!s)
		return;
	if (!st) {
		json_object_object_add(o, "retained_exclusive_bytes", NULL);
		json_object_object_add(o, "retained_inclusive_bytes", NULL);
		return;
	}
	put_double(o, "first_seen_at_seconds",
		   st->first_seen_ns > p->start_ns ?
			   (double)(st->first_seen_ns - p->start_ns) / 1e9 :
			   0);
	snprintf(buf, sizeof(buf), "0x%" PRIx64, st->state_bits);
	json_object_object_add(o, "state_bits", json_object_new_string(buf));
	json_object_object_add(o, "future_changed", json_object_new_boolean(st->future_changed));
	if (st->retained_known && !task__ended(t)) {
		put_u64(o, "retained_exclusive_bytes", st->retained_exclusive);
		put_u64(o, "retained_inclusive_bytes", st->retained_inclusive);
		json_object_object_add(o, "retained_truncated",
				       json_object_new_boolean(st->retained_truncated));
	} else {
		json_object_object_add(o, "retained_exclusive_bytes", NULL);
		json_object_object_add(o, "retained_inclusive_bytes", NULL);
	}
}

void scan_report__text(FILE *f, const struct process *p)
{
	const struct scan_process *s = scan_process__of(p);
	const struct heap_census *c;

	if (!s)
		return;
	fprintf(f, "  scan mode      %" PRIu64 " snapshots, last %.1f ms, %.1f MiB read\n",
		s->snapshots, (double)s->last_duration_ns / 1e6,
		(double)s->last_bytes_read / (1 << 20));
	if (s->frozen_snapshots || s->unfrozen_snapshots)
		fprintf(f,
			"  freeze         %" PRIu32
			" threads stopped, last %.1f ms, max %.1f ms; %" PRIu64
			" snapshots frozen, %" PRIu64 " unfrozen\n",
			s->frozen_threads, (double)s->last_freeze_ns / 1e6,
			(double)s->max_freeze_ns / 1e6, s->frozen_snapshots, s->unfrozen_snapshots);
	if (!s->census_supported || !s->census_valid) {
		fprintf(f, "  heap census    none: %s\n",
			s->census_note ? s->census_note : "no snapshot yet");
		return;
	}
	c = &s->census;
	fprintf(f,
		"  heap census    in use %" PRIu64 " bytes in %" PRIu64 " chunks, free %" PRIu64
		" bytes in %" PRIu64 " chunks (%.1f%% of %" PRIu64 " arena bytes), %" PRIu32
		" arenas, mmapped %" PRIu64 " bytes in %" PRIu64 " chunks\n",
		c->inuse_bytes, c->inuse_chunks, c->free_bytes, c->free_chunks,
		100 * fragmentation(c), c->arena_bytes, c->arenas, c->mmapped_bytes,
		c->mmapped_chunks);
	if (s->retained_valid)
		fprintf(f,
			"  retained       %" PRIu64 " bytes in %" PRIu64
			" chunks reachable from no task\n",
			s->unreached_bytes, s->unreached_chunks);
	if (s->leaks_valid)
		fprintf(f, "  leak candidates %" PRIu64 " bytes in %" PRIu64 " chunks%s\n",
			s->leak_bytes, s->leak_chunks,
			s->leaks_truncated ? " (walk truncated: an upper bound)" : "");
}

int scan_report__metrics(struct prom_text *out, struct process_table *procs, size_t max_types)
{
	size_t i, j, kept, n = process_table__count(procs);
	struct prom_label labels[4] = {
		{ "pid", NULL }, { "comm", NULL }, { "runtime", NULL }, { "task_type", NULL }
	};
	struct scan_type_sum *sums, other;
	char pid[16];
	bool any = false;
	int err = 0, k;

	for (i = 0; i < n; i++)
		any |= scan_process__of(process_table__at(procs, i)) != NULL;
	if (!any)
		return 0;
	for (k = 0; k < 2 && !err; k++) {
		const char *name = k ? "memscoped_heap_census_free_bytes" :
				       "memscoped_heap_census_inuse_bytes";

		err = prom_text__family(out, name, "gauge",
					k ? "Bytes in glibc's free chunks, top chunks included "
					    "(scan mode)" :
					    "Heap bytes in use as mallinfo2 counts them, "
					    "uordblks + hblkhd (scan mode)");
		for (i = 0; i < n && !err; i++) {
			const struct process *p = process_table__at(procs, i);
			const struct scan_process *s = scan_process__of(p);

			if (!s || !s->census_valid)
				continue;
			snprintf(pid, sizeof(pid), "%u", p->pid);
			labels[0].value = pid;
			labels[1].value = p->comm;
			err = prom_text__sample(
				out, name, labels, 2,
				(double)(k ? s->census.free_bytes : s->census.inuse_bytes));
		}
	}
	for (i = 0, k = 0; i < n && !err; i++) {
		const struct process *p = process_table__at(procs, i);
		const struct scan_process *s = scan_process__of(p);

		if (!s || !s->frozen_snapshots)
			continue;
		if (!k++)
			err = prom_text__family(
				out, "memscoped_scan_freeze_seconds", "gauge",
				"How long the last frozen snapshot held every thread "
				"of the process stopped (scan mode, --freeze)");
		snprintf(pid, sizeof(pid), "%u", p->pid);
		labels[0].value = pid;
		labels[1].value = p->comm;
		if (!err)
			err = prom_text__sample(out, "memscoped_scan_freeze_seconds", labels, 2,
						(double)s->last_freeze_ns / 1e9);
	}
	if (!err)
		err = prom_text__family(out, "memscoped_tasks_retained_bytes", "gauge",
					"Heap reachable from a task type's live tasks and no other "
					"task (exclusive), summed (scan mode)");
	for (i = 0; i < n && !err; i++) {
		struct process *p = process_table__at(procs, i);
		const struct scan_process *s = scan_process__of(p);

		if (!s || !s->retained_valid)
			continue;
		sums = calloc(p->tasks->ntypes + 1, sizeof(*sums));
		if (!sums)
			return -ENOMEM;
		scan_report__type_sums(p, sums);
		snprintf(pid, sizeof(pid), "%u", p->pid);
		labels[0].value = pid;
		labels[1].value = p->comm;
		memset(&other, 0, sizeof(other));
		for (j = 0, kept = 0; j < p->tasks->ntypes && !err; j++) {
			if (!sums[j].tasks)
				continue;
			/* Label cardinality stays bounded: the types past max_types are "other". */
			if (kept == max_types) {
				other.tasks += sums[j].tasks;
				other.exclusive += sums[j].exclusive;
				labels[2].value = p->tasks->types[j].runtime;
				continue;
			}
			kept++;
			labels[2].value = p->tasks->types[j].runtime;
			labels[3].value = p->tasks->types[j].name;
			err = prom_text__sample(out, "memscoped_tasks_retained_bytes", labels, 4,
						(double)sums[j].exclusive);
		}
		if (!err && other.tasks) {
			labels[3].value = "other";
			err = prom_text__sample(out, "memscoped_tasks_retained_bytes", labels, 4,
						(double)other.exclusive);
		}
		free(sums);
	}
	return err;
}
