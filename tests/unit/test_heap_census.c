// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "heap_census.h"

/* A fake target: its memory is buf, at address base. */
struct fake {
	uint64_t base;
	uint8_t *buf;
	size_t len;
};

static int fake_read(void *ctx, uint64_t addr, void *out, size_t len)
{
	const struct fake *f = ctx;

	if (addr < f->base || addr + len > f->base + f->len)
		return -EFAULT;
	memcpy(out, f->buf + (addr - f->base), len);
	return 0;
}

static void put(struct fake *f, uint64_t addr, uint64_t v)
{
	memcpy(f->buf + (addr - f->base), &v, 8);
}

/* Writes a chunk header at addr: size with its bits. */
static void header(struct fake *f, uint64_t addr, uint64_t size_and_bits)
{
	put(f, addr + 8, size_and_bits);
}

struct seen {
	uint64_t mem[16], size[16];
	size_t n, mmapped;
};

static int on_chunk(void *ctx, uint64_t mem, uint64_t size, bool mmapped)
{
	struct seen *s = ctx;

	if (s->n < 16) {
		s->mem[s->n] = mem;
		s->size[s->n] = size;
	}
	s->n++;
	s->mmapped += mmapped;
	return 0;
}

/* [heap]: chunks of 48 (in use), 96 (free), 32 (in use, as tcache'd ones are), then top. */
static void main_heap(struct fake *f)
{
	const uint64_t b = f->base;

	header(f, b, 48 | 1);
	header(f, b + 48, 96 | 1);		/* its PREV_INUSE: the 48 is in use */
	header(f, b + 144, 32 | 0);		/* the 96 is free */
	header(f, b + 176, (f->len - 176) | 1); /* top; the 32 is in use */
}

static void test_heap_census_main_heap_chunks_and_top(void **state)
{
	uint8_t buf[4096] = { 0 };
	struct fake f = { 0x555500000000ull, buf, sizeof(buf) };
	struct census_region r = { f.base, f.base + f.len, CENSUS_MAIN_HEAP };
	struct heap_census c = { 0 };
	struct seen s = { 0 };

	(void)state;
	main_heap(&f);
	assert_int_equal(heap_census__region(&r, fake_read, &f, on_chunk, &s, &c), 0);
	assert_int_equal(c.arenas, 1);
	assert_int_equal(c.heaps, 1);
	assert_int_equal(c.damaged, 0);
	assert_int_equal(c.inuse_chunks, 2);
	assert_int_equal(c.inuse_bytes, 48 + 32);
	assert_int_equal(c.free_chunks, 2);
	assert_int_equal(c.free_bytes, 96 + (4096 - 176));
	assert_int_equal(c.arena_bytes, 4096);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.mem[0], f.base + 16);
	assert_int_equal(s.size[0], 32);
	assert_int_equal(s.mem[1], f.base + 144 + 16);
	assert_int_equal(s.size[1], 16);
	assert_int_equal(s.mmapped, 0);
}

static void test_heap_census_damaged_chain_adds_nothing(void **state)
{
	uint8_t buf[4096] = { 0 };
	struct fake f = { 0x555500000000ull, buf, sizeof(buf) };
	struct census_region r = { f.base, f.base + f.len, CENSUS_MAIN_HEAP };
	struct heap_census c = { 0 };

	(void)state;
	main_heap(&f);
	header(&f, f.base + 48, 0x7fff0000 | 1); /* past the end */
	assert_int_equal(heap_census__region(&r, fake_read, &f, NULL, NULL, &c), 0);
	assert_int_equal(c.damaged, 1);
	assert_int_equal(c.heaps, 0);
	assert_int_equal(c.inuse_bytes, 0);
	assert_int_equal(c.free_bytes, 0);
}

/*
 * An arena's first heap: heap_info {ar_ptr, prev, size, mprotect_size}, the arena right after
 * it (its first chunk lies past 254 bin pointers), chunks, and glibc's fencepost pair where an
 * older heap ends.
 */
static void test_heap_census_arena_heap_with_fencepost(void **state)
{
	static uint8_t buf[16384];
	struct fake f = { 0x7f0000000000ull, buf, sizeof(buf) };
	struct census_region r = { f.base, f.base + f.len, CENSUS_ARENA_HEAP };
	const uint64_t first = f.base + 2256, used = 12288;
	struct heap_census c = { 0 };
	struct seen s = { 0 };

	(void)state;
	memset(buf, 0xff, sizeof(buf)); /* the arena's bins: impossible sizes */
	put(&f, f.base, f.base + 48);	/* ar_ptr: this heap holds the arena */
	put(&f, f.base + 8, 0);
	put(&f, f.base + 16, used);
	header(&f, first, 64 | 1 | 4);
	header(&f, first + 64, (used - 2256 - 64 - 32) | 1 | 4); /* free: the fencepost says so */
	header(&f, used + f.base - 32, 16 | 0);
	header(&f, used + f.base - 16, 0 | 1);
	assert_int_equal(heap_census__region(&r, fake_read, &f, on_chunk, &s, &c), 0);
	assert_int_equal(c.damaged, 0);
	assert_int_equal(c.arenas, 1);
	assert_int_equal(c.heaps, 1);
	assert_int_equal(c.arena_bytes, used);
	assert_int_equal(c.inuse_chunks, 1);
	assert_int_equal(c.free_bytes, used - 2256 - 64 - 32);
	/* heap_info, the arena and the fenceposts are not free: in use for mallinfo2. */
	assert_int_equal(c.inuse_bytes, used - c.free_bytes);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.mem[0], first + 16);
}

