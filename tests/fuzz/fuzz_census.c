// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer: the heap census over memory the target wrote (and may be changing). Input:
 *   byte 0     the region's kind (main heap, arena heap, other anonymous mapping)
 *   the rest   the region's memory, at a base aligned as its kind requires
 * Every chunk reported lies inside the region, and the figures add up.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "heap_census.h"

#define BASE 0x7f0004000000ull /* aligned for an arena heap */

struct memory {
	const uint8_t *bytes;
	size_t len;
	uint64_t chunks, mmapped;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_memory(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct memory *m = ctx;

	if (addr < BASE || addr - BASE > m->len || len > m->len - (addr - BASE))
		return -EFAULT;
	memcpy(buf, m->bytes + (addr - BASE), len);
	return 0;
}

static int on_chunk(void *ctx, uint64_t mem, uint64_t len, bool mmapped)
{
	struct memory *m = ctx;

	assert(mem >= BASE + 16 && mem <= BASE + m->len && len <= BASE + m->len - mem);
	m->chunks++;
	m->mmapped += mmapped;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct memory m = { data + 1, size ? size - 1 : 0, 0, 0 };
	struct census_region r = { BASE, BASE + m.len, CENSUS_MAIN_HEAP };
	struct heap_census c = { 0 };

	if (!size)
		return 0;
	r.kind = (enum census_region_kind)(data[0] % 3);
	assert(heap_census__region(&r, read_memory, &m, on_chunk, &m, &c) == 0);
	assert(m.chunks == c.inuse_chunks);
	assert(m.mmapped == c.mmapped_chunks);
	assert(c.inuse_bytes + c.free_bytes <= m.len);
	if (c.heaps)
		assert(c.inuse_bytes + c.free_bytes == c.arena_bytes + c.mmapped_bytes);
	return 0;
}
