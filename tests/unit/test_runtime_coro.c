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
#include "coro.h"
#include "runtime_ucontext.h"

#define PID 4242
#define TID 4243
#define S 1000000000ull
#define START_NS (1000 * S)
/* The thread's own stack mapping, which holds its thread pointer. */
#define THREAD_LO 0x70000000ull
#define THREAD_HI 0x70800000ull
#define FSBASE 0x707f0000ull
#define THREAD_SP 0x707e0000ull
/* A mapping of its own above a guard page: a coroutine stack made before attach. */
#define OWN_LO 0x90001000ull
#define OWN_HI 0x90011000ull
/* Coroutine stacks in the heap (malloc'd). */
#define STACK_A 0x55000000ull
#define STACK_B 0x55100000ull
#define STACK_SIZE 0x10000ull
#define UCP_A 0x56000000ull
#define UCP_MAIN 0x56001000ull
#define ENTRY_C 0x401000ull
#define ENTRY_CXX 0x402000ull

static int fake_vma(void *ctx, uint64_t addr, struct coro_vma *ret)
{
	int *calls = ctx;

	(*calls)++;
	memset(ret, 0, sizeof(*ret));
	if (addr >= THREAD_LO && addr < THREAD_HI) {
		*ret = (struct coro_vma){ THREAD_LO, THREAD_HI, true, false, true, true };
		return 0;
	}
	if (addr >= OWN_LO && addr < OWN_HI) {
		*ret = (struct coro_vma){ OWN_LO, OWN_HI, true, false, true, true };
		return 0;
	}
	return -ENOENT;
}

static char *fake_symbolize(void *ctx, uint64_t addr)
{
	(void)ctx;
	if (addr == ENTRY_C)
		return strdup("serve_client");
	if (addr == ENTRY_CXX)
		return strdup("foo::bar(int)");
	return NULL;
}

struct fixture {
	struct process_table *procs;
	struct process *p;
	struct event_decoder d;
	int vma_calls;
};

