// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/capability.h>
#include "alloc_family.h"
#include "alloc_plan.h"
#include "daemon.h"
#include "heap_census.h"
#include "log.h"
#include "privilege.h"
#include "proc.h"
#include "process_table.h"
#include "runtime_async_task.h"
#include "runtime_tokio.h"
#include "scan_mode.h"
#include "scan_state.h"
#include "task_snapshot.h"

/*
 * A task's walk stops 256 hops deep and after 16 MiB read (a pointer into the runtime's
 * shared state reaches most of the heap); a snapshot's after 1 GiB; a chunk is looked at for
 * pointers in its first MiB.
 */
const struct retained_limits scan_mode_retained_limits = {
	.max_depth = 256,
	.max_scan_per_root = 16ull << 20,
	.max_scan_total = 1ull << 30,
	.max_scan_chunk = 1ull << 20,
};

static int read_pid(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const int *pid = ctx;

	return proc__read(*pid, addr, buf, len);
}

/* The stopped threads' registers, read by the leak walk as memory where no user mapping is. */
#define REGS_BASE 0xffff800000000000ull

struct leak_read {
	int pid;
	const uint64_t *regs;
	size_t nregs;
};

static int read_leak(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct leak_read *r = ctx;
	uint64_t off = addr - REGS_BASE, size = r->nregs * sizeof(*r->regs);

	if (addr < REGS_BASE)
		return proc__read(r->pid, addr, buf, len);
	if (off > size || len > size - off)
		return -EFAULT;
	memcpy(buf, (const uint8_t *)r->regs + off, len);
	return 0;
}

struct chunk_list {
	struct retained_chunk *v;
	size_t n, cap, max;
	uint64_t dropped;
};

static int on_chunk(void *ctx, uint64_t mem, uint64_t size, bool mmapped)
{
	struct chunk_list *l = ctx;
	struct retained_chunk *v;
	size_t cap;

	if (l->n == l->max) {
		l->dropped++;
		return 0;
	}
	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 4096;
		v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	/*
	 * Counted as mallinfo2 counts, the whole chunk: size and the header (16). A heap chunk
	 * is held by a pointer up to its end, the next chunk's header: its usable bytes run into
	 * the next prev_size word, and one past them is the next size word. An mmapped chunk's
	 * usable bytes end with its mapping: what its end points to is the next mapping (a
	 * thread's guard page, another chunk's header), so a pointer there does not hold it.
	 */
	l->v[l->n++] = (struct retained_chunk){ mem, size + 16, mmapped ? size : 0 };
	return 0;
}

static int by_mem(const void *a, const void *b)
{
	const struct retained_chunk *x = a, *y = b;

	return x->mem < y->mem ? -1 : x->mem > y->mem;
}

/* A heap read again after it changed gives some chunks twice: keep one of each. */
static void dedupe(struct chunk_list *l)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		if (!n || l->v[i].mem >= l->v[n - 1].mem + l->v[n - 1].size)
			l->v[n++] = l->v[i];
	l->n = n;
}

/* Each task's retained heap, from its cell through the census's chunks. */
static int retained(struct process *p, struct scan_process *s, const struct chunk_list *chunks,
		    const struct snapshot_cells *cells)
{
	struct retained_result res = { 0 };
	struct retained_root *roots;
	struct scan_task *st;
	int pid = (int)p->pid, err;
	size_t i;

	roots = calloc(cells->n + 1, sizeof(*roots));
	res.roots = calloc(cells->n + 1, sizeof(*res.roots));
	err = roots && res.roots ? 0 : -ENOMEM;
	for (i = 0; !err && i < cells->n; i++)
		roots[i] = (struct retained_root){ cells->v[i].start, cells->v[i].end,
						   cells->v[i].skip };
	if (!err)
		err = retained__compute(chunks->v, chunks->n, roots, cells->n,
					&scan_mode_retained_limits, read_pid, &pid, &res);
	for (i = 0; !err && i < cells->n; i++) {
		st = scan_process__task(s, cells->v[i].task, cells->v[i].header);
		if (!st)
			continue;
		st->retained_exclusive = res.roots[i].exclusive;
		st->retained_inclusive = res.roots[i].inclusive;
		st->retained_truncated = res.roots[i].truncated;
		st->retained_known = true;
	}
	if (!err) {
		s->retained_valid = true;
		s->unreached_bytes = res.unreached_bytes;
		s->unreached_chunks = res.unreached_chunks;
		s->roots_truncated = res.roots_truncated;
		s->retained_scanned_bytes = res.scanned_bytes;
	}
	free(roots);
	free(res.roots);
	return err;
}

