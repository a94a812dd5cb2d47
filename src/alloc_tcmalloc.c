// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * gperftools' tcmalloc (libtcmalloc.so.4, libtcmalloc_minimal.so.4): the malloc family it
 * interposes, its tc_* entry points (mostly aliases of the same code: one probe per address)
 * and C++'s operator new/delete.
 */
#include "alloc_family.h"

#define C MS_ALLOC_COOKIE

static const struct alloc_fn_row tcmalloc_fns[] = {
	{ "malloc", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "calloc", C(MS_FN_CALLOC, 2, 1, 0, 0, 0, 0) },
	{ "realloc", C(MS_FN_REALLOC, 2, 0, 1, 0, 0, 0) },
	{ "posix_memalign", C(MS_FN_POSIX_MEMALIGN, 3, 0, 0, 1, 2, 0) },
	{ "aligned_alloc", C(MS_FN_ALIGNED_ALLOC, 2, 0, 0, 0, 1, 0) },
	{ "memalign", C(MS_FN_MEMALIGN, 2, 0, 0, 0, 1, 0) },
	{ "valloc", C(MS_FN_VALLOC, 1, 0, 0, 0, 0, 0) },
	{ "pvalloc", C(MS_FN_PVALLOC, 1, 0, 0, 0, 0, 0) },
	{ "free", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "cfree", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_malloc", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "tc_malloc_skip_new_handler", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "tc_calloc", C(MS_FN_CALLOC, 2, 1, 0, 0, 0, 0) },
	{ "tc_realloc", C(MS_FN_REALLOC, 2, 0, 1, 0, 0, 0) },
	{ "tc_memalign", C(MS_FN_MEMALIGN, 2, 0, 0, 0, 1, 0) },
	{ "tc_posix_memalign", C(MS_FN_POSIX_MEMALIGN, 3, 0, 0, 1, 2, 0) },
	{ "tc_valloc", C(MS_FN_VALLOC, 1, 0, 0, 0, 0, 0) },
	{ "tc_pvalloc", C(MS_FN_PVALLOC, 1, 0, 0, 0, 0, 0) },
	{ "tc_free", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_free_sized", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_cfree", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_new", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "tc_newarray", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "tc_new_nothrow", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "tc_newarray_nothrow", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "tc_new_aligned", C(MS_FN_ALIGNED_ALLOC, 1, 0, 0, 0, 2, 0) },
	{ "tc_newarray_aligned", C(MS_FN_ALIGNED_ALLOC, 1, 0, 0, 0, 2, 0) },
	{ "tc_new_aligned_nothrow", C(MS_FN_ALIGNED_ALLOC, 1, 0, 0, 0, 2, 0) },
	{ "tc_newarray_aligned_nothrow", C(MS_FN_ALIGNED_ALLOC, 1, 0, 0, 0, 2, 0) },
	{ "tc_delete", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_deletearray", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_delete_sized", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_deletearray_sized", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_delete_nothrow", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_deletearray_nothrow", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "tc_delete_aligned", C(MS_FN_FREE, 0, 0, 1, 0, 2, 0) },
	{ "tc_deletearray_aligned", C(MS_FN_FREE, 0, 0, 1, 0, 2, 0) },
	{ "tc_delete_sized_aligned", C(MS_FN_FREE, 0, 0, 1, 0, 3, 0) },
	{ "tc_deletearray_sized_aligned", C(MS_FN_FREE, 0, 0, 1, 0, 3, 0) },
	{ "tc_delete_aligned_nothrow", C(MS_FN_FREE, 0, 0, 1, 0, 2, 0) },
	{ "tc_deletearray_aligned_nothrow", C(MS_FN_FREE, 0, 0, 1, 0, 2, 0) },
};

static const char *const tcmalloc_prefixes[] = { "", NULL };

const struct alloc_family alloc_tcmalloc = {
	.name = "tcmalloc",
	.prefixes = tcmalloc_prefixes,
	.signature = "tc_malloc",
	.fns = tcmalloc_fns,
	.nfns = sizeof(tcmalloc_fns) / sizeof(tcmalloc_fns[0]),
	.cxx = true,
};
