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
#include "proc.h"
#include "probe_plan.h"

/* The BPF programs dispatch on the cookie, so one link per program covers every function. */
#define ENTRY_PROG "alloc_entry"
#define RETURN_PROG "alloc_return"

static const struct alloc_fn {
	const char *symbol;
	enum ms_alloc_func func;
	bool has_return;
} alloc_fns[] = {
	{ "malloc", MS_FN_MALLOC, true },
	{ "calloc", MS_FN_CALLOC, true },
	{ "realloc", MS_FN_REALLOC, true },
	{ "reallocarray", MS_FN_REALLOCARRAY, true },
	{ "posix_memalign", MS_FN_POSIX_MEMALIGN, true },
	{ "aligned_alloc", MS_FN_ALIGNED_ALLOC, true },
	{ "memalign", MS_FN_MEMALIGN, true },
	{ "valloc", MS_FN_VALLOC, true },
	{ "pvalloc", MS_FN_PVALLOC, true },
	{ "free", MS_FN_FREE, false },
};

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

static bool has_symbol(const struct probe_plan *plan, const char *symbol)
{
	size_t i;

	for (i = 0; i < plan->nprobes; i++)
		if (!strcmp(plan->probes[i].symbol, symbol))
			return true;
	return false;
}

static void add(struct probe_plan *plan, const struct alloc_fn *fn, const char *prog, bool ret,
		uint64_t offset)
{
	struct probe_spec p = {
		.symbol = fn->symbol, .prog = prog, .cookie = fn->func, .retprobe = ret,
		.offset = offset,
	};

	/* Out of memory: the plan lacks malloc or free and is refused. */
	probe_plan__add(plan, &p);
}

int probe_plan__allocator_from_elf(struct elf_symbols *e, struct probe_plan *plan)
{
	const struct probe_spec *twin;
	struct probe_placement place;
	struct elf_sym sym;
	uint8_t code[32];
	uint64_t offset;
	size_t i;
	ssize_t n;

	for (i = 0; i < sizeof(alloc_fns) / sizeof(alloc_fns[0]); i++) {
		const struct alloc_fn *fn = &alloc_fns[i];

		if (elf_symbols__lookup(e, fn->symbol, &sym)) {
			note(plan, "'%s' not found, skipping", fn->symbol);
			continue;
		}
		if (sym.type == STT_GNU_IFUNC) {
			note(plan, "'%s' is an IFUNC resolver, skipping", fn->symbol);
			continue;
		}
		if (elf_symbols__offset(e, sym.vaddr, &offset)) {
			note(plan, "'%s' at 0x%lx is not in a loadable segment, skipping", fn->symbol,
			     (unsigned long)sym.vaddr);
			continue;
		}
		/* glibc aliases (memalign = aligned_alloc): one probe per address. */
		twin = planned_at(plan, offset);
		if (twin) {
			note(plan, "'%s' is an alias of '%s'", fn->symbol, twin->symbol);
			continue;
		}
		n = elf_symbols__read(e, offset, code, sizeof(code));
		if (n > 0 && (uint64_t)n > sym.size && sym.size)
			n = (ssize_t)sym.size;
		if (n <= 0 || insn_decode__placement(code, (size_t)n, &place)) {
			place.offset = 0;
			place.null_arg = -1;
			place.reason = "entry bytes unreadable";
		}
		/* Only free may lose its NULL calls: malloc(0) is a real allocation. */
		if (place.null_arg >= 0 && fn->func != MS_FN_FREE) {
			place.offset = 0;
			place.reason = "its NULL early return would hide real calls";
		}
		if (place.offset)
			note(plan, "'%s' probed at +%zu: %s", fn->symbol, place.offset, place.reason);
		else
			note(plan, "'%s' probed at entry: %s", fn->symbol, place.reason);
		/* Entry and return probes at the same address cost one trap. */
		add(plan, fn, ENTRY_PROG, false, offset + place.offset);
		if (fn->has_return)
			add(plan, fn, RETURN_PROG, true, offset + place.offset);
	}
	/* Without both ends of a block's life nothing can be tracked. */
	if (!has_symbol(plan, "malloc") || !has_symbol(plan, "free"))
		return -ENOENT;
	return 0;
}

static int plan_object(int pid, const char *object, void *ctx)
{
	struct probe_plan *plan = ctx;
	struct elf_symbols *e;
	int err;

	probe_plan__clear(plan);
	snprintf(plan->object, sizeof(plan->object), "%s", object);
	e = elf_symbols__open_target(pid, object, plan->open_path, sizeof(plan->open_path));
	if (!e)
		return -errno;
	err = probe_plan__allocator_from_elf(e, plan);
	elf_symbols__close(e);
	return err;
}

int probe_plan__allocator(int pid, struct probe_plan *plan, char *err, size_t errlen)
{
	char libc[PATH_MAX];
	char *exe = NULL;
	int ret;

	ret = proc__exe(pid, &exe);
	if (ret) {
		snprintf(err, errlen, "cannot read /proc/%d/exe: %s", pid, strerror(-ret));
		return ret;
	}
	/* A static executable carries its own allocator. */
	ret = plan_object(pid, exe, plan);
	if (ret == 0)
		goto out;
	ret = proc__try_libc(pid, plan_object, plan, libc, sizeof(libc));
	if (ret == -ESRCH) {
		snprintf(err, errlen, "exited during attach");
		goto out;
	}
	if (ret && !libc[0] && ret != -ENOENT) {
		snprintf(err, errlen, "cannot read /proc/%d/maps: %s", pid, strerror(-ret));
		goto out;
	}
	if (!libc[0]) {
		snprintf(err, errlen, "no allocator symbols: '%s' defines none and no libc is mapped",
			 exe);
		goto out;
	}
	if (ret)
		snprintf(err, errlen, "no allocator symbols in '%s' or '%s': %s", exe, libc,
			 strerror(-ret));
out:
	free(exe);
	return ret;
}
