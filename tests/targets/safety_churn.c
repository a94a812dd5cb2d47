// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target that floods the allocator. Usage: safety_churn [EXIT_AFTER_MS]
 *
 * Two threads call malloc and free in a tight loop from the start, keeping up to 64 blocks
 * of 16..4111 bytes each. Prints "ready PID". SIGTERM ends the program with status 0. With
 * EXIT_AFTER_MS, SIGUSR1 makes main wait that long, print "exiting" and call _exit(0) while
 * the threads are still inside malloc and free.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 2
#define KEEP 64

static void *churn(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	void *blocks[KEEP] = { 0 };
	unsigned i;

	for (;;) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		i = (unsigned)(s % KEEP);
		free(blocks[i]);
		blocks[i] = malloc(16 + (s >> 20) % 4096);
		if (!blocks[i])
			abort();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long exit_after_ms = argc > 1 ? atol(argv[1]) : -1;
	pthread_t th[NTHREADS];
	sigset_t set;
	uintptr_t i;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (i = 0; i < NTHREADS; i++)
		if (pthread_create(&th[i], NULL, churn, (void *)i))
			abort();
	printf("ready %d\n", getpid());
	fflush(stdout);
	for (;;) {
		sigwait(&set, &sig);
		if (sig == SIGTERM)
			_exit(0);
		if (exit_after_ms >= 0) {
			struct timespec ts = { exit_after_ms / 1000,
					       exit_after_ms % 1000 * 1000000 };

			nanosleep(&ts, NULL);
			printf("exiting\n");
			fflush(stdout);
			_exit(0);
		}
	}
}
