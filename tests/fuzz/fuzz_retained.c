// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer: the retained-heap pass over memory the target wrote. Input:
 *   byte 0     how many chunks (1..32), byte 1 how many roots (0..8), byte 2 the depth bound
 *   then       one byte per chunk, its size in 16-byte units (chunks laid out one after another)
 *              in the low 6 bits; bit 6: it spans 16 bytes less than its size (an mmapped one)
 *   the rest   the memory itself, holding the pointers
 * The figures add up: exclusive <= inclusive <= every chunk's bytes, and what is exclusive to a
 * task plus what no task reaches never exceeds the heap; the leak walk splits the heap into
 * reached and unreached chunks exactly. A pointer to the end of a chunk's span is not its.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "retained.h"

#define BASE 0x100000ull

struct memory {
	const uint8_t *bytes;
	size_t len;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct retained_chunk chunks[32];
	struct retained_root roots[8];
	struct retained_figures figs[8];
	struct retained_result r = { .roots = figs };
	struct retained_figures fig;
	uint8_t reached[32];
	struct retained_limits lim = { 0, 4096, 16384, 1024 };
	struct memory m;
	size_t nchunks, nroots, i;
	uint64_t at = BASE, total = 0, sum = 0;

	if (size < 3)
		return 0;
	nchunks = data[0] % 32 + 1;
	nroots = data[1] % 9;
	lim.max_depth = data[2] % 16;
	if (size < 3 + nchunks)
		return 0;
	for (i = 0; i < nchunks; i++) {
		chunks[i] = (struct retained_chunk){ at, (uint64_t)(data[3 + i] % 64 + 1) * 16 };
		if (data[3 + i] & 64)
			chunks[i].span = chunks[i].size - 16;
		if (chunks[i].span)
			assert(retained__chunk_of(chunks, i + 1, at + chunks[i].span) == -1);
		total += chunks[i].size;
		at += chunks[i].size + 16;
	}
	for (i = 0; i < nroots; i++) {
		const struct retained_chunk *c = &chunks[(i * 7) % nchunks];

		roots[i] = (struct retained_root){ c->mem, c->mem + c->size, i & 1 ? c->mem : 0 };
	}
	m.bytes = data + 3 + nchunks;
	m.len = size - 3 - nchunks;
	assert(retained__compute(chunks, nchunks, roots, nroots, &lim, read_memory, &m, &r) == 0);
	for (i = 0; i < nroots; i++) {
		assert(figs[i].exclusive <= figs[i].inclusive);
		assert(figs[i].inclusive <= total);
		sum += figs[i].exclusive;
	}
	assert(sum + r.unreached_bytes <= total);
	assert(r.scanned_bytes <= lim.max_scan_total + 65536);
	/* The leak walk from the same ranges: every chunk is reached or not, once. */
	assert(retained__reach(chunks, nchunks, roots, nroots, &lim, read_memory, &m, reached,
			       &fig) == 0);
	for (i = 0, sum = 0; i < nchunks; i++)
		sum += reached[i] ? chunks[i].size : 0;
	assert(sum == fig.inclusive && fig.inclusive + fig.exclusive == total);
	return 0;
}
