// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memscoped/events.h"
#include "elf_symbols.h"
#include "runtime.h"
#include "runtime_tokio.h"
#include "event_decoder.h"
#include "process_table.h"

static void test_runtime_tokio_type_from_demangled(void **state)
{
	char *s;

	(void)state;
	s = runtime_tokio__type_from_demangled(
		"tokio::runtime::task::raw::poll::<app::serve::{closure#0}, "
		"alloc::sync::Arc<tokio::runtime::scheduler::current_thread::Handle>>");
	assert_string_equal(s, "app::serve::{closure#0}");
	free(s);
	/* Generic arguments of the future itself stay whole. */
	s = runtime_tokio__type_from_demangled(
		"tokio::runtime::task::raw::poll::<app::Conn<(u8, u16), [u8; 4]>, S>");
	assert_string_equal(s, "app::Conn<(u8, u16), [u8; 4]>");
	free(s);
	assert_null(runtime_tokio__type_from_demangled("tokio::runtime::task::raw::poll"));
	assert_null(runtime_tokio__type_from_demangled("tokio::runtime::task::raw::poll::<"));
	assert_null(runtime_tokio__type_from_demangled("core::ptr::drop_in_place"));
}

static void test_runtime_tokio_cell_from_helper(void **state)
{
	char *s;

	(void)state;
	s = runtime_tokio__cell_from_helper(
		"core::ptr::drop_in_place<alloc::boxed::Box<tokio::runtime::task::core::Cell<"
		"app::serve::{{closure}},alloc::sync::Arc<tokio::runtime::scheduler::current_thread::"
		"Handle>>>>");
	assert_string_equal(s, "app::serve::{{closure}},alloc::sync::Arc<tokio::runtime::"
			       "scheduler::current_thread::Handle>");
	free(s);
	/* Generic parameters are not types; other helpers say nothing. */
	assert_null(runtime_tokio__cell_from_helper(
		"core::ptr::drop_in_place<tokio::runtime::task::core::Cell<T,S>>"));
	assert_null(runtime_tokio__cell_from_helper(
		"core::ptr::drop_in_place<tokio::runtime::task::core::Stage<app::X>>"));
	assert_null(runtime_tokio__cell_from_helper("tokio::runtime::task::core::Cell<app::X,S>"));
	assert_null(runtime_tokio__cell_from_helper(
		"core::ptr::drop_in_place<tokio::runtime::task::core::Cell<app::X"));
}

static void test_runtime_tokio_user_function(void **state)
{
	(void)state;
	assert_true(runtime_tokio__is_user_function("app::serve::{{closure}}"));
	assert_true(runtime_tokio__is_user_function("<app::Conn as core::future::Future>::poll"));
	assert_false(
		runtime_tokio__is_user_function("tokio::runtime::task::core::Core<T,S>::poll"));
	assert_false(runtime_tokio__is_user_function("<core::pin::Pin<P> as Future>::poll"));
	assert_false(runtime_tokio__is_user_function("std::panicking::try"));
	assert_false(runtime_tokio__is_user_function("malloc"));
}

/* Two vtables, as a loaded binary would have them at bias 0x10000. */
static struct tokio_vtable vts[2] = {
	{ .vaddr = 0x5000,
	  .poll = 0x1000,
	  .trailer_offset = 0x50,
	  .scheduler_offset = 0x20,
	  .id_offset = 0x28 },
	{ .vaddr = 0x5100,
	  .poll = 0x1100,
	  .trailer_offset = 0x4a0,
	  .scheduler_offset = 0x80,
	  .id_offset = 0x88 },
};
static uint32_t vt_types[2];

static struct tokio_process proc_with_vtables(void)
{
	struct tokio_process t = { 0 };

	t.info.vtables = vts;
	t.info.nvtables = 2;
	t.bias = 0x10000;
	t.vt_types = vt_types;
	return t;
}

struct found_list {
	struct tokio_found f[8];
	size_t n;
};

static void on_found(void *ctx, const struct tokio_found *f)
{
	struct found_list *l = ctx;

	if (l->n < 8)
		l->f[l->n++] = *f;
}

static void put(uint8_t *mem, size_t off, uint64_t v)
{
	memcpy(mem + off, &v, sizeof(v));
}

static void test_runtime_tokio_scan_finds_live_headers_only(void **state)
{
	struct tokio_process t = proc_with_vtables();
	struct found_list l = { 0 };
	static uint8_t mem[4096];
	uint64_t base = 0x7f0000000000;

	(void)state;
	memset(mem, 0, sizeof(mem));
	/* A live task: a 128-byte chunk (112 requested + 8, rounded; inuse bit), 2 refs, id 7. */
	put(mem, 0x108, 0x81);
	put(mem, 0x110, 2 << 6);
	put(mem, 0x120, 0x15000);
	put(mem, 0x128, 1);
	put(mem, 0x110 + 0x28, 7);
	/* A completed one: skipped. */
	put(mem, 0x208, 0x81);
	put(mem, 0x210, (1 << 6) | TOKIO_STATE_COMPLETE);
	put(mem, 0x220, 0x15000);
	put(mem, 0x210 + 0x28, 8);
	/* A freed cell: glibc's mangled free-list pointer sits over the state. */
	put(mem, 0x308, 0x81);
	put(mem, 0x310, 0x7f1234567840);
	put(mem, 0x320, 0x15000);
	put(mem, 0x310 + 0x28, 9);
	/* A word equal to a vtable address, but not a header (no id). */
	put(mem, 0x420, 0x15100);
	assert_int_equal(tokio_scan__buffer(&t, base, mem, sizeof(mem), NULL, on_found, &l), 1);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.f[0].header, base + 0x110);
	assert_int_equal(l.f[0].id, 7);
	assert_int_equal(l.f[0].owner_id, 1);
	assert_int_equal(l.f[0].cell_size, 0x50 + 32);
	assert_ptr_equal(l.f[0].vt, &vts[0]);
}

