// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "process_table.h"

struct process_table {
	struct process **procs;
	size_t count;
	struct process_limits limits;
	thread_namer namer;
};

struct process_table *process_table__new(const struct process_limits *limits, thread_namer namer)
{
	struct process_table *pt = calloc(1, sizeof(*pt));

	if (!pt)
		return NULL;
	pt->limits = *limits;
	pt->namer = namer;
	return pt;
}

static void process_free(struct process *p)
{
	size_t i;

	if (!p)
		return;
	heap_table__free(p->blocks);
	for (i = 0; i < PROCESS_RUNTIME_SLOTS; i++)
		if (p->runtimes[i].key && p->runtimes[i].free)
			p->runtimes[i].free(p->runtimes[i].state);
	task_table__free(p->tasks);
	free(p->threads);
	free(p->thread_index);
	free(p->exe);
	free(p->cgroup);
	free(p->container_id);
	free(p->unit);
	free(p->allocator.object);
	free(p->allocator.probed);
	free(p);
}

void process_table__free(struct process_table *pt)
{
	size_t i;

	if (!pt)
		return;
	for (i = 0; i < pt->count; i++)
		process_free(pt->procs[i]);
	free(pt->procs);
	free(pt);
}

struct process *process_table__add(struct process_table *pt, uint32_t pid, const char *comm,
				   const char *exe)
{
	struct process **procs, *p;

	procs = realloc(pt->procs, (pt->count + 1) * sizeof(*procs));
	if (!procs)
		return NULL;
	pt->procs = procs;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	strncpy(p->comm, comm ? comm : "", COMM_LEN - 1);
	p->exe = strdup(exe ? exe : "");
	p->blocks = heap_table__new(pt->limits.max_allocations);
	p->tasks = task_table__new(pt->limits.max_tasks, pt->limits.max_task_types);
	if (p->tasks && task_table__set_max_retired(p->tasks, pt->limits.max_ended_tasks)) {
		task_table__free(p->tasks);
		p->tasks = NULL;
	}
	p->thread_index_mask = 63;
	p->thread_index = calloc(p->thread_index_mask + 1, sizeof(*p->thread_index));
	p->max_threads = pt->limits.max_threads;
	p->namer = pt->namer;
	if (!p->exe || !p->blocks || !p->tasks || !p->thread_index) {
		process_free(p);
		return NULL;
	}
	pt->procs[pt->count++] = p;
	return p;
}

struct process *process_table__find(struct process_table *pt, uint32_t pid)
{
	size_t i;

	for (i = pt->count; i-- > 0;)
		if (pt->procs[i]->pid == pid)
			return pt->procs[i];
	return NULL;
}

int process__set_labels(struct process *p, const char *cgroup, const char *container_id,
			const char *unit)
{
	char *c = strdup(cgroup ? cgroup : ""), *id = strdup(container_id ? container_id : "");
	char *u = strdup(unit ? unit : "");

	if (!c || !id || !u) {
		free(c);
		free(id);
		free(u);
		return -ENOMEM;
	}
	free(p->cgroup);
	free(p->container_id);
	free(p->unit);
	p->cgroup = c;
	p->container_id = id;
	p->unit = u;
	return 0;
}

static void account(struct process *p, const struct heap_block *b, bool live);

struct fork_copy {
	struct process *child;
};

static void copy_block(const struct heap_block *b, void *ctx)
{
	struct process *child = ((struct fork_copy *)ctx)->child;
	/* The child's heap is a copy: its blocks are untasked, owned by its first thread. */
	struct heap_block c = { .addr = b->addr, .size = b->size, .tid = child->pid };

	if (heap_table__insert(child->blocks, &c, NULL) < 0) {
		child->blocks_dropped++;
		return;
	}
	account(child, &c, true);
}