static int setup(void **state)
{
	static struct fixture f;
	struct process_limits limits = { 0 };
	struct coro_env env = { fake_vma, fake_symbolize, &f.vma_calls };

	memset(&f, 0, sizeof(f));
	f.procs = process_table__new(&limits, NULL);
	if (!f.procs)
		return -1;
	f.p = process_table__add(f.procs, PID, "target", "/bin/target");
	if (!f.p)
		return -1;
	f.p->start_ns = START_NS;
	env.ctx = &f.vma_calls;
	if (!coro_process__attach(f.p, &env))
		return -1;
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

static void feed(struct fixture *f, struct ms_event *e, uint64_t ts)
{
	e->pid = PID;
	e->tid = TID;
	e->ts = START_NS + ts;
	assert_int_equal(event_decoder__handle(&f->d, e, sizeof(*e)), 0);
}

static void create(struct fixture *f, uint64_t stack, uint64_t size, uint64_t entry, uint64_t ts)
{
	struct ms_event e = { .type = MS_EV_CORO_CREATE,
			      .func = MS_CORO_MAKECONTEXT,
			      .addr = UCP_A };

	e.coro_create.stack = stack;
	e.coro_create.stack_size = size;
	e.coro_create.entry = entry;
	e.coro_create.link = UCP_MAIN;
	feed(f, &e, ts);
}

static void sw(struct fixture *f, uint16_t func, uint64_t ucp, uint64_t from_sp, uint64_t to_sp,
	       uint64_t ts)
{
	struct ms_event e = { .type = MS_EV_CORO_SWITCH, .func = func, .addr = ucp };

	e.coro_switch.sp = from_sp;
	e.coro_switch.target_sp = to_sp;
	e.coro_switch.fsbase = FSBASE;
	feed(f, &e, ts);
}

static void alloc(struct fixture *f, uint64_t addr, uint64_t size, uint64_t sp, uint64_t ts)
{
	struct ms_event e = { .type = MS_EV_ALLOC, .func = MS_FN_MALLOC, .addr = addr };

	e.size = size;
	e.sp = sp;
	feed(f, &e, ts);
}

static void release(struct fixture *f, uint64_t addr, uint64_t ts)
{
	struct ms_event e = { .type = MS_EV_FREE, .func = MS_FN_FREE, .addr = addr };

	feed(f, &e, ts);
}

static struct task *coro(struct fixture *f, uint64_t stack)
{
	return task_table__find(f->p->tasks, stack | CORO_KEY_BIT);
}

static void test_coro_stacks_sorted_lookup_and_overlap(void **state)
{
	struct coro_stacks cs = { 0 };
	struct coro_stack a = { 0x3000, 0x4000, 0, 1 }, b = { 0x1000, 0x2000, 0, 2 };
	struct coro_stack c = { 0x1800, 0x3800, 0, 3 };

	(void)state;
	assert_int_equal(coro_stacks__insert(&cs, &a), 0);
	assert_int_equal(coro_stacks__insert(&cs, &b), 0);
	assert_int_equal(coro_stacks__insert(&cs, &c), -EEXIST);
	assert_int_equal(cs.n, 2);
	assert_int_equal(coro_stacks__find(&cs, 0x1000)->task, 2);
	assert_int_equal(coro_stacks__find(&cs, 0x1fff)->task, 2);
	assert_null(coro_stacks__find(&cs, 0x2000));
	assert_null(coro_stacks__find(&cs, 0xfff));
	assert_int_equal(coro_stacks__find(&cs, 0x3abc)->task, 1);
	assert_null(coro_stacks__find(&cs, 0x4000));
	coro_stacks__remove_at(&cs, 0);
	assert_null(coro_stacks__find(&cs, 0x1000));
	assert_int_equal(coro_stacks__find(&cs, 0x3000)->task, 1);
	coro_stacks__clear(&cs);
}

/* Made, resumed twice, returns to uc_link; its stack then carries a new generation. */
static void test_coro_lifecycle_attribution_and_reuse(void **state)
{
	struct fixture *f = *state;
	struct task *t, *t2;
	uint64_t top = STACK_A + STACK_SIZE;

	create(f, STACK_A, STACK_SIZE, ENTRY_C, 1 * S);
	t = coro(f, STACK_A);
	assert_non_null(t);
	assert_int_equal(t->generation, 1);
	assert_int_equal(t->stack_size, STACK_SIZE);
	assert_string_equal(f->p->tasks->types[t->type].name, "serve_client");
	assert_string_equal(f->p->tasks->types[t->type].runtime, "ucontext");

	/* The scheduler switches in; the coroutine allocates on its stack, then yields. */
	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, top - 64, 2 * S);
	assert_true(t->running);
	alloc(f, 0x1000, 100, top - 512, 2 * S + 10);
	alloc(f, 0x2000, 7, THREAD_SP - 64, 2 * S + 20); /* the scheduler: untasked */
	sw(f, MS_CORO_SWAPCONTEXT, UCP_MAIN, top - 600, THREAD_SP - 8, 3 * S);
	assert_false(t->running);
	assert_int_equal(t->busy_ns, 1 * S);
	assert_int_equal(t->live_bytes, 100);
	assert_int_equal(f->p->heap.untasked_live_bytes, 7);

	/* Resumed, returns: __start_context does setcontext(uc_link) near the top of the stack. */
	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, top - 600, 4 * S);
	alloc(f, 0x3000, 50, top - 700, 4 * S + 1);
	sw(f, MS_CORO_SETCONTEXT, UCP_MAIN, top - 24, THREAD_SP - 8, 5 * S);
	assert_int_equal(t->polls, 2);
	assert_int_equal(t->state, TASK_DEALLOCATED);
	assert_int_equal(t->end_state, TASK_COMPLETED);
	assert_int_equal(t->last_tid, TID);
	assert_int_equal(coro_process__of(f->p)->ended_returned, 1);
	/* The stack no longer captures anything. */
	alloc(f, 0x4000, 9, top - 700, 5 * S + 1);
	assert_int_equal(t->allocated_bytes_total, 150);
	assert_int_equal(f->p->heap.untasked_live_bytes, 16);

	create(f, STACK_A, STACK_SIZE, ENTRY_CXX, 6 * S);
	t2 = coro(f, STACK_A);
	assert_non_null(t2);
	assert_ptr_not_equal(t2, t);
	assert_int_equal(t2->generation, 2);
	assert_string_equal(f->p->tasks->types[t2->type].name, "foo::bar(int)");
	assert_int_equal(coro_process__of(f->p)->switches, 4);
	assert_int_equal(coro_process__of(f->p)->unknown_switches, 0);
	/* The thread's own stack was classified once. */
	assert_int_equal(f->vma_calls, 1);
}

