/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --mode scan: no probe and no BPF program on the target. Every --scan-interval the target's
 * memory is read with process_vm_readv, without stopping it: a census of glibc's heap, the live
 * tasks (found by their vtables, as the attach scan finds them), and the heap each task
 * retains. The daemon's loop, reports and metrics are trace mode's.
 */
#ifndef MEMSCOPED_SCAN_MODE_H
#define MEMSCOPED_SCAN_MODE_H

#include <stdint.h>
#include "retained.h"

struct daemon;
struct process;

/*
 * Readies every target (its allocator family and tokio's vtables: nothing attached), takes the
 * first snapshot and sets the daemon's tick. Logs what fails; 0 or -errno.
 */
int scan_mode__start(struct daemon *d);

/* The daemon's tick: a snapshot when one is due, or now if fresh (before a report). */
void scan_mode__tick(struct daemon *d, uint64_t now_ns, int fresh);

/* The bounds of the retained-heap walk. */
extern const struct retained_limits scan_mode_retained_limits;

#endif
