// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memscoped/events.h"
#include "event_decoder.h"
#include "runtime.h"
#include "runtime_async_task.h"

#define PID 9
#define BIAS 0x10000ull
#define VT_SLEEPER 0x2000ull
#define VT_WORKER 0x2040ull
#define RUN_SLEEPER 0x1000ull
#define RUN_WORKER 0x1100ull
#define CELL_SIZE 384
#define S 1000000000ull

/* RawTask::run's entry from rustc 1.95 (state at +8) and from Debian 12's 1.63 (at +0). */
static void test_async_task_state_word_from_run_code(void **state)
{
	static const uint8_t new_rustc[] = {
		0x41, 0x57, 0x41, 0x56, 0x41, 0x54, 0x53, 0x48, 0x83, 0xec, 0x28, 0x48, 0x89,
		0xfb, 0x4c, 0x8d, 0x77, 0x20, 0x4c, 0x8d, 0x7f, 0x28, 0x48, 0x8b, 0x47, 0x08,
	};
	static const uint8_t old_rustc[] = { 0x41, 0x57, 0x53, 0x48, 0x8b, 0x07, 0xc3 };
	/* A branch first: nothing to trust. */
	static const uint8_t branch[] = { 0xe8, 0, 0, 0, 0, 0x48, 0x8b, 0x47, 0x08 };
	unsigned int word = 99;

	(void)state;
	assert_int_equal(atask__state_word(new_rustc, sizeof(new_rustc), &word), 0);
	assert_int_equal(word, 1);
	assert_int_equal(atask__state_word(old_rustc, sizeof(old_rustc), &word), 0);
	assert_int_equal(word, 0);
	word = 99;
	assert_int_equal(atask__state_word(branch, sizeof(branch), &word), -ENOENT);
	assert_int_equal(word, 99);
	assert_int_equal(atask__state_word(new_rustc, 20, &word), -ENOENT);
}

static void test_async_task_type_from_demangled(void **state)
{
	char *t;

	(void)state;
	t = atask__type_from_demangled("<async_task::raw::RawTask<app::leaker<async_io::Timer>::"
				       "{closure#0}, (), smol::spawn::{closure#0}>>::run");
	assert_string_equal(t, "app::leaker<async_io::Timer>::{closure#0}");
	free(t);
	/* async-std wraps every future with its task locals: the user's future is inside. */
	t = atask__type_from_demangled(
		"<async_task::raw::RawTask<async_std::task::builder::SupportTaskLocals<"
		"app::worker::{closure#0}>, (), S>>::run");
	assert_string_equal(t, "app::worker::{closure#0}");
	free(t);
	/* v0 as libiberty spells it: the executor's spawn future around the user's. */
	t = atask__type_from_demangled(
		"<async_task::raw::RawTask<<async_executor::Executor>::spawn<(), "
		"async_std::task::builder::SupportTaskLocals<app::leaker<S>::{closure#0}>>::"
		"{closure#0}, (), <async_executor::Executor>::schedule::{closure#0}>>::run");
	assert_string_equal(t, "app::leaker<S>::{closure#0}");
	free(t);
	/* Legacy mangling names the parameters, not the types. */
	assert_null(atask__type_from_demangled("async_task::raw::RawTask<F,T,S>::run"));
	assert_null(atask__type_from_demangled("tokio::runtime::task::raw::poll"));
}

