/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Which allocators serve a target, decided from the target itself, and their probe plans: the
 * object malloc binds to (the executable, LD_PRELOAD'ed objects, then libraries in load
 * order), every other known family it maps (jemalloc beside glibc, which other libraries may
 * still call), and Rust's global allocator over an allocator memscoped cannot name.
 */
#ifndef MEMSCOPED_ALLOC_PLAN_H
#define MEMSCOPED_ALLOC_PLAN_H

#include <stddef.h>
#include "alloc_family.h"
#include "probe_plan.h"

#define ALLOC_PLAN_MAX 4

struct alloc_plan {
	struct probe_plan objects[ALLOC_PLAN_MAX]; /* one family in one object each */
	const struct alloc_family *families[ALLOC_PLAN_MAX];
	size_t n;
	size_t primary; /* the one that serves malloc (or was asked for) */
};

/*
 * Plans the allocator probes of process pid. requested: NULL or "auto", else a family name
 * (only that family is probed; absent, it is an error). On failure err says what was
 * searched: -ENOENT nothing known is probeable, -EPROTO an unknown allocator serves malloc.
 */
int alloc_plan__build(int pid, const char *requested, struct alloc_plan *plan, char *err,
		      size_t errlen);
void alloc_plan__clear(struct alloc_plan *plan);
/* "jemalloc in '/usr/lib/.../libjemalloc.so.2' (14 functions), glibc in '...' (10 functions)" */
void alloc_plan__describe(const struct alloc_plan *plan, char *buf, size_t len);

#endif
