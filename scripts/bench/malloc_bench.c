// SPDX-License-Identifier: GPL-2.0
/*
 * malloc_bench THREADS PAIRS SECONDS: each of THREADS threads does malloc+free pairs of random
 * sizes (16..4096 bytes) until it has done PAIRS or SECONDS have passed, and the program prints
 * the mean over threads of each thread's wall-clock time per pair, and of its CPU time per pair
 * (CLOCK_THREAD_CPUTIME_ID: the probes' traps and programs run in the thread and count there,
 * while time spent waiting for a CPU on a busy machine does not). The time bound keeps a run
 * short whatever a tracer costs per pair (~100 ns untraced, ~2.5 us to ~25 us traced).
 *
 * Protocol for a tracer: once every thread has its blocks it prints "ready PID" and waits for
 * SIGUSR1; only then does the timed phase start. It ends with one line
 * "ns_per_pair X pairs N checksum C cpu_ns_per_pair Y" on stdout (N: pairs done by all threads)
 * and exits.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Live blocks per thread: the oldest is freed first, so the pattern is not purely LIFO. */
#define RING 64
#define MIN_SIZE 16
#define MAX_SIZE 4096
#define MAX_THREADS 64
/* The clock is read once per this many pairs: ~20 ns each, negligible. */
#define CLOCK_EVERY 1024

struct worker {
	pthread_t thread;
	uint64_t seed;
	unsigned char *ring[RING];
	uint64_t pairs;
	uint64_t elapsed_ns;
	uint64_t cpu_ns;
	uint64_t checksum;
};

static pthread_barrier_t start_line;
static uint64_t max_pairs;
static uint64_t max_ns;

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* xorshift64: a few cycles, negligible next to an ~80 ns malloc+free pair. */
static uint64_t next_random(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static unsigned char *alloc_block(struct worker *w)
{
	size_t size = MIN_SIZE + next_random(&w->seed) % (MAX_SIZE - MIN_SIZE + 1);
	unsigned char *p = malloc(size);

	if (!p) {
		fprintf(stderr, "malloc_bench: out of memory\n");
		exit(1);
	}
	/* Touching the block and summing it later keeps the compiler from eliding the pair. */
	p[0] = (unsigned char)size;
	p[size - 1] = (unsigned char)(size >> 8);
	return p;
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	uint64_t i, start, cpu_start;
	unsigned int slot;

	/* Fill the ring in this thread so that its blocks come from this thread's arena. */
	for (slot = 0; slot < RING; slot++)
		w->ring[slot] = alloc_block(w);
	/* Twice: once when every thread is ready, once when the go signal came. */
	pthread_barrier_wait(&start_line);
	pthread_barrier_wait(&start_line);
	start = now_ns();
	cpu_start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	for (i = 0; i < max_pairs; i++) {
		if (i % CLOCK_EVERY == 0 && now_ns() - start >= max_ns)
			break;
		slot = (unsigned int)(i % RING);
		w->checksum += w->ring[slot][0];
		free(w->ring[slot]);
		w->ring[slot] = alloc_block(w);
	}
	w->pairs = i;
	w->elapsed_ns = now_ns() - start;
	w->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu_start;
	return NULL;
}

int main(int argc, char **argv)
{
	static struct worker workers[MAX_THREADS];
	uint64_t checksum = 0, pairs = 0;
	double seconds;
	double ns_sum = 0, cpu_ns_sum = 0;
	sigset_t go;
	int nthreads, i, j, sig, err;

	if (argc != 4 || (nthreads = atoi(argv[1])) < 1 || nthreads > MAX_THREADS ||
	    (max_pairs = strtoull(argv[2], NULL, 10)) == 0 || (seconds = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: malloc_bench THREADS MAX_PAIRS_PER_THREAD MAX_SECONDS\n");
		return 2;
	}
	max_ns = (uint64_t)(seconds * 1e9);

	/* Block SIGUSR1 before creating threads so that only sigwait() receives it. */
	sigemptyset(&go);
	sigaddset(&go, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &go, NULL);
	pthread_barrier_init(&start_line, NULL, (unsigned int)nthreads + 1);

	for (i = 0; i < nthreads; i++) {
		workers[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		err = pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]);
		if (err) {
			fprintf(stderr, "malloc_bench: pthread_create: %s\n", strerror(err));
			return 1;
		}
	}

	pthread_barrier_wait(&start_line);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if (sigwait(&go, &sig))
		return 1;
	pthread_barrier_wait(&start_line);

	for (i = 0; i < nthreads; i++) {
		pthread_join(workers[i].thread, NULL);
		ns_sum += (double)workers[i].elapsed_ns / (double)workers[i].pairs;
		cpu_ns_sum += (double)workers[i].cpu_ns / (double)workers[i].pairs;
		pairs += workers[i].pairs;
		for (j = 0; j < RING; j++) {
			checksum += workers[i].ring[j][0];
			free(workers[i].ring[j]);
		}
		checksum += workers[i].checksum;
	}
	printf("ns_per_pair %.1f pairs %" PRIu64 " checksum %" PRIu64 " cpu_ns_per_pair %.1f\n",
	       ns_sum / nthreads, pairs, checksum, cpu_ns_sum / nthreads);
	return 0;
}
