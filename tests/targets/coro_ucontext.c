// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Stackful coroutines on glibc's ucontext, with known heap behaviour.
 * Usage: coro_ucontext THREADS [pre] [exit]
 *
 * Each thread runs a small scheduler. Phase A makes three coroutines and runs each to its
 * first yield: two on stacks of their own (mmap, guard pages) and one on a malloc'd stack.
 * With "pre", phase A runs before "ready" is printed (before memscoped attaches), so the
 * first two must be discovered at their first switch and the third is unknown. Then the
 * program prints "ready PID" and waits for SIGUSR1. Phase B resumes them and adds coroutines
 * that finish, park forever, reuse a finished coroutine's stack (a new generation) and have
 * their stack freed while parked; the scheduler allocates too (untasked). It prints the
 * ground truth as one JSON line ("truth {...}"), then "done", and waits for SIGTERM (or
 * exits at once with "exit").
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define MAX_THREADS 8
#define MAX_COROS 16
#define STACK_SIZE (64 * 1024)
#define PAGE 4096

enum end { END_NONE, END_COMPLETED, END_CANCELLED };

struct coro {
	ucontext_t ctx;
	struct sched *sched;
	const char *type;
	char *stack;
	size_t stack_size;
	unsigned seq;	/* order of creation, all threads */
	int generation; /* 1 + earlier coroutines memscoped can see on the same stack */
	int tracked;	/* memscoped can see it: made after attach, or on a stack of its own */
	int discovered; /* made before attach: found at its first switch */
	int resumes;	/* switches into it after attach */
	uint64_t alloc_bytes, alloc_count, live_bytes;
	enum end end;
	int parked; /* never resumed again */
};

struct sched {
	ucontext_t main;
	pid_t tid;
	int n; /* thread index */
	struct coro coros[MAX_COROS];
	int ncoros;
	uint64_t untasked_live, untasked_bytes;
	uint64_t unknown_switches;
};

static struct sched scheds[MAX_THREADS];
static pthread_barrier_t start_line;
static volatile int counting; /* memscoped is attached: count what it must see */
static unsigned next_seq;
static int pre;

/* A coroutine's allocation; the coroutine keeps it unless it frees it itself. */
static void *co_alloc(struct coro *c, size_t size)
{
	void *p = malloc(size);

	if (!p)
		abort();
	memset(p, 0x5a, size);
	if (counting) {
		c->alloc_bytes += size;
		c->alloc_count++;
		c->live_bytes += size;
	}
	return p;
}

/* counted: the block was allocated after attach (counting was set then). */
static void co_free(struct coro *c, void *p, size_t size, int counted)
{
	free(p);
	if (counted)
		c->live_bytes -= size;
}

static void yield(struct coro *c)
{
	if (swapcontext(&c->ctx, &c->sched->main))
		abort();
}

static struct coro *coro_at(int t, int i)
{
	return &scheds[t].coros[i];
}

static size_t size_for(struct coro *c, int k)
{
	return 1000 + 1000 * (size_t)c->sched->n + 37 * (size_t)(c - c->sched->coros) + (size_t)k;
}

/* Allocates, yields, allocates and frees, yields, returns (to uc_link). */
static void co_finisher(int t, int i)
{
	struct coro *c = coro_at(t, i);
	int counted = counting;
	void *a = co_alloc(c, size_for(c, 1));

	co_alloc(c, size_for(c, 2));
	yield(c);
	co_alloc(c, size_for(c, 3));
	co_free(c, a, size_for(c, 1), counted);
	yield(c);
}

/* Eight arguments: two of them on the stack, above which makecontext keeps uc_link. */
static void co_finisher8(int t, int i, int a3, int a4, int a5, int a6, int a7, int a8)
{
	struct coro *c = coro_at(t, i);

	if (a3 + a4 + a5 + a6 + a7 + a8 != 3 + 4 + 5 + 6 + 7 + 8)
		abort();
	co_alloc(c, size_for(c, 4));
	yield(c);
	co_alloc(c, size_for(c, 5));
}

/* Allocates and parks: the scheduler resumes it once more at most. */
static void co_parker(int t, int i)
{
	struct coro *c = coro_at(t, i);

	co_alloc(c, size_for(c, 6));
	yield(c);
	co_alloc(c, size_for(c, 7));
	yield(c);
	abort(); /* never resumed again */
}

/* Its stack is freed while it is parked. */
static void co_doomed(int t, int i)
{
	struct coro *c = coro_at(t, i);

	co_alloc(c, size_for(c, 8));
	yield(c);
	abort();
}

