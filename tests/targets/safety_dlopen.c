// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target that loads and unloads a library while allocating. Usage: safety_dlopen [LOOPS]
 *
 * Prints "ready PID" and waits for SIGUSR1. One thread then dlopens libm.so.6, calls cos
 * and dlcloses it LOOPS times (default 100); a second thread allocates all the while,
 * keeping every tenth block, until the first is done. Prints "truth {...}" with the second
 * thread's exact heap figures and the first thread's tid, then "done", and waits for SIGTERM.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

struct truth {
	pid_t tid;
	uint64_t live_bytes, live_allocations, allocated_bytes_total, allocations_total;
};

static atomic_int dl_done;
static int loops = 100, failures;
static pid_t dl_tid;
static struct truth truth;

static void *dl_loop(void *arg)
{
	double (*cosine)(double);
	volatile double x = 0;
	void *h;
	int i;

	(void)arg;
	dl_tid = (pid_t)syscall(SYS_gettid);
	for (i = 0; i < loops; i++) {
		h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			failures++;
			continue;
		}
		cosine = (double (*)(double))dlsym(h, "cos");
		if (cosine)
			x += cosine(i);
		else
			failures++;
		if (dlclose(h))
			failures++;
	}
	atomic_store(&dl_done, 1);
	return NULL;
}

static void *allocate(void *arg)
{
	struct truth *t = arg;
	size_t i, size;
	void *p;

	t->tid = (pid_t)syscall(SYS_gettid);
	for (i = 0; !atomic_load(&dl_done) || i < 1000; i++) {
		size = 100 + i % 3000;
		p = malloc(size);
		if (!p)
			abort();
		memset(p, 0x42, size);
		t->allocations_total++;
		t->allocated_bytes_total += size;
		if (i % 10) {
			free(p);
			continue;
		}
		t->live_allocations++;
		t->live_bytes += size;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t dl, alloc;
	sigset_t set;
	int sig;

	if (argc > 1)
		loops = atoi(argv[1]);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("ready %d\n", getpid());
	fflush(stdout);
	sigwait(&set, &sig);
	if (sig == SIGTERM)
		return 0;
	if (pthread_create(&alloc, NULL, allocate, &truth) ||
	    pthread_create(&dl, NULL, dl_loop, NULL))
		abort();
	pthread_join(dl, NULL);
	pthread_join(alloc, NULL);
	printf("truth {\"pid\": %d, \"dl_tid\": %d, \"loops\": %d, \"failures\": %d, \"tid\": %d, "
	       "\"live_bytes\": %lu, \"live_allocations\": %lu, \"allocated_bytes_total\": %lu, "
	       "\"allocations_total\": %lu}\ndone\n",
	       getpid(), dl_tid, loops, failures, truth.tid, truth.live_bytes,
	       truth.live_allocations, truth.allocated_bytes_total, truth.allocations_total);
	fflush(stdout);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigwait(&set, &sig);
	return 0;
}