/* The leak walk: everything reachable counts, however deep. */
static const struct retained_limits leak_limits = {
	.max_depth = 1u << 30,
	.max_scan_per_root = 4ull << 30,
	.max_scan_total = 4ull << 30,
	.max_scan_chunk = 64ull << 20,
};

struct root_ranges {
	struct retained_root *v;
	size_t n, cap;
	const struct chunk_list *chunks;
	size_t next; /* the first chunk not below the last range */
	int err;
};

static void add_range(struct root_ranges *r, uint64_t start, uint64_t end)
{
	struct retained_root *v;

	if (start >= end || r->err)
		return;
	if (r->n == r->cap) {
		v = realloc(r->v, (r->cap ? r->cap * 2 : 64) * sizeof(*v));
		if (!v) {
			r->err = -ENOMEM;
			return;
		}
		r->v = v;
		r->cap = r->cap ? r->cap * 2 : 64;
	}
	r->v[r->n++] = (struct retained_root){ start, end, 0 };
}

/* A writable mapping, less the in-use chunks in it (a chunk is no root: it must be reached). */
static int add_mapping(const char *line, void *ctx)
{
	struct root_ranges *r = ctx;
	const struct chunk_list *c = r->chunks;
	unsigned long long start, end;
	uint64_t at, cstart;
	char perms[5];
	size_t i;

	if (sscanf(line, "%llx-%llx %4s", &start, &end, perms) < 3 || perms[0] != 'r' ||
	    perms[1] != 'w')
		return 0;
	at = start;
	/* Chunks are sorted, and so are the maps: one pass over both. */
	for (i = r->next; i < c->n && c->v[i].mem - 16 < end; i++) {
		cstart = c->v[i].mem - 16;
		if (cstart + c->v[i].size <= start)
			continue;
		add_range(r, at, cstart > at ? cstart : at);
		if (cstart + c->v[i].size > at)
			at = cstart + c->v[i].size;
	}
	r->next = i;
	add_range(r, at < end ? at : end, end);
	return r->err;
}

/*
 * The chunks nothing in the process's writable memory points to, the largest listed. Frozen,
 * the stopped threads' registers are roots too.
 */
static int leak_candidates(struct process *p, struct scan_process *s,
			   const struct chunk_list *chunks, bool frozen)
{
	struct root_ranges r = { .chunks = chunks };
	struct leak_read lr = { .pid = (int)p->pid };
	struct retained_figures fig;
	uint8_t *reached = calloc(chunks->n + 1, 1);
	size_t i, j;
	int err;

	if (frozen) {
		lr.regs = s->freeze.regs;
		lr.nregs = s->freeze.nregs;
	}
	s->register_words = lr.nregs;
	err = reached ? proc__maps_lines(lr.pid, add_mapping, &r) : -ENOMEM;
	add_range(&r, REGS_BASE, REGS_BASE + lr.nregs * sizeof(*lr.regs));
	if (!err)
		err = r.err;
	if (!err)
		err = retained__reach(chunks->v, chunks->n, r.v, r.n, &leak_limits, read_leak, &lr,
				      reached, &fig);
	if (!err) {
		s->leaks_valid = true;
		s->leaks_truncated = fig.truncated;
		s->leak_bytes = fig.exclusive;
		s->leak_chunks = 0;
		s->nleaks = 0;
		for (i = 0; i < chunks->n; i++) {
			if (reached[i])
				continue;
			s->leak_chunks++;
			/* Insertion into the list of the largest, biggest first. */
			for (j = s->nleaks; j > 0 && s->leaks[j - 1].size < chunks->v[i].size; j--)
				if (j < SCAN_LEAKS_LISTED)
					s->leaks[j] = s->leaks[j - 1];
			if (j < SCAN_LEAKS_LISTED) {
				s->leaks[j].addr = chunks->v[i].mem;
				s->leaks[j].size = chunks->v[i].size;
				if (s->nleaks < SCAN_LEAKS_LISTED)
					s->nleaks++;
			}
		}
	}
	free(r.v);
	free(reached);
	return err;
}

