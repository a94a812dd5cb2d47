// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target with known heap behaviour on one allocator family's own API.
 * Built four times (Makefile): plain (the standard C API only: for LD_PRELOAD=libjemalloc),
 * -DUSE_JEMALLOC (-ljemalloc), -DUSE_MIMALLOC (-lmimalloc), -DUSE_TCMALLOC (-ltcmalloc_minimal).
 * Usage: alloc_family_X THREADS [pre]
 *
 * Prints "ready PID" and waits for SIGUSR1 (memscoped attaches meanwhile). Each worker then
 * runs a deterministic pattern over the family's functions (flags, sized frees, in-place
 * resizes, aligned variants, failing reallocs) and records what it did, from the values the
 * allocator returned. With "pre" every worker runs the whole pattern once before the signal
 * too (attach after work: those blocks stay live, untracked). Then "truth {...}" and "done",
 * and it waits for SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <malloc.h>
#include <sys/syscall.h>
#if defined(USE_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define FAMILY "jemalloc"
#ifdef RJEM
/*
 * jemalloc with its API prefixed _rjem_, as Rust's tikv-jemallocator links it: the standard
 * names stay glibc's, so this target uses both allocators side by side.
 */
void *_rjem_mallocx(size_t size, int flags);
void *_rjem_rallocx(void *ptr, size_t size, int flags);
size_t _rjem_xallocx(void *ptr, size_t size, size_t extra, int flags);
void _rjem_sdallocx(void *ptr, size_t size, int flags);
void _rjem_dallocx(void *ptr, int flags);
void _rjem_free(void *ptr);
#define mallocx _rjem_mallocx
#define rallocx _rjem_rallocx
#define xallocx _rjem_xallocx
#define sdallocx _rjem_sdallocx
#define dallocx _rjem_dallocx
#define je_free _rjem_free
#else
#define je_free free
#endif
#elif defined(USE_MIMALLOC)
#include <mimalloc.h>
#define FAMILY "mimalloc"
#elif defined(USE_TCMALLOC)
#include <gperftools/tcmalloc.h>
#define FAMILY "tcmalloc"
/* C++'s entry points, exported with C names; tcmalloc.h declares them for C++ only. */
void *tc_new(size_t size);
void *tc_newarray(size_t size);
void tc_delete_sized(void *p, size_t size);
#else
#define FAMILY "plain"
#endif

#define MAX_THREADS 16
#define KEEP 20
#define CHURN 500

struct truth {
	pid_t tid;
	uint64_t live_bytes, live_allocations, allocated_bytes_total, allocations_total;
	uint64_t frees_total, frees_untracked_total, failures;
};

static struct truth truths[MAX_THREADS];
static pthread_barrier_t start_line;
static void *before_attach[MAX_THREADS];
static int pre;

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

static void freed(struct truth *t, size_t size)
{
	t->live_bytes -= size;
	t->live_allocations--;
	t->frees_total++;
}

/* A block moved (or kept its address) by a realloc-like call: one free and one allocation. */
static void moved(struct truth *t, size_t old, void *q, size_t size)
{
	freed(t, old);
	alloc(t, q, size);
}

static void standard(struct truth *t, size_t base)
{
	volatile size_t huge = SIZE_MAX / 4;
	size_t i, sz, prev;
	void *p, *q;

	for (i = 0; i < KEEP; i++)
		alloc(t, malloc(base + i), base + i);
	alloc(t, calloc(7, base), 7 * base);
	if (posix_memalign(&p, 64, base + 1))
		abort();
	alloc(t, p, base + 1);
	alloc(t, aligned_alloc(256, 4096), 4096);
	alloc(t, memalign(128, base + 3), base + 3);
	alloc(t, valloc(base + 4), base + 4);
	for (i = 0; i < CHURN; i++) {
		sz = 16 + (i * 37 + base) % 4000;
		p = malloc(sz);
		alloc(t, p, sz);
		free(p);
		freed(t, sz);
	}
	p = realloc(NULL, 100);
	alloc(t, p, 100);
	for (prev = 100, sz = 200; sz <= 204800; prev = sz, sz *= 4) {
		q = realloc(p, sz);
		moved(t, prev, q, sz);
		p = q;
	}
	/* A failing realloc keeps the old block. */
	if (realloc(p, huge))
		abort();
	t->failures++;
	free(p);
	freed(t, prev);
	free(NULL);
}