/* Legacy symbols have no generic arguments: the helpers run calls spell the future out. */
static void test_async_task_type_from_helper(void **state)
{
	char *t;

	(void)state;
	t = atask__type_from_helper("core::ptr::drop_in_place<async_executor::Executor::spawn<(),"
				    "app::leaker<async_io::Timer>::{{closure}}>::{{closure}}>");
	assert_string_equal(t, "app::leaker<async_io::Timer>::{{closure}}");
	free(t);
	t = atask__type_from_helper(
		"core::ptr::drop_in_place<async_task::raw::RawTask<F,T,S>::run::Guard<"
		"async_executor::Executor::spawn<(),async_std::task::builder::SupportTaskLocals<"
		"app::spawn_all::{{closure}}>>::{{closure}},(),async_executor::Executor::schedule::"
		"{{closure}}>>");
	assert_string_equal(t, "app::spawn_all::{{closure}}");
	free(t);
	/* Rust before 1.67 wraps async blocks in GenFuture. */
	t = atask__type_from_helper(
		"core::ptr::drop_in_place<core::future::from_generator::GenFuture<async_executor::"
		"Executor::spawn<(),core::future::from_generator::GenFuture<app::leaker<T>::"
		"{{closure}}>>::{{closure}}>>");
	assert_string_equal(t, "app::leaker<T>::{{closure}}");
	free(t);
	assert_null(atask__type_from_helper("core::ptr::drop_in_place<alloc::vec::Vec<u8>>"));
	assert_null(atask__type_from_helper("app::main"));
}

struct fixture {
	struct event_decoder d;
	struct process *p;
};

static int setup(void **state)
{
	static struct fixture f;
	struct process_limits limits = { 0 };
	struct atask_info info = { 0 };

	memset(&f, 0, sizeof(f));
	f.d.procs = process_table__new(&limits, NULL);
	f.p = process_table__add(f.d.procs, PID, "svc", "/svc");
	if (!f.p)
		return -1;
	info.vtables = calloc(2, sizeof(*info.vtables));
	info.runs = calloc(2, sizeof(*info.runs));
	if (!info.vtables || !info.runs)
		return -1;
	info.vtables[0] = (struct atask_vtable){ VT_SLEEPER, RUN_SLEEPER, CELL_SIZE, 0x28, 0 };
	info.vtables[1] = (struct atask_vtable){ VT_WORKER, RUN_WORKER, 144, 0x28, 0 };
	info.nvtables = 2;
	info.runs[0] = (struct atask_run){ RUN_SLEEPER, 0x1000, strdup("app::leaker"), true };
	info.runs[1] = (struct atask_run){ RUN_WORKER, 0x1100, strdup("app::worker"), true };
	info.nruns = 2;
	info.state_word = 1;
	if (!atask_process__new(f.p, &info, BIAS, "/svc"))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	process_table__free(f->d.procs);
	return 0;
}

static void feed(struct fixture *f, struct ms_event *e)
{
	e->pid = PID;
	e->tid = PID;
	assert_int_equal(event_decoder__handle(&f->d, e, sizeof(*e)), 0);
}

static void alloc(struct fixture *f, uint64_t addr, uint64_t size, uint64_t task, uint64_t ts)
{
	struct ms_event e = { .type = MS_EV_ALLOC, .func = MS_FN_MALLOC, .addr = addr, .ts = ts };

	e.size = size;
	e.task = task;
	feed(f, &e);
}

static void freed(struct fixture *f, uint64_t addr, uint64_t ts)
{
	feed(f,
	     &(struct ms_event){ .type = MS_EV_FREE, .func = MS_FN_FREE, .addr = addr, .ts = ts });
}

static void run(struct fixture *f, uint16_t type, uint64_t hdr, uint64_t vtable, uint64_t st,
		uint64_t ts)
{
	struct ms_event e = { .type = type, .func = MS_TASK_ASYNC_TASK, .addr = hdr, .ts = ts };

	e.poll.vtable = vtable;
	e.poll.state = st;
	feed(f, &e);
}