/* --freeze: every thread of p stopped, or the snapshot is taken unfrozen (and counted). */
static bool freeze(struct daemon *d, struct process *p, struct scan_process *s)
{
	int err = freeze__stop(&s->freeze, (int)p->pid, d->opts.leak_candidates,
			       SCAN_FREEZE_TIMEOUT_MS);
	int was = s->freeze_error;

	s->freeze_error = err;
	s->freeze_tracer = s->freeze.tracer;
	/* Said when it starts failing and when it works again, not every snapshot. */
	if (err && !was && s->frozen_snapshots)
		log_err("pid %u: --freeze: %s, snapshots are taken unfrozen until it can be frozen",
			p->pid, scan_process__freeze_error(s, (char[128]){ 0 }, 128));
	else if (!err && was && s->frozen_snapshots)
		log_err("pid %u: --freeze: frozen again", p->pid);
	s->last_frozen = !err;
	if (err) {
		s->unfrozen_snapshots++;
		return false;
	}
	s->frozen_snapshots++;
	s->frozen_threads = s->freeze.threads;
	s->group_stopped_threads = s->freeze.group_stopped;
	return true;
}

/*
 * Freezes p again within a snapshot, its threads just let go; if that fails, the snapshot
 * counts as unfrozen.
 */
static bool refreeze(struct daemon *d, struct process *p, struct scan_process *s)
{
	int err;

	/* A moment for the thread stopped in malloc to run on: on a busy CPU it waits its turn. */
	sched_yield();
	nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	err = freeze__stop(&s->freeze, (int)p->pid, d->opts.leak_candidates,
			   SCAN_FREEZE_TIMEOUT_MS);
	if (!err) {
		s->refreezes++;
		return true;
	}
	s->freeze_error = err;
	s->freeze_tracer = s->freeze.tracer;
	s->last_frozen = false;
	s->frozen_snapshots--;
	s->unfrozen_snapshots++;
	return false;
}

/* One snapshot of p: census, tasks, retained heap. 0 or -errno (figures of the last kept). */
static int snapshot(struct daemon *d, struct process *p, uint64_t now_ns)
{
	struct scan_process *s = scan_process__of(p);
	struct chunk_list chunks = { .max = d->opts.max_allocations };
	struct snapshot_cells cells = { 0 };
	struct heap_census c;
	int err = 0, census_err = -ENOENT;
	bool frozen;
	uint64_t t;
	int tries;

	if (!s)
		return -ENOENT;
	t = daemon__now();
	frozen = d->opts.freeze && freeze(d, p, s);
	s->snapshots++;
	s->last_bytes_read = 0;
	if (s->census_supported) {
		census_err = heap_census__pid((int)p->pid, on_chunk, &chunks, &c);
		/*
		 * A thread stopped inside malloc can leave its arena mid-update (1 frozen
		 * snapshot in 125 of a target churning 3 arenas at full speed): let the
		 * threads run on a moment and freeze them again, up to 4 times.
		 */
		for (tries = 0; frozen && !census_err && c.damaged && tries < 4; tries++) {
			freeze__thaw(&s->freeze);
			frozen = refreeze(d, p, s);
			chunks.n = 0;
			chunks.dropped = 0;
			s->last_bytes_read += c.bytes_read;
			/*
			 * Not refrozen: the snapshot is an unfrozen one and reads as one does (a
			 * heap still changing after three reads counts as damaged), not the frozen
			 * read, whose damage stays until the thread in malloc runs.
			 */
			census_err = heap_census__pid((int)p->pid, on_chunk, &chunks, &c);
		}
		if (!census_err) {
			s->census = c;
			s->census_valid = true;
			s->chunks_dropped = chunks.dropped;
			s->last_bytes_read += c.bytes_read;
			if (chunks.n)
				qsort(chunks.v, chunks.n, sizeof(*chunks.v), by_mem);
			dedupe(&chunks);
		}
	}
	err = task_snapshot__take(p, s, now_ns, &cells);
	s->retained_valid = false;
	if (!err && !census_err && !chunks.dropped)
		err = retained(p, s, &chunks, &cells);
	s->leaks_valid = false;
	if (!err && !census_err && !chunks.dropped && d->opts.leak_candidates)
		err = leak_candidates(p, s, &chunks, frozen);
	if (frozen) {
		freeze__thaw(&s->freeze);
		s->last_freeze_ns = daemon__now() - t;
		s->last_freeze_bytes = s->last_bytes_read;
		if (s->last_freeze_ns > s->max_freeze_ns)
			s->max_freeze_ns = s->last_freeze_ns;
	}
	/* A thread a freeze gave up on and that has stopped since is let go now, not next tick. */
	if (s->freeze.n)
		freeze__tidy(&s->freeze);
	if (!err && census_err != -ENOENT)
		err = census_err;
	s->snapshot_errors += err != 0;
	s->last_snapshot_ns = now_ns;
	s->last_duration_ns = daemon__now() - now_ns;
	free(chunks.v);
	free(cells.v);
	return err;
}

