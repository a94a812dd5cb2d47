/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Allocation sampling (--sample-bytes): a per-thread byte countdown with exponential gaps, so
 * that every byte allocated is sampled with the same probability 1/R. A sampled allocation
 * sends the caller's registers and a copy of its stack (struct ms_sample) for the daemon to
 * unwind from the CFI; the heap accounting itself never depends on it.
 */
#ifndef MEMSCOPED_SAMPLE_BPF_H
#define MEMSCOPED_SAMPLE_BPF_H

/* Mean bytes between samples per thread: 0 none, 1 every allocation. */
const volatile __u64 sample_bytes = 0;
/* Quantiles of Exp(1) in Q16, filled by the daemon: a gap is sample_bytes * gaps[random]. */
const volatile __u32 sample_gaps[MS_SAMPLE_GAPS] = {};

/* Samples not sent: the ring buffer was half full (exact events keep the rest) or full. */
__u64 samples_lost = 0;

/* Part of the thread's state, which the allocation's return has at hand already. */
struct sample_state {
	__s64 countdown; /* bytes until the next sample */
	__u64 started;	 /* countdown set */
};

/* The sample is built here (16 KiB is past the BPF stack), then copied out at its length. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ms_sample);
} sample_buf SEC(".maps");

static __always_inline __s64 sample_gap(void)
{
	__u32 i = bpf_get_prandom_u32() & (MS_SAMPLE_GAPS - 1);

	return (__s64)((sample_bytes * sample_gaps[i]) >> 16);
}

/* Whether this allocation of size bytes on the current thread is sampled. */
static __always_inline bool sample_take(struct sample_state *st, __u64 size)
{
	if (sample_bytes == 1)
		return true;
	/* Memoryless: a thread's first countdown is a gap like any other. */
	if (!st->started) {
		st->started = 1;
		st->countdown = sample_gap();
	}
	st->countdown -= (__s64)size;
	if (st->countdown > 0)
		return false;
	st->countdown = sample_gap();
	return true;
}

/* Called once per successful outermost allocation, after its MS_EV_ALLOC. */
static __always_inline int sample_alloc(struct sample_state *st, __u32 func, __u64 addr, __u64 size)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct return_instance *ri;
	struct ms_sample *s;
	struct pt_regs *regs;
	__u64 id, sp, len = 0;
	__u32 zero = 0, i;

	if (!sample_bytes || !addr || !size || !sample_take(st, size))
		return 0;
	/* The exact events come first: a ring half full takes no more samples. */
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >
	    bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 2) {
		__sync_fetch_and_add(&samples_lost, 1);
		return 0;
	}
	s = bpf_map_lookup_elem(&sample_buf, &zero);
	if (!s)
		return 0;
	/* The user registers at the return: the allocator's caller, just after its call. */
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	id = bpf_get_current_pid_tgid();
	s->type = MS_EV_SAMPLE;
	s->func = (__u16)MS_FN_KIND(func);
	s->pid = id >> 32;
	s->tid = (__u32)id;
	s->ts = bpf_ktime_get_ns();
	s->addr = addr;
	s->size = size;
	s->regs[0] = BPF_CORE_READ(regs, ax);
	s->regs[1] = BPF_CORE_READ(regs, dx);
	s->regs[2] = BPF_CORE_READ(regs, cx);
	s->regs[3] = BPF_CORE_READ(regs, bx);
	s->regs[4] = BPF_CORE_READ(regs, si);
	s->regs[5] = BPF_CORE_READ(regs, di);
	s->regs[6] = BPF_CORE_READ(regs, bp);
	s->regs[7] = sp = BPF_CORE_READ(regs, sp);
	s->regs[8] = BPF_CORE_READ(regs, r8);
	s->regs[9] = BPF_CORE_READ(regs, r9);
	s->regs[10] = BPF_CORE_READ(regs, r10);
	s->regs[11] = BPF_CORE_READ(regs, r11);
	s->regs[12] = BPF_CORE_READ(regs, r12);
	s->regs[13] = BPF_CORE_READ(regs, r13);
	s->regs[14] = BPF_CORE_READ(regs, r14);
	s->regs[15] = BPF_CORE_READ(regs, r15);
	s->regs[16] = BPF_CORE_READ(regs, ip);
	/* Functions with a uretprobe in progress (task polls) return through the trampoline. */
	ri = BPF_CORE_READ(task, utask, return_instances);
	for (i = 0; i < MS_SAMPLE_URETPROBES; i++) {
		s->ret_slot[i] = ri ? BPF_CORE_READ(ri, stack) : 0;
		s->ret_orig[i] = ri ? BPF_CORE_READ(ri, orig_ret_vaddr) : 0;
		if (ri)
			ri = BPF_CORE_READ(ri, next);
	}
	/* Chunk by chunk: the last one may cross the top of the stack. */
	for (i = 0; i < MS_SAMPLE_STACK_CHUNKS; i++) {
		if (bpf_probe_read_user(&s->stack[i * MS_SAMPLE_STACK_CHUNK], MS_SAMPLE_STACK_CHUNK,
					(void *)(sp + i * MS_SAMPLE_STACK_CHUNK)))
			break;
		len += MS_SAMPLE_STACK_CHUNK;
	}
	s->stack_len = (__u32)len;
	if (len > MS_SAMPLE_STACK_MAX)
		len = MS_SAMPLE_STACK_MAX;
	if (bpf_ringbuf_output(&events, s, MS_SAMPLE_HEADER_SIZE + len, BPF_RB_NO_WAKEUP))
		__sync_fetch_and_add(&samples_lost, 1);
	return 0;
}

#endif
