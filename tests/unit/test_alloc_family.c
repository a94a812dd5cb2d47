// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The allocator-family table, its event semantics, and the never-blind watch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memscoped/events.h"
#include "alloc_family.h"
#include "alloc_watch.h"
#include "event_decoder.h"

#define PID 4242
#define START_NS 1000000000000ull
#define X 0x7f0000001000ull
#define Y 0x7f0000002000ull

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

static void feed(struct fixture *f, __u16 type, __u16 func, __u64 addr, __u64 old_addr, __u64 size)
{
	struct ms_event e = {
		.type = type,
		.func = func,
		.pid = PID,
		.tid = PID,
		.ts = START_NS + 1000,
		.addr = addr,
		.old_addr = old_addr,
		.size = size,
	};

	assert_int_equal(event_decoder__handle(&f->d, &e, sizeof(e)), 0);
}

static const struct alloc_fn_row *row(const struct alloc_family *f, const char *symbol)
{
	size_t i;

	for (i = 0; i < f->nfns; i++)
		if (!strcmp(f->fns[i].symbol, symbol))
			return &f->fns[i];
	fail_msg("no row '%s' in %s", symbol, f->name);
	return NULL;
}

static void test_alloc_family_registry_finds_each_family_once(void **state)
{
	static const char *const names[] = { "glibc", "jemalloc", "mimalloc", "tcmalloc", "rust" };
	size_t i, j;

	(void)state;
	assert_int_equal(alloc_nfamilies, 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(alloc_family__find(names[i])->name, names[i]);
	assert_null(alloc_family__find("hoard"));
	assert_null(alloc_family__find(""));
	/* glibc last: the others define malloc too (and mimalloc even __libc_malloc). */
	assert_ptr_equal(alloc_families[alloc_nfamilies - 1], &alloc_glibc);
	for (i = 0; i < alloc_nfamilies; i++)
		for (j = i + 1; j < alloc_nfamilies; j++)
			assert_string_not_equal(alloc_families[i]->name, alloc_families[j]->name);
}

static void check_rows(const struct alloc_fn_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t c = rows[i].cookie;
		unsigned int func = MS_AC_FUNC(c);

		assert_true(func >= MS_FN_MALLOC && func < MS_FN_MAX);
		assert_true(MS_AC_SIZE(c) <= 6 && MS_AC_COUNT(c) <= 6 && MS_AC_PTR(c) <= 6 &&
			    MS_AC_OUT(c) <= 6 && MS_AC_ALIGN(c) <= 6 && MS_AC_FLAGS(c) <= 6);
		switch (func) {
		case MS_FN_FREE:
			assert_int_not_equal(MS_AC_PTR(c), 0);
			break;
		case MS_FN_REALLOC:
		case MS_FN_REALLOCARRAY:
		case MS_FN_RESIZE:
			assert_int_not_equal(MS_AC_PTR(c), 0);
			assert_int_not_equal(MS_AC_SIZE(c), 0);
			break;
		default:
			assert_int_not_equal(MS_AC_SIZE(c), 0);
			assert_int_equal(MS_AC_PTR(c), 0);
		}
		/* Only posix_memalign-like rows store their block through an argument. */
		assert_int_equal(MS_AC_OUT(c) != 0, func == MS_FN_POSIX_MEMALIGN);
	}
}

static void test_alloc_family_rows_are_consistent(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < alloc_nfamilies; i++)
		check_rows(alloc_families[i]->fns, alloc_families[i]->nfns);
	check_rows(alloc_cxx_rows, alloc_cxx_nrows);
}

static void test_alloc_family_argument_positions(void **state)
{
	uint64_t c;

	(void)state;
	c = row(&alloc_jemalloc, "rallocx")->cookie;
	assert_int_equal(MS_AC_FUNC(c), MS_FN_REALLOC);
	assert_int_equal(MS_AC_PTR(c), 1);
	assert_int_equal(MS_AC_SIZE(c), 2);
	assert_int_equal(MS_AC_FLAGS(c), 3);
	c = row(&alloc_jemalloc, "xallocx")->cookie;
	assert_int_equal(MS_AC_FUNC(c), MS_FN_RESIZE);
	assert_true(c & MS_AC_RET_SIZE);
	assert_int_equal(MS_AC_COUNT(c), 3); /* extra */
	c = row(&alloc_jemalloc, "sdallocx")->cookie;
	assert_int_equal(MS_AC_FUNC(c), MS_FN_FREE);
	assert_int_equal(MS_AC_PTR(c), 1);
	c = row(&alloc_glibc, "posix_memalign")->cookie;
	assert_int_equal(MS_AC_OUT(c), 1);
	assert_int_equal(MS_AC_SIZE(c), 3);
	c = row(&alloc_mimalloc, "mi_heap_recalloc")->cookie;
	assert_int_equal(MS_AC_PTR(c), 2);
	assert_int_equal(MS_AC_COUNT(c), 3);
	assert_int_equal(MS_AC_SIZE(c), 4);
	c = row(&alloc_mimalloc, "mi_expand")->cookie;
	assert_int_equal(MS_AC_FUNC(c), MS_FN_RESIZE);
	assert_false(c & MS_AC_RET_SIZE);
	assert_true(row(&alloc_mimalloc, "mi_reallocf")->cookie & MS_AC_FREES_ON_FAIL);
	c = row(&alloc_rust, "__rust_realloc")->cookie;
	assert_int_equal(MS_AC_PTR(c), 1);
	assert_int_equal(MS_AC_SIZE(c), 4);
	assert_int_equal(MS_AC_ALIGN(c), 3);
	c = row(&alloc_rust, "__rust_dealloc")->cookie;
	assert_true(c & MS_AC_SCOPED);
	assert_true(alloc_fn_row__has_return(row(&alloc_rust, "__rust_dealloc")));
	assert_false(alloc_fn_row__has_return(row(&alloc_tcmalloc, "tc_free_sized")));
	c = row(&alloc_tcmalloc, "tc_delete_sized_aligned")->cookie;
	assert_int_equal(MS_AC_ALIGN(c), 3);
}

