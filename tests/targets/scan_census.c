// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target for --mode scan: a heap of known shape that mallinfo2() measures.
 * Usage: scan_census [churn | leak]
 *
 * Prints "ready PID" and waits for SIGUSR1. Then allocates in the main arena and, from
 * threads, in other arenas: small blocks, freed ones (tcache, fastbins, bins), blocks above the
 * mmap threshold. Once every thread is joined it prints glibc's own mallinfo2() as
 * "truth {...}", then "done", and stays still (nothing allocates) until SIGTERM. With "churn"
 * the main thread instead allocates and frees at full speed forever after "done" (a heap
 * that changes during every snapshot). With "leak" it also leaks LEAKS blocks (no pointer to
 * them is left anywhere in its memory) and keeps one more in a global, and prints their
 * addresses after mallinfo2's figures; and it loses a 1 MiB mmapped block whose end, the next
 * mapping's address, a global holds (as a thread descriptor holds its guard page's).
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#define THREADS 3
#define KEEP 2000
#define LEAKS 5
#define KEY 0x5a5a5a5a5a5a5a5aull
#define LOST_MMAPPED (1u << 20)
#define IS_MMAPPED 0x2ull

static void *kept_block;
/* The leaked blocks' addresses, hidden: no word in memory points to them. */
static uint64_t hidden[LEAKS], hidden_mmapped;
static uint64_t lost_mmapped_size;
/* The address right after the lost mmapped block: what the next mapping starts with. */
static void *after_lost;

static volatile sig_atomic_t go;

static void on_go(int sig)
{
	(void)sig;
	go = 1;
}

/* Keeps some blocks, frees others: every kind of free chunk, and mmapped chunks. */
static void *pattern(void *arg)
{
	static void *kept[THREADS + 1][KEEP];
	void **keep = kept[(uintptr_t)arg];
	size_t i, size;

	for (i = 0; i < KEEP; i++) {
		size = 16 + (i * 37) % 3000;
		keep[i] = malloc(size);
		memset(keep[i], 0x5a, size);
	}
	for (i = 0; i < KEEP; i += 3) {
		free(keep[i]);
		keep[i] = NULL;
	}
	for (i = 0; i < 4; i++) {
		keep[i * 3] = malloc(200000 + i * 4096); /* past the mmap threshold */
		memset(keep[i * 3], 1, 4096);
	}
	return NULL;
}

static __attribute__((noinline)) void leak_blocks(void)
{
	size_t i;
	char *p;

	for (i = 0; i < LEAKS; i++) {
		p = malloc(100000 + i * 1000);
		memset(p, 0x11, 100000);
		hidden[i] = (uint64_t)(uintptr_t)p ^ KEY;
	}
	kept_block = malloc(99000);
	memset(kept_block, 0x22, 99000);
	p = malloc(LOST_MMAPPED);
	memset(p, 0x33, 4096);
	memcpy(&lost_mmapped_size, p - 8, 8);
	if (!(lost_mmapped_size & IS_MMAPPED)) {
		fprintf(stderr, "the %u-byte block is not mmapped\n", LOST_MMAPPED);
		exit(1);
	}
	lost_mmapped_size &= ~7ull;
	after_lost = p - 16 + lost_mmapped_size;
	/* A guard page there, unless a mapping is there already. */
	mmap(after_lost, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	hidden_mmapped = (uint64_t)(uintptr_t)p ^ KEY;
}

/* Dead stack frames below us may still hold the leaked pointers: overwrite them. */
static __attribute__((noinline)) void clear_stack(void)
{
	volatile char buf[65536];

	memset((char *)buf, 0, sizeof(buf));
}

static void churn(void)
{
	void *slots[4096] = { 0 };
	uint64_t x = 88172645463325252ull;
	size_t i;

	for (;;) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = x % 4096;
		free(slots[i]);
		slots[i] = malloc(x % 7 ? (x >> 20) % 2048 + 1 : (x >> 20) % 300000 + 1);
		if (slots[i])
			memset(slots[i], (int)i, 8);
	}
}

int main(int argc, char **argv)
{
	pthread_t th[THREADS];
	struct mallinfo2 mi;
	sigset_t set;
	uintptr_t i;

	signal(SIGUSR1, on_go);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	sigemptyset(&set);
	while (!go)
		sigsuspend(&set);
	pattern((void *)0);
	for (i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, pattern, (void *)(i + 1));
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	if (argc > 1 && !strcmp(argv[1], "leak"))
		leak_blocks();
	clear_stack();
	mi = mallinfo2();
	printf("truth {\"uordblks\": %zu, \"hblkhd\": %zu, \"fordblks\": %zu, \"fsmblks\": %zu, "
	       "\"arena\": %zu, \"hblks\": %zu, \"leaked\": [",
	       mi.uordblks, mi.hblkhd, mi.fordblks, mi.fsmblks, mi.arena, mi.hblks);
	for (i = 0; kept_block && i < LEAKS; i++)
		printf("%s%llu", i ? ", " : "", (unsigned long long)(hidden[i] ^ KEY));
	printf("], \"kept\": %llu, \"lost_mmapped\": %llu, \"lost_mmapped_size\": %llu, "
	       "\"after_lost\": %llu}\n",
	       (unsigned long long)(uintptr_t)kept_block,
	       (unsigned long long)(hidden_mmapped ? hidden_mmapped ^ KEY : 0),
	       (unsigned long long)lost_mmapped_size, (unsigned long long)(uintptr_t)after_lost);
	printf("done\n");
	fflush(stdout);
	clear_stack();
	if (argc > 1 && !strcmp(argv[1], "churn"))
		churn();
	for (;;)
		pause();
}