/* Parked forever: a suspect with its bytes; its stack freed later ends it (cancelled). */
static void test_coro_parked_suspect_then_stack_freed(void **state)
{
	struct fixture *f = *state;
	uint64_t top = STACK_B + STACK_SIZE;
	char reason[160];
	struct task *t;

	alloc(f, STACK_B, STACK_SIZE, THREAD_SP, 1 * S); /* the stack itself: untasked */
	create(f, STACK_B, STACK_SIZE, ENTRY_C, 1 * S);
	t = coro(f, STACK_B);
	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, top - 64, 2 * S);
	alloc(f, 0x1000, 4000, top - 512, 2 * S);
	sw(f, MS_CORO_SWAPCONTEXT, UCP_MAIN, top - 600, THREAD_SP - 8, 2 * S + 100);
	assert_true(task__suspect(t, START_NS + 40 * S, 30 * S, reason, sizeof(reason)));
	assert_string_equal(reason, "not resumed for 38.0 s while holding 4000 bytes");
	assert_int_equal(f->p->heap.untasked_live_bytes, STACK_SIZE);

	release(f, STACK_B, 50 * S);
	assert_int_equal(t->state, TASK_DEALLOCATED);
	assert_int_equal(t->end_state, TASK_CANCELLED);
	assert_int_equal(coro_process__of(f->p)->ended_freed, 1);
	assert_int_equal(coro_process__of(f->p)->stacks.n, 0);
	/* What it allocated outlives it. */
	assert_int_equal(t->live_bytes, 4000);
	assert_int_equal(f->p->tasks->types[t->type].outlived_live_bytes, 4000);
}

/* A context never seen made, on a stack that cannot be told: counted, nothing attributed. */
static void test_coro_unknown_context_counted_not_attributed(void **state)
{
	struct fixture *f = *state;

	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, 0x60000100ull, 1 * S);
	alloc(f, 0x1000, 10, 0x60000000ull, 1 * S);
	sw(f, MS_CORO_SWAPCONTEXT, UCP_MAIN, 0x60000000ull, THREAD_SP - 8, 2 * S);
	/* A target whose saved stack pointer could not be read. */
	sw(f, MS_CORO_SETCONTEXT, UCP_A, THREAD_SP, 0, 3 * S);
	assert_int_equal(coro_process__of(f->p)->unknown_switches, 2);
	assert_int_equal(f->p->tasks->ntasks, 1);
	assert_int_equal(f->p->heap.untasked_live_bytes, 10);
}

/* Made before attach on a mapping of its own: found at its first switch. */
static void test_coro_discovered_at_first_switch(void **state)
{
	struct fixture *f = *state;
	struct task *t;

	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, OWN_HI - 800, 1 * S);
	t = coro(f, OWN_LO);
	assert_non_null(t);
	assert_int_equal(t->discovered, TASK_FOUND_FIRST_POLL);
	assert_string_equal(f->p->tasks->types[t->type].name, CORO_TYPE_UNSEEN);
	alloc(f, 0x1000, 10, OWN_HI - 900, 1 * S);
	assert_int_equal(t->live_bytes, 10);
	/* Its uc_link is unknown: a setcontext at the top of its stack is its return. */
	sw(f, MS_CORO_SETCONTEXT, UCP_MAIN, OWN_HI - 24, THREAD_SP - 8, 2 * S);
	assert_int_equal(t->end_state, TASK_COMPLETED);
	assert_int_equal(coro_process__of(f->p)->discovered, 1);
}

