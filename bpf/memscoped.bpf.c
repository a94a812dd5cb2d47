// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Allocator and task probes. Every probe is attached to one target process; the
 * allocator family is probed at entry (arguments) and return (result), and only the
 * outermost allocator call on a thread is reported: glibc calls malloc and free
 * internally (realloc(NULL, n), posix_memalign with small alignments, realloc(p, 0)).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "memscoped/events.h"

/* libbpf 1.1 has no BPF_UPROBE: the kprobe macros read the same pt_regs. */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MS_DEFAULT_RING_SIZE);
} events SEC(".maps");

/* Events dropped because the ring buffer was full, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* tgids being traced (value unused). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MS_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

#define MS_TASK_STACK 8

/* Per-thread state; task storage is freed with the thread, so nothing leaks. */
struct thread_state {
	__u32 depth;	  /* allocator calls in progress on this thread */
	__u32 func;	  /* outermost allocator function */
	__u64 size;	  /* its requested size */
	__u64 old_addr;	  /* realloc: block passed in */
	__u64 memptr;	  /* posix_memalign: where the result is stored */
	__u64 sp;	  /* user stack pointer at its entry */
	__u32 ntasks;	  /* current task stack (polls nest) */
	__u32 __pad;
	__u64 tasks[MS_TASK_STACK];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_state);
} thread_states SEC(".maps");

static __always_inline bool is_target(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

static __always_inline struct thread_state *thread_state(void)
{
	return bpf_task_storage_get(&thread_states, bpf_get_current_task_btf(), NULL,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
}

static __always_inline __u64 current_task(const struct thread_state *ts)
{
	__u32 n = ts->ntasks;

	if (n == 0 || n > MS_TASK_STACK)
		return 0;
	return ts->tasks[(n - 1) & (MS_TASK_STACK - 1)];
}

static __always_inline int emit(__u16 type, __u16 func, __u64 addr, __u64 old_addr, __u64 size,
				__u64 sp, __u64 task)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ms_event *e;
	__u32 zero = 0;
	__u64 *n;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return 0;
	}
	e->type = type;
	e->func = func;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->__pad = 0;
	e->ts = bpf_ktime_get_ns();
	e->addr = addr;
	e->old_addr = old_addr;
	e->size = size;
	e->sp = sp;
	e->task = task;
	/* The daemon drains on a timer: a wakeup per event would cost ~5 us. */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

/* Entry of an allocator function: remember its arguments if it is the outermost call. */
static __always_inline int alloc_enter(struct pt_regs *ctx, __u64 size, __u64 old_addr,
				       __u64 memptr)
{
	struct thread_state *ts;
	__u32 func;

	if (!is_target())
		return 0;
	ts = thread_state();
	if (!ts)
		return 0;
	if (ts->depth++ > 0)
		return 0;
	func = bpf_get_attach_cookie(ctx);
	ts->func = func;
	ts->size = size;
	ts->old_addr = old_addr;
	ts->memptr = memptr;
	ts->sp = PT_REGS_SP(ctx);
	/* Reported at entry: another thread may get the old block before realloc returns. */
	if (old_addr && (func == MS_FN_REALLOC || func == MS_FN_REALLOCARRAY))
		emit(MS_EV_REALLOC_BEGIN, func, old_addr, 0, size, ts->sp, current_task(ts));
	return 0;
}

static __always_inline int alloc_return(__u64 addr, bool from_memptr)
{
	struct thread_state *ts;

	if (!is_target())
		return 0;
	ts = bpf_task_storage_get(&thread_states, bpf_get_current_task_btf(), NULL, 0);
	/* depth 0: the call began before we attached. */
	if (!ts || ts->depth == 0)
		return 0;
	if (--ts->depth > 0)
		return 0;
	if (from_memptr) {
		if (addr != 0 || !ts->memptr ||
		    bpf_probe_read_user(&addr, sizeof(addr), (void *)ts->memptr))
			addr = 0;
	}
	return emit(MS_EV_ALLOC, ts->func, addr, ts->old_addr, ts->size, ts->sp, current_task(ts));
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, __u64 size)
{
	return alloc_enter(ctx, size, 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, __u64 nmemb, __u64 size)
{
	return alloc_enter(ctx, nmemb * size, 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(realloc_enter, __u64 ptr, __u64 size)
{
	return alloc_enter(ctx, size, ptr, 0);
}

SEC("uprobe")
int BPF_KPROBE(reallocarray_enter, __u64 ptr, __u64 nmemb, __u64 size)
{
	return alloc_enter(ctx, nmemb * size, ptr, 0);
}

/* aligned_alloc(align, size) and memalign(align, size). */
SEC("uprobe")
int BPF_KPROBE(memalign_enter, __u64 align, __u64 size)
{
	return alloc_enter(ctx, size, 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(posix_memalign_enter, __u64 memptr, __u64 align, __u64 size)
{
	return alloc_enter(ctx, size, 0, memptr);
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_exit, __u64 ret)
{
	return alloc_return(ret, false);
}

/* posix_memalign returns 0 on success and stores the block through memptr. */
SEC("uretprobe")
int BPF_KRETPROBE(posix_memalign_exit, int ret)
{
	return alloc_return(ret, true);
}

/* May be attached after free's NULL check, so it sees only the pointer argument. */
SEC("uprobe")
int BPF_KPROBE(free_enter, __u64 ptr)
{
	struct thread_state *ts;

	if (!ptr || !is_target())
		return 0;
	ts = bpf_task_storage_get(&thread_states, bpf_get_current_task_btf(), NULL, 0);
	/* A free inside realloc is part of that realloc. */
	if (ts && ts->depth > 0)
		return 0;
	return emit(MS_EV_FREE, MS_FN_FREE, ptr, 0, 0, PT_REGS_SP(ctx), ts ? current_task(ts) : 0);
}
