// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "retained.h"

#define BASE 0x10000ull
#define MEM 4096

/* A fake target: its memory at BASE. */
static uint8_t memory[MEM];

static int fake_read(void *ctx, uint64_t addr, void *out, size_t len)
{
	(void)ctx;
	if (addr < BASE || addr + len > BASE + MEM)
		return -EFAULT;
	memcpy(out, memory + (addr - BASE), len);
	return 0;
}

static void put(uint64_t addr, uint64_t v)
{
	memcpy(memory + (addr - BASE), &v, 8);
}

static const struct retained_limits wide = { 64, 1 << 20, 1 << 20, 1 << 20 };

static void test_retained_chunk_of_interior_pointers(void **state)
{
	const struct retained_chunk c[] = { { BASE, 32 }, { BASE + 64, 16 } };

	(void)state;
	assert_int_equal(retained__chunk_of(c, 2, BASE), 0);
	assert_int_equal(retained__chunk_of(c, 2, BASE + 31), 0);
	assert_int_equal(retained__chunk_of(c, 2, BASE + 32), -1);
	assert_int_equal(retained__chunk_of(c, 2, BASE + 70), 1);
	assert_int_equal(retained__chunk_of(c, 2, BASE + 80), -1);
	assert_int_equal(retained__chunk_of(c, 2, BASE - 1), -1);
	assert_int_equal(retained__chunk_of(c, 0, BASE), -1);
}

/*
 * Two task cells (A at 0, B at 256). A -> x (512) -> y (640); B -> z (768); both -> s (896).
 * u (1024) is reached by nobody. A's cell also points at B's cell: not counted, not walked.
 */
static void test_retained_exclusive_inclusive_and_unreached(void **state)
{
	const struct retained_chunk c[] = {
		{ BASE, 128 },	    { BASE + 256, 128 }, { BASE + 512, 64 },  { BASE + 640, 32 },
		{ BASE + 768, 48 }, { BASE + 896, 100 }, { BASE + 1024, 80 },
	};
	const struct retained_root roots[] = { { BASE, BASE + 128, 0 },
					       { BASE + 256, BASE + 384, 0 } };
	struct retained_figures figs[2];
	struct retained_result r = { .roots = figs };

	(void)state;
	memset(memory, 0, sizeof(memory));
	put(BASE + 8, BASE + 520);   /* A -> x (interior) */
	put(BASE + 16, BASE + 900);  /* A -> s */
	put(BASE + 24, BASE + 256);  /* A -> B's cell */
	put(BASE + 512, BASE + 640); /* x -> y */
	put(BASE + 264, BASE + 768); /* B -> z */
	put(BASE + 776, BASE + 896); /* z -> s */
	put(BASE + 640, BASE + 512); /* y -> x: a cycle */
	assert_int_equal(retained__compute(c, 7, roots, 2, &wide, fake_read, NULL, &r), 0);
	assert_int_equal(figs[0].exclusive, 64 + 32);
	assert_int_equal(figs[0].inclusive, 64 + 32 + 100);
	assert_int_equal(figs[1].exclusive, 48);
	assert_int_equal(figs[1].inclusive, 48 + 100);
	assert_int_equal(figs[0].truncated, 0);
	assert_int_equal(r.unreached_bytes, 80);
	assert_int_equal(r.unreached_chunks, 1);
}

/* The skipped word (the scheduler handle) and misaligned words keep nothing. */
static void test_retained_skip_and_alignment(void **state)
{
	const struct retained_chunk c[] = { { BASE, 64 }, { BASE + 128, 64 }, { BASE + 256, 64 } };
	const struct retained_root root = { BASE, BASE + 64, BASE + 8 };
	struct retained_figures fig;
	struct retained_result r = { .roots = &fig };
	uint64_t v = BASE + 256;

	(void)state;
	memset(memory, 0, sizeof(memory));
	put(BASE + 8, BASE + 128);
	memcpy(memory + 20, &v, 8); /* at BASE + 20: not aligned */
	assert_int_equal(retained__compute(c, 3, &root, 1, &wide, fake_read, NULL, &r), 0);
	assert_int_equal(fig.inclusive, 0);
	assert_int_equal(r.unreached_bytes, 128);
}