struct process *process_table__fork(struct process_table *pt, const struct process *parent,
				    uint32_t pid, uint64_t ts)
{
	struct process *p = process_table__add(pt, pid, parent->comm, parent->exe);
	struct fork_copy copy = { p };

	if (!p)
		return NULL;
	p->parent = parent->pid;
	/* Children are the helper's to attach (daemon mode): the daemon waits for its word. */
	p->attach_pending = true;
	p->start_ns = ts;
	p->exec_ns = ts;
	/* Labels are best effort: a child without them is still traced. */
	if (parent->cgroup)
		process__set_labels(p, parent->cgroup, parent->container_id, parent->unit);
	process__thread(p, pid);
	heap_table__foreach(parent->blocks, copy_block, &copy);
	return p;
}

void process_table__remove(struct process_table *pt, struct process *p)
{
	size_t i;

	for (i = 0; i < pt->count; i++)
		if (pt->procs[i] == p) {
			memmove(&pt->procs[i], &pt->procs[i + 1],
				(pt->count - i - 1) * sizeof(*pt->procs));
			pt->count--;
			process_free(p);
			return;
		}
}

size_t process_table__count(const struct process_table *pt)
{
	return pt->count;
}

struct process *process_table__at(struct process_table *pt, size_t i)
{
	return i < pt->count ? pt->procs[i] : NULL;
}

static size_t tid_slot(const struct process *p, uint32_t tid)
{
	size_t i = (tid * 0x9e3779b1u) & p->thread_index_mask;

	while (p->thread_index[i] && p->threads[p->thread_index[i] - 1].tid != tid)
		i = (i + 1) & p->thread_index_mask;
	return i;
}

static int grow_thread_index(struct process *p)
{
	size_t cap = (p->thread_index_mask + 1) * 2, i;
	uint32_t *index = calloc(cap, sizeof(*index));

	if (!index)
		return -ENOMEM;
	free(p->thread_index);
	p->thread_index = index;
	p->thread_index_mask = cap - 1;
	for (i = 0; i < p->nthreads; i++)
		p->thread_index[tid_slot(p, p->threads[i].tid)] = i + 1;
	return 0;
}

static struct thread_stats *thread_find(struct process *p, uint32_t tid)
{
	size_t slot = tid_slot(p, tid);

	return p->thread_index[slot] ? &p->threads[p->thread_index[slot] - 1] : NULL;
}

void *process__state(const struct process *p, const void *key)
{
	size_t i;

	for (i = 0; i < PROCESS_RUNTIME_SLOTS; i++)
		if (p->runtimes[i].key == key)
			return p->runtimes[i].state;
	return NULL;
}

int process__set_state(struct process *p, const void *key, void *state,
		       void (*free_fn)(void *state))
{
	struct process_runtime_state *slot = NULL;
	size_t i;

	for (i = 0; i < PROCESS_RUNTIME_SLOTS && !slot; i++)
		if (p->runtimes[i].key == key)
			slot = &p->runtimes[i];
	for (i = 0; i < PROCESS_RUNTIME_SLOTS && !slot; i++)
		if (!p->runtimes[i].key)
			slot = &p->runtimes[i];
	if (!slot) {
		if (state && free_fn)
			free_fn(state);
		return -ENOSPC;
	}
	if (slot->key && slot->free)
		slot->free(slot->state);
	slot->key = state ? key : NULL;
	slot->state = state;
	slot->free = free_fn;
	return 0;
}

struct thread_stats *process__thread(struct process *p, uint32_t tid)
{
	struct thread_stats *threads, *t;
	size_t slot = tid_slot(p, tid);

