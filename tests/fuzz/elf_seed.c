// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A seed for fuzz_elf, built by scripts/fuzz.sh as a small PIE (and a stripped copy): an
 * allocator whose free starts with a NULL check, tokio poll copies under legacy and v0 names,
 * and two task vtables (7 relocated code pointers, then trailer, scheduler and id offsets).
 * Never run, only read.
 */
#include <stddef.h>
#include <stdint.h>

/* A v0 name of a poll copy, as in build/tokio-out/tokio-target-v0. */
#define V0_POLL                                                                    \
	"_RINvNtNtNtCsfMtRjiV2nJ4_5tokio7runtime4task3raw4pollNCNvCs93wJG46RXmq_"  \
	"12tokio_target12t_grandchild0INtNtCslNYArtu3iFV_5alloc4sync3ArcNtNtNtB6_" \
	"9scheduler14current_thread6HandleEEBS_"

struct vtable {
	void (*fn[7])(void);
	uintptr_t trailer_offset, scheduler_offset, id_offset;
};

__attribute__((used, noinline)) void poll_legacy(void)
	__asm__("_ZN5tokio7runtime4task3raw4poll17h005411e50dbf337cE");
__attribute__((used, noinline)) void poll_v0(void) __asm__(V0_POLL);
__attribute__((used, noinline)) void task_op(void);

static char arena[64];

void poll_legacy(void)
{
	__asm__ volatile("" ::: "memory");
}

void poll_v0(void)
{
	__asm__ volatile("nop" ::: "memory");
}

void task_op(void)
{
	__asm__ volatile("nop; nop" ::: "memory");
}

__attribute__((used)) const struct vtable vtables[2] = {
	{ { poll_legacy, task_op, task_op, task_op, task_op, task_op, task_op }, 0x80, 0x20, 0x28 },
	{ { poll_v0, task_op, task_op, task_op, task_op, task_op, task_op }, 0x100, 0x20, 0x28 },
};

__attribute__((used, noinline)) void *malloc(size_t n)
{
	return n <= sizeof(arena) ? arena : NULL;
}

__attribute__((used, noinline)) void free(void *p)
{
	if (!p)
		return;
	__asm__ volatile("" ::: "memory");
}

void _start(void)
{
	for (;;)
		;
}
