// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Coroutines on boost.context (libboost_context.so), with known heap behaviour: raw fcontext
 * (make_fcontext / jump_fcontext / ontop_fcontext) and boost::context::fiber.
 * Usage: coro_fcontext THREADS [pre] [exit]   (C++, link with -lboost_context)
 *
 * Each thread runs raw fcontext coroutines that finish (they leave with ontop_fcontext, as
 * boost's fibers do, and the scheduler frees their stack), park forever, have their stack
 * freed while parked, and reuse a finished coroutine's stack (a new generation); then fibers
 * that finish, park, and are destroyed while suspended (unwound); then boost.coroutine2
 * generators (built on those fibers) that run to their end or park. With "pre", the parked raw
 * coroutine is made (on an mmap'd stack with guard pages) and run to its first yield before
 * "ready": memscoped finds it at its first switch. Prints "ready PID", waits for SIGUSR1,
 * prints "truth {...}" and "done", then waits for SIGTERM (or exits with "exit").
 */
#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <boost/coroutine2/coroutine.hpp>
#include <optional>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ctx = boost::context;
using ctx::detail::fcontext_t;
using ctx::detail::transfer_t;

#define MAX_THREADS 8
#define MAX_COROS 10
#define STACK_SIZE (64 * 1024)
#define PAGE 4096

struct sched;

struct coro {
	struct sched *s;
	const char *type;	/* expected task type; "fiber" and "coroutine2": template symbols */
	uintptr_t stack;	/* lowest address: make_fcontext(stack + size, size, fn) */
	fcontext_t ctx;		/* where it resumes */
	fcontext_t back;	/* where it yields to */
	unsigned seq;		/* order of creation, all threads */
	int generation;		/* 1 + earlier tracked coroutines on the same stack */
	int tracked, discovered, resumes, parked, done;
	uint64_t alloc_bytes, alloc_count, live_bytes;
	const char *end;
};

struct sched {
	pid_t tid;
	int n;
	struct coro coros[MAX_COROS];
	int ncoros;
	uint64_t untasked_live;
};

static struct sched scheds[MAX_THREADS];
static pthread_barrier_t start_line;
static volatile int counting;
static unsigned next_seq;
static int pre;

static size_t size_for(struct coro *c, int k)
{
	return 3000 + 1000 * (size_t)c->s->n + 43 * (size_t)(c - c->s->coros) + (size_t)k;
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

static void yield(struct coro *c)
{
	c->back = ctx::detail::jump_fcontext(c->back, nullptr).fctx;
}

static transfer_t on_exit(transfer_t t)
{
	static_cast<struct coro *>(t.data)->done = 1;
	return { nullptr, t.data };
}

/* Leaves for good, the way boost's fibers do: the scheduler then frees the stack. */
static void leave(struct coro *c)
{
	ctx::detail::ontop_fcontext(c->back, c, on_exit);
	abort();
}

namespace app {

void session(transfer_t t)
{
	struct coro *c = static_cast<struct coro *>(t.data);
	int counted = counting;

	c->back = t.fctx;
	void *a = co_alloc(c, size_for(c, 1));
	co_alloc(c, size_for(c, 2));
	yield(c);
	co_alloc(c, size_for(c, 3));
	free(a);
	if (counted)
		c->live_bytes -= size_for(c, 1);
	leave(c);
}

void parker(transfer_t t)
{
	struct coro *c = static_cast<struct coro *>(t.data);

	c->back = t.fctx;
	co_alloc(c, size_for(c, 4));
	yield(c);
	co_alloc(c, size_for(c, 5));
	yield(c);
	abort();
}

void doomed(transfer_t t)
{
	struct coro *c = static_cast<struct coro *>(t.data);

	c->back = t.fctx;
	co_alloc(c, size_for(c, 6));
	yield(c);
	abort();
}

} // namespace app

static struct coro *make(struct sched *s, int i, const char *type, void (*fn)(transfer_t),
			 uintptr_t stack)
{
	struct coro *c = &s->coros[i];

	memset(c, 0, sizeof(*c));
	c->s = s;
	c->type = type;
	c->stack = stack;
	c->tracked = counting;
	c->seq = __atomic_fetch_add(&next_seq, 1, __ATOMIC_SEQ_CST);
	c->ctx = ctx::detail::make_fcontext(reinterpret_cast<void *>(stack + STACK_SIZE),
					    STACK_SIZE, fn);
	if (i >= s->ncoros)
		s->ncoros = i + 1;
	return c;
}

static void resume(struct coro *c)
{
	if (counting)
		c->resumes++;
	c->ctx = ctx::detail::jump_fcontext(c->ctx, c).fctx;
}

static uintptr_t own_stack(void)
{
	/* Guard pages at both ends: a mapping of its own, as protected_fixedsize_stack makes. */
	char *m = static_cast<char *>(mmap(nullptr, STACK_SIZE + 2 * PAGE, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));

	if (m == MAP_FAILED || mprotect(m, PAGE, PROT_NONE) ||
	    mprotect(m + PAGE + STACK_SIZE, PAGE, PROT_NONE))
		abort();
	return reinterpret_cast<uintptr_t>(m + PAGE);
}

/* fixedsize_stack (malloc'd), remembering where each stack starts. */
struct recording_stack {
	struct coro *c;
	ctx::fixedsize_stack inner{ STACK_SIZE };

	ctx::stack_context allocate()
	{
		ctx::stack_context sc = inner.allocate();

		c->stack = reinterpret_cast<uintptr_t>(sc.sp) - sc.size;
		c->seq = __atomic_fetch_add(&next_seq, 1, __ATOMIC_SEQ_CST);
		return sc;
	}
	void deallocate(ctx::stack_context &sc) noexcept
	{
		inner.deallocate(sc);
	}
};

static ctx::fiber fibers[MAX_THREADS][3];

static struct coro *fiber_coro(struct sched *s, int i)
{
	struct coro *c = &s->coros[i];

	memset(c, 0, sizeof(*c));
	c->s = s;
	c->type = "fiber";
	c->tracked = counting;
	c->resumes = 1; /* creating a fiber enters it once to hand it its record */
	if (i >= s->ncoros)
		s->ncoros = i + 1;
	return c;
}

static void run_fibers(struct sched *s)
{
	struct coro *c;
	ctx::fiber *f = fibers[s->n];

	/* Finishes: its function returns, boost frees the stack on the scheduler's side. */
	c = fiber_coro(s, 4);
	f[0] = ctx::fiber(std::allocator_arg, recording_stack{ c }, [c](ctx::fiber &&sink) {
		co_alloc(c, size_for(c, 7));
		sink = std::move(sink).resume();
		co_alloc(c, size_for(c, 8));
		return std::move(sink);
	});
	f[0] = std::move(f[0]).resume();
	f[0] = std::move(f[0]).resume();
	c->resumes += 2;
	c->end = "completed";

	/* Parks forever. */
	c = fiber_coro(s, 5);
	f[1] = ctx::fiber(std::allocator_arg, recording_stack{ c }, [c](ctx::fiber &&sink) {
		co_alloc(c, size_for(c, 9));
		sink = std::move(sink).resume();
		abort();
		return std::move(sink);
	});
	f[1] = std::move(f[1]).resume();
	c->resumes += 1;
	c->parked = 1;

	/* Destroyed while suspended: boost unwinds it (ontop_fcontext into it). */
	c = fiber_coro(s, 6);
	f[2] = ctx::fiber(std::allocator_arg, recording_stack{ c }, [c](ctx::fiber &&sink) {
		co_alloc(c, size_for(c, 10));
		sink = std::move(sink).resume();
		return std::move(sink);
	});
	f[2] = std::move(f[2]).resume();
	f[2] = ctx::fiber();
	c->resumes += 2;
	c->end = "cancelled";
}

using generator = boost::coroutines2::coroutine<int>;
static std::optional<generator::pull_type> parked_generators[MAX_THREADS];

/* boost.coroutine2 generators: a fiber each, created and run to their first value at once. */
static void run_generators(struct sched *s)
{
	struct coro *c;

	/*
	 * Yields twice, then its function returns. Destroying the generator unwinds its fiber
	 * even so (coroutine2 keeps it suspended in its last jump back): one more entry, where
	 * boost's forced_unwind is thrown. Seen from the switches, it is cancelled.
	 */
	c = fiber_coro(s, 7);
	c->type = "coroutine2";
	{
		generator::pull_type g(recording_stack{ c }, [c](generator::push_type &sink) {
			co_alloc(c, size_for(c, 11));
			sink(1);
			co_alloc(c, size_for(c, 12));
			sink(2);
		});
		c->resumes += 1;
		for (; g; g())
			c->resumes++;
	}
	c->resumes++;
	c->end = "cancelled";
	/* Parks forever (kept in a static, not on the heap). */
	c = fiber_coro(s, 8);
	c->type = "coroutine2";
	parked_generators[s->n].emplace(recording_stack{ c }, [c](generator::push_type &sink) {
		co_alloc(c, size_for(c, 13));
		sink(1);
		abort();
	});
	c->resumes += 1;
	c->parked = 1;
}

static void *worker(void *arg)
{
	struct sched *s = static_cast<struct sched *>(arg);
	struct coro *c;
	uintptr_t stack;
	void *kept;
	int i;

	s->tid = (pid_t)syscall(SYS_gettid);
	if (pre) {
		c = make(s, 1, "app::parker(boost::context::detail::transfer_t)", app::parker,
			 own_stack());
		resume(c);
		c->discovered = 1;
		c->tracked = 1;
	}
	pthread_barrier_wait(&start_line);
	pthread_barrier_wait(&start_line);
	if (!pre) {
		c = make(s, 1, "app::parker(boost::context::detail::transfer_t)", app::parker,
			 own_stack());
		resume(c);
	}
	kept = malloc(70000 + (size_t)s->n);
	memset(kept, 1, 70000 + (size_t)s->n);
	s->untasked_live += 70000 + (size_t)s->n;

	resume(&s->coros[1]);
	s->coros[1].parked = 1;

	stack = reinterpret_cast<uintptr_t>(malloc(STACK_SIZE));
	c = make(s, 0, "app::session(boost::context::detail::transfer_t)", app::session, stack);
	resume(c);
	resume(c);
	if (!c->done)
		abort();
	c->end = "completed";
	/* The same stack, not yet freed: a new coroutine on it ends the old one for good. */
	c = make(s, 3, "app::session(boost::context::detail::transfer_t)", app::session, stack);
	resume(c);
	resume(c);
	c->end = "completed";
	free(reinterpret_cast<void *>(stack));

	c = make(s, 2, "app::doomed(boost::context::detail::transfer_t)", app::doomed,
		 reinterpret_cast<uintptr_t>(malloc(STACK_SIZE)));
	resume(c);
	free(reinterpret_cast<void *>(c->stack));
	c->end = "cancelled";

	run_fibers(s);
	run_generators(s);
	for (i = 0; i < 100; i++)
		free(malloc(100 + (size_t)i));
	pthread_barrier_wait(&start_line);
	for (;;)
		pause();
	return nullptr;
}

/* A stack reused (by the program or by malloc) carries a new generation. */
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
	pthread_sigmask(SIG_BLOCK, &set, nullptr);
	pthread_barrier_init(&start_line, nullptr, (unsigned)nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		scheds[i].n = i;
		pthread_create(&th[i], nullptr, worker, &scheds[i]);
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
		printf("%s{\"tid\": %d, \"untasked_live_bytes\": %lu}", i ? ", " : "",
		       scheds[i].tid, (unsigned long)scheds[i].untasked_live);
	printf("], \"coroutines\": [");
	for (i = 0; i < nthreads; i++)
		for (j = 0; j < scheds[i].ncoros; j++) {
			struct coro *c = &scheds[i].coros[j];

			printf("%s{\"stack\": \"0x%lx\", \"generation\": %d, \"type\": \"%s\", "
			       "\"tid\": %d, \"tracked\": %s, \"discovered\": %s, \"resumes\": %d, "
			       "\"alloc_bytes\": %lu, \"alloc_count\": %lu, \"live_bytes\": %lu, "
			       "\"end\": %s%s%s, \"parked\": %s}",
			       first ? "" : ", ", (unsigned long)c->stack, c->generation, c->type,
			       scheds[i].tid, c->tracked ? "true" : "false",
			       c->discovered ? "true" : "false", c->resumes,
			       (unsigned long)c->alloc_bytes, (unsigned long)c->alloc_count,
			       (unsigned long)c->live_bytes, c->end ? "\"" : "",
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
