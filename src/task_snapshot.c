// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "memscoped/events.h"
#include "proc.h"
#include "process_table.h"
#include "runtime_async_task.h"
#include "runtime_tokio.h"
#include "scan_state.h"
#include "task_snapshot.h"

/* tokio's NOTIFIED bit: woken, waiting in a run queue. */
#define TOKIO_STATE_NOTIFIED 0x04
/* tokio's Header: state, queue_next, vtable, owner_id. The future lies past it. */
#define TOKIO_HEADER_BYTES 32
/* Futures larger than this are hashed on their first bytes only. */
#define MAX_HASHED 65536

uint64_t task_snapshot__hash(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* A live task in one snapshot, whatever its runtime. */
struct snap {
	uint64_t header, id, state, cell_size;
	uint64_t future_start, future_end, skip; /* what the retained walk reads */
	uint32_t type;
	enum task_kind kind;
	bool running, notified, detached;
};

struct snap_list {
	struct snap *v;
	size_t n, cap;
	bool nomem;
	const void *rt;	  /* the runtime's process state */
	uint32_t next_id; /* async-task has no ids: the snapshots number its tasks */
};

static void push(struct snap_list *l, const struct snap *x)
{
	struct snap *v;

	if (l->n == l->cap) {
		v = realloc(l->v, (l->cap ? l->cap * 2 : 256) * sizeof(*v));
		if (!v) {
			l->nomem = true;
			return;
		}
		l->v = v;
		l->cap = l->cap ? l->cap * 2 : 256;
	}
	l->v[l->n++] = *x;
}

static void from_tokio(void *ctx, const struct tokio_found *f)
{
	struct snap_list *l = ctx;
	const struct tokio_process *t = l->rt;

	push(l,
	     &(struct snap){
		     .header = f->header,
		     .id = f->id,
		     .state = f->state,
		     .cell_size = f->cell_size,
		     /* The future lies past tokio's Header (state, queue_next, vtable, owner). */
		     .future_start = f->header + TOKIO_HEADER_BYTES,
		     .future_end = f->header + f->vt->trailer_offset,
		     .skip = f->header + f->vt->scheduler_offset,
		     .type = t->vt_types[f->vt - t->info.vtables],
		     .kind = f->owner_id ? TASK_ASYNC : TASK_BLOCKING,
		     .running = f->state & TOKIO_STATE_RUNNING,
		     .notified = f->state & TOKIO_STATE_NOTIFIED,
		     .detached = !(f->state & TOKIO_STATE_JOIN_INTEREST),
	     });
}

static void from_atask(void *ctx, const struct atask_found *f)
{
	struct snap_list *l = ctx;

	/* The header and the schedule function (the executor's handle) are not walked. */
	push(l, &(struct snap){
			.header = f->header,
			.state = f->state,
			.cell_size = f->vt->size,
			.future_start = f->header + f->vt->future_offset,
			.future_end = f->header + f->vt->size,
			.type = f->vt->type,
			.kind = TASK_ASYNC,
			.running = f->state & ATASK_RUNNING,
			.notified = f->state & ATASK_SCHEDULED,
			.detached = !(f->state & ATASK_TASK),
		});
}

static int by_header(const void *a, const void *b)
{
	const struct snap *x = a, *y = b;

	return x->header < y->header ? -1 : x->header > y->header;
}

static int add_cell(struct snapshot_cells *cells, const struct snapshot_cell *c)
{
	struct snapshot_cell *v;

	if (cells->n == cells->cap) {
		v = realloc(cells->v, (cells->cap ? cells->cap * 2 : 256) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		cells->v = v;
		cells->cap = cells->cap ? cells->cap * 2 : 256;
	}
	cells->v[cells->n++] = *c;
	return 0;
}

/*
 * The task at x's header: the one known, or a new one. A new tokio id there is a new lifetime;
 * async-task has no id, so a new future type there is.
 */
static struct task *task_for(struct process *p, const struct snap *x, bool has_id, uint64_t now_ns,
			     bool *ret_new)
{
	struct task *task = task_table__find(p->tasks, x->header);

	*ret_new = false;
	if (task && (has_id ? task->runtime_id == x->id : task->type == x->type))
		return task;
	if (task)
		task_table__dealloc(p->tasks, task, now_ns);
	task = task_table__spawn(p->tasks, x->header, x->type, x->kind, TASK_FOUND_ATTACH_SCAN, 0);
	if (!task)
		return NULL;
	*ret_new = true;
	task->runtime_id = has_id ? x->id : task_table__index(p->tasks, task);
	task_table__cell(p->tasks, task, x->cell_size);
	task->last_poll_end_ns = now_ns;
	return task;
}

static void update(struct process *p, struct scan_process *s, struct task *task,
		   const struct snap *x, bool is_new, uint64_t hash, bool hashed, uint64_t now_ns)
{
	uint32_t idx = task_table__index(p->tasks, task);
	struct scan_task *st = scan_process__task(s, idx, x->header);
	bool progress;

	if (!st)
		return;
	if (is_new) {
		memset(st, 0, sizeof(*st));
		st->key = x->header;
		st->first_seen_ns = now_ns;
		st->last_change_ns = now_ns;
	}
	st->future_changed = hashed && !is_new && st->future_hash != hash;
	if (hashed)
		st->future_hash = hash;
	st->state_bits = x->state;
	st->seen = s->snapshots;
	task->detached = x->detached;
	progress = is_new || st->future_changed || x->running || x->notified;
	if (progress)
		st->last_change_ns = now_ns;
	if (x->running) {
		if (!task->running) {
			task->running = true;
			task->state = TASK_RUNNING;
			task->poll_start_ns = now_ns;
		}
		return;
	}
	if (task->running) {
		task->running = false;
		task->state = TASK_IDLE;
	}
	/* Idle since the last snapshot that saw it move: what --stuck-after measures. */
	task->last_poll_end_ns = st->last_change_ns;
}

/* Tasks a previous snapshot found that this one did not: their cells are gone. */
static void end_missing(struct process *p, struct scan_process *s, uint64_t now_ns)
{
	struct task_table *tt = p->tasks;
	const struct scan_task *st;
	uint32_t i;

	for (i = 1; i < tt->ntasks; i++) {
		struct task *task = &tt->tasks[i];

		if (task->unused || task->state == TASK_DEALLOCATED)
			continue;
		st = scan_process__find_task(s, i, task->key);
		if (st && st->seen != s->snapshots)
			task_table__dealloc(tt, task, now_ns);
	}
}

/* Applies one runtime's finds to the task table and s. */
static int apply(struct process *p, struct scan_process *s, struct snap_list *l, bool has_id,
		 uint64_t now_ns, struct snapshot_cells *cells)
{
	uint8_t *buf = malloc(MAX_HASHED);
	uint64_t hash, len;
	struct task *task;
	bool is_new, hashed;
	size_t i;
	int err = buf ? 0 : -ENOMEM;

	/* Chunks read with an overlap can find a header twice. */
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_header);
	for (i = 0; !err && i < l->n; i++) {
		const struct snap *x = &l->v[i];

		if (i && x->header == l->v[i - 1].header)
			continue;
		task = task_for(p, x, has_id, now_ns, &is_new);
		if (!task)
			continue;
		s->tasks_found++;
		len = x->future_end > x->future_start ? x->future_end - x->future_start : 0;
		if (len > MAX_HASHED)
			len = MAX_HASHED;
		hashed = len && !proc__read((int)p->pid, x->future_start, buf, len);
		hash = hashed ? task_snapshot__hash(TASK_SNAPSHOT_HASH_INIT, buf, len) : 0;
		update(p, s, task, x, is_new, hash, hashed, now_ns);
		err = add_cell(cells, &(struct snapshot_cell){
					      .task = task_table__index(p->tasks, task),
					      .header = x->header,
					      .start = x->future_start,
					      .end = x->future_end,
					      .skip = x->skip,
				      });
	}
	free(buf);
	return err;
}

int task_snapshot__take(struct process *p, struct scan_process *s, uint64_t now_ns,
			struct snapshot_cells *cells)
{
	const struct tokio_process *t = tokio_process__of(p);
	const struct atask_process *a = atask_process__of(p);
	struct snap_list tl = { .rt = t }, al = { .rt = a };
	uint64_t bytes = 0;
	int err = 0;

	if (t)
		err = tokio_scan__pid(t, (int)p->pid, from_tokio, &tl, &bytes);
	s->last_bytes_read += bytes;
	bytes = 0;
	if (!err && a)
		err = atask_scan__pid(a, (int)p->pid, from_atask, &al, &bytes);
	s->last_bytes_read += bytes;
	if (!err && (tl.nomem || al.nomem))
		err = -ENOMEM;
	/* A failed scan ends nothing: the tasks it did not see may well be alive. */
	if (err)
		goto out;
	s->tasks_found = 0;
	err = apply(p, s, &tl, true, now_ns, cells);
	if (!err)
		err = apply(p, s, &al, false, now_ns, cells);
	if (!err)
		end_missing(p, s, now_ns);
out:
	free(tl.v);
	free(al.v);
	return err;
}