/* Corrupt makecontext arguments are counted, never trusted. */
static void test_coro_bad_creates_ignored(void **state)
{
	struct fixture *f = *state;

	create(f, 0, STACK_SIZE, ENTRY_C, 1 * S);
	create(f, STACK_A, 0, ENTRY_C, 1 * S);
	create(f, ~0ull - 10, STACK_SIZE, ENTRY_C, 1 * S);
	create(f, STACK_A, 1ull << 60, ENTRY_C, 1 * S);
	assert_int_equal(coro_process__of(f->p)->bad_creates, 4);
	assert_int_equal(coro_process__of(f->p)->stacks.n, 0);
	assert_int_equal(f->p->tasks->ntasks, 1);
}

/* A coroutine made on a stack that overlaps a suspended one: the old one is abandoned. */
static void test_coro_overlapping_create_ends_the_old_one(void **state)
{
	struct fixture *f = *state;
	struct task *old, *t;

	create(f, STACK_A, STACK_SIZE, ENTRY_C, 1 * S);
	old = coro(f, STACK_A);
	create(f, STACK_A + 0x100, STACK_SIZE, ENTRY_C, 2 * S);
	t = coro(f, STACK_A + 0x100);
	assert_int_equal(old->state, TASK_DEALLOCATED);
	assert_int_equal(old->end_state, TASK_CANCELLED);
	assert_int_equal(t->generation, 1);
	assert_int_equal(coro_process__of(f->p)->ended_reused, 1);
	assert_int_equal(coro_process__of(f->p)->stacks.n, 1);
}

static void pcl(struct fixture *f, uint16_t func, uint64_t addr, uint64_t sp, uint64_t ret,
		uint64_t ts)
{
	struct ms_event e = { .type = MS_EV_PCL, .func = func, .addr = addr };

	e.pcl.sp = sp;
	e.pcl.ret = ret;
	feed(f, &e, ts);
}

#define EXIT_TO 0x500000ull
#define HANDLE 0x55200000ull
#define HELPER 0x55300000ull

