/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Folded stacks of live bytes (flamegraph.pl, inferno, speedscope): "root;...;leaf BYTES". */
#ifndef MEMSCOPED_FOLDED_H
#define MEMSCOPED_FOLDED_H

#include <stdio.h>
#include "stack_profile.h"

/* Root first, the task type as the root frame when there is one; lines sorted. 0 or -errno. */
int folded__write(FILE *f, const struct stack_profile *p);

#endif
