// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "memscoped/events.h"
#include "process_table.h"
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

struct found_list {
	struct tokio_found *v;
	size_t n, cap;
	bool nomem;
};

static void collect(void *ctx, const struct tokio_found *f)
{
	struct found_list *l = ctx;
	struct tokio_found *v;

	if (l->n == l->cap) {
		v = realloc(l->v, (l->cap ? l->cap * 2 : 256) * sizeof(*v));
		if (!v) {
			l->nomem = true;
			return;
		}
		l->v = v;
		l->cap = l->cap ? l->cap * 2 : 256;
	}
	l->v[l->n++] = *f;
}

static int by_header(const void *a, const void *b)
{
	const struct tokio_found *x = a, *y = b;

	return x->header < y->header ? -1 : x->header > y->header;
}

static int read_pid(int pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
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

/* The task at f's header: the one known, or a new one (a new id there is a new lifetime). */
static struct task *task_for(struct process *p, const struct tokio_process *t,
			     const struct tokio_found *f, uint64_t now_ns, bool *ret_new)
{
	struct task *task = task_table__find(p->tasks, f->header);

	*ret_new = false;
	if (task && task->runtime_id == f->id)
		return task;
	if (task)
		task_table__dealloc(p->tasks, task, now_ns);
	task = task_table__spawn(p->tasks, f->header, t->vt_types[f->vt - t->info.vtables],
				 f->owner_id ? TASK_ASYNC : TASK_BLOCKING, TASK_FOUND_ATTACH_SCAN,
				 0);
	if (!task)
		return NULL;
	*ret_new = true;
	task->runtime_id = f->id;
	task_table__cell(p->tasks, task, f->cell_size);
	task->last_poll_end_ns = now_ns;
	return task;
}

static void update(struct process *p, struct scan_process *s, struct task *task,
		   const struct tokio_found *f, bool is_new, uint64_t hash, bool hashed,
		   uint64_t now_ns)
{
	uint32_t idx = task_table__index(p->tasks, task);
	struct scan_task *st = scan_process__task(s, idx, f->header);
	bool progress;

	if (!st)
		return;
	if (is_new) {
		memset(st, 0, sizeof(*st));
		st->key = f->header;
		st->first_seen_ns = now_ns;
		st->last_change_ns = now_ns;
	}
	st->future_changed = hashed && !is_new && st->future_hash != hash;
	if (hashed)
		st->future_hash = hash;
	st->state_bits = f->state;
	st->seen = s->snapshots;
	task->detached = !(f->state & TOKIO_STATE_JOIN_INTEREST);
	progress = is_new || st->future_changed ||
		   (f->state & (TOKIO_STATE_RUNNING | TOKIO_STATE_NOTIFIED));
	if (progress)
		st->last_change_ns = now_ns;
	if (f->state & TOKIO_STATE_RUNNING) {
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

int task_snapshot__tokio(struct process *p, struct scan_process *s, uint64_t now_ns,
			 struct snapshot_cells *cells)
{
	const struct tokio_process *t = tokio_process__of(p);
	struct found_list l = { 0 };
	uint8_t *buf = NULL;
	uint64_t bytes, hash, len;
	size_t i;
	int err;
	bool is_new, hashed;

	if (!t)
		return -ENOENT;
	err = tokio_scan__pid(t, (int)p->pid, collect, &l, &bytes);
	if (!err && l.nomem)
		err = -ENOMEM;
	buf = malloc(MAX_HASHED);
	if (!buf)
		err = -ENOMEM;
	if (err)
		goto out;
	s->last_bytes_read += bytes;
	/* Chunks read with an overlap can find a header twice. */
	qsort(l.v, l.n, sizeof(*l.v), by_header);
	s->tasks_found = 0;
	for (i = 0; i < l.n; i++) {
		const struct tokio_found *f = &l.v[i];
		struct task *task;

		if (i && f->header == l.v[i - 1].header)
			continue;
		task = task_for(p, t, f, now_ns, &is_new);
		if (!task)
			continue;
		s->tasks_found++;
		len = f->vt->trailer_offset > TOKIO_HEADER_BYTES ?
			      f->vt->trailer_offset - TOKIO_HEADER_BYTES :
			      0;
		if (len > MAX_HASHED)
			len = MAX_HASHED;
		hashed = len && !read_pid((int)p->pid, f->header + TOKIO_HEADER_BYTES, buf, len);
		hash = hashed ? task_snapshot__hash(TASK_SNAPSHOT_HASH_INIT, buf, len) : 0;
		update(p, s, task, f, is_new, hash, hashed, now_ns);
		err = add_cell(cells, &(struct snapshot_cell){
					      .task = task_table__index(p->tasks, task),
					      .header = f->header,
					      .end = f->header + f->vt->trailer_offset,
					      .skip = f->header + f->vt->scheduler_offset,
				      });
		if (err)
			goto out;
	}
	end_missing(p, s, now_ns);
out:
	free(buf);
	free(l.v);
	return err;
}
