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

#define PROBE_PLAN_MAX 256
#define PROBE_PLAN_NOTES 512

struct probe_spec {
	const char *symbol;
	const char *prog; /* BPF program name in the skeleton */
	uint64_t cookie;  /* allocators: MS_ALLOC_COOKIE (memscoped/events.h) */
	bool retprobe;
	uint64_t offset;  /* file offset in the object */
};

struct probe_plan {
	char object[PATH_MAX];	  /* as the target maps it */
	char open_path[PATH_MAX]; /* as memscoped opens it: /proc/PID/root/... */
	struct probe_spec probes[PROBE_PLAN_MAX];
	size_t nprobes;
	char *notes[PROBE_PLAN_NOTES]; /* for -v; malloc'd */
	size_t nnotes;
};

void probe_plan__clear(struct probe_plan *plan);

/* Plans glibc's allocator probes in an opened object; -ENOENT if it has no allocator symbols. */
int probe_plan__allocator_from_elf(struct elf_symbols *e, struct probe_plan *plan);
/*
 * Adds the probes of one allocator family (its functions named with prefix) found in an opened
 * object; -ENOENT if it lacks an allocating function or a freeing one.
 */
int probe_plan__family_from_elf(struct elf_symbols *e, const struct alloc_family *f,
				const char *prefix, struct probe_plan *plan);
/* Functions with an entry probe in the plan. */
size_t probe_plan__functions(const struct probe_plan *plan);

#endif
