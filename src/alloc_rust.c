// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Rust's global allocator shims (__rust_alloc, __rust_alloc_zeroed, __rust_realloc,
 * __rust_dealloc): a way to see a #[global_allocator] whose own functions memscoped cannot
 * name. Layered over a probed allocator it is never counted twice: allocations nest (only the
 * outermost call reports) and __rust_dealloc has a return probe, so the free inside it is its.
 * Newer rustc mangles the shims (v0, crate __rustc): _RNvCs<hash>_7___rustc12___rust_alloc.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "alloc_family.h"

#define C MS_ALLOC_COOKIE

static const struct alloc_fn_row rust_fns[] = {
	{ "__rust_alloc", C(MS_FN_MALLOC, 1, 0, 0, 0, 2, 0) },
	{ "__rust_alloc_zeroed", C(MS_FN_CALLOC, 1, 0, 0, 0, 2, 0) },
	{ "__rust_realloc", C(MS_FN_REALLOC, 4, 0, 1, 0, 3, 0) },
	{ "__rust_dealloc", C(MS_FN_FREE, 0, 0, 1, 0, 3, 0) | MS_AC_SCOPED },
};

struct shim_match {
	char suffix[96];
	struct elf_sym sym;
	bool found;
};

static int match_shim(const struct elf_sym *sym, void *ctx)
{
	struct shim_match *m = ctx;
	size_t n = strlen(sym->name), k = strlen(m->suffix);

	if (n <= k || strncmp(sym->name, "_RNvC", 5) || strcmp(sym->name + n - k, m->suffix))
		return 0;
	m->sym = *sym;
	m->found = true;
	return 1;
}

static int rust_lookup(struct elf_symbols *e, const char *name, struct elf_sym *ret_sym)
{
	struct shim_match m = { .found = false };

	if (!elf_symbols__lookup(e, name, ret_sym))
		return 0;
	/* v0 writes an identifier that starts with '_' as <length>_<identifier>. */
	snprintf(m.suffix, sizeof(m.suffix), "_7___rustc%zu%s%s", strlen(name),
		 name[0] == '_' || (name[0] >= '0' && name[0] <= '9') ? "_" : "", name);
	elf_symbols__foreach(e, match_shim, &m);
	if (!m.found)
		return -ENOENT;
	*ret_sym = m.sym;
	return 0;
}

static const char *const rust_prefixes[] = { "", NULL };

const struct alloc_family alloc_rust = {
	.name = "rust",
	.prefixes = rust_prefixes,
	.signature = "__rust_alloc",
	.fns = rust_fns,
	.nfns = sizeof(rust_fns) / sizeof(rust_fns[0]),
	.lookup = rust_lookup,
};
