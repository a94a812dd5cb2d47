/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Where ucontext's functions are in a target (its coroutines are the core's, coro.h). */
#ifndef MEMSCOPED_RUNTIME_UCONTEXT_H
#define MEMSCOPED_RUNTIME_UCONTEXT_H

#include <stddef.h>
#include <stdint.h>
#include "elf_symbols.h"
#include "probe_plan.h"

/*
 * Where in glibc's x86-64 swapcontext the target's registers are loaded and `push %rcx` (an
 * instruction the kernel emulates) follows, with oucp still in r9: offset from its start, or 0
 * if the code is not that sequence (the entry is probed then, single-stepped).
 */
size_t ucontext__swapcontext_late_offset(const uint8_t *code, size_t len);
/* makecontext, swapcontext and setcontext in an opened object; -ENOENT unless all three. */
int ucontext__plan_from_elf(struct elf_symbols *e, struct probe_plan *plan);
/*
 * Finds them in the executable (static) or the libc pid maps. Returns 0, -ENOENT (err names
 * the functions and objects searched), or -errno.
 */
int ucontext__plan(int pid, struct probe_plan *plan, char *err, size_t errlen);

#endif
