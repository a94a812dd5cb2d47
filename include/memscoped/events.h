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
	MS_EV_TASK_ENTER = 4,	 /* a task poll began: addr = task header, see poll below */
	MS_EV_TASK_EXIT = 5,	 /* a task poll returned: addr = header, poll.state after it */
	MS_EV_TASK_INVALID = 6,	 /* a header failed validation: task fields no longer read */
	MS_EV_CORO_CREATE = 7,	 /* makecontext entered: addr = ucp, see coro_create below */
	MS_EV_CORO_SWITCH = 8,	 /* swapcontext/setcontext entered: addr = ucp, see coro_switch */
	MS_EV_PCL = 9,		 /* a libpcl function entered or returned: func, addr and pcl */
	MS_EV_CORO_UNMAP = 10,	 /* munmap(addr, size) entered: a coroutine stack may go */
	MS_EV_EXEC = 11,	 /* the target exec'd a new program: its report ends here */
	MS_EV_SAMPLE = 12,	 /* a sampled allocation's registers and stack: struct ms_sample */
	MS_EV_FORK = 13,	 /* the target forked: addr = the child's pid, a target from now */
	MS_EV_WINDOW_END = 14, /* a child died in its fork window: addr = its calls missed, final */
};

/*
 * A fork_pending count (and MS_EV_WINDOW_END's addr) with this bit: a return in the window
 * could not be told to be an allocator's (its uprobe had more consumers than were looked at),
 * so the count is a lower bound and the window is not counted.
 */
#define MS_WINDOW_UNCOUNTED (1ull << 63)

/* The coroutine function an event came from (ms_event.func); also its probe's BPF cookie. */
enum ms_coro_func {
	MS_CORO_MAKECONTEXT = 1,
	MS_CORO_SWAPCONTEXT,
	MS_CORO_SETCONTEXT,
	MS_CORO_MAKE_FCONTEXT,	  /* make_fcontext(sp, size, fn): stack [sp - size, sp) */
	MS_CORO_JUMP_FCONTEXT,	  /* jump_fcontext(to, vp): to points into the target's stack */
	MS_CORO_ONTOP_FCONTEXT,	  /* ontop_fcontext(to, vp, fn) */
	MS_CORO_MUNMAP,		  /* munmap(addr, len): stacks of their own are unmapped */
	MS_CORO_SWAPCONTEXT_LATE, /* a probe inside swapcontext, see coro_switch; never in events */
};

/* The libpcl function of an MS_EV_PCL event (ms_event.func); also its probe's BPF cookie. */
enum ms_pcl_func {
	MS_PCL_CREATE = 1,    /* co_create(func, data, stack, size) entered: addr = func */
	MS_PCL_CREATE_RETURN, /* co_create returned: addr = the coroutine handle (0: failed) */
	MS_PCL_EXIT,	      /* co_exit_to(to) entered: the running coroutine ends */
	MS_PCL_DELETE,	      /* co_delete(co) entered: addr = co */
};

/* The task runtime of an MS_EV_TASK_* event (ms_event.func). */
enum ms_task_runtime {
	MS_TASK_TOKIO = 0,
	MS_TASK_ASYNC_TASK = 1,
};

/*
 * The BPF cookie of a task poll probe: the probed function's run-time address, where its
 * header keeps the vtable pointer and the state, which vtable slot holds the function, the
 * runtime, and whether tokio's owner and Id fields are read. Words are 8 bytes.
 */
#define MS_TASK_COOKIE_IP ((1ull << 48) - 1)
#define MS_TASK_COOKIE_VTABLE(c) (((c) >> 48) & 0xf)
#define MS_TASK_COOKIE_SLOT(c) (((c) >> 52) & 0xf)
#define MS_TASK_COOKIE_STATE(c) (((c) >> 56) & 0xf)
#define MS_TASK_COOKIE_RUNTIME(c) ((__u16)(((c) >> 60) & 0x7))
#define MS_TASK_COOKIE_TOKIO (1ull << 63)
#define MS_TASK_COOKIE(ip, vtable_word, slot, state_word, runtime, tokio)                  \
	(((ip)&MS_TASK_COOKIE_IP) | ((__u64)(vtable_word) << 48) | ((__u64)(slot) << 52) | \
	 ((__u64)(state_word) << 56) | ((__u64)(runtime) << 60) |                          \
	 ((tokio) ? MS_TASK_COOKIE_TOKIO : 0))

