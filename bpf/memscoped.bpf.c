// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Allocator and task probes. Every probe is attached to one target process; the
 * allocator family is probed at entry (arguments) and return (result), and only the
 * outermost allocator call on a thread is reported: glibc calls malloc and free
 * internally (realloc(NULL, n), posix_memalign with small alignments, realloc(p, 0)).
 *
 * The allocator programs do not look their process up in `targets`: their links carry the
 * target's pid, and the kernel runs them for that process's threads only (a forked child
 * keeps the breakpoints but not the programs); the daemon drops any other pid's events too.
 * That lookup was ~15 ns of each program.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "memscoped/events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* --empty-programs (benchmarks): the allocator programs return at once, the uprobe floor. */
const volatile bool empty_programs = false;

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

/* tgids being traced; value bit 0: tokio headers failed validation, stop reading them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MS_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
} targets SEC(".maps");

#define TARGET_TOKIO_INVALID 1

#include "sample.bpf.h"

/* Daemon mode: every exec is told to the selector helper (--comm, --exe, --cgroup). */
const volatile bool select_execs = false;
/* Children of targets are targets (not --no-follow-forks). */
const volatile bool follow_forks = false;

/* Process events for the selector helper, which sleeps on this ring (with wakeups). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MS_PROC_RING_SIZE);
} proc_events SEC(".maps");

/* A reserve failed, the ring was full: the figures become lower bounds. */
static __always_inline int count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1;
	return 0;
}

static __always_inline void emit_proc(__u32 type, __u32 pid, __u32 parent, __u64 ts)
{
	struct ms_proc_event *e;

	e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return;
	}
	e->type = type;
	e->pid = pid;
	e->parent = parent;
	e->__pad = 0;
	e->ts = ts;
	/* The child of a fork has its parent's comm; the exec'd image its new one. */
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

#define MS_TASK_STACK 8

