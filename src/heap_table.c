// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Open addressing with linear probing and backward-shift deletion (no tombstones).
 * A slot is 24 bytes and the table grows at 3/4 full, so it never uses more than
 * 64 bytes per live block.
 */
#include <errno.h>
#include <stdlib.h>
#include "heap_table.h"

struct slot {
	uint64_t addr; /* 0 = empty: malloc never returns 0 for a live block */
	uint64_t size : 36;
	uint64_t time_cs : 28;
	uint32_t tid;
	uint32_t task;
};

_Static_assert(sizeof(struct slot) == 24, "heap table slot must stay 24 bytes");

struct heap_table {
	struct slot *slots;
	size_t mask; /* capacity - 1, capacity a power of two */
	size_t count;
	size_t max_blocks;
};

#define MIN_CAPACITY 64

static size_t slot_of(const struct heap_table *h, uint64_t addr)
{
	/* Fibonacci hashing: blocks are 16-byte aligned, so low bits carry nothing. */
	return (size_t)((addr * 0x9e3779b97f4a7c15ull) >> 20) & h->mask;
}

struct heap_table *heap_table__new(size_t max_blocks)
{
	struct heap_table *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->slots = calloc(MIN_CAPACITY, sizeof(*h->slots));
	if (!h->slots) {
		free(h);
		return NULL;
	}
	h->mask = MIN_CAPACITY - 1;
	h->max_blocks = max_blocks;
	return h;
}

void heap_table__free(struct heap_table *h)
{
	if (!h)
		return;
	free(h->slots);
	free(h);
}

static void to_block(const struct slot *s, struct heap_block *b)
{
	b->addr = s->addr;
	b->size = s->size;
	b->tid = s->tid;
	b->task = s->task;
	b->time_cs = s->time_cs;
}

static void to_slot(const struct heap_block *b, struct slot *s)
{
	s->addr = b->addr;
	s->size = b->size > HEAP_TABLE_MAX_SIZE ? HEAP_TABLE_MAX_SIZE : b->size;
	s->time_cs = b->time_cs > HEAP_TABLE_MAX_TIME ? HEAP_TABLE_MAX_TIME : b->time_cs;
	s->tid = b->tid;
	s->task = b->task;
}

static size_t find(const struct heap_table *h, uint64_t addr)
{
	size_t i = slot_of(h, addr);

	while (h->slots[i].addr && h->slots[i].addr != addr)
		i = (i + 1) & h->mask;
	return i;
}

static int grow(struct heap_table *h)
{
	struct slot *old = h->slots;
	size_t old_cap = h->mask + 1, i;

	h->slots = calloc(old_cap * 2, sizeof(*h->slots));
	if (!h->slots) {
		h->slots = old;
		return -ENOMEM;
	}
	h->mask = old_cap * 2 - 1;
	for (i = 0; i < old_cap; i++)
		if (old[i].addr)
			h->slots[find(h, old[i].addr)] = old[i];
	free(old);
	return 0;
}

int heap_table__insert(struct heap_table *h, const struct heap_block *b, struct heap_block *ret_old)
{
	size_t i;
	int err;

	if (!b->addr)
		return -EINVAL;
	i = find(h, b->addr);
	if (h->slots[i].addr) {
		if (ret_old)
			to_block(&h->slots[i], ret_old);
		to_slot(b, &h->slots[i]);
		return 1;
	}
	if (h->max_blocks && h->count >= h->max_blocks)
		return -ENOSPC;
	if ((h->count + 1) * 4 > (h->mask + 1) * 3) {
		err = grow(h);
		if (err)
			return err;
		i = find(h, b->addr);
	}
	to_slot(b, &h->slots[i]);
	h->count++;
	return 0;
}

bool heap_table__remove(struct heap_table *h, uint64_t addr, struct heap_block *ret_old)
{
	size_t i, j, home;

	if (!addr)
		return false;
	i = find(h, addr);
	if (!h->slots[i].addr)
		return false;
	if (ret_old)
		to_block(&h->slots[i], ret_old);
	/* Backward shift: move later entries of the run into the hole if their home allows. */
	j = i;
	for (;;) {
		j = (j + 1) & h->mask;
		if (!h->slots[j].addr)
			break;
		home = slot_of(h, h->slots[j].addr);
		if (((j - home) & h->mask) >= ((j - i) & h->mask)) {
			h->slots[i] = h->slots[j];
			i = j;
		}
	}
	h->slots[i].addr = 0;
	h->count--;
	return true;
}

bool heap_table__lookup(const struct heap_table *h, uint64_t addr, struct heap_block *ret)
{
	size_t i;

	if (!addr)
		return false;
	i = find(h, addr);
	if (!h->slots[i].addr)
		return false;
	to_block(&h->slots[i], ret);
	return true;
}

size_t heap_table__count(const struct heap_table *h)
{
	return h->count;
}

size_t heap_table__memory(const struct heap_table *h)
{
	return sizeof(*h) + (h->mask + 1) * sizeof(struct slot);
}

void heap_table__foreach(const struct heap_table *h, heap_table_cb cb, void *ctx)
{
	struct heap_block b;
	size_t i;

	for (i = 0; i <= h->mask; i++) {
		if (!h->slots[i].addr)
			continue;
		to_block(&h->slots[i], &b);
		cb(&b, ctx);
	}
}
