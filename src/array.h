/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Growing arrays: doubling, from a first size. */
#ifndef MEMSCOPED_ARRAY_H
#define MEMSCOPED_ARRAY_H

#include <errno.h>
#include <stdlib.h>

/* Makes room for element n of *arr (elements of size bytes, capacity *cap); 0 or -ENOMEM. */
static inline int array__grow(void **arr, size_t *cap, size_t n, size_t size, size_t first)
{
	size_t want = *cap ? *cap * 2 : first;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, want * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = want;
	return 0;
}

#endif
