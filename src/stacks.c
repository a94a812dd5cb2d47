// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "memscoped/events.h"
#include "folded.h"
#include "pprof.h"
#include "proc.h"
#include "stacks.h"
#include "stack_unwind.h"

_Static_assert(MS_SAMPLE_HEADER_SIZE == 304, "struct ms_sample is shared with BPF");

struct stacks {
	struct stack_profile *profile;
	char *debug_dir;
	uint32_t pids[MS_MAX_TARGETS];
	struct stack_unwinder *unwinders[MS_MAX_TARGETS];
	size_t n;
	uint64_t cost_ns, cost_samples, stack_bytes;
	uint64_t lost;	    /* samples the BPF side did not send */
	size_t named;	    /* frames [0, named) have their names */
	uint64_t naming_ns; /* CPU time naming them */
	uint64_t start_ns;  /* CLOCK_MONOTONIC at creation: the profile's duration */
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The daemon's own CPU time: the cost of a sample whatever else the machine runs. */
static uint64_t cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

struct stacks *stacks__new(uint64_t sample_bytes, size_t max_series, const char *debug_dir)
{
	struct stacks *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->start_ns = now_ns();
	s->profile = stack_profile__new(sample_bytes, max_series);
	s->debug_dir = debug_dir ? strdup(debug_dir) : NULL;
	if (!s->profile || (debug_dir && !s->debug_dir)) {
		stacks__free(s);
		return NULL;
	}
	return s;
}

void stacks__free(struct stacks *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++)
		stack_unwinder__free(s->unwinders[i]);
	stack_profile__free(s->profile);
	free(s->debug_dir);
	free(s);
}

int stacks__add_process(struct stacks *s, uint32_t pid)
{
	struct stack_unwinder *u;
	size_t i;

	/*
	 * The same pid's old image (exec), and the dead, give their place to the new, once their
	 * frames are named: later they would be named against the new image, or not at all.
	 */
	for (i = s->n; i-- > 0;)
		if (s->pids[i] == pid || !proc__alive((int)s->pids[i])) {
			stacks__name_frames(s);
			stack_unwinder__free(s->unwinders[i]);
			s->pids[i] = s->pids[--s->n];
			s->unwinders[i] = s->unwinders[s->n];
		}
	if (s->n == MS_MAX_TARGETS)
		return -ENOSPC;
	u = stack_unwinder__new((int)pid, s->debug_dir);
	if (!u)
		return -errno;
	s->pids[s->n] = pid;
	s->unwinders[s->n++] = u;
	return 0;
}

static struct stack_unwinder *unwinder_of(const struct stacks *s, uint32_t pid)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->pids[i] == pid)
			return s->unwinders[i];
	return NULL;
}

/* The task the heap table gave the block: labels the sample. */
static void label(struct process *p, struct sp_sample *x)
{
	struct heap_block b;
	struct task *t;

	if (!heap_table__lookup(p->blocks, x->addr, &b))
		return;
	x->task = b.task & ~TASK_CELL_BIT;
	t = task_table__at(p->tasks, x->task);
	if (!t || t->unused) {
		x->task = 0;
		return;
	}
	x->task_id = t->runtime_id ? t->runtime_id : x->task;
	if (t->type < p->tasks->ntypes)
		x->task_type = p->tasks->types[t->type].name;
}

static void handle_sample(struct stacks *s, struct process_table *procs, const struct ms_sample *m,
			  size_t len)
{
	struct stack_profile *prof = s->profile;
	uint64_t pcs[STACK_MAX_FRAMES], start = cpu_ns();
	uint32_t frames[STACK_MAX_FRAMES];
	struct stack_unwinder *u;
	struct sp_sample x = { 0 };
	struct process *p;
	size_t n, i;
	bool fresh;
	long f;

	p = process_table__find(procs, m->pid);
	u = unwinder_of(s, m->pid);
	if (!p || !u || p->execed)
		return;
	n = stack_unwinder__unwind(u, m, len, pcs, STACK_MAX_FRAMES, &x.truncated);
	for (i = 0; i < n; i++) {
		f = stack_profile__frame(prof, m->pid, pcs[i], &fresh);
		if (f < 0) {
			prof->samples_dropped++;
			return;
		}
		(void)fresh;
		frames[i] = (uint32_t)f;
	}
	x.pid = m->pid;
	x.tid = m->tid;
	x.addr = m->addr;
	x.size = m->size;
	x.frames = frames;
	x.nframes = (uint32_t)n;
	if (!heap_table__lookup(p->blocks, m->addr, &(struct heap_block){ 0 }))
		prof->samples_unmatched++;
	label(p, &x);
	stack_profile__add(prof, &x);
	s->cost_ns += cpu_ns() - start;
	s->cost_samples++;
	s->stack_bytes += m->stack_len;
}

bool stacks__event(struct stacks *s, struct process_table *procs, const void *data, size_t len)
{
	const struct ms_event *e = data;

	if (len < sizeof(uint16_t))
		return false;
	if (e->type == MS_EV_SAMPLE) {
		if (s && len >= MS_SAMPLE_HEADER_SIZE)
			handle_sample(s, procs, data, len);
		return true;
	}
	if (s && len >= sizeof(*e) && (e->type == MS_EV_FREE || e->type == MS_EV_REALLOC_BEGIN))
		stack_profile__freed(s->profile, e->pid, e->addr);
	return false;
}

const struct stack_profile *stacks__profile(const struct stacks *s)
{
	return s ? s->profile : NULL;
}

void stacks__cost(const struct stacks *s, uint64_t *ret_ns, uint64_t *ret_samples)
{
	*ret_ns = s ? s->cost_ns : 0;
	*ret_samples = s ? s->cost_samples : 0;
}

int stacks__write_pprof(FILE *f, const void *ctx)
{
	const struct stacks *s = ctx;
	struct timespec wall;

	clock_gettime(CLOCK_REALTIME, &wall);
	return pprof__write(f, s->profile,
			    (uint64_t)wall.tv_sec * 1000000000ull + (uint64_t)wall.tv_nsec,
			    now_ns() - s->start_ns);
}

int stacks__write_folded(FILE *f, const void *ctx)
{
	const struct stacks *s = ctx;

	return folded__write(f, s->profile);
}

void stacks__name_frames(struct stacks *s)
{
	struct stack_profile *p;
	struct stack_unwinder *u;
	uint64_t start;

	if (!s)
		return;
	p = s->profile;
	start = cpu_ns();
	for (; s->named < p->nframes; s->named++) {
		u = unwinder_of(s, p->frames[s->named].pid);
		if (u)
			stack_unwinder__symbolize(u, p, (uint32_t)s->named);
	}
	s->naming_ns += cpu_ns() - start;
}

void stacks__set_lost(struct stacks *s, uint64_t lost)
{
	if (s)
		s->lost = lost;
}

int stacks__summary(const struct stacks *s, char *buf, size_t len)
{
	const struct stack_profile *p = s->profile;
	uint64_t n = s->cost_samples ? s->cost_samples : 1;

	return snprintf(
		buf, len,
		"stacks: %llu samples (%llu lost, %llu dropped, %llu truncated), "
		"%llu distinct, %.1f us of CPU and %llu stack bytes each to unwind; %zu "
		"frames named in %.1f ms",
		(unsigned long long)p->samples, (unsigned long long)s->lost,
		(unsigned long long)p->samples_dropped, (unsigned long long)p->stacks_truncated,
		(unsigned long long)p->nstacks, (double)s->cost_ns / 1e3 / (double)n,
		(unsigned long long)(s->stack_bytes / n), p->nframes, (double)s->naming_ns / 1e6);
}
