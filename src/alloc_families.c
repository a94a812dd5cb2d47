// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The registry of allocator families and what they share. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "alloc_family.h"

#define C MS_ALLOC_COOKIE

/* C++ operator new/delete as a family defines them: size 1st; the block 1st. */
const struct alloc_fn_row alloc_cxx_rows[] = {
	{ "_Znwm", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "_Znam", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "_ZnwmRKSt9nothrow_t", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "_ZnamRKSt9nothrow_t", C(MS_FN_MALLOC, 1, 0, 0, 0, 0, 0) },
	{ "_ZnwmSt11align_val_t", C(MS_FN_ALIGNED_ALLOC, 1, 0, 0, 0, 2, 0) },
	{ "_ZnamSt11align_val_t", C(MS_FN_ALIGNED_ALLOC, 1, 0, 0, 0, 2, 0) },
	{ "_ZnwmSt11align_val_tRKSt9nothrow_t", C(MS_FN_ALIGNED_ALLOC, 1, 0, 0, 0, 2, 0) },
	{ "_ZnamSt11align_val_tRKSt9nothrow_t", C(MS_FN_ALIGNED_ALLOC, 1, 0, 0, 0, 2, 0) },
	{ "_ZdlPv", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "_ZdaPv", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "_ZdlPvm", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "_ZdaPvm", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "_ZdlPvRKSt9nothrow_t", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "_ZdaPvRKSt9nothrow_t", C(MS_FN_FREE, 0, 0, 1, 0, 0, 0) },
	{ "_ZdlPvSt11align_val_t", C(MS_FN_FREE, 0, 0, 1, 0, 2, 0) },
	{ "_ZdaPvSt11align_val_t", C(MS_FN_FREE, 0, 0, 1, 0, 2, 0) },
	{ "_ZdlPvmSt11align_val_t", C(MS_FN_FREE, 0, 0, 1, 0, 3, 0) },
	{ "_ZdaPvmSt11align_val_t", C(MS_FN_FREE, 0, 0, 1, 0, 3, 0) },
	{ "_ZdlPvSt11align_val_tRKSt9nothrow_t", C(MS_FN_FREE, 0, 0, 1, 0, 2, 0) },
	{ "_ZdaPvSt11align_val_tRKSt9nothrow_t", C(MS_FN_FREE, 0, 0, 1, 0, 2, 0) },
};
const size_t alloc_cxx_nrows = sizeof(alloc_cxx_rows) / sizeof(alloc_cxx_rows[0]);

const struct alloc_family *const alloc_families[] = {
	&alloc_jemalloc, &alloc_mimalloc, &alloc_tcmalloc, &alloc_rust, &alloc_glibc,
};
const size_t alloc_nfamilies = sizeof(alloc_families) / sizeof(alloc_families[0]);

const struct alloc_family *alloc_family__find(const char *name)
{
	size_t i;

	for (i = 0; i < alloc_nfamilies; i++)
		if (!strcmp(alloc_families[i]->name, name))
			return alloc_families[i];
	return NULL;
}

void alloc_family__names(char *buf, size_t len, const char *sep)
{
	size_t i, off = 0;

	if (len)
		buf[0] = '\0';
	for (i = 0; i < alloc_nfamilies && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? sep : "",
					alloc_families[i]->name);
}

int alloc_family__lookup(const struct alloc_family *f, struct elf_symbols *e, const char *prefix,
			 const char *symbol, struct elf_sym *ret_sym)
{
	char name[128];

	if (snprintf(name, sizeof(name), "%s%s", prefix, symbol) >= (int)sizeof(name))
		return -ENOENT;
	if (f->lookup)
		return f->lookup(e, name, ret_sym);
	return elf_symbols__lookup(e, name, ret_sym) ? -ENOENT : 0;
}

const char *alloc_family__detect(const struct alloc_family *f, struct elf_symbols *e)
{
	struct elf_sym sym;
	size_t i;

	for (i = 0; f->prefixes[i]; i++)
		if (!alloc_family__lookup(f, e, f->prefixes[i], f->signature, &sym))
			return f->prefixes[i];
	return NULL;
}

bool alloc_fn_row__has_return(const struct alloc_fn_row *row)
{
	return MS_AC_FUNC(row->cookie) != MS_FN_FREE || (row->cookie & MS_AC_SCOPED);
}
