// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gelf.h>
#include "memscoped/events.h"
#include "array.h"
#include "insn_decode.h"
#include "probe_plan.h"

/* The BPF programs dispatch on the cookie, so one link per program covers every function. */
#define ENTRY_PROG "alloc_entry"
#define RETURN_PROG "alloc_return"

static void note(struct probe_plan *plan, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (plan->nnotes == PROBE_PLAN_NOTES)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) >= 0)
		plan->notes[plan->nnotes++] = s;
	va_end(ap);
}

void probe_plan__clear(struct probe_plan *plan)
{
	size_t i;

	for (i = 0; i < plan->nnotes; i++)
		free(plan->notes[i]);
	free(plan->probes);
	memset(plan, 0, sizeof(*plan));
}

int probe_plan__add(struct probe_plan *plan, const struct probe_spec *spec)
{
	if (array__grow((void **)&plan->probes, &plan->cap, plan->nprobes, sizeof(*spec), 16))
		return -ENOMEM;
	plan->probes[plan->nprobes++] = *spec;
	return 0;
}

int probe_plan__functions(struct elf_symbols *e, const struct probe_fn *fns, size_t n,
			  struct probe_plan *plan)
{
	struct elf_sym sym;
	uint64_t offset;
	size_t i;

	for (i = 0; i < n; i++) {
		if (elf_symbols__lookup(e, fns[i].symbol, &sym) || sym.type != STT_FUNC ||
		    elf_symbols__offset(e, sym.vaddr, &offset))
			return -ENOENT;
		if (probe_plan__add(plan, &(struct probe_spec){ .symbol = fns[i].symbol,
								.prog = fns[i].prog,
								.cookie = fns[i].cookie,
								.retprobe = fns[i].retprobe,
								.offset = offset }))
			return -ENOMEM;
	}
	return 0;
}

static const struct probe_spec *planned_at(const struct probe_plan *plan, uint64_t offset)
{
	size_t i;

	for (i = 0; i < plan->nprobes; i++)
		if (plan->probes[i].offset == offset)
			return &plan->probes[i];
	return NULL;
}

static int add(struct probe_plan *plan, const struct alloc_fn_row *fn, uint64_t cookie,
	       const char *prog, bool ret, uint64_t offset)
{
	return probe_plan__add(plan, &(struct probe_spec){ .symbol = fn->symbol,
							   .prog = prog,
							   .cookie = cookie,
							   .retprobe = ret,
							   .offset = offset });
}

/* The function begins with an unconditional jmp (after an endbr64): a tail-call thunk. */
static bool is_tail_call(const uint8_t *code, size_t len)
{
	static const uint8_t endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };
	size_t at = 0;

	if (len >= sizeof(endbr64) && !memcmp(code, endbr64, sizeof(endbr64)))
		at = sizeof(endbr64);
	if (at < len && code[at] == 0xf2) /* bnd jmp */
		at++;
	return at < len && (code[at] == 0xe9 || code[at] == 0xeb);
}

/* The argument registers the probe's programs read (bit k: argument k + 1). */
static unsigned int args_read(uint64_t cookie)
{
	const unsigned int pos[] = { MS_AC_SIZE(cookie), MS_AC_COUNT(cookie), MS_AC_PTR(cookie),
				     MS_AC_OUT(cookie),	 MS_AC_ALIGN(cookie), MS_AC_FLAGS(cookie) };
	unsigned int mask = 0, i;

	for (i = 0; i < sizeof(pos) / sizeof(pos[0]); i++)
		if (pos[i] >= 1 && pos[i] <= 6)
			mask |= 1u << (pos[i] - 1);
	return mask;
}

/* The cookie with each argument position moved to where the probe finds that argument. */
static uint64_t moved_args(uint64_t cookie, const uint8_t arg_at[6])
{
	unsigned int shift, pos;

	/* size, count, ptr, out, align and flags: 4 bits each from bit 8 (MS_ALLOC_COOKIE). */
	for (shift = 8; shift < 32; shift += 4) {
		pos = (unsigned int)(cookie >> shift) & 0xf;
		if (pos >= 1 && pos <= 6)
			cookie = (cookie & ~(0xfull << shift)) | (uint64_t)arg_at[pos - 1] << shift;
	}
	return cookie;
}

