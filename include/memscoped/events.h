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
	MS_EV_TASK_ENTER = 4,	 /* a tokio poll began: addr = task header, see poll below */
	MS_EV_TASK_EXIT = 5,	 /* a tokio poll returned: addr = header, poll.state after it */
	MS_EV_TASK_INVALID = 6,	 /* a header failed validation: tokio fields no longer read */
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
	union {
		struct {
			__u64 old_addr; /* realloc: the block passed in */
			__u64 size;	/* bytes requested (calloc: nmemb * size) */
			__u64 sp;	/* user stack pointer at function entry */
			__u64 task;	/* header of the task current on this thread (0 = none) */
		};
		struct {
			__u64 vtable;	/* *(header + vtable slot) */
			__u64 state;	/* *(header): RUNNING, COMPLETE, ... bits */
			__u64 owner_id; /* *(header + owner slot): 0 for blocking tasks */
			__u64 id;	/* the tokio task Id */
		} poll;
	};
};

/* tokio 1.x task header and vtable layout (DESIGN.md; checked at run time through the vtable). */
#define TOKIO_HDR_STATE 0x00
#define TOKIO_HDR_VTABLE 0x10
#define TOKIO_HDR_OWNER_ID 0x18
#define TOKIO_VT_POLL 0x00
#define TOKIO_VT_TRAILER_OFFSET 0x38
#define TOKIO_VT_SCHEDULER_OFFSET 0x40
#define TOKIO_VT_ID_OFFSET 0x48
#define TOKIO_STATE_RUNNING 0x01
#define TOKIO_STATE_COMPLETE 0x02
#define TOKIO_STATE_JOIN_INTEREST 0x08
#define TOKIO_STATE_CANCELLED 0x20

#define MS_MAX_TARGETS 64
#define MS_DEFAULT_RING_SIZE (8u << 20)

#endif /* MEMSCOPED_EVENTS_H */
