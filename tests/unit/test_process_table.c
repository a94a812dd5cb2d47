// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "process_table.h"

#define A 0x10000
#define B 0x20000
#define C 0x30000

static void namer(uint32_t pid, uint32_t tid, char comm[COMM_LEN])
{
	snprintf(comm, COMM_LEN, "t%u.%u", pid, tid);
}

/* The table of the running test, freed by the teardown even when an assertion fails. */
static struct process_table *current;

static struct process_table *new_table(size_t max_allocations, size_t max_threads)
{
	struct process_limits limits = { .max_allocations = max_allocations,
					 .max_threads = max_threads };

	current = process_table__new(&limits, namer);
	assert_non_null(current);
	return current;
}

static int free_table(void **state)
{
	(void)state;
	process_table__free(current);
	current = NULL;
	return 0;
}

static struct process *new_process(struct process_table *pt)
{
	struct process *p = process_table__add(pt, 100, "target", "/bin/target");

	assert_non_null(p);
	return p;
}

/* A macro, so a failure points at the test's line. */
#define assert_heap(p, bytes, allocs, allocs_total, frees, frees_untracked)         \
	do {                                                                        \
		assert_int_equal((p)->heap.live_bytes, bytes);                      \
		assert_int_equal((p)->heap.live_allocations, allocs);               \
		assert_int_equal((p)->heap.allocations_total, allocs_total);        \
		assert_int_equal((p)->heap.frees_total, frees);                     \
		assert_int_equal((p)->heap.frees_untracked_total, frees_untracked); \
		assert_int_equal(heap_table__count((p)->blocks), allocs);           \
	} while (0)

static void assert_block(const struct process *p, uint64_t addr, uint64_t size, uint32_t tid)
{
	struct heap_block b;

	assert_true(heap_table__lookup(p->blocks, addr, &b));
	assert_int_equal(b.size, size);
	assert_int_equal(b.tid, tid);
}

static void assert_no_block(const struct process *p, uint64_t addr)
{
	struct heap_block b;

	assert_false(heap_table__lookup(p->blocks, addr, &b));
}

static void test_process_table_add_find(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt), *q;

	(void)state;
	q = process_table__add(pt, 200, "a-very-long-command-name", NULL);
	assert_non_null(q);
	assert_ptr_equal(process_table__find(pt, 100), p);
	assert_ptr_equal(process_table__find(pt, 200), q);
	assert_null(process_table__find(pt, 300));
	assert_int_equal(process_table__count(pt), 2);
	assert_ptr_equal(process_table__at(pt, 1), q);
	assert_null(process_table__at(pt, 2));
	assert_string_equal(p->exe, "/bin/target");
	assert_string_equal(q->exe, "");
	assert_string_equal(q->comm, "a-very-long-com"); /* COMM_LEN - 1 */
	assert_true(process__complete(p));
}

static int freed_states;

static void free_state(void *state)
{
	freed_states++;
	free(state);
}

/* Runtimes keep opaque state in a process: found by key, replaced, freed by their function. */
static void test_process_runtime_state_slots(void **state)
{
	static const char keys[PROCESS_RUNTIME_SLOTS + 1];
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);
	size_t i;

	(void)state;
	freed_states = 0;
	assert_null(process__state(p, &keys[0]));
	assert_int_equal(process__set_state(p, &keys[0], malloc(8), free_state), 0);
	assert_non_null(process__state(p, &keys[0]));
	/* Replacing frees the old state; NULL removes it. */
	assert_int_equal(process__set_state(p, &keys[0], malloc(8), free_state), 0);
	assert_int_equal(freed_states, 1);
	assert_int_equal(process__set_state(p, &keys[0], NULL, NULL), 0);
	assert_int_equal(freed_states, 2);
	assert_null(process__state(p, &keys[0]));
	for (i = 0; i < PROCESS_RUNTIME_SLOTS; i++)
		assert_int_equal(process__set_state(p, &keys[i], malloc(8), free_state), 0);
	/* Full: the new state is freed, nothing else changes. */
	assert_int_equal(process__set_state(p, &keys[PROCESS_RUNTIME_SLOTS], malloc(8), free_state),
			 -ENOSPC);
	assert_int_equal(freed_states, 3);
	assert_null(process__state(p, &keys[PROCESS_RUNTIME_SLOTS]));
	/* The process frees what is left with itself. */
	process_table__free(pt);
	current = NULL;
	assert_int_equal(freed_states, 3 + PROCESS_RUNTIME_SLOTS);
}

