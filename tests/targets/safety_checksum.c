// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target that checks its own heap. Usage: safety_checksum [STEPS]
 *
 * Prints "before_ns N" (malloc_ns below, measured before anything attaches), then
 * "ready PID", and waits for SIGUSR1. Two threads then run STEPS deterministic
 * malloc/calloc/realloc/free operations each (default 400000) over 256 slots, fill every
 * block with a pattern derived from a seed, and verify the pattern whenever a block is read,
 * moved by realloc or freed. It prints "checksum X" (a hash of every byte verified, the same
 * on every run), "max_gap_us N" (the longest time any worker went between two steps: a
 * stall detector, since a step takes microseconds) and "gaps_us T:D ..." (the first GAPS
 * gaps of 1 ms or more: CLOCK_MONOTONIC end time and length, in us), waits for a second SIGUSR1 (the tracer's
 * probes are gone by then), prints "malloc_ns N" (the best of 50 short timed rounds of
 * malloc(64)+free on one thread, in ns per pair: a uprobe left behind costs a trap of about a
 * microsecond on every call, in every round), then "done", and exits 0. A pattern that does
 * not match prints "corrupt ..." and exits 1.
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

#define NTHREADS 2
#define SLOTS 256
#define MAX_SIZE 2048
/* Short rounds: the best of many is a round that no other process interrupted. */
#define GAPS 64
#define GAP_MIN 1e-3
#define ROUNDS 50
#define PAIRS_PER_ROUND 2000

struct slot {
	unsigned char *p;
	size_t size;
	uint64_t seed;
};

struct worker {
	pthread_t th;
	unsigned n;
	long steps;
	uint64_t rng, hash, errors;
	double max_gap;
	double gap_end[GAPS], gap_len[GAPS];
	unsigned ngaps;
	struct slot slots[SLOTS];
};

static uint64_t next(uint64_t *s)
{
	/* xorshift64*: deterministic, no libc state shared between threads. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static unsigned char pattern(uint64_t seed, size_t i)
{
	return (unsigned char)((seed >> ((i & 7) * 8)) + i * 131);
}

static void fill(struct slot *s, size_t from)
{
	size_t i;

	for (i = from; i < s->size; i++)
		s->p[i] = pattern(s->seed, i);
}

/* Checks the first len bytes of s and hashes them into w. */
static void verify(struct worker *w, const struct slot *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s->p[i] != pattern(s->seed, i)) {
			if (!w->errors++)
				fprintf(stderr, "corrupt: thread %u block %p byte %zu of %zu\n",
					w->n, (void *)s->p, i, s->size);
			return;
		}
		w->hash = (w->hash ^ s->p[i]) * 0x100000001b3ull;
	}
	w->hash = (w->hash ^ len) * 0x100000001b3ull;
}

static void step(struct worker *w)
{
	uint64_t r = next(&w->rng);
	struct slot *s = &w->slots[r % SLOTS];
	size_t size = 1 + (r >> 16) % MAX_SIZE, old;
	unsigned char *q;

	if (!s->p) {
		s->size = size;
		s->seed = next(&w->rng);
		if ((r >> 8) & 1) {
			s->p = calloc(1, size);
			if (s->p && s->p[size - 1])
				w->errors++;
		} else {
			s->p = malloc(size);
		}
		if (!s->p)
			abort();
		fill(s, 0);
		return;
	}
	switch ((r >> 8) % 3) {
	case 0:
		verify(w, s, s->size);
		free(s->p);
		s->p = NULL;
		break;
	case 1:
		/* The old contents must survive the move. */
		q = realloc(s->p, size);
		if (!q)
			abort();
		s->p = q;
		verify(w, s, size < s->size ? size : s->size);
		old = s->size;
		s->size = size;
		if (size > old)
			fill(s, old);
		break;
	default:
		verify(w, s, s->size);
		break;
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	double last = now(), t;
	long i;

	for (i = 0; i < w->steps; i++) {
		step(w);
		t = now();
		if (t - last > w->max_gap)
			w->max_gap = t - last;
		if (t - last >= GAP_MIN && w->ngaps < GAPS) {
			w->gap_end[w->ngaps] = t;
			w->gap_len[w->ngaps++] = t - last;
		}
		last = t;
	}
	for (i = 0; i < SLOTS; i++)
		if (w->slots[i].p) {
			verify(w, &w->slots[i], w->slots[i].size);
			free(w->slots[i].p);
		}
	return NULL;
}

/* Best of ROUNDS: other load on the machine only ever makes a round slower. */
static double malloc_ns(void)
{
	double best = 1e9, t;
	void *volatile p;
	int r, i;

	for (r = 0; r < ROUNDS; r++) {
		t = now();
		for (i = 0; i < PAIRS_PER_ROUND; i++) {
			p = malloc(64);
			free(p);
		}
		t = (now() - t) * 1e9 / PAIRS_PER_ROUND;
		if (t < best)
			best = t;
	}
	return best;
}

int main(int argc, char **argv)
{
	static struct worker workers[NTHREADS];
	long steps = argc > 1 ? atol(argv[1]) : 400000;
	uint64_t hash = 0xcbf29ce484222325ull, errors = 0;
	double max_gap = 0;
	sigset_t set;
	unsigned i, j;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	printf("before_ns %.1f\n", malloc_ns());
	printf("ready %d\n", getpid());
	fflush(stdout);
	sigwait(&set, &sig);

	for (i = 0; i < NTHREADS; i++) {
		workers[i].n = i;
		workers[i].steps = steps;
		workers[i].rng = 0x9e3779b97f4a7c15ull * (i + 1);
		workers[i].hash = 0xcbf29ce484222325ull;
		if (pthread_create(&workers[i].th, NULL, run, &workers[i]))
			abort();
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(workers[i].th, NULL);
		hash = (hash ^ workers[i].hash) * 0x100000001b3ull;
		errors += workers[i].errors;
		if (workers[i].max_gap > max_gap)
			max_gap = workers[i].max_gap;
	}
	if (errors) {
		printf("corrupt %" PRIu64 " errors\n", errors);
		return 1;
	}
	printf("checksum %016" PRIx64 "\n", hash);
	printf("max_gap_us %.0f\n", max_gap * 1e6);
	printf("gaps_us");
	for (i = 0; i < NTHREADS; i++)
		for (j = 0; j < workers[i].ngaps; j++)
			printf(" %.0f:%.0f", workers[i].gap_end[j] * 1e6,
			       workers[i].gap_len[j] * 1e6);
	printf("\n");
	fflush(stdout);
	sigwait(&set, &sig);
	printf("malloc_ns %.1f\n", malloc_ns());
	printf("done\n");
	return 0;
}