/* Per-thread state; task storage is freed with the thread, so nothing leaks. */
struct thread_state {
	__u32 depth;	/* allocator calls in progress on this thread */
	__u32 func;	/* outermost allocator function: enum ms_alloc_func | MS_FN_F_* */
	__u32 ret_size; /* it returns a usable size (xallocx) */
	__u32 __pad0;
	__u64 size;	/* its requested size */
	__u64 extra;	/* resize in place: extra bytes it may add (xallocx) */
	__u64 old_addr; /* realloc: block passed in */
	__u64 memptr;	/* posix_memalign: where the result is stored */
	__u64 sp;	/* user stack pointer at its entry */
	__u32 ntasks;	/* current task stack (polls nest) */
	__u32 __pad;
	__u64 tasks[MS_TASK_STACK];
	struct sample_state sample;
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

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return count_lost();
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

/*
 * An allocator event: no time (a clock read is ~45 ns here, a fifth of what the programs cost
 * per malloc+free pair; the daemon stamps it, event_decoder.h) and 56 bytes, one cache line
 * with the ring's header.
 */
static __always_inline int emit_heap(__u16 type, __u16 func, __u64 addr, __u64 old_addr, __u64 size,
				     __u64 sp, __u64 task)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ms_heap_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return count_lost();
	e->type = type;
	e->func = func;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->__pad = 0;
	e->addr = addr;
	e->old_addr = old_addr;
	e->size = size;
	e->sp = sp;
	e->task = task;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

/* The six argument registers, read once: a switch over ctx offsets would not verify. */
struct args {
	__u64 a[6];
};

static __always_inline void read_args(struct pt_regs *ctx, struct args *r)
{
	r->a[0] = PT_REGS_PARM1(ctx);
	r->a[1] = PT_REGS_PARM2(ctx);
	r->a[2] = PT_REGS_PARM3(ctx);
	r->a[3] = PT_REGS_PARM4(ctx);
	r->a[4] = PT_REGS_PARM5(ctx);
	r->a[5] = ctx->r9;
}

/* The argument at a 1-based position of a table row (0: none). */
static __always_inline __u64 arg_at(const struct args *r, __u32 i)
{
	if (i == 0 || i > 6)
		return 0;
	return r->a[i - 1];
}

/* Entry of an allocator function: remember its arguments if it is the outermost call. */
static __always_inline int alloc_enter(struct pt_regs *ctx, __u64 cookie, __u64 size, __u64 extra,
				       __u64 old_addr, __u64 memptr)
{
	struct thread_state *ts;
	__u32 func = MS_AC_FUNC(cookie);
	__u64 sp;

	ts = thread_state();
	if (!ts)
		return 0;
	sp = PT_REGS_SP(ctx);
	/*
	 * A call from a shallower frame than the outermost one in progress means that one ended
	 * unseen (its return was never probed): start over rather than hide this thread forever.
	 */
	if (ts->depth > 0 && sp > ts->sp)
		ts->depth = 0;
	if (ts->depth++ > 0)
		return 0;
	ts->func = func | (cookie & MS_AC_FREES_ON_FAIL ? MS_FN_F_FREES_ON_FAIL : 0);
	ts->ret_size = !!(cookie & MS_AC_RET_SIZE);
	ts->size = size;
	ts->extra = extra;
	ts->old_addr = old_addr;
	ts->memptr = memptr;
	ts->sp = sp;
	/* A layered free (Rust's __rust_dealloc over a probed allocator) reports once, here. */
	if (func == MS_FN_FREE) {
		if (old_addr)
			emit_heap(MS_EV_FREE, MS_FN_FREE, old_addr, 0, 0, sp, current_task(ts));
		return 0;
	}
	/* Reported at entry: another thread may get the old block before realloc returns. */
	if (old_addr && (func == MS_FN_REALLOC || func == MS_FN_REALLOCARRAY))
		emit_heap(MS_EV_REALLOC_BEGIN, ts->func, old_addr, 0, size, ts->sp,
			  current_task(ts));
	return 0;
}

static __always_inline int alloc_return_common(__u64 addr)
{
	struct thread_state *ts;

	ts = bpf_task_storage_get(&thread_states, bpf_get_current_task_btf(), NULL, 0);
	/* depth 0: the call began before we attached. */
	if (!ts || ts->depth == 0)
		return 0;
	if (--ts->depth > 0)
		return 0;
	if (MS_FN_KIND(ts->func) == MS_FN_FREE)
		return 0;
	/* In place: the same block or none; xallocx returns the usable size, mi_expand the block. */
	if (MS_FN_KIND(ts->func) == MS_FN_RESIZE) {
		__u64 size = ts->size + ts->extra;

		/* xallocx: at least size on success; of the extra, what it got. */
		if (ts->ret_size) {
			if (addr < size)
				size = addr;
			addr = addr >= ts->size ? ts->old_addr : 0;
		} else if (addr != ts->old_addr) {
			addr = 0;
		}
		return emit_heap(MS_EV_ALLOC, ts->func, addr, ts->old_addr, size, ts->sp,
				 current_task(ts));
	}
	/* posix_memalign returns 0 on success and stores the block through memptr. */
	if (ts->memptr) {
		if ((int)addr != 0 || !ts->memptr ||
		    bpf_probe_read_user(&addr, sizeof(addr), (void *)ts->memptr))
			addr = 0;
	}
	emit_heap(MS_EV_ALLOC, ts->func, addr, ts->old_addr, ts->size, ts->sp, current_task(ts));
	return sample_alloc(&ts->sample, ts->func, addr, ts->size);
}

/* May be attached after free's NULL check, so it sees only the pointer argument. */
static __always_inline int free_enter(struct pt_regs *ctx, __u64 ptr)
{
	struct thread_state *ts;

	if (!ptr)
		return 0;
	ts = bpf_task_storage_get(&thread_states, bpf_get_current_task_btf(), NULL, 0);
	/* A free inside realloc (a deeper frame) is part of that realloc. */
	if (ts && ts->depth > 0 && PT_REGS_SP(ctx) <= ts->sp)
		return 0;
	return emit_heap(MS_EV_FREE, MS_FN_FREE, ptr, 0, 0, PT_REGS_SP(ctx),
			 ts ? current_task(ts) : 0);
}

/*
 * One program for every allocator entry (one uprobe_multi link): the cookie says what the
 * function does and where its arguments are (MS_ALLOC_COOKIE), from the family's table.
 */
SEC("uprobe")
int alloc_entry(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), size, count, ptr;
	__u32 func = MS_AC_FUNC(cookie);
	struct args args;