static void test_process_alloc_and_free(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);
	struct thread_stats *t;

	(void)state;
	process__alloc(p, 1, A, 100, 0, 3);
	process__alloc(p, 1, B, 50, 0, 3);
	process__freed(p, 1, A, 0);
	assert_heap(p, 50, 1, 2, 1, 0);
	assert_int_equal(p->heap.allocated_bytes_total, 150);
	assert_no_block(p, A);
	assert_block(p, B, 50, 1);

	t = process__thread(p, 1);
	assert_string_equal(t->comm, "t100.1");
	assert_int_equal(t->live_bytes, 50);
	assert_int_equal(t->live_allocations, 1);
	assert_int_equal(t->allocated_bytes_total, 150);
	assert_int_equal(t->allocations_total, 2);
}

static void test_process_alloc_null_is_failure(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);

	(void)state;
	process__alloc(p, 1, 0, 100, 0, 0);
	assert_heap(p, 0, 0, 0, 0, 0);
	assert_int_equal(p->heap.allocation_failures_total, 1);
	assert_int_equal(p->heap.allocated_bytes_total, 0);
}

static void test_process_realloc_moves_block(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);
	struct thread_stats *t;

	(void)state;
	process__alloc(p, 1, A, 100, 0, 0);
	process__realloc_begin(p, 1, A);
	process__realloc_end(p, 1, A, B, 300, 0, 0);
	assert_heap(p, 300, 1, 2, 1, 0);
	assert_int_equal(p->heap.allocated_bytes_total, 400);
	assert_no_block(p, A);
	assert_block(p, B, 300, 1);
	t = process__thread(p, 1);
	assert_int_equal(t->live_bytes, 300);
	assert_int_equal(t->live_allocations, 1);
	assert_int_equal(t->allocations_total, 2);
	assert_false(t->realloc_pending);
	assert_true(process__complete(p));
}

static void test_process_realloc_in_place_shrinks(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);

	(void)state;
	process__alloc(p, 1, A, 100, 0, 0);
	process__realloc_begin(p, 1, A);
	process__realloc_end(p, 1, A, A, 40, 0, 0);
	assert_heap(p, 40, 1, 2, 1, 0);
	assert_block(p, A, 40, 1);
	assert_int_equal(p->blocks_replaced, 0);
}

static void test_process_realloc_failed_keeps_old_block(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);
	struct thread_stats *t;

	(void)state;
	process__alloc(p, 1, A, 100, 0, 0);
	process__realloc_begin(p, 1, A);
	process__realloc_end(p, 1, A, 0, 1ull << 40, 0, 0);
	assert_heap(p, 100, 1, 1, 0, 0);
	assert_int_equal(p->heap.allocation_failures_total, 1);
	assert_block(p, A, 100, 1);
	t = process__thread(p, 1);
	assert_int_equal(t->live_bytes, 100);
	assert_int_equal(t->live_allocations, 1);
}

static void test_process_realloc_to_zero_frees(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);

	(void)state;
	process__alloc(p, 1, A, 100, 0, 0);
	process__realloc_begin(p, 1, A);
	process__realloc_end(p, 1, A, 0, 0, 0, 0);
	assert_heap(p, 0, 0, 1, 1, 0);
	assert_int_equal(p->heap.allocation_failures_total, 0);
	assert_int_equal(process__thread(p, 1)->live_bytes, 0);
}

/* realloc(NULL, n) has no begin event (the probe only emits one for addr != 0). */
static void test_process_realloc_null_is_alloc(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);

	(void)state;
	process__realloc_end(p, 1, 0, A, 64, 0, 0);
	assert_heap(p, 64, 1, 1, 0, 0);
	assert_block(p, A, 64, 1);
}

static void test_process_realloc_untracked_block(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);

	(void)state;
	process__realloc_begin(p, 1, A); /* allocated before attach */
	process__realloc_end(p, 1, A, B, 64, 0, 0);
	assert_heap(p, 64, 1, 1, 0, 1);
	assert_block(p, B, 64, 1);
}

