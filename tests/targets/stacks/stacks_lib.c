// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The shared-library call path of stacks_c: main -> gamma_outer -> gamma_inner -> malloc. */
#include <stdlib.h>
#include <string.h>

void *gamma_outer(size_t size);

/* Not inlined, cloned or tail-called: the stack holds exactly these functions. */
__attribute__((noipa)) static void *gamma_inner(size_t size)
{
	char *p = malloc(size);

	if (p)
		memset(p, 3, 1);
	return p;
}

__attribute__((noipa)) void *gamma_outer(size_t size)
{
	void *p = gamma_inner(size);

	__asm__ volatile("" ::: "memory");
	return p;
}
