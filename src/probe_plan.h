/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Which functions of which object to probe, at which file offsets, with which program. */
#ifndef MEMSCOPED_PROBE_PLAN_H
#define MEMSCOPED_PROBE_PLAN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "alloc_family.h"
#include "elf_symbols.h"

#define PROBE_PLAN_NOTES 512

/* One probe; allocators and runtimes alike. */
struct probe_spec {
	const char *symbol; /* for messages; must outlive the plan */
	const char *prog;   /* BPF program name in the skeleton */
	uint64_t cookie;    /* the BPF cookie: MS_ALLOC_COOKIE, MS_TASK_COOKIE, ... */
	bool retprobe;
	uint64_t offset; /* file offset in the object */
};

/* Probes in one object of the target. */
struct probe_plan {
	char object[PATH_MAX];	   /* as the target maps it */
	char open_path[PATH_MAX];  /* as memscoped opens it: /proc/PID/root/... */
	struct probe_spec *probes; /* malloc'd */
	size_t nprobes, cap;
	char *notes[PROBE_PLAN_NOTES]; /* for -v; malloc'd */
	size_t nnotes;
};

void probe_plan__clear(struct probe_plan *plan);
/* Appends a probe; 0 or -ENOMEM. */
int probe_plan__add(struct probe_plan *plan, const struct probe_spec *spec);

/* A function to probe by symbol, for probe_plan__functions. */
struct probe_fn {
	const char *symbol;
	const char *prog;
	uint64_t cookie;
	bool retprobe;
};

/*
 * Plans every function of fns in an opened object (all of them, or -ENOENT). The object must
 * have been named in plan->object and plan->open_path by the caller.
 */
int probe_plan__functions(struct elf_symbols *e, const struct probe_fn *fns, size_t n,
			  struct probe_plan *plan);

/* Plans glibc's allocator probes in an opened object; -ENOENT if it has no allocator symbols. */
int probe_plan__allocator_from_elf(struct elf_symbols *e, struct probe_plan *plan);
/*
 * Adds the probes of one allocator family (its functions named with prefix) found in an opened
 * object; -ENOENT if it lacks an allocating function or a freeing one.
 */
int probe_plan__family_from_elf(struct elf_symbols *e, const struct alloc_family *f,
				const char *prefix, struct probe_plan *plan);
/* Functions with an entry probe in the plan. */
size_t probe_plan__entry_functions(const struct probe_plan *plan);

#endif
