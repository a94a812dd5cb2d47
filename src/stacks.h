/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The daemon's sampled stacks: sample records in, unwound and labelled, into a profile. */
#ifndef MEMSCOPED_STACKS_H
#define MEMSCOPED_STACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "process_table.h"
#include "stack_profile.h"

struct stacks;

/* Distinct (stack, task, thread) series kept; past it samples are counted as dropped. */
#define STACKS_MAX_SERIES 100000

/* sample_bytes: --sample-bytes (not 0); debug_dir: --debug-dir or NULL. */
struct stacks *stacks__new(uint64_t sample_bytes, size_t max_series, const char *debug_dir);
void stacks__free(struct stacks *s);
/* Opens pid's objects for unwinding (while privileged); 0 or -errno. */
int stacks__add_process(struct stacks *s, uint32_t pid);
/*
 * Sees every ring record before the event decoder: takes sample records (true: consumed),
 * and the frees of sampled blocks. A sample is labelled from the heap table (its task).
 */
bool stacks__event(struct stacks *s, struct process_table *procs, const void *data, size_t len);
const struct stack_profile *stacks__profile(const struct stacks *s);
/* Writers for the daemon's atomic files (ctx: the stacks); 0 or -errno. */
int stacks__write_pprof(FILE *f, const void *ctx);
int stacks__write_folded(FILE *f, const void *ctx);
/*
 * Names the frames seen since the last call (symbols, DWARF lines): before writing outputs,
 * not per sample, so that loading a large debug file never stalls the event drain.
 */
void stacks__name_frames(struct stacks *s);
/* The BPF side's count of samples not sent (the ring was half full). */
void stacks__set_lost(struct stacks *s, uint64_t lost);
/* One line for the log: samples, lost, truncated, cost per sample. */
int stacks__summary(const struct stacks *s, char *buf, size_t len);
/* Wall time spent unwinding and symbolizing, ns, and the samples it covers. */
void stacks__cost(const struct stacks *s, uint64_t *ret_ns, uint64_t *ret_samples);

#endif