/*
 * What an allocator function does (ms_event.func of allocator events, low byte); the low byte
 * of its probe's cookie. Every family's functions map onto these (src/alloc_*.c).
 */
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
	MS_FN_RESIZE, /* resizes in place (xallocx, mi_expand): same address, new size or none */
	MS_FN_MAX,
};

/*
 * An allocator probe's cookie: the function kind and where its arguments are, so that a new
 * allocator family is a table row, not a BPF edit. Argument positions are 1-based (0: none).
 */
#define MS_AC_FUNC(c) ((__u32)(c)&0xff)
#define MS_AC_SIZE(c) (((c) >> 8) & 0xf)   /* bytes requested */
#define MS_AC_COUNT(c) (((c) >> 12) & 0xf) /* multiplies size (calloc); resize: extra bytes */
#define MS_AC_PTR(c) (((c) >> 16) & 0xf)   /* block passed in (realloc, free, resize) */
#define MS_AC_OUT(c) (((c) >> 20) & 0xf)   /* where the block is stored (posix_memalign) */
#define MS_AC_ALIGN(c) (((c) >> 24) & 0xf) /* alignment: documents the row, size is unchanged */
#define MS_AC_FLAGS(c) (((c) >> 28) & 0xf) /* mallocx flags: ZERO/ALIGN leave the size as asked */
#define MS_AC_RET_SIZE (1ull << 32)	   /* returns the usable size, not a pointer (xallocx) */
#define MS_AC_SCOPED (1ull << 33) /* a free with a return probe: frees inside it are its own */
#define MS_AC_FREES_ON_FAIL (1ull << 34) /* a failed realloc frees the block (reallocf) */
#define MS_ALLOC_COOKIE(func, size, count, ptr, out, align, flags)                        \
	((__u64)(func) | (__u64)(size) << 8 | (__u64)(count) << 12 | (__u64)(ptr) << 16 | \
	 (__u64)(out) << 20 | (__u64)(align) << 24 | (__u64)(flags) << 28)
/* ms_event.func bit: the realloc that failed freed its block (MS_AC_FREES_ON_FAIL). */
#define MS_FN_F_FREES_ON_FAIL 0x100
#define MS_FN_KIND(func) ((func)&0xff)

/* One fixed-size event; every field is meaningful for every type or zero. */
struct ms_event {
	__u16 type; /* enum ms_event_type */
	__u16 func; /* by type: ms_alloc_func, ms_task_runtime, ms_coro_func, ms_pcl_func */
	__u32 pid;  /* tgid of the target */
	__u32 tid;
	__u32 __pad;
	__u64 ts;   /* CLOCK_MONOTONIC, ns; 0 in allocator events (the daemon stamps them) */
	__u64 addr; /* block returned / freed, or task header */
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
			__u64 owner_id; /* tokio: *(header + owner slot), 0 for blocking tasks */
			__u64 id;	/* tokio: the task Id */
		} poll;
		struct {
			__u64 stack;	  /* ucp->uc_stack.ss_sp */
			__u64 stack_size; /* ucp->uc_stack.ss_size */
			__u64 entry;	  /* the function the coroutine runs */
			__u64 link;	  /* ucp->uc_link: resumed when the function returns */
		} coro_create;
		struct {
			__u64 target_sp; /* the stack pointer the switch resumes: what runs next */
			__u64 target_ip; /* the instruction it resumes at */
			__u64 sp;	 /* the stack pointer at the switch: what stops */
			__u64 fsbase;	 /* the thread pointer: finds the thread's own stack */
		} coro_switch;
		struct {
			__u64 arg2; /* co_create: data */
			__u64 arg3; /* co_create: stack */
			__u64 sp;   /* the stack pointer at entry */
			__u64 ret;  /* the return address: who called */
		} pcl;
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