static void sched_alloc(struct sched *s, size_t size, int keep)
{
	void *p = malloc(size);

	if (!p)
		abort();
	memset(p, 0x11, size);
	if (counting) {
		s->untasked_bytes += size;
		s->untasked_live += keep ? size : 0;
	}
	if (!keep)
		free(p);
}

static char *own_stack(size_t size)
{
	/* Guard pages at both ends: a mapping of its own, as coroutine libraries make. */
	char *m = mmap(NULL, size + 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (m == MAP_FAILED || mprotect(m, PAGE, PROT_NONE) ||
	    mprotect(m + PAGE + size, PAGE, PROT_NONE))
		abort();
	return m + PAGE;
}

static struct coro *make(struct sched *s, int i, const char *type, void (*fn)(void), char *stack,
			 size_t size, int nargs)
{
	struct coro *c = &s->coros[i];

	memset(c, 0, sizeof(*c));
	c->sched = s;
	c->type = type;
	c->stack = stack;
	c->stack_size = size;
	c->tracked = counting;
	c->seq = __atomic_fetch_add(&next_seq, 1, __ATOMIC_SEQ_CST);
	if (getcontext(&c->ctx))
		abort();
	c->ctx.uc_stack.ss_sp = stack;
	c->ctx.uc_stack.ss_size = size;
	c->ctx.uc_link = &s->main;
	if (nargs == 8)
		makecontext(&c->ctx, fn, 8, s->n, i, 3, 4, 5, 6, 7, 8);
	else
		makecontext(&c->ctx, fn, 2, s->n, i);
	if (i >= s->ncoros)
		s->ncoros = i + 1;
	return c;
}

/* Another coroutine on the stack of coroutine i, which has ended: a new lifetime. */
static struct coro *remake(struct sched *s, int from, int i, const char *type, void (*fn)(void),
			   int nargs)
{
	struct coro *old = &s->coros[from];

	if (old->end != END_COMPLETED)
		abort();
	return make(s, i, type, fn, old->stack, old->stack_size, nargs);
}

static void resume(struct coro *c)
{
	if (counting) {
		c->resumes++;
		/* A context memscoped never saw made, on a stack it cannot tell. */
		if (!c->tracked)
			c->sched->unknown_switches++;
	}
	if (swapcontext(&c->sched->main, &c->ctx))
		abort();
}

static void finish(struct coro *c)
{
	resume(c);
	c->end = END_COMPLETED;
}

/* Phase A: three coroutines run to their first yield. */
static void phase_a(struct sched *s)
{
	struct coro *c;

	c = make(s, 0, "co_finisher", (void (*)(void))co_finisher, own_stack(STACK_SIZE),
		 STACK_SIZE, 2);
	resume(c);
	c = make(s, 1, "co_parker", (void (*)(void))co_parker, own_stack(STACK_SIZE), STACK_SIZE,
		 2);
	resume(c);
	c = make(s, 2, "co_finisher", (void (*)(void))co_finisher, malloc(STACK_SIZE), STACK_SIZE,
		 2);
	resume(c);
	if (!pre)
		return;
	/* Made before attach: found at their first switch if their stack is their own. */
	s->coros[0].discovered = s->coros[1].discovered = 1;
	s->coros[0].tracked = s->coros[1].tracked = 1;
}

static void phase_b(struct sched *s)
{
	struct coro *c;
	int i;

	sched_alloc(s, 50000 + (size_t)s->n, 1);
	/* The phase A coroutines: one finishes, one parks, the one on a malloc'd stack ends. */
	resume(&s->coros[0]);
	finish(&s->coros[0]);
	resume(&s->coros[1]);
	s->coros[1].parked = 1;
	resume(&s->coros[2]);
	finish(&s->coros[2]);
	sched_alloc(s, 333, 0);

	c = make(s, 3, "co_finisher", (void (*)(void))co_finisher, malloc(STACK_SIZE), STACK_SIZE,
		 2);
	resume(c);
	sched_alloc(s, 444, 0);
	resume(c);
	finish(c);
	/* Reused stacks: a finished coroutine's malloc'd stack and its own-mapping stack. */
	c = remake(s, 3, 4, "co_finisher8", (void (*)(void))co_finisher8, 8);
	resume(c);
	finish(c);
	c = remake(s, 0, 5, "co_parker", (void (*)(void))co_parker, 2);
	resume(c);
	c->parked = 1;
	c = make(s, 6, "co_parker", (void (*)(void))co_parker, malloc(STACK_SIZE), STACK_SIZE, 2);
	resume(c);
	resume(c);
	c->parked = 1;
	c = make(s, 7, "co_doomed", (void (*)(void))co_doomed, malloc(STACK_SIZE), STACK_SIZE, 2);
	resume(c);
	free(c->stack);
	c->end = END_CANCELLED;
	/* A stack of its own unmapped while its coroutine is parked. */
	c = make(s, 8, "co_doomed", (void (*)(void))co_doomed, own_stack(STACK_SIZE), STACK_SIZE,
		 2);
	resume(c);
	if (munmap(c->stack - PAGE, STACK_SIZE + 2 * PAGE))
		abort();
	c->end = END_CANCELLED;
	/* Churn on the scheduler's own stack. */
	for (i = 0; i < 100; i++)
		sched_alloc(s, 100 + (size_t)i, 0);
}

static void *worker(void *arg)
{
	struct sched *s = arg;

	s->tid = (pid_t)syscall(SYS_gettid);
	if (pre)
		phase_a(s);
	pthread_barrier_wait(&start_line);
	pthread_barrier_wait(&start_line);
	if (!pre)
		phase_a(s);
	phase_b(s);
	pthread_barrier_wait(&start_line);
	for (;;)
		pause();
	return NULL;
}

static void wait_signal(int sig)
{
	sigset_t set;
	int got;

	sigemptyset(&set);
	sigaddset(&set, sig);
	sigaddset(&set, SIGTERM);
	sigwait(&set, &got);
	if (got == SIGTERM)
		_exit(0);
}

/* A stack reused (by the program, malloc or mmap) carries a new generation. */
static void generations(int nthreads)
{
	int i, j, k, l;

	for (i = 0; i < nthreads; i++)
		for (j = 0; j < scheds[i].ncoros; j++) {
			struct coro *c = &scheds[i].coros[j];

			c->generation = c->tracked;
			for (k = 0; k < nthreads && c->tracked; k++)
				for (l = 0; l < scheds[k].ncoros; l++) {
					struct coro *o = &scheds[k].coros[l];

					c->generation += o->tracked && o->stack == c->stack &&
							 o->seq < c->seq;
				}
		}
}

static const char *end_name(enum end e)
{
	return e == END_COMPLETED ? "\"completed\"" : e == END_CANCELLED ? "\"cancelled\"" : "null";
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 2, i, j, exit_at_end = 0, first = 1;
	pthread_t th[MAX_THREADS];
	sigset_t set;

	for (i = 2; i < argc; i++) {
		pre |= !strcmp(argv[i], "pre");
		exit_at_end |= !strcmp(argv[i], "exit");
	}
	if (nthreads < 1 || nthreads > MAX_THREADS)
		return 2;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_barrier_init(&start_line, NULL, (unsigned)nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		scheds[i].n = i;
		pthread_create(&th[i], NULL, worker, &scheds[i]);
	}
	/* Phase A of "pre" is over before memscoped can attach. */
	pthread_barrier_wait(&start_line);
	printf("ready %d\n", getpid());
	fflush(stdout);

	wait_signal(SIGUSR1);
	counting = 1;
	pthread_barrier_wait(&start_line);
	pthread_barrier_wait(&start_line);
	generations(nthreads);

	printf("truth {\"pid\": %d, \"threads\": [", getpid());
	for (i = 0; i < nthreads; i++)
		printf("%s{\"tid\": %d, \"untasked_live_bytes\": %lu, \"untasked_bytes\": %lu, "
		       "\"unknown_switches\": %lu}",
		       i ? ", " : "", scheds[i].tid, scheds[i].untasked_live,
		       scheds[i].untasked_bytes, scheds[i].unknown_switches);
	printf("], \"coroutines\": [");
	for (i = 0; i < nthreads; i++)
		for (j = 0; j < scheds[i].ncoros; j++) {
			struct coro *c = &scheds[i].coros[j];

			printf("%s{\"stack\": \"0x%lx\", \"stack_bytes\": %zu, \"generation\": %d, "
			       "\"type\": \"%s\", \"tid\": %d, \"tracked\": %s, "
			       "\"discovered\": %s, "
			       "\"resumes\": %d, \"alloc_bytes\": %lu, \"alloc_count\": %lu, "
			       "\"live_bytes\": %lu, \"end\": %s, \"parked\": %s}",
			       first ? "" : ", ", (unsigned long)(uintptr_t)c->stack, c->stack_size,
			       c->generation, c->type, scheds[i].tid, c->tracked ? "true" : "false",
			       c->discovered ? "true" : "false", c->resumes, c->alloc_bytes,
			       c->alloc_count, c->live_bytes, end_name(c->end),
			       c->parked ? "true" : "false");
			first = 0;
		}
	printf("]}\ndone\n");
	fflush(stdout);
	if (exit_at_end)
		_exit(0);
	wait_signal(SIGTERM);
	return 0;
}