#if defined(USE_JEMALLOC)
static void family(struct truth *t, size_t base)
{
	volatile size_t huge = SIZE_MAX / 4;
	size_t i, sz, got, prev, psz;
	void *p, *q;

	alloc(t, mallocx(base + 10, 0), base + 10);
	alloc(t, mallocx(base + 11, MALLOCX_ZERO), base + 11);
	alloc(t, mallocx(base + 12, MALLOCX_ALIGN(4096)), base + 12);
	alloc(t, mallocx(base + 13, MALLOCX_ZERO | MALLOCX_ALIGN(64)), base + 13);
	for (i = 0; i < CHURN; i++) {
		sz = 8 + (i * 53 + base) % 3000;
		p = mallocx(sz, i & 1 ? MALLOCX_ZERO : 0);
		alloc(t, p, sz);
		if (i % 3 == 0)
			sdallocx(p, sz, 0);
		else if (i % 3 == 1)
			dallocx(p, 0);
		else
			je_free(p);
		freed(t, sz);
	}
	/* rallocx moves; a failing one keeps the old block. */
	p = mallocx(100, 0);
	alloc(t, p, 100);
	for (prev = 100, sz = 300; sz <= 100000; prev = sz, sz *= 3) {
		q = rallocx(p, sz, sz & 1 ? MALLOCX_ZERO : 0);
		moved(t, prev, q, sz);
		p = q;
	}
	psz = prev;
	if (rallocx(p, huge, 0))
		abort();
	t->failures++;
	/* xallocx resizes in place: at least size on success, of the extra what it got. */
	q = mallocx(5000, 0);
	alloc(t, q, 5000);
	prev = 5000;
	{
		static const size_t sizes[][2] = {
			{ 4800, 0 }, { 5050, 0 }, { 4900, 100 }, { 200000, 0 }, { 4000, 3000 }
		};

		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			got = xallocx(q, sizes[i][0], sizes[i][1], 0);
			if (got < sizes[i][0])
				continue; /* not resized */
			sz = got < sizes[i][0] + sizes[i][1] ? got : sizes[i][0] + sizes[i][1];
			moved(t, prev, q, sz);
			prev = sz;
		}
	}
	sdallocx(q, prev, 0);
	freed(t, prev);
	dallocx(p, 0);
	freed(t, psz);
}
#elif defined(USE_MIMALLOC)
static mi_heap_t *heaps[MAX_THREADS];

static void family(struct truth *t, size_t base)
{
	volatile size_t huge = SIZE_MAX / 4;
	/* Made before the window: mi_heap_new allocates the heap's own struct. */
	mi_heap_t *heap = heaps[(base - 1000) / 100];
	size_t i, sz, prev;
	void *p, *q;

	alloc(t, mi_malloc(base + 10), base + 10);
	alloc(t, mi_zalloc(base + 11), base + 11);
	alloc(t, mi_calloc(3, base), 3 * base);
	alloc(t, mi_mallocn(5, base), 5 * base);
	alloc(t, mi_malloc_aligned(base + 12, 64), base + 12);
	alloc(t, mi_malloc_aligned_at(base + 13, 64, 16), base + 13);
	alloc(t, mi_zalloc_aligned(base + 14, 128), base + 14);
	alloc(t, mi_calloc_aligned(4, base, 256), 4 * base);
	alloc(t, mi_malloc_small(base % 512 + 1), base % 512 + 1);
	alloc(t, mi_heap_malloc(heap, base + 15), base + 15);
	alloc(t, mi_heap_zalloc(heap, base + 16), base + 16);
	alloc(t, mi_heap_calloc(heap, 2, base), 2 * base);
	alloc(t, mi_heap_malloc_aligned(heap, base + 17, 64), base + 17);
	alloc(t, mi_new(base + 18), base + 18);
	alloc(t, mi_new_n(3, base + 19), 3 * (base + 19));
	alloc(t, mi_new_aligned(base + 20, 64), base + 20);
	for (i = 0; i < CHURN; i++) {
		sz = 8 + (i * 53 + base) % 3000;
		switch (i % 4) {
		case 0:
			p = mi_malloc(sz);
			alloc(t, p, sz);
			mi_free(p);
			break;
		case 1:
			p = mi_heap_malloc(heap, sz);
			alloc(t, p, sz);
			mi_free_size(p, sz);
			break;
		case 2:
			p = mi_malloc_aligned(sz, 64);
			alloc(t, p, sz);
			mi_free_aligned(p, 64);
			break;
		default:
			p = mi_zalloc_aligned(sz, 32);
			alloc(t, p, sz);
			mi_free_size_aligned(p, sz, 32);
			break;
		}
		freed(t, sz);
	}
	/* Moves: realloc, reallocn, rezalloc, recalloc, the aligned and heap forms. */
	p = mi_malloc(100);
	alloc(t, p, 100);
	q = mi_realloc(p, 1000);
	moved(t, 100, q, 1000);
	p = mi_reallocn(q, 3, 1000);
	moved(t, 1000, p, 3000);
	q = mi_rezalloc(p, 9000);
	moved(t, 3000, q, 9000);
	p = mi_recalloc(q, 4, 5000);
	moved(t, 9000, p, 20000);
	q = mi_realloc_aligned(p, 30000, 64);
	moved(t, 20000, q, 30000);
	p = mi_heap_realloc(heap, q, 40000);
	moved(t, 30000, p, 40000);
	prev = 40000;
	/* A failing realloc keeps the block; a failing reallocf frees it. */
	if (mi_realloc(p, huge))
		abort();
	t->failures++;
	if (mi_reallocf(p, huge))
		abort();
	t->failures++;
	freed(t, prev);
	/* mi_expand: in place or NULL. */
	p = mi_malloc(5000);
	alloc(t, p, 5000);
	prev = 5000;
	if (mi_expand(p, 5050) == p) {
		moved(t, prev, p, 5050);
		prev = 5050;
	}
	if (mi_expand(p, 4000) == p) {
		moved(t, prev, p, 4000);
		prev = 4000;
	}
	if (mi_expand(p, 10000000) == p) {
		moved(t, prev, p, 10000000);
		prev = 10000000;
	}
	mi_free(p);
	freed(t, prev);
	(void)heap; /* kept: its blocks stay live */
}
#elif defined(USE_TCMALLOC)
static void family(struct truth *t, size_t base)
{
	volatile size_t huge = SIZE_MAX / 4;
	size_t i, sz;
	void *p, *q;

	alloc(t, tc_malloc(base + 10), base + 10);
	alloc(t, tc_calloc(3, base), 3 * base);
	alloc(t, tc_memalign(64, base + 11), base + 11);
	if (tc_posix_memalign(&p, 128, base + 12))
		abort();
	alloc(t, p, base + 12);
	alloc(t, tc_valloc(base + 13), base + 13);
	alloc(t, tc_pvalloc(base + 14), base + 14);
	alloc(t, pvalloc(base + 15), base + 15);
	alloc(t, tc_new(base + 16), base + 16);
	alloc(t, tc_newarray(base + 17), base + 17);
	for (i = 0; i < CHURN; i++) {
		sz = 8 + (i * 53 + base) % 3000;
		switch (i % 4) {
		case 0:
			p = tc_malloc(sz);
			alloc(t, p, sz);
			tc_free(p);
			break;
		case 1:
			p = tc_malloc(sz);
			alloc(t, p, sz);
			tc_free_sized(p, sz);
			break;
		case 2:
			p = tc_new(sz);
			alloc(t, p, sz);
			tc_delete_sized(p, sz);
			break;
		default:
			p = tc_malloc_skip_new_handler(sz);
			alloc(t, p, sz);
			tc_cfree(p);
			break;
		}
		freed(t, sz);
	}
	p = tc_malloc(100);
	alloc(t, p, 100);
	q = tc_realloc(p, 100000);
	moved(t, 100, q, 100000);
	if (tc_realloc(q, huge))
		abort();
	t->failures++;
	tc_free(q);
	freed(t, 100000);
}
#else
static void family(struct truth *t, size_t base)
{
	size_t i;

	for (i = 0; i < 8; i++)
		alloc(t, malloc(base * (i + 1)), base * (i + 1));
}
#endif