static void test_process_realloc_end_without_begin(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);

	(void)state;
	process__alloc(p, 1, A, 100, 0, 0);
	process__alloc(p, 1, B, 10, 0, 0);
	/* Lost begin, realloc moved A to C. */
	process__realloc_end(p, 1, A, C, 200, 0, 0);
	assert_heap(p, 210, 2, 3, 1, 0);
	assert_no_block(p, A);
	assert_block(p, C, 200, 1);
	/* Lost begin, realloc of B failed: B stays. */
	process__realloc_end(p, 1, B, 0, 20, 0, 0);
	assert_heap(p, 210, 2, 3, 1, 0);
	assert_int_equal(p->heap.allocation_failures_total, 1);
	assert_block(p, B, 10, 1);
	/* A begin for another block does not match this end. */
	process__realloc_begin(p, 1, C);
	process__realloc_end(p, 1, B, 0, 0, 0, 0);
	assert_no_block(p, B);
	assert_int_equal(p->heap.frees_total, 2);
}

static void test_process_free_unknown_changes_nothing_else(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);
	struct heap_stats before;
	size_t nthreads;

	(void)state;
	process__alloc(p, 1, A, 100, 0, 0);
	before = p->heap;
	nthreads = p->nthreads;
	process__freed(p, 2, B, 0);
	before.frees_untracked_total++;
	assert_memory_equal(&p->heap, &before, sizeof(before));
	assert_int_equal(p->nthreads, nthreads);
	assert_block(p, A, 100, 1);
	assert_true(process__complete(p));
}

static void test_process_alloc_at_live_address_replaces(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);

	(void)state;
	process__alloc(p, 1, A, 100, 0, 0);
	process__alloc(p, 2, A, 40, 0, 0); /* the free of A was lost */
	assert_int_equal(p->blocks_replaced, 1);
	assert_heap(p, 40, 1, 2, 0, 0);
	assert_block(p, A, 40, 2);
	assert_int_equal(process__thread(p, 1)->live_bytes, 0);
	assert_int_equal(process__thread(p, 1)->live_allocations, 0);
	assert_int_equal(process__thread(p, 2)->live_bytes, 40);
	assert_int_equal(process__thread(p, 2)->live_allocations, 1);
	assert_false(process__complete(p));
}

static void test_process_free_by_other_thread(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);
	struct thread_stats *t;

	(void)state;
	process__alloc(p, 1, A, 100, 0, 0);
	process__alloc(p, 2, B, 30, 0, 0);
	process__freed(p, 2, A, 0);
	t = process__thread(p, 1);
	assert_int_equal(t->live_bytes, 0);
	assert_int_equal(t->live_allocations, 0);
	assert_int_equal(t->allocated_bytes_total, 100);
	assert_int_equal(t->allocations_total, 1);
	t = process__thread(p, 2);
	assert_int_equal(t->live_bytes, 30);
	assert_int_equal(t->live_allocations, 1);
	assert_heap(p, 30, 1, 2, 1, 0);
}

static void test_process_many_threads(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);
	uint32_t tid;

	(void)state;
	for (tid = 1; tid <= 1000; tid++)
		process__alloc(p, tid * 7, tid * 16, tid, 0, 0);
	assert_int_equal(p->nthreads, 1000);
	for (tid = 1; tid <= 1000; tid++) {
		struct thread_stats *t = process__thread(p, tid * 7);

		assert_int_equal(t->tid, tid * 7);
		assert_int_equal(t->live_bytes, tid);
		assert_int_equal(p->threads[tid - 1].tid, tid * 7); /* order of first appearance */
	}
	assert_int_equal(p->nthreads, 1000);
}

static void test_process_max_threads_counts_dropped(void **state)
{
	struct process_table *pt = new_table(0, 2);
	struct process *p = new_process(pt);

	(void)state;
	process__alloc(p, 1, A, 10, 0, 0);
	process__alloc(p, 2, B, 20, 0, 0);
	process__alloc(p, 3, C, 30, 0, 0);
	assert_int_equal(p->nthreads, 2);
	assert_int_equal(p->thread_events_dropped, 1);
	assert_null(process__thread(p, 3));
	/* The process figures still count the untracked thread's block. */
	process__freed(p, 1, C, 0);
	assert_heap(p, 30, 2, 3, 1, 0);
	assert_int_equal(process__thread(p, 1)->live_bytes, 10);
	assert_int_equal(process__thread(p, 2)->live_bytes, 20);
	assert_false(process__complete(p));
}

