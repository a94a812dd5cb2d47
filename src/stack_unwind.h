/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Unwinds sampled stacks in userspace from each object's CFI (.eh_frame, .debug_frame) with
 * libdwfl, from the registers and the stack copy of a struct ms_sample, and names the frames
 * (.symtab/.dynsym, build-id debug files, demangled, file:line from DWARF).
 */
#ifndef MEMSCOPED_STACK_UNWIND_H
#define MEMSCOPED_STACK_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "memscoped/events.h"
#include "stack_profile.h"

#define STACK_MAX_FRAMES 128

struct stack_unwinder;

/*
 * The objects pid maps now, opened through /proc/PID/root while the daemon may still read
 * them; debug_dir: where build-id debug files are (NULL: /usr/lib/debug). NULL and errno.
 */
struct stack_unwinder *stack_unwinder__new(int pid, const char *debug_dir);
void stack_unwinder__free(struct stack_unwinder *u);

/* pcs of the sample's stack, leaf (the allocator's caller) first; how many. */
size_t stack_unwinder__unwind(struct stack_unwinder *u, const struct ms_sample *s, size_t len,
			      uint64_t *ret_pcs, size_t max, bool *ret_truncated);

/* Fills frame (new in p, of this unwinder's process) with its name, source line and object. */
void stack_unwinder__symbolize(struct stack_unwinder *u, struct stack_profile *p, uint32_t frame);

#endif