	if (empty_programs)
		return 0;
	read_args(ctx, &args);
	ptr = arg_at(&args, MS_AC_PTR(cookie));
	if (func == MS_FN_FREE && !(cookie & MS_AC_SCOPED))
		return free_enter(ctx, ptr);
	if (func == 0 || func >= MS_FN_MAX)
		return 0;
	size = arg_at(&args, MS_AC_SIZE(cookie));
	count = arg_at(&args, MS_AC_COUNT(cookie));
	if (func == MS_FN_RESIZE)
		return alloc_enter(ctx, cookie, size, count, ptr, 0);
	if (MS_AC_COUNT(cookie))
		size *= count;
	return alloc_enter(ctx, cookie, size, 0, ptr, arg_at(&args, MS_AC_OUT(cookie)));
}

/* The return of every allocator: only the outermost call on the thread reports. */
SEC("uretprobe")
int alloc_return(struct pt_regs *ctx)
{
	if (empty_programs)
		return 0;
	return alloc_return_common(PT_REGS_RC(ctx));
}

/*
 * A task runtime's poll function (tokio's raw::poll<T, S>, async-task's RawTask::run), one
 * copy per future type, all attached to these two programs; its first argument is the task
 * header. The cookie says where the runtime keeps what is read (MS_TASK_COOKIE), so a new
 * runtime needs no BPF edit. The header is trusted only if its vtable's slot is the probed
 * function, whose run-time address is in the cookie (bpf_get_func_ip needs 6.6 in uprobes).
 */
SEC("uprobe")
int task_poll_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), ip = cookie & MS_TASK_COOKIE_IP;
	__u64 hdr = PT_REGS_PARM1(ctx), vtable = 0, poll = 0, id_off = 0, id = 0, state = 0;
	__u16 runtime = MS_TASK_COOKIE_RUNTIME(cookie);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct thread_state *ts;
	__u64 owner = 0;
	__u32 *flags;

	flags = bpf_map_lookup_elem(&targets, &tgid);
	if (!flags || (*flags & TARGET_TOKIO_INVALID))
		return 0;
	if (bpf_probe_read_user(&vtable, sizeof(vtable),
				(void *)(hdr + 8 * MS_TASK_COOKIE_VTABLE(cookie))) ||
	    bpf_probe_read_user(&poll, sizeof(poll),
				(void *)(vtable + 8 * MS_TASK_COOKIE_SLOT(cookie))) ||
	    poll != ip) {
		/* Say so once; the daemon keeps tracking the heap without tasks. */
		*flags |= TARGET_TOKIO_INVALID; /* idempotent: a race loses nothing */
		return emit(MS_EV_TASK_INVALID, runtime, hdr, vtable, ip, 0, 0);
	}
	if (cookie & MS_TASK_COOKIE_TOKIO) {
		bpf_probe_read_user(&id_off, sizeof(id_off), (void *)(vtable + TOKIO_VT_ID_OFFSET));
		if (id_off < 4096)
			bpf_probe_read_user(&id, sizeof(id), (void *)(hdr + id_off));
		bpf_probe_read_user(&owner, sizeof(owner), (void *)(hdr + TOKIO_HDR_OWNER_ID));
	}
	bpf_probe_read_user(&state, sizeof(state),
			    (void *)(hdr + 8 * MS_TASK_COOKIE_STATE(cookie)));
	ts = thread_state();
	if (ts) {
		/* Polls nest: a multi-thread worker runs inside its launch task's poll. */
		if (ts->ntasks < MS_TASK_STACK)
			ts->tasks[ts->ntasks & (MS_TASK_STACK - 1)] = hdr;
		ts->ntasks++;
	}
	return emit(MS_EV_TASK_ENTER, runtime, hdr, vtable, state, owner, id);
}

SEC("uretprobe")
int task_poll_return(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct thread_state *ts;
	__u64 hdr, state = 0;
	__u32 *flags;

	flags = bpf_map_lookup_elem(&targets, &tgid);
	if (!flags || (*flags & TARGET_TOKIO_INVALID))
		return 0;
	ts = bpf_task_storage_get(&thread_states, bpf_get_current_task_btf(), NULL, 0);
	/* No entry seen: the poll began before we attached. */
	if (!ts || ts->ntasks == 0)
		return 0;
	ts->ntasks--;
	if (ts->ntasks >= MS_TASK_STACK)
		return 0;
	hdr = ts->tasks[ts->ntasks & (MS_TASK_STACK - 1)];
	/* The cell may be freed by now: a failed read leaves state 0 and the heap table decides. */
	bpf_probe_read_user(&state, sizeof(state),
			    (void *)(hdr + 8 * MS_TASK_COOKIE_STATE(cookie)));
	return emit(MS_EV_TASK_EXIT, MS_TASK_COOKIE_RUNTIME(cookie), hdr, 0, state, 0, 0);
}