/* jemalloc: mallocx with flags, a failed rallocx, xallocx in place and not, sdallocx. */
static void test_alloc_family_jemalloc_semantics(void **state)
{
	struct fixture *f = *state;
	struct heap_stats *h = &f->p->heap;

	feed(f, MS_EV_ALLOC, MS_FN_MALLOC, X, 0, 5000); /* mallocx(5000, MALLOCX_ZERO) */
	feed(f, MS_EV_REALLOC_BEGIN, MS_FN_REALLOC, X, 0, 1ull << 60);
	feed(f, MS_EV_ALLOC, MS_FN_REALLOC, 0, X, 1ull << 60); /* rallocx failed */
	assert_int_equal(h->live_bytes, 5000);
	assert_int_equal(h->allocation_failures_total, 1);
	feed(f, MS_EV_ALLOC, MS_FN_RESIZE, X, X, 4800); /* xallocx(X, 4800, 0, 0) */
	assert_int_equal(h->live_bytes, 4800);
	assert_int_equal(h->live_allocations, 1);
	assert_int_equal(h->allocations_total, 2);
	assert_int_equal(h->allocated_bytes_total, 9800);
	assert_int_equal(h->frees_total, 1);
	feed(f, MS_EV_ALLOC, MS_FN_RESIZE, 0, X, 200000); /* not resized */
	assert_int_equal(h->live_bytes, 4800);
	assert_int_equal(h->allocations_total, 2);
	assert_int_equal(h->allocation_failures_total, 1);
	feed(f, MS_EV_FREE, MS_FN_FREE, X, 0, 0); /* sdallocx */
	assert_int_equal(h->live_bytes, 0);
	assert_int_equal(h->frees_total, 2);
}

/* mimalloc: a failed mi_realloc keeps the block, a failed mi_reallocf frees it. */
static void test_alloc_family_mimalloc_reallocf_frees_on_failure(void **state)
{
	struct fixture *f = *state;
	struct heap_stats *h = &f->p->heap;

	feed(f, MS_EV_ALLOC, MS_FN_ALIGNED_ALLOC, X, 0, 100);
	feed(f, MS_EV_ALLOC, MS_FN_CALLOC, Y, 0, 300);
	feed(f, MS_EV_REALLOC_BEGIN, MS_FN_REALLOC, X, 0, 1ull << 60);
	feed(f, MS_EV_ALLOC, MS_FN_REALLOC, 0, X, 1ull << 60);
	assert_int_equal(h->live_bytes, 400);
	feed(f, MS_EV_REALLOC_BEGIN, MS_FN_REALLOC | MS_FN_F_FREES_ON_FAIL, Y, 0, 1ull << 60);
	feed(f, MS_EV_ALLOC, MS_FN_REALLOC | MS_FN_F_FREES_ON_FAIL, 0, Y, 1ull << 60);
	assert_int_equal(h->live_bytes, 100);
	assert_int_equal(h->live_allocations, 1);
	assert_int_equal(h->frees_total, 1);
	assert_int_equal(h->allocation_failures_total, 2);
	feed(f, MS_EV_ALLOC, MS_FN_RESIZE, X, X, 60); /* mi_expand shrinking in place */
	assert_int_equal(h->live_bytes, 60);
}

static void test_alloc_watch_blind_once_when_busy_without_events(void **state)
{
	struct fixture *f = *state;
	struct process *p = f->p;

	(void)state;
	p->allocator.family = "jemalloc";
	p->allocator.cpu_at_attach = 10.0;
	assert_false(alloc_watch__blind(p, 0.5, 11.0, 1.0)); /* not yet stuck_after */
	assert_false(alloc_watch__blind(p, 5.0, 10.2, 1.0)); /* idle: 0.2 s in 5 s */
	assert_true(alloc_watch__blind(p, 5.0, 12.0, 1.0));
	assert_false(alloc_watch__blind(p, 9.0, 16.0, 1.0)); /* said once */
	p->allocator.blind_warned = false;
	feed(f, MS_EV_FREE, MS_FN_FREE, X, 0, 0); /* an untracked free is an event */
	assert_false(alloc_watch__blind(p, 5.0, 12.0, 1.0));
}

static void test_alloc_watch_frees_missed_once(void **state)
{
	struct fixture *f = *state;
	struct process *p = f->p;

	p->allocator.family = "rust";
	feed(f, MS_EV_ALLOC, MS_FN_MALLOC, X, 0, 10);
	assert_false(alloc_watch__frees_missed(p, 5.0, 1.0));
	feed(f, MS_EV_ALLOC, MS_FN_MALLOC, X, 0, 20); /* X again: its free was not seen */
	assert_false(alloc_watch__frees_missed(p, 0.5, 1.0));
	assert_true(alloc_watch__frees_missed(p, 5.0, 1.0));
	assert_false(alloc_watch__frees_missed(p, 6.0, 1.0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_family_registry_finds_each_family_once),
		cmocka_unit_test(test_alloc_family_rows_are_consistent),
		cmocka_unit_test(test_alloc_family_argument_positions),
		cmocka_unit_test_setup_teardown(test_alloc_family_jemalloc_semantics, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_alloc_family_mimalloc_reallocf_frees_on_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_alloc_watch_blind_once_when_busy_without_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_watch_frees_missed_once, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