/* A thread over --max-threads has no realloc state: the old block must be freed once only. */
static void test_process_realloc_on_dropped_thread(void **state)
{
	struct process_table *pt = new_table(0, 1);
	struct process *p = new_process(pt);

	(void)state;
	process__alloc(p, 1, A, 10, 0, 0);
	process__alloc(p, 2, B, 20, 0, 0);
	process__realloc_begin(p, 2, B);
	process__realloc_end(p, 2, B, C, 40, 0, 0);
	assert_heap(p, 50, 2, 3, 1, 0);
	assert_no_block(p, B);
	assert_block(p, C, 40, 2);
}

static void test_process_max_allocations_counts_dropped(void **state)
{
	struct process_table *pt = new_table(2, 0);
	struct process *p = new_process(pt);

	(void)state;
	process__alloc(p, 1, A, 10, 0, 0);
	process__alloc(p, 1, B, 20, 0, 0);
	process__alloc(p, 1, C, 30, 0, 0);
	assert_int_equal(p->blocks_dropped, 1);
	assert_heap(p, 30, 2, 3, 0, 0);
	assert_int_equal(p->heap.allocated_bytes_total, 60);
	assert_false(process__complete(p));
}

static void test_process_complete(void **state)
{
	struct process_table *pt = new_table(0, 0);
	struct process *p = new_process(pt);

	(void)state;
	process__alloc(p, 1, A, 10, 0, 0);
	process__freed(p, 1, B, 0); /* an untracked free is expected, not an inconsistency */
	process__alloc_failed(p);
	assert_true(process__complete(p));
	p->thread_events_dropped = 1;
	assert_false(process__complete(p));
	p->thread_events_dropped = 0;
	p->blocks_dropped = 1;
	assert_false(process__complete(p));
	p->blocks_dropped = 0;
	p->blocks_replaced = 1;
	assert_false(process__complete(p));
	p->blocks_replaced = 0;
	/* A forked child's calls before its probes: counted missed, or not countable. */
	p->fork_window_missed = 3;
	assert_false(process__complete(p));
	p->fork_window_missed = 0;
	p->fork_window_uncounted = true;
	assert_false(process__complete(p));
	p->fork_window_uncounted = false;
	assert_true(process__complete(p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_process_table_add_find, free_table),
		cmocka_unit_test(test_process_runtime_state_slots),
		cmocka_unit_test_teardown(test_process_alloc_and_free, free_table),
		cmocka_unit_test_teardown(test_process_alloc_null_is_failure, free_table),
		cmocka_unit_test_teardown(test_process_realloc_moves_block, free_table),
		cmocka_unit_test_teardown(test_process_realloc_in_place_shrinks, free_table),
		cmocka_unit_test_teardown(test_process_realloc_failed_keeps_old_block, free_table),
		cmocka_unit_test_teardown(test_process_realloc_to_zero_frees, free_table),
		cmocka_unit_test_teardown(test_process_realloc_null_is_alloc, free_table),
		cmocka_unit_test_teardown(test_process_realloc_untracked_block, free_table),
		cmocka_unit_test_teardown(test_process_realloc_end_without_begin, free_table),
		cmocka_unit_test_teardown(test_process_free_unknown_changes_nothing_else,
					  free_table),
		cmocka_unit_test_teardown(test_process_alloc_at_live_address_replaces, free_table),
		cmocka_unit_test_teardown(test_process_free_by_other_thread, free_table),
		cmocka_unit_test_teardown(test_process_many_threads, free_table),
		cmocka_unit_test_teardown(test_process_max_threads_counts_dropped, free_table),
		cmocka_unit_test_teardown(test_process_realloc_on_dropped_thread, free_table),
		cmocka_unit_test_teardown(test_process_max_allocations_counts_dropped, free_table),
		cmocka_unit_test_teardown(test_process_complete, free_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