/* A chain deeper than max_depth: counted up to the bound, and said to be truncated. */
static void test_retained_depth_bound(void **state)
{
	struct retained_chunk c[9];
	const struct retained_root root = { BASE, BASE + 64, 0 };
	const struct retained_limits shallow = { 3, 1 << 20, 1 << 20, 1 << 20 };
	struct retained_figures fig;
	struct retained_result r = { .roots = &fig };
	int i;

	(void)state;
	memset(memory, 0, sizeof(memory));
	for (i = 0; i < 9; i++) {
		c[i] = (struct retained_chunk){ BASE + (uint64_t)i * 128, 64 };
		if (i < 8)
			put(BASE + (uint64_t)i * 128, BASE + (uint64_t)(i + 1) * 128);
	}
	assert_int_equal(retained__compute(c, 9, &root, 1, &shallow, fake_read, NULL, &r), 0);
	assert_int_equal(fig.inclusive, 3 * 64);
	assert_int_equal(fig.truncated, 1);
	assert_int_equal(r.roots_truncated, 1);
	assert_int_equal(retained__compute(c, 9, &root, 1, &wide, fake_read, NULL, &r), 0);
	assert_int_equal(fig.inclusive, 8 * 64);
	assert_int_equal(fig.truncated, 0);
}

/* Unreadable memory holds no pointer; a read budget stops the walk and says so. */
static void test_retained_unreadable_and_budget(void **state)
{
	const struct retained_chunk c[] = { { BASE, 64 },
					    { BASE + 128, 64 },
					    { BASE + MEM + 64, 64 } };
	const struct retained_root root = { BASE, BASE + 64, 0 };
	const struct retained_limits tight = { 64, 64, 1 << 20, 1 << 20 };
	struct retained_figures fig;
	struct retained_result r = { .roots = &fig };

	(void)state;
	memset(memory, 0, sizeof(memory));
	put(BASE, BASE + MEM + 64); /* -> a chunk outside the readable memory */
	put(BASE + 8, BASE + 128);
	put(BASE + 128, BASE + 4000); /* a pointer to no chunk */
	assert_int_equal(retained__compute(c, 3, &root, 1, &wide, fake_read, NULL, &r), 0);
	assert_int_equal(fig.inclusive, 128);
	assert_int_equal(fig.truncated, 0);
	/* 64 bytes of budget: the cell is read, the chunks it reaches are not. */
	assert_int_equal(retained__compute(c, 3, &root, 1, &tight, fake_read, NULL, &r), 0);
	assert_int_equal(fig.inclusive, 128);
	assert_int_equal(fig.truncated, 1);
	assert_int_equal(r.scanned_bytes, 64);
}

/* Leak candidates: one walk from every range; what no range reaches is a candidate. */
static void test_retained_reach_from_ranges(void **state)
{
	const struct retained_chunk c[] = {
		{ BASE + 512, 64 }, { BASE + 640, 64 }, { BASE + 768, 64 }, { BASE + 896, 64 }
	};
	/* Two "globals" ranges: one points at the first chunk, the other at the second. */
	const struct retained_root ranges[] = { { BASE, BASE + 16, 0 },
						{ BASE + 256, BASE + 272, 0 } };
	struct retained_figures fig;
	uint8_t reached[4];

	(void)state;
	memset(memory, 0, sizeof(memory));
	put(BASE + 8, BASE + 512);
	put(BASE + 256, BASE + 650); /* interior */
	put(BASE + 648, BASE + 768); /* the second chunk keeps the third */
	put(BASE + 896, BASE + 512); /* the fourth points at the first: still a leak */
	assert_int_equal(retained__reach(c, 4, ranges, 2, &wide, fake_read, NULL, reached, &fig),
			 0);
	assert_int_equal(reached[0], 1);
	assert_int_equal(reached[1], 1);
	assert_int_equal(reached[2], 1);
	assert_int_equal(reached[3], 0);
	assert_int_equal(fig.exclusive, 64);
	assert_int_equal(fig.inclusive, 192);
	assert_int_equal(fig.truncated, 0);
}

