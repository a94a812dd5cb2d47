// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target for --mode scan --freeze: a heap that changes at full speed, a count of signals
 * received, and a block only a register points to.
 * Usage: freeze_target [MIB]
 *
 * Prints "ready PID" and waits for SIGUSR1. Then keeps MIB MiB (default 0) of 4 KiB blocks in
 * the main arena, starts CHURNERS threads that allocate and free at full speed in their arenas
 * (the main thread churns in the main arena), each step adding one to `progress`, and a holder
 * thread that mallocs HELD bytes in its arena and keeps the only pointer to it in r12 (in
 * memory it is only XORed with KEY, and the dead stack under it is wiped), sleeping. A block
 * allocated after it (kept in a global) moves the arena's top chunk, which would otherwise
 * point just past it.
 * Every SIGRTMIN+1 adds one to `signals`. Prints "truth {...}" (the pid's thread count, the
 * addresses of progress and signals, the signal number, the held block hidden and KEY), then
 * "done", and runs until SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHURNERS 2
#define HELD 100000
#define KEY 0x3c3c3c3c3c3c3c3cull

static volatile uint64_t progress, signals;
static uint64_t hidden;
static void *fence;
static volatile int held;
static volatile sig_atomic_t go;
static const struct timespec nap = { 0, 10000000 };

static void on_go(int sig)
{
	(void)sig;
	go = 1;
}

static void on_signal(int sig)
{
	(void)sig;
	__atomic_add_fetch(&signals, 1, __ATOMIC_RELAXED);
}

static __attribute__((noinline)) void churn(void)
{
	void *slots[64] = { 0 };
	unsigned int i = 0;

	for (;;) {
		i = i * 1103515245 + 12345;
		free(slots[i % 64]);
		slots[i % 64] = malloc(16 + (i >> 8) % 2000);
		__atomic_add_fetch(&progress, 1, __ATOMIC_RELAXED);
	}
}

static void *churner(void *arg)
{
	(void)arg;
	churn();
	return NULL;
}

static __attribute__((noinline)) void make_held(void)
{
	void *p = malloc(HELD);

	memset(p, 0x11, HELD);
	fence = malloc(64);
	hidden = (uint64_t)(uintptr_t)p ^ KEY;
}

/* Overwrites the dead stack where malloc's frames held the pointer. */
static __attribute__((noinline)) void wipe(void)
{
	volatile char buf[65536];

	memset((char *)buf, 0, sizeof(buf));
}

static void *holder(void *arg)
{
	sigset_t all;

	(void)arg;
	/* A signal frame would put r12 on the stack. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	make_held();
	wipe();
	held = 1;
	/* r12 = the block, forever; nanosleep by hand, so that no call spills it. */
	__asm__ volatile("mov %[h], %%r12\n\t"
			 "xor %[k], %%r12\n"
			 "1:\n\t"
			 "mov $35, %%eax\n\t"
			 "lea %[ts], %%rdi\n\t"
			 "xor %%esi, %%esi\n\t"
			 "syscall\n\t"
			 "jmp 1b\n\t"
			 :
			 : [h] "m"(hidden), [k] "r"(KEY), [ts] "m"(nap)
			 : "rax", "rdi", "rsi", "rcx", "r11", "r12", "memory");
	return NULL;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0, i, n = mib * 256;
	pthread_t t;
	void **keep;

	signal(SIGUSR1, on_go);
	sigaction(SIGRTMIN + 1, &(struct sigaction){ .sa_handler = on_signal }, NULL);
	printf("ready %d\n", getpid());
	fflush(stdout);
	while (!go)
		pause();
	keep = calloc(n + 1, sizeof(*keep));
	for (i = 0; i < n; i++) {
		keep[i] = malloc(4000);
		memset(keep[i], (int)i, 4000);
	}
	for (i = 0; i < CHURNERS; i++)
		pthread_create(&t, NULL, churner, NULL);
	pthread_create(&t, NULL, holder, NULL);
	while (!held)
		nanosleep(&nap, NULL);
	printf("truth {\"threads\": %d, \"progress\": %lu, \"signals\": %lu, \"signal\": %d, "
	       "\"held_hidden\": %lu, \"key\": %llu, \"held_size\": %d}\n",
	       CHURNERS + 2, (unsigned long)(uintptr_t)&progress,
	       (unsigned long)(uintptr_t)&signals, SIGRTMIN + 1, (unsigned long)hidden, KEY, HELD);
	printf("done\n");
	fflush(stdout);
	churn();
	return 0;
}