/* co_create's makecontext is a pcl coroutine named by its handle; exit, then co_delete. */
static void test_coro_pcl_lifecycle_once_under_pcl(void **state)
{
	struct fixture *f = *state;
	uint64_t lo = HANDLE + 0x400, top = lo + STACK_SIZE;
	struct task *t, *d;

	coro_process__of(f->p)->pcl = "pcl";
	coro_process__of(f->p)->pcl_exit_lo = EXIT_TO;
	coro_process__of(f->p)->pcl_exit_hi = EXIT_TO + 0x100;
	pcl(f, MS_PCL_CREATE, ENTRY_C, THREAD_SP, 0x400100, 1 * S);
	create(f, lo, STACK_SIZE, 0x400800 /* libpcl's co_runner */, 1 * S);
	pcl(f, MS_PCL_CREATE_RETURN, HANDLE, THREAD_SP, 0, 1 * S);
	t = coro(f, lo);
	assert_non_null(t);
	assert_string_equal(f->p->tasks->types[t->type].runtime, "pcl");
	assert_string_equal(f->p->tasks->types[t->type].name, "serve_client");
	assert_int_equal(t->stack_base, HANDLE);
	assert_int_equal(coro_process__of(f->p)->pcl_created, 1);

	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, top - 64, 2 * S);
	alloc(f, 0x1000, 10, top - 256, 2 * S);
	/* co_exit: libpcl makes its delete helper (from co_exit_to) and switches to it. */
	pcl(f, MS_PCL_EXIT, UCP_MAIN, top - 300, 0x400900, 3 * S);
	assert_int_equal(t->end_state, TASK_COMPLETED);
	pcl(f, MS_PCL_CREATE, 0x400a00, top - 400, EXIT_TO + 0x20, 3 * S);
	create(f, HELPER, 0x1000, 0x400800, 3 * S);
	pcl(f, MS_PCL_CREATE_RETURN, HELPER - 0x400, top - 400, 0, 3 * S);
	assert_int_equal(coro_process__of(f->p)->pcl_internal, 1);
	assert_int_equal(f->p->tasks->ntasks, 2);
	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, top - 400, HELPER + 0x800, 3 * S);
	alloc(f, 0x2000, 20, HELPER + 0x700, 3 * S); /* the helper's own: untasked */
	pcl(f, MS_PCL_DELETE, HANDLE, HELPER + 0x700, 0x400a10, 3 * S);
	assert_int_equal(t->state, TASK_DEALLOCATED);
	assert_int_equal(t->end_state, TASK_COMPLETED);
	assert_int_equal(t->live_bytes, 10);
	assert_int_equal(f->p->heap.untasked_live_bytes, 20);
	assert_int_equal(coro_process__of(f->p)->unknown_switches, 0);

	/* Deleted while suspended: cancelled. */
	pcl(f, MS_PCL_CREATE, ENTRY_CXX, THREAD_SP, 0x400100, 4 * S);
	create(f, lo, STACK_SIZE, 0x400800, 4 * S);
	pcl(f, MS_PCL_CREATE_RETURN, HANDLE, THREAD_SP, 0, 4 * S);
	d = coro(f, lo);
	assert_int_equal(d->generation, 2);
	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, top - 64, 5 * S);
	sw(f, MS_CORO_SWAPCONTEXT, UCP_MAIN, top - 300, THREAD_SP - 8, 6 * S);
	pcl(f, MS_PCL_DELETE, HANDLE, THREAD_SP, 0x400110, 7 * S);
	assert_int_equal(d->end_state, TASK_CANCELLED);
	assert_int_equal(coro_process__of(f->p)->pcl_ended_deleted, 2);
	/* Unknown handles are ignored. */
	pcl(f, MS_PCL_DELETE, 0x1234, THREAD_SP, 0, 8 * S);
	pcl(f, MS_PCL_CREATE_RETURN, 0x1234, THREAD_SP, 0, 8 * S);
	pcl(f, 99, 0x1234, THREAD_SP, 0, 8 * S);
}

/* A mapping found at a switch stops where stacks seen made begin. */
static void test_coro_discovered_range_clipped_by_known_stacks(void **state)
{
	struct fixture *f = *state;
	struct task *t;

	create(f, OWN_HI - 0x1000, 0x1000, ENTRY_C, 1 * S);
	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, OWN_LO + 0x800, 2 * S);
	t = coro(f, OWN_LO);
	assert_non_null(t);
	assert_int_equal(t->stack_size, OWN_HI - 0x1000 - OWN_LO);
	assert_int_equal(coro_process__of(f->p)->stacks.n, 2);
}

static void make_fcontext(struct fixture *f, uint64_t top, uint64_t size, uint64_t ts)
{
	struct ms_event e = { .type = MS_EV_CORO_CREATE,
			      .func = MS_CORO_MAKE_FCONTEXT,
			      .addr = top };

	e.coro_create.stack = top - size;
	e.coro_create.stack_size = size;
	e.coro_create.entry = ENTRY_CXX;
	feed(f, &e, ts);
}

static void jump(struct fixture *f, uint16_t func, uint64_t from_sp, uint64_t to, uint64_t ts)
{
	struct ms_event e = { .type = MS_EV_CORO_SWITCH, .func = func, .addr = to };

	e.coro_switch.sp = from_sp;
	e.coro_switch.target_sp = to;
	e.coro_switch.fsbase = FSBASE;
	feed(f, &e, ts);
}

