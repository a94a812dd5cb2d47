// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "heap_table.h"

#define MANY 1000000

static struct heap_block block(uint64_t addr, uint64_t size, uint32_t tid)
{
	return (struct heap_block){
		.addr = addr, .size = size, .tid = tid, .task = tid + 1, .time_cs = 7
	};
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A bijection on 44 bits, so distinct i give distinct, scattered, 16-aligned addresses. */
static uint64_t random_addr(uint64_t i)
{
	const uint64_t m = (1ull << 44) - 1;
	uint64_t x = i & m;

	x ^= x >> 23;
	x = (x * 0x2545f4914f6cdd1dull) & m;
	x ^= x >> 19;
	x = (x * 0x5851f42d4c957f2dull) & m;
	x ^= x >> 21;
	return x << 4;
}

static uint64_t size_of(uint64_t i)
{
	return (i * 2654435761u) % 100000 + 1;
}

static void test_heap_table_insert_lookup_remove(void **state)
{
	struct heap_table *h = heap_table__new(0);
	struct heap_block b = block(0x1000, 64, 5), got;

	(void)state;
	assert_non_null(h);
	assert_false(heap_table__lookup(h, 0x1000, &got));
	assert_int_equal(heap_table__insert(h, &b, NULL), 0);
	assert_int_equal(heap_table__count(h), 1);
	assert_true(heap_table__lookup(h, 0x1000, &got));
	assert_int_equal(got.addr, 0x1000);
	assert_int_equal(got.size, 64);
	assert_int_equal(got.tid, 5);
	assert_int_equal(got.task, 6);
	assert_int_equal(got.time_cs, 7);
	assert_false(heap_table__lookup(h, 0x1010, &got));

	assert_true(heap_table__remove(h, 0x1000, &got));
	assert_int_equal(got.size, 64);
	assert_int_equal(heap_table__count(h), 0);
	assert_false(heap_table__lookup(h, 0x1000, &got));
	heap_table__free(h);
}

static void test_heap_table_replace_returns_old(void **state)
{
	struct heap_table *h = heap_table__new(0);
	struct heap_block a = block(0x2000, 10, 1), b = block(0x2000, 20, 2), old, got;

	(void)state;
	assert_int_equal(heap_table__insert(h, &a, NULL), 0);
	assert_int_equal(heap_table__insert(h, &b, &old), 1);
	assert_int_equal(old.addr, 0x2000);
	assert_int_equal(old.size, 10);
	assert_int_equal(old.tid, 1);
	assert_int_equal(heap_table__count(h), 1);
	assert_true(heap_table__lookup(h, 0x2000, &got));
	assert_int_equal(got.size, 20);
	assert_int_equal(got.tid, 2);
	heap_table__free(h);
}

static void test_heap_table_remove_absent(void **state)
{
	struct heap_table *h = heap_table__new(0);
	struct heap_block a = block(0x3000, 10, 1), got = block(0xdead, 1, 1);

	(void)state;
	assert_false(heap_table__remove(h, 0x3000, NULL));
	assert_int_equal(heap_table__insert(h, &a, NULL), 0);
	assert_false(heap_table__remove(h, 0x3010, &got));
	assert_int_equal(got.addr, 0xdead); /* untouched */
	assert_false(heap_table__remove(h, 0, NULL));
	assert_int_equal(heap_table__count(h), 1);
	assert_true(heap_table__lookup(h, 0x3000, &got));
	heap_table__free(h);
}

static void test_heap_table_null_address_rejected(void **state)
{
	struct heap_table *h = heap_table__new(0);
	struct heap_block z = block(0, 10, 1), got;

	(void)state;
	assert_int_equal(heap_table__insert(h, &z, NULL), -EINVAL);
	assert_int_equal(heap_table__count(h), 0);
	assert_false(heap_table__lookup(h, 0, &got));
	heap_table__free(h);
}

static void test_heap_table_many_random_backward_shift(void **state)
{
	struct heap_table *h = heap_table__new(0);
	uint64_t *idx = malloc(MANY * sizeof(*idx)), seed = 42, i, j, t;
	struct heap_block b, got;

	(void)state;
	assert_non_null(h);
	assert_non_null(idx);
	for (i = 0; i < MANY; i++) {
		b = block(random_addr(i + 1), size_of(i + 1), (uint32_t)i);
		assert_int_equal(heap_table__insert(h, &b, NULL), 0);
		idx[i] = i + 1;
	}
	assert_int_equal(heap_table__count(h), MANY);

	/* Fisher-Yates: the first half of idx is removed, in random order. */
	for (i = MANY - 1; i > 0; i--) {
		j = splitmix64(&seed) % (i + 1);
		t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
	for (i = 0; i < MANY / 2; i++) {
		assert_true(heap_table__remove(h, random_addr(idx[i]), &got));
		assert_int_equal(got.size, size_of(idx[i]));
	}
	assert_int_equal(heap_table__count(h), MANY - MANY / 2);

	for (i = 0; i < MANY; i++) {
		bool found = heap_table__lookup(h, random_addr(idx[i]), &got);

		if (i < MANY / 2) {
			assert_false(found);
			continue;
		}
		assert_true(found);
		assert_int_equal(got.addr, random_addr(idx[i]));
		assert_int_equal(got.size, size_of(idx[i]));
		assert_int_equal(got.tid, idx[i] - 1);
	}
	free(idx);
	heap_table__free(h);
}

static void test_heap_table_max_blocks_bound(void **state)
{
	struct heap_table *h = heap_table__new(3);
	struct heap_block b;
	uint64_t a;

	(void)state;
	for (a = 1; a <= 3; a++) {
		b = block(a * 16, a, 1);
		assert_int_equal(heap_table__insert(h, &b, NULL), 0);
	}
	b = block(4 * 16, 4, 1);
	assert_int_equal(heap_table__insert(h, &b, NULL), -ENOSPC);
	assert_int_equal(heap_table__count(h), 3);
	assert_false(heap_table__lookup(h, 4 * 16, &b));

	/* Replacing a live address needs no room. */
	b = block(2 * 16, 99, 1);
	assert_int_equal(heap_table__insert(h, &b, NULL), 1);

	assert_true(heap_table__remove(h, 16, NULL));
	b = block(4 * 16, 4, 1);
	assert_int_equal(heap_table__insert(h, &b, NULL), 0);
	assert_int_equal(heap_table__count(h), 3);
	heap_table__free(h);
}

static void test_heap_table_size_and_time_saturate(void **state)
{
	struct heap_table *h = heap_table__new(0);
	struct heap_block b, got;

	(void)state;
	b = block(0x100, HEAP_TABLE_MAX_SIZE, 1);
	assert_int_equal(heap_table__insert(h, &b, NULL), 0);
	b = block(0x200, HEAP_TABLE_MAX_SIZE + 1, 1);
	assert_int_equal(heap_table__insert(h, &b, NULL), 0);
	b = block(0x300, UINT64_MAX, 1);
	b.time_cs = UINT32_MAX;
	assert_int_equal(heap_table__insert(h, &b, NULL), 0);

	assert_true(heap_table__lookup(h, 0x100, &got));
	assert_int_equal(got.size, HEAP_TABLE_MAX_SIZE);
	assert_true(heap_table__lookup(h, 0x200, &got));
	assert_int_equal(got.size, HEAP_TABLE_MAX_SIZE);
	assert_true(heap_table__lookup(h, 0x300, &got));
	assert_int_equal(got.size, HEAP_TABLE_MAX_SIZE);
	/* Saturates rather than wrapping to a small age. */
	assert_int_equal(got.time_cs, HEAP_TABLE_MAX_TIME);
	heap_table__free(h);
}

struct visit {
	unsigned char *seen;
	size_t n;
	uint64_t bytes;
	size_t calls;
};

static void visit_block(const struct heap_block *b, void *ctx)
{
	struct visit *v = ctx;
	uint64_t i = b->addr / 16 - 1;

	v->calls++;
	if (i < v->n && b->size == i + 1)
		v->seen[i]++;
	v->bytes += b->size;
}

static void test_heap_table_foreach_visits_each_once(void **state)
{
	struct heap_table *h = heap_table__new(0);
	struct visit v = { .n = 5000 };
	struct heap_block b;
	size_t i;

	(void)state;
	v.seen = calloc(v.n, 1);
	assert_non_null(v.seen);
	for (i = 0; i < v.n; i++) {
		b = block((i + 1) * 16, i + 1, 1);
		assert_int_equal(heap_table__insert(h, &b, NULL), 0);
	}
	/* Holes left by removal must not be visited. */
	for (i = 0; i < v.n; i += 3)
		assert_true(heap_table__remove(h, (i + 1) * 16, NULL));
	heap_table__foreach(h, visit_block, &v);

	assert_int_equal(v.calls, heap_table__count(h));
	for (i = 0; i < v.n; i++)
		assert_int_equal(v.seen[i], i % 3 ? 1 : 0);
	free(v.seen);
	heap_table__free(h);
}

static void test_heap_table_memory_per_block(void **state)
{
	struct heap_table *h = heap_table__new(0);
	struct heap_block b;
	uint64_t i;

	(void)state;
	for (i = 1; i <= MANY; i++) {
		b = block(random_addr(i), size_of(i), 1);
		assert_int_equal(heap_table__insert(h, &b, NULL), 0);
		/* Past the initial capacity the bound holds after every insert, growth included. */
		if (i >= 1024)
			assert_true(heap_table__memory(h) <= 64 * i);
	}
	print_message("# heap_table: %zu bytes for %zu live blocks = %.1f bytes per block\n",
		      heap_table__memory(h), heap_table__count(h),
		      (double)heap_table__memory(h) / (double)heap_table__count(h));
	assert_true(heap_table__memory(h) / heap_table__count(h) <= 64);
	heap_table__free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heap_table_insert_lookup_remove),
		cmocka_unit_test(test_heap_table_replace_returns_old),
		cmocka_unit_test(test_heap_table_remove_absent),
		cmocka_unit_test(test_heap_table_null_address_rejected),
		cmocka_unit_test(test_heap_table_many_random_backward_shift),
		cmocka_unit_test(test_heap_table_max_blocks_bound),
		cmocka_unit_test(test_heap_table_size_and_time_saturate),
		cmocka_unit_test(test_heap_table_foreach_visits_each_once),
		cmocka_unit_test(test_heap_table_memory_per_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