static void test_heap_census_mmapped_chunks_back_to_back(void **state)
{
	static uint8_t buf[5 * 4096];
	struct fake f = { 0x7f1234560000ull, buf, sizeof(buf) };
	struct census_region r = { f.base, f.base + f.len, CENSUS_ANON };
	struct heap_census c = { 0 };
	struct seen s = { 0 };

	(void)state;
	memset(buf, 0, sizeof(buf));
	header(&f, f.base, 2 * 4096 | 2);
	header(&f, f.base + 2 * 4096, 2 * 4096 | 2);
	header(&f, f.base + 4 * 4096, 4096 | 2 | 4); /* NON_MAIN_ARENA: not an mmapped chunk */
	assert_int_equal(heap_census__region(&r, fake_read, &f, on_chunk, &s, &c), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.mmapped, 2);
	/* An mmapped chunk's mem + size is its mapping's end, the next chunk's header. */
	assert_int_equal(s.mem[0] + s.size[0], f.base + 2 * 4096);
	assert_int_equal(s.mem[1] + s.size[1], f.base + 4 * 4096);
	assert_int_equal(c.mmapped_chunks, 2);
	assert_int_equal(c.mmapped_bytes, 4 * 4096);
	assert_int_equal(c.inuse_bytes, 4 * 4096);
	assert_int_equal(c.arenas, 0);
}

static void test_heap_census_classify(void **state)
{
	(void)state;
	assert_int_equal(heap_census__classify(0x555500001000ull, "[heap]"), CENSUS_MAIN_HEAP);
	assert_int_equal(heap_census__classify(0x7f0004000000ull, ""), CENSUS_ARENA_HEAP);
	assert_int_equal(heap_census__classify(0x7f0004001000ull, ""), CENSUS_ANON);
}

#define KEEP 3000

static void *arena_thread(void *arg)
{
	void **keep = arg;
	size_t i;

	/* A second thread gets an arena of its own: heaps mmapped at 64 MiB boundaries. */
	for (i = 0; i < 500; i++)
		keep[i] = malloc(24 + i * 40);
	for (i = 0; i < 500; i += 3)
		free(keep[i]);
	return NULL;
}

/*
 * The census of this very process, read as memscoped reads a target (process_vm_readv),
 * against glibc's own mallinfo2(). Fastbin chunks are in use by their headers but free for
 * mallinfo2 (fsmblks): the census counts them in use.
 */
static void test_heap_census_matches_mallinfo2_of_this_process(void **state)
{
	static void *keep[KEEP], *other[500], *big[3];
	struct heap_census c = { 0 };
	struct mallinfo2 mi;
	pthread_t th;
	size_t i;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, arena_thread, other), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	for (i = 0; i < KEEP; i++)
		keep[i] = malloc(16 + (i * 7919) % 5000);
	for (i = 0; i < KEEP; i += 4)
		free(keep[i]);
	for (i = 0; i < 3; i++)
		big[i] = malloc((256 << 10) << i); /* over the mmap threshold */
	assert_int_equal(heap_census__pid(getpid(), NULL, NULL, &c), 0);
	mi = mallinfo2();
	assert_int_equal(c.damaged, 0);
#ifndef __SANITIZE_ADDRESS__
	/* (Under ASan malloc is ASan's own and glibc's arenas hold next to nothing.) */
	assert_true(c.arenas >= 2);
	assert_int_equal(c.arena_bytes, mi.arena);
	assert_int_equal(c.mmapped_bytes, mi.hblkhd);
	assert_int_equal(c.mmapped_chunks, mi.hblks);
	assert_int_equal(c.inuse_bytes, mi.uordblks + mi.hblkhd + mi.fsmblks);
	assert_int_equal(c.free_bytes, mi.fordblks - mi.fsmblks);
#else
	(void)mi;
#endif
	for (i = 0; i < 3; i++)
		free(big[i]);
	for (i = 1; i < KEEP; i++)
		if (i % 4)
			free(keep[i]);
	for (i = 0; i < 500; i++)
		if (i % 3)
			free(other[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heap_census_main_heap_chunks_and_top),
		cmocka_unit_test(test_heap_census_damaged_chain_adds_nothing),
		cmocka_unit_test(test_heap_census_arena_heap_with_fencepost),
		cmocka_unit_test(test_heap_census_mmapped_chunks_back_to_back),
		cmocka_unit_test(test_heap_census_classify),
		cmocka_unit_test(test_heap_census_matches_mallinfo2_of_this_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