/* glibc x86-64 ucontext_t: uc_link, uc_stack.ss_sp/ss_size, uc_mcontext.gregs[REG_RSP/RIP]. */
#define UCTX_LINK 0x08
#define UCTX_STACK_SP 0x10
#define UCTX_STACK_SIZE 0x20
#define UCTX_RSP 0xa0
#define UCTX_RIP 0xa8

/*
 * A sampled allocation (--sample-bytes): the registers at the allocator's return (the caller's
 * state) and a copy of the user stack from sp up, for unwinding in userspace from the CFI of
 * each object (perf --call-graph dwarf's way). Variable length: the header then stack_len
 * bytes. Right after the allocation's own MS_EV_ALLOC in the same ring, so its frees follow it.
 */
#define MS_SAMPLE_STACK_CHUNK 512
#define MS_SAMPLE_STACK_CHUNKS 32
#define MS_SAMPLE_STACK_MAX (MS_SAMPLE_STACK_CHUNK * MS_SAMPLE_STACK_CHUNKS)
/* x86-64 DWARF register numbers 0-16: rax rdx rcx rbx rsi rdi rbp rsp r8-r15, rip. */
#define MS_SAMPLE_REGS 17
/* Quantiles of the unit exponential distribution, Q16 fixed point: the countdown's gaps. */
#define MS_SAMPLE_GAPS 1024
#define MS_SAMPLE_URETPROBES 8

struct ms_sample {
	__u16 type; /* MS_EV_SAMPLE */
	__u16 func; /* enum ms_alloc_func of the allocation */
	__u32 pid;
	__u32 tid;
	__u32 stack_len; /* bytes of stack that follow */
	__u64 ts;
	__u64 addr; /* the block sampled */
	__u64 size;
	__u64 regs[MS_SAMPLE_REGS];
	/* Return addresses the kernel replaced with its uretprobe trampoline: slot, original. */
	__u64 ret_slot[MS_SAMPLE_URETPROBES];
	__u64 ret_orig[MS_SAMPLE_URETPROBES];
	__u8 stack[MS_SAMPLE_STACK_MAX];
};
#define MS_SAMPLE_HEADER_SIZE ((__u64) __builtin_offsetof(struct ms_sample, stack))

/*
 * The allocator events (MS_EV_ALLOC, MS_EV_FREE, MS_EV_REALLOC_BEGIN) travel without ts: with
 * the ring's 8-byte record header, 56 bytes make one 64-byte cache line per event, not two.
 * The daemon reads them as a struct ms_event with ts 0.
 */
struct ms_heap_event {
	__u16 type;
	__u16 func;
	__u32 pid;
	__u32 tid;
	__u32 __pad;
	__u64 addr;
	__u64 old_addr;
	__u64 size;
	__u64 sp;
	__u64 task;
};

#define MS_MAX_TARGETS 64
/* Bound of the targets map by default (--max-targets); --pid takes at most MS_MAX_TARGETS. */
#define MS_DEFAULT_MAX_TARGETS 256
#define MS_PROC_RING_SIZE (256u << 10)

/* What the selector helper is told (the proc_events ring). */
enum ms_proc_event_type {
	MS_PROC_EXEC = 1, /* pid exec'd (a target, or any process in daemon mode) */
	MS_PROC_FORK = 2, /* a target's child pid was born, parent: the target; now a target */
};

struct ms_proc_event {
	__u32 type; /* enum ms_proc_event_type */
	__u32 pid;  /* tgid */
	__u32 parent;
	__u32 __pad;
	__u64 ts;      /* CLOCK_MONOTONIC, ns: the same clock as ms_event.ts */
	char comm[16]; /* at the exec: --comm matches without reading /proc */
};
#define MS_DEFAULT_RING_SIZE (8u << 20)

#endif /* MEMSCOPED_EVENTS_H */
