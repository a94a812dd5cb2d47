// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * glibc's malloc family (libc.so.6, or a static executable). glibc calls malloc internally
 * (realloc(NULL, n), posix_memalign with small alignments): the BPF programs report only the
 * outermost call on a thread.
 */
#include "alloc_family.h"

#define C MS_ALLOC_COOKIE

static const struct alloc_fn_row glibc_fns[] = {
	{ "malloc", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "calloc", C(MS_FN_CALLOC, 2, 1, 0, 0, 0, 0) },
	{ "realloc", C(MS_FN_REALLOC, 2, 0, 1, 0, 0, 0) },
	{ "reallocarray", C(MS_FN_REALLOCARRAY, 3, 2, 1, 0, 0, 0) },
	{ "posix_memalign", C(MS_FN_POSIX_MEMALIGN, 3, 0, 0, 1, 2, 0) },
	{ "aligned_alloc", C(MS_FN_ALIGNED_ALLOC, 2, 0, 0, 0, 1, 0) },
	{ "memalign", C(MS_FN_MEMALIGN, 2, 0, 0, 0, 1, 0) },
	{ "valloc", C(MS_FN_VALLOC, 1, 0, 0, 0, 0, 0) },
	{ "pvalloc", C(MS_FN_PVALLOC, 1, 0, 0, 0, 0, 0) },
	{ "free", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
};

static const char *const glibc_prefixes[] = { "", NULL };

const struct alloc_family alloc_glibc = {
	.name = "glibc",
	.prefixes = glibc_prefixes,
	.signature = "__libc_malloc",
	.fns = glibc_fns,
	.nfns = sizeof(glibc_fns) / sizeof(glibc_fns[0]),
};