/*
 * makecontext(ucp, func, argc, ...): a stackful coroutine is created on ucp->uc_stack. Read at
 * entry: makecontext only writes the registers and the top of the stack.
 */
SEC("uprobe")
int coro_create(struct pt_regs *ctx)
{
	__u64 ucp = PT_REGS_PARM1(ctx), stack = 0, size = 0, link = 0;

	if (!is_target())
		return 0;
	bpf_probe_read_user(&stack, sizeof(stack), (void *)(ucp + UCTX_STACK_SP));
	bpf_probe_read_user(&size, sizeof(size), (void *)(ucp + UCTX_STACK_SIZE));
	bpf_probe_read_user(&link, sizeof(link), (void *)(ucp + UCTX_LINK));
	return emit(MS_EV_CORO_CREATE, (__u16)bpf_get_attach_cookie(ctx), ucp, stack, size,
		    PT_REGS_PARM2(ctx), link);
}

/*
 * swapcontext(oucp, ucp) and setcontext(ucp): entry only, they return on another stack. The
 * stack pointer saved in ucp names what runs next; the one at the call names what stops.
 */
SEC("uprobe")
int coro_switch(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), target_sp = 0, target_ip = 0, oucp_sp = 0;
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx), a3 = PT_REGS_PARM3(ctx);
	__u64 a6 = ctx->r9 /* sixth argument */, sp = PT_REGS_SP(ctx), ucp;
	struct task_struct *task = bpf_get_current_task_btf();

	if (!is_target())
		return 0;
	ucp = cookie == MS_CORO_SWAPCONTEXT ? a2 : a1;
	/*
	 * Probed at glibc's `push %rcx` once the target's registers are loaded (emulated, where
	 * the entry is single-stepped at ~20 us): ucp is in rdx, oucp in r9, and the stack
	 * pointer at the call is the one saved in oucp, less the return address.
	 */
	if (cookie == MS_CORO_SWAPCONTEXT_LATE) {
		ucp = a3;
		bpf_probe_read_user(&oucp_sp, sizeof(oucp_sp), (void *)(a6 + UCTX_RSP));
		sp = oucp_sp - 8;
		cookie = MS_CORO_SWAPCONTEXT;
	}
	bpf_probe_read_user(&target_sp, sizeof(target_sp), (void *)(ucp + UCTX_RSP));
	bpf_probe_read_user(&target_ip, sizeof(target_ip), (void *)(ucp + UCTX_RIP));
	return emit(MS_EV_CORO_SWITCH, (__u16)cookie, ucp, target_sp, target_ip, sp,
		    task->thread.fsbase);
}

/*
 * libpcl's co_create, co_exit_to and co_delete at entry (the cookie names the function), and
 * co_create's return: its switches go through swapcontext, probed above.
 */
SEC("uprobe")
int pcl_enter(struct pt_regs *ctx)
{
	__u64 sp = PT_REGS_SP(ctx), ret = 0;

	if (!is_target())
		return 0;
	bpf_probe_read_user(&ret, sizeof(ret), (void *)sp);
	return emit(MS_EV_PCL, (__u16)bpf_get_attach_cookie(ctx), PT_REGS_PARM1(ctx),
		    PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), sp, ret);
}

SEC("uretprobe")
int pcl_return(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	return emit(MS_EV_PCL, MS_PCL_CREATE_RETURN, PT_REGS_RC(ctx), 0, 0, PT_REGS_SP(ctx), 0);
}

/*
 * boost.context: make_fcontext(sp, size, fn) creates on [sp - size, sp); jump_fcontext(to, vp)
 * and ontop_fcontext(to, vp, fn) switch to the context saved at to, inside the target's stack.
 * Reported as the ucontext events, the cookie saying which function it was.
 */
SEC("uprobe")
int fcontext_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), a1 = PT_REGS_PARM1(ctx);
	__u64 a2 = PT_REGS_PARM2(ctx), a3 = PT_REGS_PARM3(ctx);
	struct task_struct *task = bpf_get_current_task_btf();

	if (!is_target())
		return 0;
	if (cookie == MS_CORO_MAKE_FCONTEXT)
		return emit(MS_EV_CORO_CREATE, (__u16)cookie, a1, a1 - a2, a2, a3, 0);
	return emit(MS_EV_CORO_SWITCH, (__u16)cookie, a1, a1, 0, PT_REGS_SP(ctx),
		    task->thread.fsbase);
}

