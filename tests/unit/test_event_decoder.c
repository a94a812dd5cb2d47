// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memscoped/events.h"
#include "event_decoder.h"

#define PID 4242
#define START_NS 1000000000000ull
#define X 0x7f0000001000ull
#define Y 0x7f0000002000ull
#define Z 0x7f0000003000ull

struct fixture {
	struct process_table *procs;
	struct process *p;
	struct event_decoder d;
};

static int setup(void **state)
{
	static struct fixture f;
	struct process_limits limits = { 0, 0 };

	memset(&f, 0, sizeof(f));
	f.procs = process_table__new(&limits, NULL);
	if (!f.procs)
		return -1;
	f.p = process_table__add(f.procs, PID, "target", "/bin/target");
	if (!f.p)
		return -1;
	f.p->start_ns = START_NS;
	f.d.procs = f.procs;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	process_table__free(f->procs);
	return 0;
}

static int feed(struct fixture *f, __u16 type, __u16 func, __u32 tid, __u64 addr, __u64 old_addr,
		__u64 size)
{
	struct ms_event e = {
		.type = type,
		.func = func,
		.pid = PID,
		.tid = tid,
		.ts = START_NS + 2500000000ull,
		.addr = addr,
		.old_addr = old_addr,
		.size = size,
	};

	return event_decoder__handle(&f->d, &e, sizeof(e));
}

/* An event of another process (pid), say a forked child's. */
static int feed_of(struct fixture *f, __u32 pid, __u16 type, __u64 addr)
{
	struct ms_event e = {
		.type = type,
		.pid = pid,
		.tid = pid,
		.ts = START_NS + 2500000000ull,
		.addr = addr,
	};

	return event_decoder__handle(&f->d, &e, sizeof(e));
}

static void alloc(struct fixture *f, __u16 func, __u32 tid, __u64 addr, __u64 old_addr, __u64 size)
{
	assert_int_equal(feed(f, MS_EV_ALLOC, func, tid, addr, old_addr, size), 0);
}

