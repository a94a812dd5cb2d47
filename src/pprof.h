/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A gzip'd pprof heap profile (google/pprof proto/profile.proto) of the sampled stacks:
 * alloc_objects, alloc_space, inuse_objects, inuse_space (unbiased), labels task_type, task,
 * thread, mappings with build ids. Encoded by hand: five messages of varints and bytes.
 */
#ifndef MEMSCOPED_PPROF_H
#define MEMSCOPED_PPROF_H

#include <stdint.h>
#include <stdio.h>
#include "stack_profile.h"

/* time_ns: wall clock of the profile; duration_ns: since attach. 0 or -errno. */
int pprof__write(FILE *f, const struct stack_profile *p, uint64_t time_ns, uint64_t duration_ns);
/* The profile before gzip, for tests: *ret (malloc'd) and *ret_len. 0 or -ENOMEM. */
int pprof__encode(const struct stack_profile *p, uint64_t time_ns, uint64_t duration_ns,
		  uint8_t **ret, size_t *ret_len);

#endif