/* Spawn (the cell), a run that allocates, idle; a worker completes and is freed; a cancel. */
static void test_async_task_lifecycle(void **state)
{
	struct fixture *f = *state;
	struct task *sleeper, *worker, *cancelled;
	const uint64_t ref = ATASK_REFERENCE | ATASK_TASK;

	alloc(f, 0xa000, CELL_SIZE, 0, 1 * S);
	run(f, MS_EV_TASK_ENTER, 0xa000, VT_SLEEPER + BIAS, ref | ATASK_RUNNING, 2 * S);
	alloc(f, 0xb000, 8000, 0xa000, 2 * S);
	run(f, MS_EV_TASK_EXIT, 0xa000, 0, ref, 2 * S);
	sleeper = task_table__find(f->p->tasks, 0xa000);
	assert_non_null(sleeper);
	assert_int_equal(sleeper->state, TASK_IDLE);
	assert_int_equal(sleeper->live_bytes, 8000);
	assert_int_equal(sleeper->future_size, CELL_SIZE);
	assert_int_equal(sleeper->discovered, TASK_FOUND_SPAWN);
	assert_false(sleeper->detached);
	assert_string_equal(f->p->tasks->types[sleeper->type].name, "app::leaker");
	assert_string_equal(f->p->tasks->types[sleeper->type].runtime, "async-task");

	alloc(f, 0xc000, 144, 0, 3 * S);
	run(f, MS_EV_TASK_ENTER, 0xc000, VT_WORKER + BIAS, ATASK_REFERENCE | ATASK_RUNNING, 3 * S);
	alloc(f, 0xd000, 8000, 0xc000, 3 * S);
	freed(f, 0xd000, 3 * S);
	run(f, MS_EV_TASK_EXIT, 0xc000, 0, ATASK_REFERENCE | ATASK_COMPLETED, 3 * S);
	worker = task_table__find(f->p->tasks, 0xc000);
	assert_non_null(worker);
	assert_int_equal(worker->state, TASK_COMPLETED);
	assert_true(worker->detached);
	assert_int_equal(worker->allocated_bytes_total, 8000);
	assert_int_equal(worker->live_bytes, 0);
	freed(f, 0xc000, 4 * S);
	assert_int_equal(worker->state, TASK_DEALLOCATED);
	assert_null(task_table__find(f->p->tasks, 0xc000));

	/* Its Task dropped while idle: run drops the future, CLOSED without COMPLETED. */
	alloc(f, 0xe000, 144, 0, 5 * S);
	run(f, MS_EV_TASK_ENTER, 0xe000, VT_WORKER + BIAS, ref | ATASK_RUNNING, 5 * S);
	run(f, MS_EV_TASK_EXIT, 0xe000, 0, ref, 5 * S);
	run(f, MS_EV_TASK_ENTER, 0xe000, VT_WORKER + BIAS, ATASK_REFERENCE | ATASK_CLOSED, 6 * S);
	run(f, MS_EV_TASK_EXIT, 0xe000, 0, ATASK_REFERENCE | ATASK_CLOSED, 6 * S);
	cancelled = task_table__find(f->p->tasks, 0xe000);
	assert_non_null(cancelled);
	assert_int_equal(cancelled->state, TASK_CANCELLED);
	assert_int_equal(cancelled->polls, 2);
	assert_int_equal(f->p->heap.untasked_live_bytes, 0);
}

/* Events of another runtime's tasks (tokio's, func 0) and unknown vtables are not ours. */
static void test_async_task_ignores_other_runtimes_and_vtables(void **state)
{
	struct fixture *f = *state;
	struct ms_event e = { .type = MS_EV_TASK_ENTER, .func = MS_TASK_TOKIO, .addr = 0xa000 };

	e.poll.vtable = VT_SLEEPER + BIAS;
	feed(f, &e);
	assert_null(task_table__find(f->p->tasks, 0xa000));
	run(f, MS_EV_TASK_ENTER, 0xa000, 0x9999, ATASK_REFERENCE, 1 * S);
	assert_null(task_table__find(f->p->tasks, 0xa000));
	/* A header that failed validation in BPF: said once, tasks no longer tracked. */
	run(f, MS_EV_TASK_INVALID, 0xa000, 0, 0, 1 * S);
	assert_non_null(runtime__find("async-task")->problem(f->p));
	assert_null(runtime__find("async-task")->problem(f->p));
	run(f, MS_EV_TASK_ENTER, 0xa000, VT_SLEEPER + BIAS, ATASK_REFERENCE, 2 * S);
	assert_null(task_table__find(f->p->tasks, 0xa000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_async_task_state_word_from_run_code),
		cmocka_unit_test(test_async_task_type_from_demangled),
		cmocka_unit_test(test_async_task_type_from_helper),
		cmocka_unit_test_setup_teardown(test_async_task_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_task_ignores_other_runtimes_and_vtables,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
