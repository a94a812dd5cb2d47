// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target with known heap behaviour.
 * Usage: alloc_pattern THREADS [late] [exit] [mtrace] [map=FILE ...]
 *
 * Prints "ready PID" and waits for SIGUSR1 (memscoped attaches meanwhile). Each worker then
 * runs the same deterministic pattern over the whole allocator family, keeps some blocks,
 * and records what it did. Workers start before the signal unless "late" is given. When all
 * are done it prints the ground truth as one JSON line ("truth {...}"), then "done", and
 * waits for SIGTERM, or exits at once with "exit". "mtrace" writes glibc's own log of the
 * window (MALLOC_TRACE) as an independent oracle; a 7777777-byte marker block opens it.
 * "map=FILE" maps FILE readable and executable first, as a loaded library would be (to show
 * memscoped damaged ELF files in a target's maps).
 */
#include <malloc.h>
#include <mcheck.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define MAX_THREADS 16
#define KEEP 20
#define CHURN 1000
#define MARKER_SIZE 7777777

struct truth {
	pid_t tid;
	uint64_t live_bytes, live_allocations, allocated_bytes_total, allocations_total;
	uint64_t frees_total, frees_untracked_total;
};

static struct truth truths[MAX_THREADS];
static pthread_barrier_t start_line;
static void *before_attach[MAX_THREADS];
static int late;

static void alloc(struct truth *t, void *p, size_t size)
{
	if (!p)
		abort();
	memset(p, 0x5a, size);
	t->live_bytes += size;
	t->live_allocations++;
	t->allocated_bytes_total += size;
	t->allocations_total++;
}

static void release(struct truth *t, void *p, size_t size)
{
	free(p);
	t->live_bytes -= size;
	t->live_allocations--;
	t->frees_total++;
}

static void pattern(struct truth *t, size_t n)
{
	volatile size_t huge = SIZE_MAX / 2;
	size_t base = 1000 + 100 * n, i, sz, prev;
	void *p, *q;

	/* Kept blocks, one of each allocator function. */
	for (i = 0; i < KEEP; i++) {
		sz = base + i;
		alloc(t, malloc(sz), sz);
	}
	alloc(t, calloc(7, base), 7 * base);
	if (posix_memalign(&p, 64, base + 1))
		abort();
	alloc(t, p, base + 1);
	/* posix_memalign with a small alignment calls malloc inside glibc: counted once. */
	if (posix_memalign(&p, 16, base + 2))
		abort();
	alloc(t, p, base + 2);
	alloc(t, aligned_alloc(256, 4096), 4096);
	alloc(t, memalign(128, base + 3), base + 3);
	alloc(t, valloc(base + 4), base + 4);
	alloc(t, pvalloc(base + 5), base + 5);

	/* Churn: allocated and freed. */
	for (i = 0; i < CHURN; i++) {
		sz = 16 + (i * 37 + n) % 4000;
		p = malloc(sz);
		alloc(t, p, sz);
		release(t, p, sz);
	}

	/* A realloc chain: realloc(NULL, n) allocates, each move frees the old block. */
	p = realloc(NULL, 100);
	alloc(t, p, 100);
	for (prev = 100, sz = 200; sz <= 204800; prev = sz, sz *= 4) {
		q = realloc(p, sz);
		t->live_bytes -= prev;
		t->live_allocations--;
		t->frees_total++;
		alloc(t, q, sz);
		p = q;
	}
	/* A failing realloc keeps the old block. */
	q = realloc(p, huge);
	if (q)
		abort();
	/* reallocarray moves the block too. */
	q = reallocarray(p, 2, 204800);
	t->live_bytes -= 204800;
	t->live_allocations--;
	t->frees_total++;
	alloc(t, q, 409600);

	/* realloc(p, 0) frees on glibc. */
	p = malloc(base + 6);
	alloc(t, p, base + 6);
	if (realloc(p, 0))
		abort();
	t->live_bytes -= base + 6;
	t->live_allocations--;
	t->frees_total++;

	free(NULL);
	/* A block allocated before memscoped attached: an untracked free. */
	if (!late && before_attach[n]) {
		free(before_attach[n]);
		t->frees_untracked_total++;
	}
}

static void *worker(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;
	struct truth *t = &truths[n];

	t->tid = (pid_t)syscall(SYS_gettid);
	if (!late)
		before_attach[n] = malloc(333);
	pthread_barrier_wait(&start_line);
	pattern(t, n);
	pthread_barrier_wait(&start_line);
	/* Keep the blocks alive: the thread never frees them. */
	for (;;)
		pause();
	return NULL;
}

/* Waits for sig; SIGTERM at any time ends the program cleanly. */
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

static int map_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) ||
	    mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) ==
		    MAP_FAILED) {
		perror(path);
		return -1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 2, i, exit_at_end = 0, trace = 0;
	pthread_t th[MAX_THREADS];
	sigset_t set;
	void *marker;

	for (i = 2; i < argc; i++) {
		late |= !strcmp(argv[i], "late");
		exit_at_end |= !strcmp(argv[i], "exit");
		trace |= !strcmp(argv[i], "mtrace");
		if (!strncmp(argv[i], "map=", 4) && map_file(argv[i] + 4))
			return 1;
	}
	if (nthreads < 1 || nthreads > MAX_THREADS)
		return 2;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_barrier_init(&start_line, NULL, (unsigned)nthreads + 1);
	if (trace)
		mtrace();
	if (!late)
		for (i = 0; i < nthreads; i++)
			pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	printf("ready %d\n", getpid());
	fflush(stdout);

	wait_signal(SIGUSR1);
	if (trace) {
		marker = malloc(MARKER_SIZE);
		free(marker);
	}
	if (late)
		for (i = 0; i < nthreads; i++)
			pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	pthread_barrier_wait(&start_line);
	pthread_barrier_wait(&start_line);
	if (trace)
		muntrace();

	printf("truth {\"pid\": %d, \"threads\": [", getpid());
	for (i = 0; i < nthreads; i++) {
		struct truth *t = &truths[i];

		printf("%s{\"tid\": %d, \"live_bytes\": %lu, \"live_allocations\": %lu, "
		       "\"allocated_bytes_total\": %lu, \"allocations_total\": %lu, "
		       "\"frees_total\": %lu, \"frees_untracked_total\": %lu}",
		       i ? ", " : "", t->tid, t->live_bytes, t->live_allocations,
		       t->allocated_bytes_total, t->allocations_total, t->frees_total,
		       t->frees_untracked_total);
	}
	printf("]}\ndone\n");
	fflush(stdout);
	if (exit_at_end)
		_exit(0);
	wait_signal(SIGTERM);
	return 0;
}