/*
 * fcontext: a fiber that leaves by ontop_fcontext and has its stack freed finished; one
 * entered by ontop_fcontext (boost unwinding it) or freed while parked was cancelled.
 */
static void test_coro_fcontext_ends_by_stack_free(void **state)
{
	struct fixture *f = *state;
	uint64_t top_a = STACK_A + STACK_SIZE, top_b = STACK_B + STACK_SIZE;
	struct task *a, *b;

	coro_process__of(f->p)->fcontext = "fcontext";
	alloc(f, STACK_A, STACK_SIZE, THREAD_SP, 1 * S);
	alloc(f, STACK_B, STACK_SIZE, THREAD_SP, 1 * S);
	make_fcontext(f, top_a, STACK_SIZE, 1 * S);
	make_fcontext(f, top_b, STACK_SIZE, 1 * S);
	a = coro(f, STACK_A);
	b = coro(f, STACK_B);
	assert_string_equal(f->p->tasks->types[a->type].runtime, "fcontext");
	assert_string_equal(f->p->tasks->types[a->type].name, "foo::bar(int)");
	assert_int_equal(coro_process__of(f->p)->fcontext_created, 2);

	jump(f, MS_CORO_JUMP_FCONTEXT, THREAD_SP, top_a - 64, 2 * S);
	alloc(f, 0x1000, 10, top_a - 512, 2 * S);
	jump(f, MS_CORO_ONTOP_FCONTEXT, top_a - 600, THREAD_SP - 8, 3 * S);
	release(f, STACK_A, 3 * S);
	assert_int_equal(a->end_state, TASK_COMPLETED);

	jump(f, MS_CORO_JUMP_FCONTEXT, THREAD_SP, top_b - 64, 4 * S);
	jump(f, MS_CORO_JUMP_FCONTEXT, top_b - 600, THREAD_SP - 8, 5 * S);
	jump(f, MS_CORO_ONTOP_FCONTEXT, THREAD_SP, top_b - 600, 6 * S);
	jump(f, MS_CORO_ONTOP_FCONTEXT, top_b - 600, THREAD_SP - 8, 7 * S);
	release(f, STACK_B, 7 * S);
	assert_int_equal(b->end_state, TASK_CANCELLED);
	assert_int_equal(b->polls, 2);
	assert_int_equal(coro_process__of(f->p)->stacks.n, 0);
	assert_int_equal(f->p->heap.untasked_live_bytes, 0);

	/* Unmapped while parked: cancelled; an unmap elsewhere changes nothing. */
	make_fcontext(f, OWN_HI, OWN_HI - OWN_LO, 9 * S);
	jump(f, MS_CORO_JUMP_FCONTEXT, THREAD_SP, OWN_HI - 64, 9 * S);
	jump(f, MS_CORO_JUMP_FCONTEXT, OWN_HI - 600, THREAD_SP - 8, 9 * S);
	a = coro(f, OWN_LO);
	feed(f, &(struct ms_event){ .type = MS_EV_CORO_UNMAP, .addr = OWN_HI, .size = 0x1000 },
	     10 * S);
	assert_int_equal(a->state, TASK_IDLE);
	feed(f,
	     &(struct ms_event){ .type = MS_EV_CORO_UNMAP,
				 .addr = OWN_LO - 0x1000,
				 .size = OWN_HI - OWN_LO + 0x2000 },
	     10 * S);
	assert_int_equal(a->end_state, TASK_CANCELLED);
	assert_int_equal(coro_process__of(f->p)->ended_unmapped, 1);

	/* Found at a switch by jump_fcontext: an fcontext coroutine. */
	jump(f, MS_CORO_JUMP_FCONTEXT, THREAD_SP, OWN_HI - 800, 8 * S);
	assert_string_equal(f->p->tasks->types[coro(f, OWN_LO)->type].runtime, "fcontext");
	assert_int_equal(coro_process__of(f->p)->fcontext_discovered, 1);
}