static int plan_row(struct elf_symbols *e, const struct alloc_family *f, const char *prefix,
		    const struct alloc_fn_row *fn, struct probe_plan *plan)
{
	unsigned int func = MS_AC_FUNC(fn->cookie);
	uint64_t cookie = fn->cookie;
	const struct probe_spec *twin;
	struct probe_placement place;
	struct elf_sym sym;
	uint8_t code[128];
	uint64_t offset;
	ssize_t n;

	if (alloc_family__lookup(f, e, prefix, fn->symbol, &sym)) {
		note(plan, "'%s%s' not found, skipping", prefix, fn->symbol);
		return 0;
	}
	if (sym.type == STT_GNU_IFUNC) {
		note(plan, "'%s%s' is an IFUNC resolver, skipping", prefix, fn->symbol);
		return 0;
	}
	if (elf_symbols__offset(e, sym.vaddr, &offset)) {
		note(plan, "'%s%s' at 0x%lx is not in a loadable segment, skipping", prefix,
		     fn->symbol, (unsigned long)sym.vaddr);
		return 0;
	}
	n = elf_symbols__read(e, offset, code, sizeof(code));
	if (n > 0 && (uint64_t)n > sym.size && sym.size)
		n = (ssize_t)sym.size;
	if (n <= 0 || insn_decode__placement_args(code, (size_t)n, args_read(cookie), &place)) {
		place.offset = 0;
		place.null_arg = -1;
		place.reason = "entry bytes unreadable";
	}
	/* Only a free may lose its NULL calls (a no-op): malloc(0) is a real allocation. */
	if (place.null_arg >= 0 &&
	    (func != MS_FN_FREE ||
	     place.null_arg != insn_decode__arg_register(MS_AC_PTR(fn->cookie)))) {
		place.offset = 0;
		place.reason = "its NULL early return would hide real calls";
	}
	if (place.offset)
		cookie = moved_args(cookie, place.arg_at);
	/* Aliases (glibc's memalign = aligned_alloc, mimalloc's malloc = mi_malloc): one probe. */
	twin = planned_at(plan, offset + place.offset);
	if (!twin && place.offset)
		twin = planned_at(plan, offset);
	if (twin) {
		note(plan, "'%s%s' is an alias of '%s'", prefix, fn->symbol, twin->symbol);
		return 0;
	}
	if (place.offset)
		note(plan, "'%s%s' probed at +%zu: %s", prefix, fn->symbol, place.offset,
		     place.reason);
	else
		note(plan, "'%s%s' probed at entry: %s", prefix, fn->symbol, place.reason);
	/*
	 * A free that tail-calls another (mimalloc's mi_free_size: `jmp mi_free@plt`) would report
	 * its block twice: with a return probe, the free it jumps to is inside it, and silent.
	 */
	if (func == MS_FN_FREE && n > 0 && is_tail_call(code, (size_t)n)) {
		cookie |= MS_AC_SCOPED;
		note(plan, "'%s%s' tail-calls another function: entry and return probed", prefix,
		     fn->symbol);
	}
	/* Entry and return probes at the same address cost one trap. */
	if (add(plan, fn, cookie, ENTRY_PROG, false, offset + place.offset))
		return -ENOMEM;
	if (MS_AC_FUNC(cookie) != MS_FN_FREE || (cookie & MS_AC_SCOPED))
		return add(plan, fn, cookie, RETURN_PROG, true, offset + place.offset);
	return 0;
}

size_t probe_plan__entry_functions(const struct probe_plan *plan)
{
	size_t i, n = 0;

	for (i = 0; i < plan->nprobes; i++)
		n += !plan->probes[i].retprobe;
	return n;
}

int probe_plan__family_from_elf(struct elf_symbols *e, const struct alloc_family *f,
				const char *prefix, struct probe_plan *plan)
{
	bool allocs = false, frees = false;
	size_t i, before = plan->nprobes;

	for (i = 0; i < f->nfns; i++)
		plan_row(e, f, prefix, &f->fns[i], plan);
	for (i = 0; f->cxx && i < alloc_cxx_nrows; i++)
		plan_row(e, f, "", &alloc_cxx_rows[i], plan);
	for (i = before; i < plan->nprobes; i++) {
		if (MS_AC_FUNC(plan->probes[i].cookie) == MS_FN_FREE)
			frees = true;
		else
			allocs = true;
	}
	/* Without both ends of a block's life nothing can be tracked. */
	if (!allocs || !frees) {
		plan->nprobes = before;
		return -ENOENT;
	}
	return 0;
}

static bool has_symbol(const struct probe_plan *plan, const char *symbol)
{
	size_t i;

	for (i = 0; i < plan->nprobes; i++)
		if (!strcmp(plan->probes[i].symbol, symbol))
			return true;
	return false;
}

int probe_plan__allocator_from_elf(struct elf_symbols *e, struct probe_plan *plan)
{
	int err = probe_plan__family_from_elf(e, &alloc_glibc, "", plan);

	/* glibc's own rule: malloc and free themselves. */
	if (!err && (!has_symbol(plan, "malloc") || !has_symbol(plan, "free")))
		return -ENOENT;
	return err;
}
