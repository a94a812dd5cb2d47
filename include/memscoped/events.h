/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Events and constants shared by the BPF programs and the daemon. */
#ifndef MEMSCOPED_EVENTS_H
#define MEMSCOPED_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum ms_event_type {
	MS_EV_ALLOC = 1,	 /* an allocator function returned (addr 0 = failed) */
	MS_EV_FREE = 2,		 /* free(addr) entered */
	MS_EV_REALLOC_BEGIN = 3, /* realloc(addr, size) entered with addr != 0 */
	MS_EV_TASK_ENTER = 4,	 /* a task poll began (task = header address) */
	MS_EV_TASK_EXIT = 5,	 /* a task poll returned (size = task state word) */
};

/* The allocator function an event came from; also the BPF cookie of its probe. */
enum ms_alloc_func {
	MS_FN_MALLOC = 1,
	MS_FN_CALLOC,
	MS_FN_REALLOC,
	MS_FN_REALLOCARRAY,
	MS_FN_POSIX_MEMALIGN,
	MS_FN_ALIGNED_ALLOC,
	MS_FN_MEMALIGN,
	MS_FN_VALLOC,
	MS_FN_PVALLOC,
	MS_FN_FREE,
	MS_FN_MAX,
};

/* One fixed-size event; every field is meaningful for every type or zero. */
struct ms_event {
	__u16 type;	/* enum ms_event_type */
	__u16 func;	/* enum ms_alloc_func */
	__u32 pid;	/* tgid of the target */
	__u32 tid;
	__u32 __pad;
	__u64 ts;	/* CLOCK_MONOTONIC, ns */
	__u64 addr;	/* block returned / freed, or task header */
	__u64 old_addr; /* realloc: the block passed in */
	__u64 size;	/* bytes requested (calloc: nmemb * size) */
	__u64 sp;	/* user stack pointer at function entry */
	__u64 task;	/* task current on this thread (0 = none) */
};

#define MS_MAX_TARGETS 64
#define MS_DEFAULT_RING_SIZE (8u << 20)

#endif /* MEMSCOPED_EVENTS_H */
