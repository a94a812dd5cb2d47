// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A small shared object for test_elf_symbols: an allocator with only malloc, free and calloc
 * (the others missing), a known function and a known read-only string. Never loaded, only read.
 */
#include <stddef.h>

__attribute__((used)) const char fixture_magic[] = "MEMSCOPED-FIXTURE-0123456789";
/* Writable: its segment's file offset and address differ. */
__attribute__((used)) char fixture_data[] = "MEMSCOPED-DATA-9876543210";
/* Not file-backed: .bss has no bytes in the file. */
__attribute__((used)) char fixture_bss[8192];

static char arena[4096];
static size_t arena_used;

__attribute__((used, noinline)) int fixture_fn(int x)
{
	return x * 0x1234567 + 0x89abcdef;
}

__attribute__((used, noinline)) void *malloc(size_t n)
{
	void *p = arena + arena_used;

	n = (n + 15) & ~(size_t)15;
	if (!n || n > sizeof(arena) - arena_used)
		return NULL;
	arena_used += n;
	return p;
}

__attribute__((used, noinline)) void free(void *p)
{
	if (p == arena)
		arena_used = 0;
}

__attribute__((used, noinline)) void *calloc(size_t nmemb, size_t size)
{
	char *p = malloc(nmemb * size);
	size_t i;

	for (i = 0; p && i < nmemb * size; i++)
		p[i] = 0;
	return p;
}
