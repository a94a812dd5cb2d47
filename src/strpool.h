/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Shared copies of strings many records repeat (an executable, a cgroup), counted by use. */
#ifndef MEMSCOPED_STRPOOL_H
#define MEMSCOPED_STRPOOL_H

#include <stddef.h>

struct strpool;

struct strpool *strpool__new(void);
/* Frees the pool and every string in it; NULL does nothing. */
void strpool__free(struct strpool *sp);
/* The pool's copy of s, one more use of it; NULL on ENOMEM. */
const char *strpool__get(struct strpool *sp, const char *s);
/* One use less of a string strpool__get returned; freed at the last. NULL does nothing. */
void strpool__put(struct strpool *sp, const char *s);
/* Bytes the pool holds: its strings and its index. */
size_t strpool__bytes(const struct strpool *sp);

#endif