	if (p->thread_index[slot])
		return &p->threads[p->thread_index[slot] - 1];
	if (p->max_threads && p->nthreads >= p->max_threads) {
		p->thread_events_dropped++;
		return NULL;
	}
	if ((p->nthreads + 1) * 2 > p->thread_index_mask + 1) {
		if (grow_thread_index(p))
			return NULL;
		slot = tid_slot(p, tid);
	}
	if (p->nthreads == p->threads_cap) {
		size_t cap = p->threads_cap ? p->threads_cap * 2 : 16;

		threads = realloc(p->threads, cap * sizeof(*threads));
		if (!threads)
			return NULL;
		p->threads = threads;
		p->threads_cap = cap;
	}
	t = &p->threads[p->nthreads];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	if (p->namer)
		p->namer(p->pid, tid, t->comm);
	p->thread_index[slot] = ++p->nthreads;
	return t;
}

/* The live block b enters (live true) or leaves the heap: its share of the live figures. */
static void account(struct process *p, const struct heap_block *b, bool live)
{
	struct thread_stats *owner = thread_find(p, b->tid);
	int64_t sign = live ? 1 : -1;

	p->heap.live_bytes += (uint64_t)sign * b->size;
	p->heap.live_allocations += (uint64_t)sign;
	if (owner) {
		owner->live_bytes += (uint64_t)sign * b->size;
		owner->live_allocations += (uint64_t)sign;
	}
	if (b->task & TASK_CELL_BIT)
		p->heap.cell_live_bytes += (uint64_t)sign * b->size;
	else if (b->task)
		task_table__live(p->tasks, b->task, b->size, live);
	else
		p->heap.untasked_live_bytes += (uint64_t)sign * b->size;
}

static void release(struct process *p, const struct heap_block *b, uint64_t ts);

static uint32_t centiseconds_since_attach(const struct process *p, uint64_t ts)
{
	uint64_t cs = ts > p->start_ns ? (ts - p->start_ns) / 10000000ull : 0;

	return cs > HEAP_TABLE_MAX_TIME ? HEAP_TABLE_MAX_TIME : (uint32_t)cs;
}

void process__alloc(struct process *p, uint32_t tid, uint64_t addr, uint64_t size, uint32_t task,
		    uint64_t ts)
{
	struct heap_block b = { .addr = addr, .size = size, .tid = tid, .task = task };
	struct thread_stats *t = process__thread(p, tid);
	struct heap_block old;
	int ret;

	if (!addr) {
		process__alloc_failed(p);
		return;
	}
	b.time_cs = centiseconds_since_attach(p, ts);
	p->heap.allocations_total++;
	p->heap.allocated_bytes_total += size;
	if (t) {
		t->allocations_total++;
		t->allocated_bytes_total += size;
	}
	if (task)
		task_table__alloc(p->tasks, task, size);
	else
		p->heap.untasked_allocated_bytes_total += size;
	ret = heap_table__insert(p->blocks, &b, &old);
	if (ret < 0) {
		p->blocks_dropped++;
		return;
	}
	if (ret == 1) {
		p->blocks_replaced++;
		release(p, &old, ts);
	}
	account(p, &b, true);
}

/* A block left the heap (freed, or replaced because its free was lost). */
static void release(struct process *p, const struct heap_block *b, uint64_t ts)
{
	struct task *task;

	account(p, b, false);
	if (b->task & TASK_CELL_BIT) {
		task = task_table__at(p->tasks, b->task & ~TASK_CELL_BIT);
		if (task)
			task_table__dealloc(p->tasks, task, ts);
	}
}

void process__freed(struct process *p, uint32_t tid, uint64_t addr, uint64_t ts)
{
	struct heap_block old;
	struct task *task;

	(void)tid;
	if (!heap_table__remove(p->blocks, addr, &old)) {
		p->heap.frees_untracked_total++;
		/* The cell of a task from before attach (found by the scan or polling). */
		task = task_table__find(p->tasks, addr);
		if (task && task->discovered != TASK_FOUND_SPAWN)
			task_table__dealloc(p->tasks, task, ts);
		return;
	}
	p->heap.frees_total++;
	release(p, &old, ts);
}

