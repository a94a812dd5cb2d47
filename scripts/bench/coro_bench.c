// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Coroutine-switch-heavy workload: one ucontext coroutine that yields back to its scheduler
 * N times, and allocates (malloc+free) once per resume. Usage: coro_bench [N] [wait]
 *
 * Prints "ns_per_round_trip" (two swapcontext calls, no allocation) and
 * "ns_per_round_trip_alloc" (two switches and a malloc+free pair). With "wait" it prints
 * "ready PID" first and starts on SIGUSR1, so that memscoped can attach in between.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)

static ucontext_t sched_ctx, co_ctx;
static volatile int allocate;

static void body(void)
{
	void *p;

	for (;;) {
		if (allocate) {
			p = malloc(64);
			if (!p)
				abort();
			free(p);
		}
		swapcontext(&co_ctx, &sched_ctx);
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double rounds(long n)
{
	double t0 = now();
	long i;

	for (i = 0; i < n; i++)
		swapcontext(&sched_ctx, &co_ctx);
	return (now() - t0) / (double)n;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	sigset_t set;
	int sig;

	if (n <= 0)
		return 2;
	if (argc > 2 && !strcmp(argv[2], "wait")) {
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		printf("ready %d\n", getpid());
		fflush(stdout);
		sigwait(&set, &sig);
	}
	getcontext(&co_ctx);
	co_ctx.uc_stack.ss_sp = malloc(STACK_SIZE);
	co_ctx.uc_stack.ss_size = STACK_SIZE;
	co_ctx.uc_link = &sched_ctx;
	if (!co_ctx.uc_stack.ss_sp)
		return 1;
	makecontext(&co_ctx, body, 0);
	printf("ns_per_round_trip %.1f\n", rounds(n));
	allocate = 1;
	printf("ns_per_round_trip_alloc %.1f\n", rounds(n));
	fflush(stdout);
	return 0;
}