/* Whatever the events say, nothing crashes and every figure stays consistent. */
static void test_coro_random_events_never_crash(void **state)
{
	struct fixture *f = *state;
	static const uint64_t addrs[] = { 0,
					  1,
					  STACK_A,
					  STACK_A + 0x100,
					  STACK_A + STACK_SIZE,
					  STACK_B,
					  THREAD_SP,
					  OWN_LO,
					  OWN_HI - 8,
					  HANDLE,
					  ~0ull,
					  0x8000000000000000ull };
	uint32_t x = 12345;
	int i;

	coro_process__of(f->p)->pcl = "pcl";
	coro_process__of(f->p)->fcontext = "fcontext";
	for (i = 0; i < 200000; i++) {
		struct ms_event e = { 0 };
		__u64 *w[5] = { &e.addr, &e.old_addr, &e.size, &e.sp, &e.task };
		int k;

		x = x * 1103515245 + 12345;
		e.type = (uint16_t)(MS_EV_ALLOC + (x >> 8) % 9);
		x = x * 1103515245 + 12345;
		e.func = (uint16_t)((x >> 8) % 8);
		for (k = 0; k < 5; k++) {
			x = x * 1103515245 + 12345;
			*w[k] = addrs[(x >> 8) % 12] + ((x >> 20) & 0xff0);
		}
		e.tid = TID + (x >> 28) % 3;
		feed(f, &e, (uint64_t)i * 1000);
	}
	assert_true(coro_process__of(f->p)->stacks.n <= f->p->tasks->ntasks + 64);
}

/* glibc 2.36's x86-64 swapcontext, as Debian 12 ships it. */
static const uint8_t swapcontext_2_36[] = {
	0x48, 0x89, 0x9f, 0x80, 0x00, 0x00, 0x00, 0x48, 0x89, 0x6f, 0x78, 0x4c, 0x89, 0x67, 0x48,
	0x4c, 0x89, 0x6f, 0x50, 0x4c, 0x89, 0x77, 0x58, 0x4c, 0x89, 0x7f, 0x60, 0x48, 0x89, 0x7f,
	0x68, 0x48, 0x89, 0x77, 0x70, 0x48, 0x89, 0x97, 0x88, 0x00, 0x00, 0x00, 0x48, 0x89, 0x8f,
	0x98, 0x00, 0x00, 0x00, 0x4c, 0x89, 0x47, 0x28, 0x4c, 0x89, 0x4f, 0x30, 0x48, 0x8b, 0x0c,
	0x24, 0x48, 0x89, 0x8f, 0xa8, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x4c, 0x24, 0x08, 0x48, 0x89,
	0x8f, 0xa0, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x8f, 0xa8, 0x01, 0x00, 0x00, 0x48, 0x89, 0x8f,
	0xe0, 0x00, 0x00, 0x00, 0xd9, 0x31, 0x0f, 0xae, 0x9f, 0xc0, 0x01, 0x00, 0x00, 0x49, 0x89,
	0xf4, 0x49, 0x89, 0xf9, 0x48, 0x8d, 0x97, 0x28, 0x01, 0x00, 0x00, 0x48, 0x8d, 0xb6, 0x28,
	0x01, 0x00, 0x00, 0xbf, 0x02, 0x00, 0x00, 0x00, 0x41, 0xba, 0x08, 0x00, 0x00, 0x00, 0xb8,
	0x0e, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0x73, 0x5e, 0x4c,
	0x89, 0xe2, 0x48, 0x8b, 0x8a, 0xe0, 0x00, 0x00, 0x00, 0xd9, 0x21, 0x0f, 0xae, 0x92, 0xc0,
	0x01, 0x00, 0x00, 0x48, 0x8b, 0xa2, 0xa0, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x9a, 0x80, 0x00,
	0x00, 0x00, 0x48, 0x8b, 0x6a, 0x78, 0x4c, 0x8b, 0x62, 0x48, 0x4c, 0x8b, 0x6a, 0x50, 0x4c,
	0x8b, 0x72, 0x58, 0x4c, 0x8b, 0x7a, 0x60, 0x48, 0x8b, 0x8a, 0xa8, 0x00, 0x00, 0x00, 0x51,
	0x48, 0x8b, 0x7a, 0x68, 0x48, 0x8b, 0x72, 0x70, 0x48, 0x8b, 0x8a, 0x98, 0x00, 0x00, 0x00,
	0x4c, 0x8b, 0x42, 0x28, 0x4c, 0x8b, 0x4a, 0x30, 0x48, 0x8b, 0x92, 0x88, 0x00, 0x00, 0x00,
	0x31, 0xc0, 0xc3, 0x48, 0x8b, 0x0d, 0xd6, 0x6d, 0x18, 0x00, 0xf7, 0xd8, 0x64, 0x89, 0x01,
	0x48, 0x83, 0xc8, 0xff, 0xc3,
};

