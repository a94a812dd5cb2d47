/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Never silently blind: a busy target whose allocator probes never fire. */
#ifndef MEMSCOPED_ALLOC_WATCH_H
#define MEMSCOPED_ALLOC_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include "process_table.h"

/*
 * True once, when p has had no allocator event since attach for stuck_after seconds or more
 * (elapsed) while using at least a tenth of a CPU over that time (cpu_seconds: its CPU time
 * now); marks p so that it is said once.
 */
bool alloc_watch__blind(struct process *p, double elapsed, double cpu_seconds, double stuck_after);
/*
 * True once, when allocations landed on addresses memscoped still held live (a free it did not
 * see: rustc can inline a #[global_allocator]'s dealloc past __rust_dealloc) and stuck_after
 * seconds have passed since attach.
 */
bool alloc_watch__frees_missed(struct process *p, double elapsed, double stuck_after);
/* The warning line (no trailing newline). */
void alloc_watch__message(const struct process *p, double elapsed, double cpu_seconds, char *buf,
			  size_t len);

#endif
