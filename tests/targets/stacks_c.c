// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Three call paths to malloc for the sampled-stack tests, built -O2 -fomit-frame-pointer:
 *   main -> alpha_outer -> alpha_inner -> malloc
 *   main -> beta_outer -> beta_mid -> beta_inner -> malloc
 *   main -> gamma_outer -> gamma_inner -> malloc   (in libstacks_lib.so)
 * "stacks_c exact": 40 blocks per path of distinct sizes, kept live.
 * "stacks_c large": 1024 blocks of 1 MiB per path, each freed at once (mmap'd: no memory
 * kept), and the exact blocks too. Prints ready, waits for SIGUSR1, prints the truth.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *gamma_outer(size_t size);

static volatile sig_atomic_t go;
/* The exact blocks stay live (global: the compiler keeps the stores). */
void *keep[3][40];

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

__attribute__((noipa)) static void *alpha_inner(size_t size)
{
	char *p = malloc(size);

	if (p)
		memset(p, 1, 1);
	return p;
}

__attribute__((noipa)) static void *alpha_outer(size_t size)
{
	void *p = alpha_inner(size);

	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noipa)) static void *beta_inner(size_t size)
{
	char *p = malloc(size);

	if (p)
		memset(p, 2, 1);
	return p;
}

__attribute__((noipa)) static void *beta_mid(size_t size)
{
	void *p = beta_inner(size);

	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noipa)) static void *beta_outer(size_t size)
{
	void *p = beta_mid(size);

	__asm__ volatile("" ::: "memory");
	return p;
}

#define EXACT_COUNT 40
#define LARGE_COUNT 1024
#define LARGE_SIZE (1u << 20)

static void *(*const paths[3])(size_t) = { alpha_outer, beta_outer, gamma_outer };
static const char *const names[3] = { "alpha", "beta", "gamma" };

int main(int argc, char **argv)
{
	unsigned long long bytes[3] = { 0 }, count[3] = { 0 }, large[3] = { 0 };
	int mode_large = argc > 1 && !strcmp(argv[1], "large"), i, k;
	void *p;

	signal(SIGUSR1, on_usr1);
	printf("ready %d\n", getpid());
	fflush(stdout);
	while (!go)
		pause();
	for (k = 0; k < 3; k++)
		for (i = 0; i < EXACT_COUNT; i++) {
			/* Each path its own sizes: 100..4000 bytes, then +k. */
			size_t size = 100 * (size_t)(i + 1) + (size_t)k;

			keep[k][i] = paths[k](size);
			bytes[k] += size;
			count[k]++;
		}
	for (k = 0; mode_large && k < 3; k++)
		for (i = 0; i < LARGE_COUNT; i++) {
			p = paths[k](LARGE_SIZE);
			free(p);
			large[k] += LARGE_SIZE;
		}
	printf("truth {");
	for (k = 0; k < 3; k++)
		printf("%s\"%s\": {\"live_bytes\": %llu, \"live_count\": %llu, "
		       "\"freed_bytes\": %llu}",
		       k ? ", " : "", names[k], bytes[k], count[k], large[k]);
	printf("}\ndone\n");
	fflush(stdout);
	for (;;)
		pause();
}