/*
 * A span shorter than the size (an mmapped chunk: its mapping ends 16 bytes before mem + size)
 * is all a pointer holds it by and all that is scanned, in both walks. h (512) is a heap chunk:
 * a pointer to its end (the next chunk's header) still holds it. m (1024) counts 528 bytes but
 * spans 512: a pointer to its end (the next mapping) does not hold it, and the word there is
 * not m's to scan.
 */
static void test_retained_span_ends_the_chunk(void **state)
{
	const struct retained_chunk c[] = {
		{ BASE + 256, 64, 0 },	   /* a task's cell */
		{ BASE + 512, 64, 0 },	   /* h */
		{ BASE + 1024, 528, 512 }, /* m */
		{ BASE + 2048, 64, 0 },	   /* n: only the word past m's span points to it */
	};
	const struct retained_root globals = { BASE, BASE + 16, 0 },
				   cell = { BASE + 256, BASE + 320, 0 };
	const struct retained_root inside = { BASE + 128, BASE + 136, 0 };
	struct retained_figures fig, figs[1];
	struct retained_result r = { .roots = figs };
	uint8_t reached[4];

	(void)state;
	assert_int_equal(retained__chunk_of(c, 4, BASE + 1024 + 511), 2);
	assert_int_equal(retained__chunk_of(c, 4, BASE + 1024 + 512), -1);
	assert_int_equal(retained__chunk_of(c, 4, BASE + 512 + 48), 1);
	memset(memory, 0, sizeof(memory));
	put(BASE, BASE + 1024 + 512);	    /* m's end */
	put(BASE + 8, BASE + 512 + 48);	    /* h's end */
	put(BASE + 256, BASE + 1024 + 512); /* the same from the cell */
	put(BASE + 264, BASE + 512 + 48);
	put(BASE + 1024 + 512, BASE + 2048);
	assert_int_equal(retained__reach(c, 4, &globals, 1, &wide, fake_read, NULL, reached, &fig),
			 0);
	assert_int_equal(reached[1], 1);
	assert_int_equal(reached[2], 0);
	assert_int_equal(fig.inclusive, 64);
	assert_int_equal(fig.exclusive, 64 + 528 + 64);
	assert_int_equal(retained__compute(c, 4, &cell, 1, &wide, fake_read, NULL, &r), 0);
	assert_int_equal(figs[0].inclusive, 64);
	assert_int_equal(figs[0].exclusive, 64);
	assert_int_equal(r.unreached_bytes, 528 + 64);
	assert_int_equal(r.unreached_chunks, 2);
	/* m reached from inside: read up to its span, so n stays unreached. */
	put(BASE + 128, BASE + 1024 + 8);
	assert_int_equal(retained__reach(c, 4, &inside, 1, &wide, fake_read, NULL, reached, &fig),
			 0);
	assert_int_equal(reached[2], 1);
	assert_int_equal(reached[3], 0);
	assert_int_equal(fig.inclusive, 528);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retained_chunk_of_interior_pointers),
		cmocka_unit_test(test_retained_exclusive_inclusive_and_unreached),
		cmocka_unit_test(test_retained_skip_and_alignment),
		cmocka_unit_test(test_retained_depth_bound),
		cmocka_unit_test(test_retained_unreadable_and_budget),
		cmocka_unit_test(test_retained_reach_from_ranges),
		cmocka_unit_test(test_retained_span_ends_the_chunk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
