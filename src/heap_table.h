/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Live heap blocks of one process: address -> size, thread, task, time. */
#ifndef MEMSCOPED_HEAP_TABLE_H
#define MEMSCOPED_HEAP_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct heap_block {
	uint64_t addr;
	uint64_t size;
	uint32_t tid;
	uint32_t task;	  /* task table index (0 = untasked), with TASK_CELL_BIT for a cell */
	uint32_t time_cs; /* centiseconds since attach (saturates after 31 days) */
};

/* Sizes saturate here (64 GiB): the slot keeps 36 bits of size and 28 of time. */
#define HEAP_TABLE_MAX_SIZE ((1ull << 36) - 1)
#define HEAP_TABLE_MAX_TIME ((1u << 28) - 1)

struct heap_table;

/* max_blocks bounds the table; 0 = unbounded. */
struct heap_table *heap_table__new(size_t max_blocks);
void heap_table__free(struct heap_table *h);

/*
 * Adds a block. Returns 0, 1 if a block at that address was replaced (its old value is in
 * *ret_old, if given), -ENOSPC when the bound is reached, -ENOMEM.
 */
int heap_table__insert(struct heap_table *h, const struct heap_block *b,
		       struct heap_block *ret_old);
/* Removes the block at addr; false if there is none. */
bool heap_table__remove(struct heap_table *h, uint64_t addr, struct heap_block *ret_old);
bool heap_table__lookup(const struct heap_table *h, uint64_t addr, struct heap_block *ret);
size_t heap_table__count(const struct heap_table *h);
/* Bytes of daemon memory the table uses. */
size_t heap_table__memory(const struct heap_table *h);

typedef void (*heap_table_cb)(const struct heap_block *b, void *ctx);
void heap_table__foreach(const struct heap_table *h, heap_table_cb cb, void *ctx);

#endif