/* Threads that stopped after their freeze gave up on them (-ETIMEDOUT) are let go. */
static void tidy_freezes(struct daemon *d)
{
	struct scan_process *s;
	size_t i;

	for (i = 0; d->opts.freeze && i < process_table__count(d->decoder.procs); i++) {
		s = scan_process__of(process_table__at(d->decoder.procs, i));
		if (s && s->freeze.n)
			freeze__tidy(&s->freeze);
	}
}

void scan_mode__tick(struct daemon *d, uint64_t now_ns, int fresh)
{
	struct process *p;
	size_t i;
	int err;

	tidy_freezes(d);
	if (!fresh && now_ns < d->next_scan_ns)
		return;
	for (i = 0; i < process_table__count(d->decoder.procs); i++) {
		p = process_table__at(d->decoder.procs, i);
		if (p->exited || p->execed || !proc__alive((int)p->pid))
			continue;
		/* Between targets too: a snapshot of each can take long. */
		tidy_freezes(d);
		err = snapshot(d, p, now_ns);
		/* A target exiting or changing under the read is no error of ours. */
		if (err && err != -EFAULT && err != -ESRCH && proc__alive((int)p->pid) &&
		    d->opts.verbose)
			log_err("pid %u: snapshot: %s, ignoring", p->pid, strerror(-err));
	}
	d->next_scan_ns = daemon__now() + (uint64_t)(d->opts.scan_interval * 1e9);
}

static int setup_tokio(struct process *p, const char *debug_dir, char *msg, size_t len)
{
	return tokio_process__setup(p, (int)p->pid, debug_dir, msg, len);
}

/* Which allocator serves malloc: only glibc's heap has a census. */
static void find_allocator(struct daemon *d, struct process *p, struct scan_process *s)
{
	struct alloc_plan *plan = calloc(1, sizeof(*plan));
	char msg[1536];
	const char *family;

	s->census_supported = false;
	if (!plan || alloc_plan__build((int)p->pid, d->opts.allocator, plan, msg, sizeof(msg))) {
		s->census_note = "malloc is served by an allocator memscoped does not know: no "
				 "heap census (the census reads glibc's arenas only)";
		free(plan);
		return;
	}
	family = plan->families[plan->primary]->name;
	p->allocator.family = family;
	free(p->allocator.object);
	p->allocator.object = strdup(plan->objects[plan->primary].object);
	if (!strcmp(family, "glibc")) {
		s->census_supported = true;
	} else {
		s->census_note =
			"malloc is not glibc's: no heap census (the census reads glibc's "
			"arenas only; this allocator's chunks are not walked, so there are "
			"no census or retained-heap figures)";
	}
	alloc_plan__clear(plan);
	free(plan);
}