/* munmap(addr, len): a coroutine stack of its own (mmap'd, guard pages) ends with it. */
SEC("uprobe")
int coro_unmap(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	return emit(MS_EV_CORO_UNMAP, MS_CORO_MUNMAP, PT_REGS_PARM1(ctx), 0, PT_REGS_PARM2(ctx),
		    PT_REGS_SP(ctx), 0);
}

/*
 * A target that execs is a new program: the old image's blocks, tasks and probes mean nothing
 * there, so its report ends at the exec.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 ts = bpf_ktime_get_ns();
	bool target = is_target();

	/* Daemon mode: the selector helper re-plans a target's new image, matches the others. */
	if (select_execs)
		emit_proc(MS_PROC_EXEC, bpf_get_current_pid_tgid() >> 32, 0, ts);
	if (!target)
		return 0;
	/* addr: the exec's time, which names the record the helper begins at this exec. */
	emit(MS_EV_EXEC, 0, ts, 0, 0, 0, 0);
	return 0;
}

/*
 * Forked children whose fork window is being counted (window_return, below): calls missed.
 * No preallocation: empty unless children are in their window (main.c sizes it 1 when the
 * window is not counted).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MS_MAX_TARGETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u64); /* calls missed */
} fork_pending SEC(".maps");

/*
 * The last thread of a target is gone: its pid leaves the map at once, so that a process given
 * the same pid later is no target (its children would be followed) before the helper notices.
 * A child still in fork_pending leaves it too (whether or not the daemon holds its record: a
 * lost fork event must not keep its entry, nor a pid given again inherit it), its final count
 * on the events ring.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	__u64 *missed, n;

	if (p->signal->live.counter != 0)
		return 0;
	bpf_map_delete_elem(&targets, &tgid);
	missed = bpf_map_lookup_elem(&fork_pending, &tgid);
	if (!missed)
		return 0;
	n = *missed;
	if (!bpf_map_delete_elem(&fork_pending, &tgid))
		emit(MS_EV_WINDOW_END, 0, n, 0, 0, 0, 0);
	return 0;
}

/*
 * The fork window: a child's calls between the fork and its own probes being live. Its copied
 * pages keep the parent's breakpoints, so it traps, but the kernel runs a uprobe_multi link's
 * program for the link's own process only: no allocator program sees these calls. Each such
 * call to a function with a return probe (every allocation function; not free) does leave a
 * trace in the child's own context: the parent's return probe made the kernel hijack its
 * return, which goes through the uretprobe syscall. window_return counts those returns for the
 * children in fork_pending (on_fork adds them; the daemon takes the count and removes them
 * once their probes are live, on_exit a dead one): a return of an allocator whose entry the
 * child's own program did not see (its thread is not inside a seen call) is a call missed.
 * Attached in daemon mode with fork following only: --pid mode's hits are unchanged.
 */

/* alloc_return's id, set by the daemon after load. */
__u32 alloc_return_id = 0;
extern const void uprobe_multi_link_ret_handler __ksym __weak;

#define MS_NR_URETPROBE 335 /* x86_64 */
/* Every target's link (and other tools') is a consumer of the same uprobe. */
#define MS_WINDOW_CONSUMERS 256
#define MS_WINDOW_CHAIN 4

/*
 * u is an allocator function's: 1, one of its consumers is an alloc_return link; 0, none is;
 * -1, it has too many to look at all.
 */
