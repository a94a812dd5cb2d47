/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A forked child's window, from the fork to its own probes being live. It traps on the
 * breakpoints its copied pages keep from its parent, and its calls are counted then
 * (bpf/memscoped.bpf.c window_return). But the kernel keeps a breakpoint only in processes
 * one of the probe's consumers asks for: when a probe of the same function is detached
 * anywhere on the machine (another target's exit, another tool), the child's breakpoint is
 * taken out, and its calls from then on are neither seen nor counted until its own probe is
 * attached (which puts the breakpoint back and keeps it).
 */
#ifndef MEMSCOPED_FORK_WINDOW_H
#define MEMSCOPED_FORK_WINDOW_H

struct alloc_plan;

/*
 * Just before child's probes (plan) are attached: 1 if it still has a breakpoint at each (the
 * first byte there is not the object's own), 0 if one was taken out, -errno if unknown or not
 * countable (-EOPNOTSUPP: user shadow stacks, whose returns do not call uretprobe).
 */
int fork_window__intact(int child, const struct alloc_plan *plan);

#endif