static void pattern(struct truth *t, size_t n)
{
	size_t base = 1000 + 100 * n;

	standard(t, base);
	family(t, base);
	/* A block allocated before memscoped attached: an untracked free. */
	if (before_attach[n]) {
		free(before_attach[n]);
		before_attach[n] = NULL;
		t->frees_untracked_total++;
	}
}

static void *worker(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;
	struct truth *t = &truths[n];

#ifdef USE_MIMALLOC
	heaps[n] = mi_heap_new();
#endif
	if (pre) {
		pattern(t, n);
		memset(t, 0, sizeof(*t));
	}
	t->tid = (pid_t)syscall(SYS_gettid);
	before_attach[n] = malloc(333);
	pthread_barrier_wait(&start_line);
	pattern(t, n);
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

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 2, i;
	pthread_t th[MAX_THREADS];
	sigset_t set;

	pre = argc > 2 && !strcmp(argv[2], "pre");
	if (nthreads < 1 || nthreads > MAX_THREADS)
		return 2;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_barrier_init(&start_line, NULL, (unsigned)nthreads + 1);
	for (i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_signal(SIGUSR1);
	pthread_barrier_wait(&start_line);
	pthread_barrier_wait(&start_line);
	printf("truth {\"pid\": %d, \"family\": \"%s\", \"threads\": [", getpid(), FAMILY);
	for (i = 0; i < nthreads; i++) {
		struct truth *t = &truths[i];

		printf("%s{\"tid\": %d, \"live_bytes\": %lu, \"live_allocations\": %lu, "
		       "\"allocated_bytes_total\": %lu, \"allocations_total\": %lu, "
		       "\"frees_total\": %lu, \"frees_untracked_total\": %lu, \"failures\": %lu}",
		       i ? ", " : "", t->tid, t->live_bytes, t->live_allocations,
		       t->allocated_bytes_total, t->allocations_total, t->frees_total,
		       t->frees_untracked_total, t->failures);
	}
	printf("]}\ndone\n");
	fflush(stdout);
	wait_signal(SIGTERM);
	return 0;
}