static void test_event_decoder_wrong_length(void **state)
{
	struct fixture *f = *state;
	unsigned char buf[sizeof(struct ms_event) + 1] = { 0 };

	assert_int_equal(event_decoder__handle(&f->d, buf, sizeof(struct ms_event) - 1), -EINVAL);
	assert_int_equal(event_decoder__handle(&f->d, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(event_decoder__handle(&f->d, buf, 0), -EINVAL);
	assert_int_equal(f->d.stats.received, 3);
	assert_int_equal(f->d.stats.malformed, 3);
	assert_int_equal(f->d.stats.unknown_pid, 0);
}

static void test_event_decoder_unknown_type(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(feed(f, 0, MS_FN_MALLOC, 1, X, 0, 8), -EINVAL);
	assert_int_equal(feed(f, 99, MS_FN_MALLOC, 1, X, 0, 8), -EINVAL);
	assert_int_equal(f->d.stats.received, 2);
	assert_int_equal(f->d.stats.malformed, 2);
	assert_int_equal(f->p->heap.allocations_total, 0);
	assert_int_equal(heap_table__count(f->p->blocks), 0);
}

static void test_event_decoder_unknown_pid(void **state)
{
	struct fixture *f = *state;
	struct ms_event e = { .type = MS_EV_ALLOC,
			      .func = MS_FN_MALLOC,
			      .pid = PID + 1,
			      .tid = 1,
			      .addr = X,
			      .size = 8 };

	assert_int_equal(event_decoder__handle(&f->d, &e, sizeof(e)), 0);
	assert_int_equal(f->d.stats.received, 1);
	assert_int_equal(f->d.stats.unknown_pid, 1);
	assert_int_equal(f->d.stats.malformed, 0);
	assert_int_equal(f->p->heap.allocations_total, 0);
	assert_int_equal(f->p->nthreads, 0);
}

static void test_event_decoder_sequence(void **state)
{
	struct fixture *f = *state;
	const struct process *p = f->p;
	struct heap_block b;

	alloc(f, MS_FN_MALLOC, 1, X, 0, 100);
	alloc(f, MS_FN_CALLOC, 1, Y, 0, 40);
	assert_int_equal(feed(f, MS_EV_REALLOC_BEGIN, MS_FN_REALLOC, 1, X, 0, 300), 0);
	alloc(f, MS_FN_REALLOC, 1, Z, X, 300);
	assert_int_equal(feed(f, MS_EV_FREE, MS_FN_FREE, 2, Y, 0, 0), 0);
	assert_int_equal(feed(f, MS_EV_FREE, MS_FN_FREE, 2, 0x1230, 0, 0), 0);
	alloc(f, MS_FN_MALLOC, 2, 0, 0, 1ull << 50); /* failed malloc */

	assert_int_equal(p->heap.live_bytes, 300);
	assert_int_equal(p->heap.live_allocations, 1);
	assert_int_equal(p->heap.allocated_bytes_total, 440);
	assert_int_equal(p->heap.allocations_total, 3);
	assert_int_equal(p->heap.frees_total, 2);
	assert_int_equal(p->heap.frees_untracked_total, 1);
	assert_int_equal(p->heap.allocation_failures_total, 1);
	assert_true(heap_table__lookup(p->blocks, Z, &b));
	assert_int_equal(b.size, 300);
	assert_int_equal(b.tid, 1);
	assert_int_equal(b.time_cs, 250); /* 2.5 s after attach */
	assert_int_equal(f->d.stats.received, 7);
	assert_int_equal(f->d.stats.malformed, 0);
	assert_true(process__complete(p));
}

static void test_event_decoder_realloc_null_is_alloc(void **state)
{
	struct fixture *f = *state;

	alloc(f, MS_FN_REALLOC, 1, X, 0, 64);
	alloc(f, MS_FN_REALLOCARRAY, 1, Y, 0, 32);
	assert_int_equal(f->p->heap.live_bytes, 96);
	assert_int_equal(f->p->heap.allocations_total, 2);
	assert_int_equal(f->p->heap.frees_total, 0);
	assert_int_equal(f->p->heap.frees_untracked_total, 0);
}

static void test_event_decoder_timestamp_before_attach(void **state)
{
	struct fixture *f = *state;
	struct ms_event e = { .type = MS_EV_ALLOC,
			      .func = MS_FN_MALLOC,
			      .pid = PID,
			      .tid = 1,
			      .ts = START_NS - 1,
			      .addr = X,
			      .size = 8 };
	struct heap_block b;

	assert_int_equal(event_decoder__handle(&f->d, &e, sizeof(e)), 0);
	assert_true(heap_table__lookup(f->p->blocks, X, &b));
	assert_int_equal(b.time_cs, 0);
}

static void feed_at(struct fixture *f, __u16 type, __u64 addr, __u64 ts)
{
	struct ms_event e = { .type = type,
			      .func = MS_FN_MALLOC,
			      .pid = PID,
			      .tid = 1,
			      .ts = ts,
			      .addr = addr,
			      .size = 8 };

	assert_int_equal(event_decoder__handle(&f->d, &e, sizeof(e)), 0);
}

/* Untimed allocator events take the latest time known to have passed: a drain's start, or a
 * timed event before them in the ring; a drain never moves the clock back. */
static void test_event_decoder_stamps_untimed_events(void **state)
{
	struct fixture *f = *state;
	struct heap_block b;

	event_decoder__time_passed(&f->d, START_NS + 150000000ull);
	feed_at(f, MS_EV_ALLOC, X, 0);
	assert_true(heap_table__lookup(f->p->blocks, X, &b));
	assert_int_equal(b.time_cs, 15);
	/* A timed event (a task's poll) moves the clock on; an older drain start does not. */
	feed_at(f, MS_EV_TASK_EXIT, 0x1000, START_NS + 230000000ull);
	event_decoder__time_passed(&f->d, START_NS + 200000000ull);
	feed_at(f, MS_EV_ALLOC, Y, 0);
	assert_true(heap_table__lookup(f->p->blocks, Y, &b));
	assert_int_equal(b.time_cs, 23);
	event_decoder__time_passed(&f->d, START_NS + 310000000ull);
	feed_at(f, MS_EV_ALLOC, Z, 0);
	assert_true(heap_table__lookup(f->p->blocks, Z, &b));
	assert_int_equal(b.time_cs, 31);
	assert_int_equal(f->d.clock_ns, START_NS + 310000000ull);
}

/*
 * Thread 1's realloc moves X away and frees it inside the allocator; thread 2 mallocs X before
 * thread 1's realloc returns. Thread 2's block must survive thread 1's realloc end.
 */
static void test_event_decoder_realloc_interleaved_with_malloc(void **state)
{
	struct fixture *f = *state;
	const struct process *p = f->p;
	struct heap_block b;

	alloc(f, MS_FN_MALLOC, 1, X, 0, 100);
	assert_int_equal(feed(f, MS_EV_REALLOC_BEGIN, MS_FN_REALLOC, 1, X, 0, 200), 0);
	alloc(f, MS_FN_MALLOC, 2, X, 0, 64);
	alloc(f, MS_FN_REALLOC, 1, Y, X, 200);

	assert_true(heap_table__lookup(p->blocks, X, &b));
	assert_int_equal(b.size, 64);
	assert_int_equal(b.tid, 2);
	assert_true(heap_table__lookup(p->blocks, Y, &b));
	assert_int_equal(b.size, 200);
	assert_int_equal(b.tid, 1);
	assert_int_equal(p->heap.live_bytes, 264);
	assert_int_equal(p->heap.live_allocations, 2);
	assert_int_equal(p->heap.frees_total, 1);
	assert_int_equal(p->blocks_replaced, 0);
	assert_int_equal(process__thread(f->p, 1)->live_bytes, 200);
	assert_int_equal(process__thread(f->p, 2)->live_bytes, 64);
	assert_true(process__complete(p));

	assert_int_equal(feed(f, MS_EV_FREE, MS_FN_FREE, 2, X, 0, 0), 0);
	assert_int_equal(p->heap.live_bytes, 200);
	assert_int_equal(p->heap.frees_untracked_total, 0);
}

/* A fork: the child's record has the parent's live blocks, and says whether its window counts. */
static void test_event_decoder_fork_window(void **state)
{
	struct fixture *f = *state;
	struct process *c;

	alloc(f, MS_FN_MALLOC, PID, X, 0, 100);
	assert_int_equal(feed(f, MS_EV_FORK, 0, PID, PID + 1, 0, 0), 0);
	c = process_table__find(f->procs, PID + 1);
	assert_non_null(c);
	assert_int_equal(c->parent, PID);
	assert_int_equal(c->heap.live_bytes, 100);
	assert_true(c->fork_window_open);
	assert_false(c->fork_window_uncounted);
	assert_true(process__complete(c));
	/* size 1: the fork window could not be counted (no program, or a full map). */
	assert_int_equal(feed(f, MS_EV_FORK, 0, PID, PID + 2, 0, 1), 0);
	c = process_table__find(f->procs, PID + 2);
	assert_non_null(c);
	assert_false(c->fork_window_open);
	assert_true(c->fork_window_uncounted);
	assert_false(process__complete(c));
}

/* A child dead in its window: on_exit's final count closes it; a later one changes nothing. */
static void test_event_decoder_window_end(void **state)
{
	struct fixture *f = *state;
	struct process *c;

	assert_int_equal(feed(f, MS_EV_FORK, 0, PID, PID + 1, 0, 0), 0);
	c = process_table__find(f->procs, PID + 1);
	c->fork_window_missed = 3; /* read from fork_pending meanwhile */
	assert_int_equal(feed_of(f, PID + 1, MS_EV_WINDOW_END, 7), 0);
	assert_int_equal(c->fork_window_missed, 7);
	assert_false(c->fork_window_open);
	assert_false(c->fork_window_uncounted);
	assert_false(process__complete(c));
	assert_int_equal(feed_of(f, PID + 1, MS_EV_WINDOW_END, 9), 0);
	assert_int_equal(c->fork_window_missed, 7);
	/* The count never goes back. */
	assert_int_equal(feed(f, MS_EV_FORK, 0, PID, PID + 2, 0, 0), 0);
	c = process_table__find(f->procs, PID + 2);
	c->fork_window_missed = 5;
	assert_int_equal(feed_of(f, PID + 2, MS_EV_WINDOW_END, 4), 0);
	assert_int_equal(c->fork_window_missed, 5);
	assert_false(c->fork_window_open);
	/* A return that could not be told an allocator's: the count is a lower bound. */
	assert_int_equal(feed(f, MS_EV_FORK, 0, PID, PID + 3, 0, 0), 0);
	c = process_table__find(f->procs, PID + 3);
	assert_int_equal(feed_of(f, PID + 3, MS_EV_WINDOW_END, MS_WINDOW_UNCOUNTED | 6), 0);
	assert_int_equal(c->fork_window_missed, 6);
	assert_true(c->fork_window_uncounted);
	assert_false(process__complete(c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_event_decoder_wrong_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_decoder_fork_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_decoder_window_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_decoder_unknown_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_decoder_unknown_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_decoder_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_decoder_realloc_null_is_alloc, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_event_decoder_timestamp_before_attach, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_event_decoder_stamps_untimed_events, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_event_decoder_realloc_interleaved_with_malloc,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