/* The task runtimes scan mode follows, each found without attaching anything. */
static const struct scan_runtime {
	const char *name;
	int (*setup)(struct process *p, const char *debug_dir, char *msg, size_t len);
} scan_runtimes[] = {
	{ "tokio", setup_tokio },
	{ "async-task", atask_process__setup },
};

static const struct scan_runtime *scan_runtime(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(scan_runtimes) / sizeof(scan_runtimes[0]); i++)
		if (!strcmp(scan_runtimes[i].name, name))
			return &scan_runtimes[i];
	return NULL;
}

static int setup(struct daemon *d, struct process *p)
{
	const char *rt = d->opts.runtime;
	struct scan_process *s = scan_process__get(p);
	bool any = !strcmp(rt, "auto");
	char msg[1024] = "";
	size_t i;
	int err;

	if (!s)
		return -ENOMEM;
	find_allocator(d, p, s);
	for (i = 0; i < sizeof(scan_runtimes) / sizeof(scan_runtimes[0]); i++) {
		if (!any && strcmp(rt, scan_runtimes[i].name))
			continue;
		err = scan_runtimes[i].setup(p, d->opts.debug_dir, msg, sizeof(msg));
		if (err == -ENOENT && any)
			continue;
		if (err) {
			log_err("pid %u: %s", p->pid, proc__alive((int)p->pid) ? msg : "exited");
			return err;
		}
		log_err("pid %u: scan mode: %s found", p->pid, scan_runtimes[i].name);
	}
	return 0;
}

int scan_mode__start(struct daemon *d)
{
	const char *rt = d->opts.runtime;
	struct scan_process *s;
	struct process *p;
	size_t i;
	int err;

	if (strcmp(rt, "auto") && strcmp(rt, "none") && !scan_runtime(rt)) {
		log_err("--mode scan follows tokio and async-task tasks only: --runtime '%s' needs "
			"--mode trace",
			rt);
		return -EINVAL;
	}
	for (i = 0; i < process_table__count(d->decoder.procs); i++) {
		p = process_table__at(d->decoder.procs, i);
		err = setup(d, p);
		if (err)
			return err;
	}
	/*
	 * Every snapshot reads the targets (process_vm_readv) and with --freeze stops them
	 * (PTRACE_SEIZE): keep CAP_SYS_PTRACE, give up the rest.
	 */
	err = privilege__drop(1ull << CAP_SYS_PTRACE, NULL);
	if (err)
		log_err("cannot drop capabilities: %s, ignoring", strerror(-err));
	d->start = daemon__now();
	for (i = 0; i < process_table__count(d->decoder.procs); i++)
		process_table__at(d->decoder.procs, i)->start_ns = d->start;
	d->tick = scan_mode__tick;
	/* Every freeze interrupts the target's threads: say once what that does to them. */
	if (d->opts.freeze)
		log_err("--freeze: each snapshot interrupts the target's system calls; a thread "
			"blocked in epoll_wait, epoll_pwait, semop, semtimedop, sigtimedwait, "
			"msgrcv or io_getevents may return EINTR from it; services must retry "
			"(most do)");
	scan_mode__tick(d, d->start, 1);
	for (i = 0; i < process_table__count(d->decoder.procs); i++) {
		p = process_table__at(d->decoder.procs, i);
		s = scan_process__of(p);
		/* A target that cannot be frozen now is said at once, not found out later. */
		if (d->opts.freeze && s->freeze_error) {
			log_err("pid %u: --freeze: %s", p->pid,
				scan_process__freeze_error(s, (char[128]){ 0 }, 128));
			return s->freeze_error;
		}
		if (d->opts.freeze)
			log_err("pid %u: frozen %u threads for %.1f ms", p->pid, s->frozen_threads,
				(double)s->last_freeze_ns / 1e6);
		log_err("pid %u: scan mode, no probe attached (snapshot in %.1f ms, %.1f MiB read, "
			"%llu tasks%s)",
			p->pid, (double)s->last_duration_ns / 1e6,
			(double)s->last_bytes_read / (1 << 20), (unsigned long long)s->tasks_found,
			s->census_supported ? "" : "; no heap census (malloc is not glibc's)");
	}
	return 0;
}