void process__realloc_begin(struct process *p, uint32_t tid, uint64_t old_addr)
{
	struct thread_stats *t = process__thread(p, tid);

	if (!t) {
		process__freed(p, tid, old_addr, 0);
		return;
	}
	t->realloc_pending = true;
	t->realloc_tracked = heap_table__remove(p->blocks, old_addr, &t->realloc_old);
	if (t->realloc_tracked)
		account(p, &t->realloc_old, false);
	else
		t->realloc_old.addr = old_addr;
}

void process__realloc_end(struct process *p, uint32_t tid, uint64_t old_addr, uint64_t new_addr,
			  uint64_t size, uint32_t task, uint64_t ts)
{
	struct thread_stats *t = process__thread(p, tid);
	bool pending = t && t->realloc_pending && t->realloc_old.addr == old_addr;

	if (!t) {
		/* A thread over --max-threads: its begin already freed the old block. */
		if (new_addr)
			process__alloc(p, tid, new_addr, size, task, ts);
		else if (size)
			process__alloc_failed(p);
		return;
	}
	t->realloc_pending = false;
	if (!old_addr) {
		process__alloc(p, tid, new_addr, size, task, ts);
		return;
	}
	if (!pending) {
		/* The begin event was lost or dropped: settle the old block now. */
		if (!new_addr && size) {
			process__alloc_failed(p);
			return;
		}
		process__freed(p, tid, old_addr, ts);
		if (new_addr)
			process__alloc(p, tid, new_addr, size, task, ts);
		return;
	}
	/* A failed realloc leaves the old block untouched. */
	if (!new_addr && size) {
		if (t->realloc_tracked && heap_table__insert(p->blocks, &t->realloc_old, NULL) == 0)
			account(p, &t->realloc_old, true);
		process__alloc_failed(p);
		return;
	}
	if (t->realloc_tracked) {
		p->heap.frees_total++;
		/* Its live share was taken at the begin; a moved task cell ends its task. */
		if (t->realloc_old.task & TASK_CELL_BIT) {
			struct task *cell =
				task_table__at(p->tasks, t->realloc_old.task & ~TASK_CELL_BIT);

			if (cell)
				task_table__dealloc(p->tasks, cell, ts);
		}
	} else {
		p->heap.frees_untracked_total++;
	}
	/* realloc(p, 0) frees p and returns NULL on glibc. */
	if (new_addr)
		process__alloc(p, tid, new_addr, size, task, ts);
}

void process__resize(struct process *p, uint32_t tid, uint64_t addr, uint64_t size, uint32_t task,
		     uint64_t ts)
{
	/* A realloc that kept its address: counted as one, so the figures agree with realloc's. */
	process__realloc_begin(p, tid, addr);
	process__realloc_end(p, tid, addr, addr, size, task, ts);
}

bool process__claim_cell(struct process *p, uint64_t addr, uint32_t task,
			 struct heap_block *ret_block)
{
	struct heap_block b;

	if (!heap_table__lookup(p->blocks, addr, &b))
		return false;
	account(p, &b, false);
	b.task = task | TASK_CELL_BIT;
	heap_table__insert(p->blocks, &b, NULL);
	account(p, &b, true);
	if (ret_block)
		*ret_block = b;
	return true;
}

void process__alloc_failed(struct process *p)
{
	p->heap.allocation_failures_total++;
}

bool process__forgotten(const struct process *p, uint64_t now_ns, uint64_t forget_after_ns)
{
	return (p->exited || p->execed) && p->ended_ns && forget_after_ns && now_ns > p->ended_ns &&
	       now_ns - p->ended_ns >= forget_after_ns;
}

bool process__complete(const struct process *p)
{
	return !p->blocks_dropped && !p->thread_events_dropped && !p->blocks_replaced &&
	       !p->fork_window_missed && !p->fork_window_uncounted &&
	       !(p->tasks && (p->tasks->tasks_dropped || p->tasks->types_dropped));
}
