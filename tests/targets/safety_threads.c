// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target that runs through many threads. Usage: safety_threads [THREADS]
 *
 * Prints "ready PID" and waits for SIGUSR1. The main thread then keeps one 4321-byte block
 * (so it is the first thread memscoped sees) and creates THREADS threads (default 2000),
 * BATCH at a time, joining each batch before the next. Each thread mallocs and frees a
 * 1000-byte block and keeps a 64-byte block. Prints "truth {...}" with the figures of
 * those threads together, then "done", and waits for SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 8
#define KEPT_SIZE 64
#define FREED_SIZE 1000
#define MAIN_SIZE 4321

static void *worker(void *arg)
{
	void **kept = arg, *p;

	p = malloc(FREED_SIZE);
	if (!p)
		abort();
	memset(p, 1, FREED_SIZE);
	free(p);
	*kept = malloc(KEPT_SIZE);
	if (!*kept)
		abort();
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000, i, j, sig;
	pthread_t th[BATCH];
	void **kept, *main_block;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kept = calloc((size_t)n, sizeof(*kept));
	if (n < 1 || !kept)
		return 2;
	printf("ready %d\n", getpid());
	fflush(stdout);
	sigwait(&set, &sig);
	if (sig == SIGTERM)
		return 0;

	main_block = malloc(MAIN_SIZE);
	if (!main_block)
		abort();
	for (i = 0; i < n; i += BATCH) {
		for (j = 0; j < BATCH && i + j < n; j++)
			if (pthread_create(&th[j], NULL, worker, &kept[i + j]))
				abort();
		for (j = 0; j < BATCH && i + j < n; j++)
			pthread_join(th[j], NULL);
	}
	for (i = 0; i < n; i++)
		if (!kept[i])
			abort();
	printf("truth {\"pid\": %d, \"threads\": %d, \"live_bytes\": %d, \"live_allocations\": %d, "
	       "\"allocated_bytes_total\": %d, \"allocations_total\": %d}\ndone\n",
	       getpid(), n, n * KEPT_SIZE, n, n * (KEPT_SIZE + FREED_SIZE), 2 * n);
	fflush(stdout);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigwait(&set, &sig);
	return 0;
}
