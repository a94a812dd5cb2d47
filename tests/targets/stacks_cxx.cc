// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Three C++ call paths to operator new for the sampled-stack tests, built -O2
 * -fomit-frame-pointer: main -> paths::Alpha::make -> paths::Alpha::fill, main ->
 * paths::beta<int>(unsigned long) -> paths::beta_leaf(unsigned long), and main ->
 * paths::Gamma::operator()(unsigned long) const. 40 blocks per path of distinct sizes, kept
 * live. Prints ready, waits for SIGUSR1, prints the truth.
 */
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

static volatile sig_atomic_t go;
/* The blocks stay live (global: the compiler keeps the stores). */
char *keep[3][40];

namespace paths
{
struct Alpha {
	__attribute__((noipa)) static char *fill(unsigned long size)
	{
		char *p = new char[size];

		p[0] = 1;
		__asm__ volatile("" ::: "memory");
		return p;
	}
	__attribute__((noipa)) static char *make(unsigned long size)
	{
		char *p = fill(size);

		__asm__ volatile("" ::: "memory");
		return p;
	}
};

__attribute__((noipa)) char *beta_leaf(unsigned long size)
{
	char *p = new char[size];

	p[0] = 2;
	__asm__ volatile("" ::: "memory");
	return p;
}

template <typename T> __attribute__((noipa)) char *beta(unsigned long size)
{
	char *p = beta_leaf(size + sizeof(T) - sizeof(int));

	__asm__ volatile("" ::: "memory");
	return p;
}

struct Gamma {
	__attribute__((noipa)) char *operator()(unsigned long size) const
	{
		char *p = new char[size];

		p[0] = 3;
		__asm__ volatile("" ::: "memory");
		return p;
	}
};
} // namespace paths

static void on_usr1(int)
{
	go = 1;
}

int main()
{
	unsigned long long bytes[3] = { 0 };
	paths::Gamma gamma;

	signal(SIGUSR1, on_usr1);
	printf("ready %d\n", getpid());
	fflush(stdout);
	while (!go)
		pause();
	for (int i = 0; i < 40; i++) {
		unsigned long size = 100 * (unsigned long)(i + 1);

		keep[0][i] = paths::Alpha::make(size);
		keep[1][i] = paths::beta<int>(size + 1);
		keep[2][i] = gamma(size + 2);
		bytes[0] += size;
		bytes[1] += size + 1;
		bytes[2] += size + 2;
	}
	printf("truth {\"alpha\": {\"live_bytes\": %llu, \"live_count\": 40}, \"beta\": "
	       "{\"live_bytes\": %llu, \"live_count\": 40}, \"gamma\": {\"live_bytes\": %llu, "
	       "\"live_count\": 40}}\ndone\n",
	       bytes[0], bytes[1], bytes[2]);
	fflush(stdout);
	for (;;)
		pause();
}