static void test_runtime_tokio_scan_cell_size_follows_alignment(void **state)
{
	struct tokio_process t = proc_with_vtables();
	struct found_list l = { 0 };
	static uint8_t mem[8192];

	(void)state;
	memset(mem, 0, sizeof(mem));
	/* trailer 0x4a0 + 32 = 1216; a 128-aligned future rounds the cell to 1280. */
	put(mem, 0x78, 1312 | 1);
	put(mem, 0x80, 1 << 6);
	put(mem, 0x90, 0x15100);
	put(mem, 0x80 + 0x88, 3);
	assert_int_equal(tokio_scan__buffer(&t, 0x10000, mem, sizeof(mem), NULL, on_found, &l), 1);
	assert_int_equal(l.f[0].cell_size, 1280);
}

static void test_runtime_tokio_scan_never_reads_out_of_bounds(void **state)
{
	struct tokio_process t = proc_with_vtables();
	struct found_list l = { 0 };
	uint8_t mem[24];
	size_t len;

	(void)state;
	/* The vtable word at the very end: the header's fields lie past the buffer. */
	memset(mem, 0, sizeof(mem));
	put(mem, 16, 0x15000);
	for (len = 0; len <= sizeof(mem); len++)
		tokio_scan__buffer(&t, 0x1000, mem, len, NULL, on_found, &l);
	assert_int_equal(l.n, 0);
}

/* The stripped variant of the tokio test target, built by make tokio-targets. */
static void test_runtime_tokio_discovers_stripped_binary(void **state)
{
	const char *path = getenv("TOKIO_STRIPPED");
	struct tokio_info info;
	struct elf_symbols *e;
	size_t i;

	(void)state;
	e = elf_symbols__open(path ? path : "build/tokio-out/tokio-target-strip");
	assert_non_null(e);
	assert_int_equal(runtime_tokio__discover(e, NULL, &info), 0);
	assert_string_equal(info.source, "vtables");
	assert_true(info.nvtables >= 10);
	assert_int_equal(info.npolls, info.nvtables);
	for (i = 0; i < info.nvtables; i++) {
		assert_non_null(runtime_tokio__poll(&info, info.vtables[i].poll));
		assert_true(info.vtables[i].scheduler_offset <= info.vtables[i].id_offset);
		assert_true(info.vtables[i].id_offset < info.vtables[i].trailer_offset);
	}
	runtime_tokio__clear(&info);
	elf_symbols__close(e);
}

static void send(struct event_decoder *d, uint16_t type, uint64_t hdr, uint64_t vtable)
{
	struct ms_event e = { .type = type, .pid = 9, .tid = 9, .ts = 5, .addr = hdr };

	e.poll.vtable = vtable;
	e.poll.owner_id = 1;
	e.poll.id = 3;
	assert_int_equal(event_decoder__handle(d, &e, sizeof(e)), 0);
}

/* A header that fails validation in BPF: said once, tasks no longer tracked, heap still. */
static void test_runtime_tokio_invalid_layout_stops_task_tracking(void **state)
{
	struct process_limits limits = { 0 };
	struct event_decoder d = { 0 };
	struct tokio_info info = { 0 };
	struct process *p;
	struct ms_event e = { .type = MS_EV_ALLOC, .pid = 9, .tid = 9, .addr = 0x9000 };

	(void)state;
	d.procs = process_table__new(&limits, NULL);
	p = process_table__add(d.procs, 9, "svc", "/svc");
	info.vtables = calloc(1, sizeof(*info.vtables));
	info.polls = calloc(1, sizeof(*info.polls));
	assert_non_null(info.vtables);
	assert_non_null(info.polls);
	info.vtables[0] = vts[0];
	info.nvtables = 1;
	info.polls[0].vaddr = 0x1000;
	info.polls[0].type_name = strdup("app::work");
	info.npolls = 1;
	assert_non_null(tokio_process__new(p, &info, 0x10000));

	send(&d, MS_EV_TASK_ENTER, 0x7000, 0x15000);
	assert_non_null(task_table__find(p->tasks, 0x7000));
	send(&d, MS_EV_TASK_INVALID, 0x8000, 0x1234);
	assert_true(tokio_process__of(p)->invalid);
	/* Said once: the daemon logs what the runtime's problem hook returns. */
	assert_non_null(runtime__find("tokio")->problem(p));
	send(&d, MS_EV_TASK_INVALID, 0x8000, 0x1234);
	assert_null(runtime__find("tokio")->problem(p));
	/* Later polls are ignored; allocations are still tracked. */
	send(&d, MS_EV_TASK_ENTER, 0x8000, 0x15000);
	assert_null(task_table__find(p->tasks, 0x8000));
	e.size = 64;
	assert_int_equal(event_decoder__handle(&d, &e, sizeof(e)), 0);
	assert_int_equal(p->heap.live_bytes, 64);
	process_table__free(d.procs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtime_tokio_type_from_demangled),
		cmocka_unit_test(test_runtime_tokio_cell_from_helper),
		cmocka_unit_test(test_runtime_tokio_user_function),
		cmocka_unit_test(test_runtime_tokio_scan_finds_live_headers_only),
		cmocka_unit_test(test_runtime_tokio_scan_cell_size_follows_alignment),
		cmocka_unit_test(test_runtime_tokio_scan_never_reads_out_of_bounds),
		cmocka_unit_test(test_runtime_tokio_discovers_stripped_binary),
		cmocka_unit_test(test_runtime_tokio_invalid_layout_stops_task_tracking),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
