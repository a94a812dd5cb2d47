// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * jemalloc: Debian's libjemalloc.so.2 (unprefixed), je_-prefixed builds and _rjem_ (Rust's
 * tikv-jemallocator, linked statically). jemalloc 5.3 inlines its fast paths into these
 * exported functions, so only they are probed. MALLOCX_ZERO and MALLOCX_ALIGN change neither
 * the block nor the size asked; a failed rallocx keeps the old block; xallocx resizes in
 * place and returns the usable size (less than asked: not resized).
 */
#include "alloc_family.h"

#define C MS_ALLOC_COOKIE

static const struct alloc_fn_row jemalloc_fns[] = {
	{ "malloc", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "calloc", C(MS_FN_CALLOC, 2, 1, 0, 0, 0, 0) },
	{ "realloc", C(MS_FN_REALLOC, 2, 0, 1, 0, 0, 0) },
	{ "posix_memalign", C(MS_FN_POSIX_MEMALIGN, 3, 0, 0, 1, 2, 0) },
	{ "aligned_alloc", C(MS_FN_ALIGNED_ALLOC, 2, 0, 0, 0, 1, 0) },
	{ "memalign", C(MS_FN_MEMALIGN, 2, 0, 0, 0, 1, 0) },
	{ "valloc", C(MS_FN_VALLOC, 1, 0, 0, 0, 0, 0) },
	{ "pvalloc", C(MS_FN_PVALLOC, 1, 0, 0, 0, 0, 0) },
	{ "mallocx", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 2) },
	{ "rallocx", C(MS_FN_REALLOC, 2, 0, 1, 0, 0, 3) },
	{ "xallocx", C(MS_FN_RESIZE, 2, 3, 1, 0, 0, 4) | MS_AC_RET_SIZE },
	{ "free", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "sdallocx", C(MS_FN_FREE, 0, 0, 1, 0, 0, 3) },
	{ "dallocx", C(MS_FN_FREE, 0, 0, 1, 0, 0, 2) },
	{ "free_sized", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "free_aligned_sized", C(MS_FN_FREE, 0, 0, 1, 0, 2, 0) },
};

static const char *const jemalloc_prefixes[] = { "", "je_", "_rjem_", NULL };

const struct alloc_family alloc_jemalloc = {
	.name = "jemalloc",
	.prefixes = jemalloc_prefixes,
	.signature = "mallocx",
	.fns = jemalloc_fns,
	.nfns = sizeof(jemalloc_fns) / sizeof(jemalloc_fns[0]),
	.cxx = true,
};
