// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Coroutines on libpcl (which switches through glibc's ucontext), with known heap behaviour.
 * Usage: coro_pcl THREADS [pre] [exit]   (link with -lpcl)
 *
 * Each thread runs a scheduler over co_create/co_call/co_resume/co_delete: coroutines that
 * finish (their function returns: co_exit), one that parks forever, one deleted while parked,
 * and a caller-supplied stack reused by a second coroutine (a new generation). With "pre", a
 * first coroutine is made and run to its first yield before "ready" (before memscoped
 * attaches): its stack is libpcl's malloc'd block, so it is an unknown context afterwards.
 * Prints "ready PID", waits for SIGUSR1, prints "truth {...}" and "done", then waits for
 * SIGTERM (or exits at once with "exit").
 */
#include <pcl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_THREADS 8
#define MAX_COROS 8
#define STACK_SIZE (32 * 1024)

struct coro {
	coroutine_t co;
	struct sched *s;
	const char *type;
	void *stack;	/* caller-supplied, or NULL: libpcl allocates it with the handle */
	unsigned seq;	/* order of creation, all threads */
	int generation; /* 1 + earlier tracked coroutines on the same (reused) block */
	int tracked;	/* made after attach */
	int resumes;
	uint64_t alloc_bytes, alloc_count, live_bytes;
	const char *end;
	int parked;
};

struct sched {
	pid_t tid;
	int n;
	struct coro coros[MAX_COROS];
	int ncoros;
	uint64_t untasked_live, unknown_switches;
};

static struct sched scheds[MAX_THREADS];
static pthread_barrier_t start_line;
static volatile int counting;
static unsigned next_seq;
static int pre;

static size_t size_for(struct coro *c, int k)
{
	return 2000 + 1000 * (size_t)c->s->n + 41 * (size_t)(c - c->s->coros) + (size_t)k;
}

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

static void pcl_finisher(void *arg)
{
	struct coro *c = arg;
	int counted = counting;
	void *a = co_alloc(c, size_for(c, 1));

	co_alloc(c, size_for(c, 2));
	co_resume();
	co_alloc(c, size_for(c, 3));
	free(a);
	if (counted)
		c->live_bytes -= size_for(c, 1);
	co_resume();
}

static void pcl_second(void *arg)
{
	struct coro *c = arg;

	co_alloc(c, size_for(c, 4));
}

static void pcl_parker(void *arg)
{
	struct coro *c = arg;

	co_alloc(c, size_for(c, 5));
	co_resume();
	co_alloc(c, size_for(c, 6));
	co_resume();
	abort();
}

static void pcl_doomed(void *arg)
{
	struct coro *c = arg;

	co_alloc(c, size_for(c, 7));
	co_resume();
	abort();
}

static struct coro *make(struct sched *s, int i, const char *type, void (*fn)(void *), void *stack)
{
	struct coro *c = &s->coros[i];

	memset(c, 0, sizeof(*c));
	c->s = s;
	c->type = type;
	c->stack = stack;
	c->tracked = counting;
	c->seq = __atomic_fetch_add(&next_seq, 1, __ATOMIC_SEQ_CST);
	c->co = co_create(fn, c, stack, STACK_SIZE);
	if (!c->co)
		abort();
	if (i >= s->ncoros)
		s->ncoros = i + 1;
	return c;
}

static void call(struct coro *c)
{
	if (counting) {
		c->resumes++;
		if (!c->tracked)
			c->s->unknown_switches++;
	}
	co_call(c->co);
}

static void *worker(void *arg)
{
	struct sched *s = arg;
	struct coro *c;
	void *stack;
	void *kept;
	int i;

	s->tid = (pid_t)syscall(SYS_gettid);
	if (co_thread_init())
		abort();
	if (pre) {
		c = make(s, 0, "pcl_finisher", pcl_finisher, NULL);
		call(c);
	}
	pthread_barrier_wait(&start_line);
	pthread_barrier_wait(&start_line);
	if (!pre) {
		c = make(s, 0, "pcl_finisher", pcl_finisher, NULL);
		call(c);
	}
	kept = malloc(60000 + (size_t)s->n);
	memset(kept, 1, 60000 + (size_t)s->n);
	s->untasked_live += 60000 + (size_t)s->n;
	/* Resumed twice more: returns, co_exit, libpcl's helper deletes (frees) it. */
	call(&s->coros[0]);
	call(&s->coros[0]);
	s->coros[0].end = "completed";

	c = make(s, 1, "pcl_parker", pcl_parker, NULL);
	call(c);
	call(c);
	c->parked = 1;

	/* A caller-supplied stack, reused once its first coroutine has finished. */
	stack = malloc(STACK_SIZE);
	c = make(s, 2, "pcl_finisher", pcl_finisher, stack);
	call(c);
	call(c);
	call(c);
	c->end = "completed";
	c = make(s, 3, "pcl_second", pcl_second, stack);
	call(c);
	c->end = "completed";

	c = make(s, 4, "pcl_doomed", pcl_doomed, NULL);
	call(c);
	co_delete(c->co);
	c->end = "cancelled";

	for (i = 0; i < 100; i++)
		free(malloc(100 + (size_t)i));
	pthread_barrier_wait(&start_line);
	for (;;)
		pause();
	return NULL;
}

/* A block reused for another coroutine is a new generation of that stack. */
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

					c->generation +=
						o->tracked && o->co == c->co && o->seq < c->seq;
				}
		}
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
		printf("%s{\"tid\": %d, \"untasked_live_bytes\": %lu, \"unknown_switches\": %lu}",
		       i ? ", " : "", scheds[i].tid, scheds[i].untasked_live,
		       scheds[i].unknown_switches);
	printf("], \"coroutines\": [");
	for (i = 0; i < nthreads; i++)
		for (j = 0; j < scheds[i].ncoros; j++) {
			struct coro *c = &scheds[i].coros[j];

			printf("%s{\"handle\": \"0x%lx\", \"generation\": %d, \"type\": \"%s\", "
			       "\"tid\": %d, \"tracked\": %s, \"resumes\": %d, "
			       "\"alloc_bytes\": %lu, \"alloc_count\": %lu, \"live_bytes\": %lu, "
			       "\"end\": %s%s%s, \"parked\": %s}",
			       first ? "" : ", ", (unsigned long)(uintptr_t)c->co, c->generation,
			       c->type, scheds[i].tid, c->tracked ? "true" : "false", c->resumes,
			       c->alloc_bytes, c->alloc_count, c->live_bytes, c->end ? "\"" : "",
			       c->end ? c->end : "null", c->end ? "\"" : "",
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
