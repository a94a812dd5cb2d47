/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The allocator-family table. Each family (src/alloc_<name>.c) lists its functions: the symbol,
 * what it does and where its arguments are, as the BPF cookie of its probe (MS_ALLOC_COOKIE in
 * memscoped/events.h). A new family is a new file and a row in alloc_families.c; the BPF
 * programs read everything from the cookie.
 */
#ifndef MEMSCOPED_ALLOC_FAMILY_H
#define MEMSCOPED_ALLOC_FAMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "memscoped/events.h"
#include "elf_symbols.h"

struct alloc_fn_row {
	const char *symbol; /* without the family's prefix */
	uint64_t cookie;    /* MS_ALLOC_COOKIE(...) [| MS_AC_*] */
};

struct alloc_family {
	const char *name;	     /* as --allocator names it */
	const char *const *prefixes; /* NULL-terminated; "" is the unprefixed build */
	const char *signature;	     /* a function only this family defines (after the prefix) */
	const struct alloc_fn_row *fns;
	size_t nfns;
	bool cxx; /* also defines C++'s operator new/delete (alloc_cxx_rows), unprefixed */
	/* Finds a function's symbol when names are not plain (Rust's mangled shims); NULL: exact. */
	int (*lookup)(struct elf_symbols *e, const char *name, struct elf_sym *ret_sym);
};

/* Rows shared by families that define C++'s operator new/delete (jemalloc, mimalloc, tcmalloc). */
extern const struct alloc_fn_row alloc_cxx_rows[];
extern const size_t alloc_cxx_nrows;

extern const struct alloc_family alloc_glibc;
extern const struct alloc_family alloc_jemalloc;
extern const struct alloc_family alloc_mimalloc;
extern const struct alloc_family alloc_tcmalloc;
extern const struct alloc_family alloc_rust;

/* The registry, in detection order (specific families before glibc, whose names they reuse). */
extern const struct alloc_family *const alloc_families[];
extern const size_t alloc_nfamilies;

/* The families' names, sep between them, into buf (truncated to len). */
void alloc_family__names(char *buf, size_t len, const char *sep);
/* The family named name, or NULL. */
const struct alloc_family *alloc_family__find(const char *name);
/* Looks up prefix + symbol through the family's lookup; 0 or -ENOENT. */
int alloc_family__lookup(const struct alloc_family *f, struct elf_symbols *e, const char *prefix,
			 const char *symbol, struct elf_sym *ret_sym);
/* The prefix under which e defines the family's signature function; NULL if it does not. */
const char *alloc_family__detect(const struct alloc_family *f, struct elf_symbols *e);
/* Whether a row's function has a return probe (everything but a plain free). */
bool alloc_fn_row__has_return(const struct alloc_fn_row *row);

#endif
