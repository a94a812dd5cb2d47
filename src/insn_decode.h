/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Where to put an entry uprobe so the kernel emulates the probed instruction (x86-64). */
#ifndef MEMSCOPED_INSN_DECODE_H
#define MEMSCOPED_INSN_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct probe_placement {
	size_t offset;	    /* bytes from the function start to probe at */
	bool emulated;	    /* the instruction at offset is emulated by the kernel */
	const char *reason; /* static string: why offset */
	int null_arg;	    /* -1, or the register whose NULL calls the offset skips */
	/* Where argument k + 1 is at offset: the position (1-6) of the register it moved to. */
	uint8_t arg_at[6];
};

/*
 * Decodes the entry instructions of a function. If the first one is single-stepped by the
 * kernel, moves the probe to the first emulated, non-branch instruction, provided every skipped
 * instruction writes neither an argument register (rdi, rsi, rdx, rcx, r8, r9), %rsp, %rbp nor
 * memory, and its only branch is a NULL early return (`test %reg,%reg` or `cmp $0,%reg` on a
 * 64-bit argument register, then je). Calls with that argument == 0 are then not seen; all
 * others reach the new offset with the entry's registers and stack, so a uretprobe may use the
 * same offset. Otherwise (or on anything it cannot decode) keeps offset 0.
 *
 * code: the function's first bytes (pass >= 32 if available); never reads past len.
 * Returns 0 and fills *ret, or -EINVAL if len == 0.
 */
int insn_decode__placement(const uint8_t *code, size_t len, struct probe_placement *ret);

/*
 * The same for a function whose probe reads only the arguments in args (bit k: the (k+1)-th
 * argument register): skipped insns may write the others, a 64-bit mov may move one into
 * another argument register (arg_at says where it is then), and the probe may also land on a
 * conditional branch (emulated) that every call reaches. jemalloc's free computes into %rdx
 * and %rcx before its first emulated insn, its malloc starts with cmp; ja, and mimalloc's
 * malloc moves its size to %rsi first.
 */
int insn_decode__placement_args(const uint8_t *code, size_t len, unsigned int args,
				struct probe_placement *ret);

/* The null_arg value of a NULL check of the 1-based argument argpos (SysV x86-64), or -1. */
int insn_decode__arg_register(unsigned int argpos);

/* Length of the instruction at code; 0 if truncated or outside this decoder's subset. */
size_t insn_decode__length(const uint8_t *code, size_t len);

#endif