/* The probe goes to the emulated push once the target's registers are loaded, or the entry. */
static void test_ucontext__swapcontext_late_offset(void **state)
{
	uint8_t code[sizeof(swapcontext_2_36)];

	(void)state;
	assert_int_equal(ucontext__swapcontext_late_offset(swapcontext_2_36, sizeof(code)), 0xd1);
	assert_int_equal(swapcontext_2_36[0xd1], 0x51);
	/* Truncated, or oucp not kept in r9: not the sequence. */
	assert_int_equal(ucontext__swapcontext_late_offset(swapcontext_2_36, 0xd1), 0);
	memcpy(code, swapcontext_2_36, sizeof(code));
	code[0x6a] = 0x90;
	assert_int_equal(ucontext__swapcontext_late_offset(code, sizeof(code)), 0);
	assert_int_equal(ucontext__swapcontext_late_offset(code, 0), 0);
}

/* A glibc thread arena's heap (64 MiB aligned) above a guard page is no coroutine stack. */
static int arena_vma(void *ctx, uint64_t addr, struct coro_vma *ret)
{
	(void)ctx;
	(void)addr;
	*ret = (struct coro_vma){ 0x7f0004000000ull, 0x7f0004100000ull, true, false, true, true };
	return 0;
}

static void test_coro_arena_heap_is_not_a_stack(void **state)
{
	struct fixture *f = *state;

	coro_process__of(f->p)->env.vma = arena_vma;
	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, 0x7f0004000800ull, 1 * S);
	assert_int_equal(coro_process__of(f->p)->unknown_switches, 1);
	assert_int_equal(coro_process__of(f->p)->discovered, 0);
}

/* The decoder without a coroutine runtime ignores coroutine events. */
static void test_coro_events_without_runtime_ignored(void **state)
{
	struct fixture *f = *state;

	coro_process__detach(f->p);
	assert_null(coro_process__of(f->p));
	create(f, STACK_A, STACK_SIZE, ENTRY_C, 1 * S);
	sw(f, MS_CORO_SWAPCONTEXT, UCP_A, THREAD_SP, STACK_A + 64, 1 * S);
	alloc(f, 0x1000, 10, STACK_A + 32, 1 * S);
	assert_int_equal(f->p->tasks->ntasks, 1);
	assert_int_equal(f->p->heap.untasked_live_bytes, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coro_stacks_sorted_lookup_and_overlap),
		cmocka_unit_test_setup_teardown(test_coro_lifecycle_attribution_and_reuse, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_coro_parked_suspect_then_stack_freed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_coro_unknown_context_counted_not_attributed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_coro_discovered_at_first_switch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_coro_bad_creates_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coro_overlapping_create_ends_the_old_one,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_coro_events_without_runtime_ignored, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_coro_pcl_lifecycle_once_under_pcl, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_coro_discovered_range_clipped_by_known_stacks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_coro_fcontext_ends_by_stack_free, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_coro_random_events_never_crash, setup,
						teardown),
		cmocka_unit_test(test_ucontext__swapcontext_late_offset),
		cmocka_unit_test_setup_teardown(test_coro_arena_heap_is_not_a_stack, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