static __always_inline int alloc_return_probe(struct uprobe *u)
{
	struct list_head *head = &u->consumers, *pos = BPF_CORE_READ(u, consumers.next);
	__u64 cons_off = bpf_core_field_offset(struct uprobe_consumer, cons_node);
	__u64 bu_off = bpf_core_field_offset(struct bpf_uprobe, consumer);
	struct uprobe_consumer *uc;
	struct bpf_uprobe *bu;
	int i;

	for (i = 0; i < MS_WINDOW_CONSUMERS && pos && pos != head; i++) {
		uc = (void *)((__u64)pos - cons_off);
		if ((__u64)BPF_CORE_READ(uc, ret_handler) ==
		    (__u64)&uprobe_multi_link_ret_handler) {
			bu = (void *)((__u64)uc - bu_off);
			if (BPF_CORE_READ(bu, link, link.prog, aux, id) == alloc_return_id)
				return 1;
		}
		pos = BPF_CORE_READ(pos, next);
	}
	return pos && pos != head ? -1 : 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(window_return, struct pt_regs *regs, long id)
{
	struct task_struct *task;
	struct thread_state *ts;
	struct return_instance *ri;
	struct uprobe *u;
	__u64 *missed;
	__u32 tgid;
	int i, found;

	if (id != MS_NR_URETPROBE)
		return 0;
	/*
	 * Every field read below, checked: on a kernel where one differs the program returns at
	 * once (children's windows then count nothing) instead of failing the whole load.
	 */
	if (!bpf_core_type_exists(struct uprobe_task) ||
	    !bpf_core_field_exists(struct task_struct, utask) ||
	    !bpf_core_field_exists(struct uprobe_task, return_instances) ||
	    !bpf_core_type_exists(struct return_instance) ||
	    !bpf_core_field_exists(struct return_instance, hprobe) ||
	    !bpf_core_field_exists(struct return_instance, chained) ||
	    !bpf_core_field_exists(struct return_instance, next) ||
	    !bpf_core_type_exists(struct hprobe) || !bpf_core_field_exists(struct hprobe, uprobe) ||
	    !bpf_core_type_exists(struct uprobe) ||
	    !bpf_core_field_exists(struct uprobe, consumers) ||
	    !bpf_core_type_exists(struct uprobe_consumer) ||
	    !bpf_core_field_exists(struct uprobe_consumer, cons_node) ||
	    !bpf_core_field_exists(struct uprobe_consumer, ret_handler) ||
	    !bpf_core_type_exists(struct bpf_uprobe) ||
	    !bpf_core_field_exists(struct bpf_uprobe, consumer) ||
	    !bpf_core_field_exists(struct bpf_uprobe, link) ||
	    !bpf_core_type_exists(struct bpf_uprobe_multi_link) ||
	    !bpf_core_field_exists(struct bpf_uprobe_multi_link, link) ||
	    !bpf_core_field_exists(struct bpf_link, prog) ||
	    !bpf_core_field_exists(struct bpf_prog, aux) ||
	    !bpf_core_field_exists(struct bpf_prog_aux, id))
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	missed = bpf_map_lookup_elem(&fork_pending, &tgid);
	if (!missed)
		return 0;
	task = bpf_get_current_task_btf();
	/* Inside a call its own program saw: this return is that call's, or one within it. */
	ts = bpf_task_storage_get(&thread_states, task, NULL, 0);
	if (ts && ts->depth > 0)
		return 0;
	/* The returning call, and those it tail-called (chained: one return for all). */
	ri = BPF_CORE_READ(task, utask, return_instances);
	for (i = 0; i < MS_WINDOW_CHAIN && ri; i++) {
		u = BPF_CORE_READ(ri, hprobe.uprobe);
		found = u ? alloc_return_probe(u) : 0;
		if (found > 0)
			__sync_fetch_and_add(missed, 1);
		/* Not known whether it was an allocator's: the count is no longer exact. */
		else if (found < 0)
			__sync_fetch_and_or(missed, MS_WINDOW_UNCOUNTED);
		if (!BPF_CORE_READ(ri, chained))
			break;
		ri = BPF_CORE_READ(ri, next);
	}
	return 0;
}

/* The fork window is counted (daemon mode: window_return is attached). */
const volatile bool count_fork_window = false;

/*
 * A target's child is a target from the fork on; the helper attaches its probes. The child
 * has not run yet: its calls until then are counted from the first (fork_pending).
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid, zero = 0;
	__u64 ts, none = 0, uncounted = 1;

	/* A new thread is no new process. */
	if (!follow_forks || ptgid == ctgid || !bpf_map_lookup_elem(&targets, &ptgid))
		return 0;
	/* A full map (--max-targets) leaves the child untraced. */
	if (bpf_map_update_elem(&targets, &ctgid, &zero, BPF_NOEXIST))
		return 0;
	/* size 1: its fork window is not counted (the programs are off, or the map is full). */
	if (count_fork_window && !bpf_map_update_elem(&fork_pending, &ctgid, &none, BPF_ANY))
		uncounted = 0;
	ts = bpf_ktime_get_ns();
	/* In the parent's order on the events ring: the child's heap is the parent's now. */
	emit(MS_EV_FORK, 0, ctgid, 0, uncounted, 0, 0);
	emit_proc(MS_PROC_FORK, ctgid, ptgid, ts);
	return 0;
}
