// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <string.h>
#include "insn_decode.h"

/*
 * Linux 6.18 arch/x86/kernel/uprobes.c, arch_uprobe_analyze_insn(): emulates what
 * branch_setup_xol_ops() or push_setup_xol_ops() accept, single-steps everything else (endbr64
 * too; ~30x the cost on this VM) and refuses what uprobe_init_insn() rejects.
 */

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9 };

#define REG(r) (1u << (r))
/* The SysV x86-64 argument registers, in order. */
static const unsigned int arg_regs[] = { RDI, RSI, RDX, RCX, R8, R9 };
#define ARG_REGS (REG(RDI) | REG(RSI) | REG(RDX) | REG(RCX) | REG(R8) | REG(R9))
#define CC_E 0x4    /* condition code of je/jz */
#define INSN_MAX 15 /* the CPU faults on longer instructions */

enum insn_kind {
	INSN_PLAIN, /* falls through; effects in writes/writes_mem/writes_flags */
	INSN_PUSH,
	INSN_NOP,
	INSN_ENDBR,
	INSN_JCC,
	INSN_BRANCH, /* jmp, call, ret */
};

struct insn {
	size_t len;
	enum insn_kind kind;
	unsigned int cc; /* INSN_JCC: condition code */
	bool emulated;
	bool rejected;
	bool writes_mem;
	bool writes_flags;
	int zero_test;	     /* argument register a 64-bit test/cmp compares with 0, or -1 */
	unsigned int writes; /* REG() bits of the registers written */
	int copy_from;	     /* a 64-bit register-to-register mov: its source, or -1 */
};

/* branch_setup_xol_ops() emulates exactly x86_nops[1..8] (longer ones carry a rejected 0x2e). */
static const uint8_t kernel_nops[8][8] = {
	{ 0x90 },
	{ 0x66, 0x90 },
	{ 0x0f, 0x1f, 0x00 },
	{ 0x0f, 0x1f, 0x40, 0x00 },
	{ 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	{ 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	{ 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
	{ 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
};

static const char *const null_check_reasons[] = {
	[RCX] = "skipped NULL check of %rcx (calls with %rcx == 0 are not seen)",
	[RDX] = "skipped NULL check of %rdx (calls with %rdx == 0 are not seen)",
	[RSI] = "skipped NULL check of %rsi (calls with %rsi == 0 are not seen)",
	[RDI] = "skipped NULL check of %rdi (calls with %rdi == 0 are not seen)",
	[R8] = "skipped NULL check of %r8 (calls with %r8 == 0 are not seen)",
	[R9] = "skipped NULL check of %r9 (calls with %r9 == 0 are not seen)",
};

static bool is_legacy_prefix(uint8_t b)
{
	switch (b) {
	case 0x26:
	case 0x2e:
	case 0x36:
	case 0x3e:
	case 0x64:
	case 0x65:
	case 0x66:
	case 0x67:
	case 0xf0:
	case 0xf2:
	case 0xf3:
		return true;
	}
	return false;
}

/* uprobe_init_insn() (is_prefix_bad) refuses es/cs/ss/ds segment overrides and lock. */
static bool is_rejected_prefix(uint8_t b)
{
	return b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0xf0;
}

/* Length of a ModRM byte with its SIB and displacement; 0 if truncated. */
static size_t modrm_len(const uint8_t *p, size_t len)
{
	unsigned int mod, rm;
	size_t n = 1;

	if (len < 1)
		return 0;
	mod = p[0] >> 6;
	rm = p[0] & 7;
	if (mod != 3 && rm == 4) {
		if (len < 2)
			return 0;
		n = 2;
		if (mod == 0 && (p[1] & 7) == 5)
			n += 4;
	}
	if (mod == 0 && rm == 5)
		n += 4; /* rip-relative */
	else if (mod == 1)
		n += 1;
	else if (mod == 2)
		n += 4;
	return n <= len ? n : 0;
}

/* A byte register without REX: 4-7 are %ah, %ch, %dh, %bh. */
static unsigned int gpr8(unsigned int r, uint8_t rex)
{
	return !rex && r >= 4 && r < 8 ? r - 4 : r;
}

/* Records a write to the r/m operand: a register if mod == 3, else memory. */
static void write_rm(struct insn *in, uint8_t modrm, uint8_t rex, bool byte)
{
	unsigned int rm = (modrm & 7u) | (rex & 1u) << 3;

	if (modrm >> 6 != 3)
		in->writes_mem = true;
	else
		in->writes |= REG(byte ? gpr8(rm, rex) : rm);
}

static void write_reg(struct insn *in, uint8_t modrm, uint8_t rex, bool byte)
{
	unsigned int reg = (modrm >> 3 & 7u) | (rex & 4u) << 1;

	in->writes |= REG(byte ? gpr8(reg, rex) : reg);
}

/* An immediate of n bytes at p, all zero; false if it lies beyond len. */
static bool is_zero(const uint8_t *p, size_t n, size_t len)
{
	size_t i;

	if (n > len)
		return false;
	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* The argument register a 64-bit register-direct test/cmp checks against 0, or -1. */
static int zero_test_reg(uint8_t modrm, uint8_t rex)
{
	int r = (modrm & 7) | (rex & 1) << 3;

	if (!(rex & 8) || modrm >> 6 != 3 || !(ARG_REGS & REG(r)))
		return -1;
	return r;
}

/* Decodes one instruction of the prologue subset; returns its length, 0 if not decodable. */
static size_t decode(const uint8_t *p, size_t len, struct insn *in)
{
	bool opsize = false, rejected = false, rep = false;
	size_t i = 0, m = 0, imm = 0, immz;
	uint8_t rex = 0, op, modrm = 0;

	memset(in, 0, sizeof(*in));
	in->zero_test = -1;
	in->copy_from = -1;
	if (len > INSN_MAX)
		len = INSN_MAX;
	for (; i < len && is_legacy_prefix(p[i]); i++) {
		opsize |= p[i] == 0x66;
		rep |= p[i] == 0xf3;
		rejected |= is_rejected_prefix(p[i]);
	}
	if (i < len && (p[i] & 0xf0) == 0x40)
		rex = p[i++];
	if (i >= len)
		return 0;
	op = p[i++];
	immz = opsize && !(rex & 8) ? 2 : 4;

	/* 66-prefixed branches differ between Intel and AMD; the kernel rejects them anyway. */
	if (opsize && ((op >= 0x70 && op <= 0x7f) || (op >= 0xe8 && op <= 0xeb) || op == 0xc3))
		return 0;

	if (op == 0x0f) {
		if (i >= len)
			return 0;
		op = p[i++];
		if (op >= 0x80 && op <= 0x8f) {
			if (opsize)
				return 0;
			in->kind = INSN_JCC;
			in->cc = op & 0xf;
			in->emulated = true;
			imm = 4;
		} else if (op == 0x1f) {
			m = modrm_len(p + i, len - i);
			if (!m || (p[i] >> 3 & 7) != 0)
				return 0;
			in->kind = INSN_NOP;
		} else if (op == 0xb6 || op == 0xb7 || op == 0xbe || op == 0xbf) {
			/* movzx/movsx */
			m = modrm_len(p + i, len - i);
			if (!m)
				return 0;
			write_reg(in, p[i], rex, false);
		} else if (op == 0x1e && rep && i < len && (p[i] == 0xfa || p[i] == 0xfb)) {
			in->kind = INSN_ENDBR; /* endbr64/endbr32: single-stepped */
			m = 1;
		} else {
			return 0;
		}
	} else if (op < 0x40 && (op & 7) < 6) {
		/* add/or/adc/sbb/and/sub/xor/cmp; the low bits pick the operand form */
		unsigned int alu = op >> 3, form = op & 7;

		in->writes_flags = true;
		if (form < 4) {
			m = modrm_len(p + i, len - i);
			if (!m)
				return 0;
			modrm = p[i];
		} else {
			imm = form == 4 ? 1 : immz;
		}
		if (alu != 7) {
			if (form < 2)
				write_rm(in, modrm, rex, form == 0);
			else if (form < 4)
				write_reg(in, modrm, rex, form == 2);
			else
				in->writes |= REG(RAX);
		}
	} else if (op >= 0x50 && op <= 0x57) {
		in->kind = INSN_PUSH;
		in->writes = REG(RSP);
		in->writes_mem = true;
	} else if (op >= 0x58 && op <= 0x5f) {
		in->writes = REG(RSP) | REG((op & 7) | (rex & 1) << 3);
	} else if (op == 0x63) {
		/* movsxd */
		m = modrm_len(p + i, len - i);
		if (!m)
			return 0;
		write_reg(in, p[i], rex, false);
	} else if (op >= 0x70 && op <= 0x7f) {
		in->kind = INSN_JCC;
		in->cc = op & 0xf;
		in->emulated = true;
		imm = 1;
	} else if (op == 0x80 || op == 0x81 || op == 0x83) {
		/* group 1 with an immediate; /7 is cmp */
		m = modrm_len(p + i, len - i);
		if (!m)
			return 0;
		modrm = p[i];
		imm = op == 0x81 ? immz : 1;
		in->writes_flags = true;
		if ((modrm >> 3 & 7) != 7)
			write_rm(in, modrm, rex, op == 0x80);
		else if (op != 0x80 && is_zero(p + i + m, imm, len - i - m))
			in->zero_test = zero_test_reg(modrm, rex);
	} else if (op == 0x84 || op == 0x85) {
		m = modrm_len(p + i, len - i);
		if (!m)
			return 0;
		modrm = p[i];
		in->writes_flags = true;
		if (op == 0x85 && (modrm & 7) == (modrm >> 3 & 7) && !!(rex & 1) == !!(rex & 4))
			in->zero_test = zero_test_reg(modrm, rex);
	} else if (op >= 0x88 && op <= 0x8b) {
		m = modrm_len(p + i, len - i);
		if (!m)
			return 0;
		modrm = p[i];
		if (op < 0x8a)
			write_rm(in, modrm, rex, op == 0x88);
		else
			write_reg(in, modrm, rex, op == 0x8a);
		/* mov %r64,%r64: the value moves to another register */
		if ((op == 0x89 || op == 0x8b) && (rex & 8) && modrm >> 6 == 3)
			in->copy_from = op == 0x89 ? (int)((modrm >> 3 & 7u) | (rex & 4u) << 1) :
						     (int)((modrm & 7u) | (rex & 1u) << 3);
	} else if (op == 0x8d) {
		m = modrm_len(p + i, len - i);
		if (!m || p[i] >> 6 == 3)
			return 0;
		write_reg(in, p[i], rex, false);
	} else if (op == 0x90) {
		if (rex & 1) {
			/* xchg %eax,%r8d; the kernel would wrongly skip it as a nop */
			in->writes = REG(RAX) | REG(R8);
		} else {
			/* branch_setup_xol_ops(): "prefix* + nop" is emulated */
			in->kind = INSN_NOP;
			in->emulated = true;
		}
	} else if (op == 0xa8 || op == 0xa9) {
		in->writes_flags = true;
		imm = op == 0xa8 ? 1 : immz;
	} else if (op >= 0xb0 && op <= 0xbf) {
		unsigned int r = (op & 7u) | (rex & 1u) << 3;

		in->writes = REG(op < 0xb8 ? gpr8(r, rex) : r);
		imm = op < 0xb8 ? 1 : rex & 8 ? 8 : immz;
	} else if (op == 0xc0 || op == 0xc1 || (op >= 0xd0 && op <= 0xd3)) {
		/* shifts and rotates (group 2) by $imm, 1 or %cl */
		m = modrm_len(p + i, len - i);
		if (!m)
			return 0;
		modrm = p[i];
		imm = op <= 0xc1 ? 1 : 0;
		in->writes_flags = true;
		write_rm(in, modrm, rex, !(op & 1));
	} else if (op == 0xc3) {
		in->kind = INSN_BRANCH;
	} else if (op == 0xc6 || op == 0xc7 || op == 0xf6 || op == 0xf7) {
		/* mov $imm (c6/c7 /0) and test $imm (f6/f7 /0, /1) only */
		unsigned int sub;

		m = modrm_len(p + i, len - i);
		if (!m)
			return 0;
		modrm = p[i];
		sub = modrm >> 3 & 7;
		if (op <= 0xc7 ? sub != 0 : sub > 1)
			return 0;
		imm = op & 1 ? immz : 1;
		if (op <= 0xc7)
			write_rm(in, modrm, rex, op == 0xc6);
		else
			in->writes_flags = true;
	} else if (op == 0xcc) {
		/* int3 (maybe another tool's breakpoint): not in good_insns_64 */
		in->rejected = true;
	} else if (op == 0xe8 || op == 0xe9 || op == 0xeb) {
		in->kind = INSN_BRANCH;
		in->emulated = true;
		imm = op == 0xeb ? 1 : 4;
	} else {
		return 0;
	}

	in->len = i + m + imm;
	if (in->len > len)
		return 0;
	if (in->kind == INSN_PUSH)
		/* push_setup_xol_ops(): push %reg with no prefix or a lone REX 0x41 (%r8-%r15) */
		in->emulated = in->len == 1 || (in->len == 2 && rex == 0x41);
	else if (in->kind == INSN_NOP && in->len <= 8)
		in->emulated |= !memcmp(p, kernel_nops[in->len - 1], in->len);
	if (rejected) {
		in->rejected = true;
		in->emulated = false;
	}
	return in->len;
}

size_t insn_decode__length(const uint8_t *code, size_t len)
{
	struct insn in;

	return code ? decode(code, len, &in) : 0;
}

/* Why the probe cannot move past in (reached before any emulated insn), or NULL if it can. */
static const char *blocker(const struct insn *in, bool null_exit)
{
	if (in->rejected)
		return "an earlier insn is rejected by uprobes";
	if ((in->kind == INSN_JCC && !null_exit) || in->kind == INSN_BRANCH)
		return "an earlier branch is not a NULL early return of an argument";
	if (in->writes & (REG(RSP) | REG(RBP)) || in->writes_mem)
		return "an earlier insn writes the stack, %rbp or memory";
	return NULL;
}

static int keep_entry(struct probe_placement *ret, const char *reason)
{
	ret->offset = 0;
	ret->emulated = false;
	ret->reason = reason;
	ret->null_arg = -1;
	return 0;
}

int insn_decode__arg_register(unsigned int argpos)
{
	return argpos >= 1 && argpos <= 6 ? (int)arg_regs[argpos - 1] : -1;
}

int insn_decode__placement(const uint8_t *code, size_t len, struct probe_placement *ret)
{
	return insn_decode__placement_args(code, len, 0x3f, ret);
}

/*
 * Follows the live arguments through a skipped insn: a 64-bit mov copies one into another
 * argument register, any other write loses that copy. Returns false if an argument the probe
 * reads is then in no argument register at all.
 */
static bool follow_args(const struct insn *in, unsigned int where[6], unsigned int args)
{
	unsigned int k;
	bool copied;

	for (k = 0; k < 6; k++) {
		copied = in->copy_from >= 0 && (where[k] & REG(in->copy_from));
		where[k] &= ~in->writes;
		if (copied)
			where[k] |= in->writes & ARG_REGS;
		if (!where[k] && (args & 1u << k))
			return false;
	}
	return true;
}

/* The argument register a zero test checks, if it still holds that argument's entry value. */
static int entry_value(int reg, const unsigned int where[6])
{
	unsigned int k;

	for (k = 0; k < 6 && reg >= 0; k++)
		if ((int)arg_regs[k] == reg)
			return where[k] & REG(reg) ? reg : -1;
	return -1;
}

/* Where each argument is at the probe: its own register if it is still there. */
static void settle_args(const unsigned int where[6], unsigned int args, uint8_t arg_at[6])
{
	unsigned int k, r;

	for (k = 0; k < 6; k++) {
		arg_at[k] = (uint8_t)(k + 1);
		if (!(args & 1u << k) || (where[k] & REG(arg_regs[k])))
			continue;
		for (r = 0; r < 6; r++)
			if (where[k] & REG(arg_regs[r])) {
				arg_at[k] = (uint8_t)(r + 1);
				break;
			}
	}
}

int insn_decode__placement_args(const uint8_t *code, size_t len, unsigned int args,
				struct probe_placement *ret)
{
	unsigned int k, where[6];
	int zero = -1, null_checked = -1;
	bool endbr_only = true, null_exit;
	const char *why;
	struct insn in;
	size_t off;

	if (!code || !len)
		return -EINVAL;
	for (k = 0; k < 6; k++) {
		where[k] = REG(arg_regs[k]);
		ret->arg_at[k] = (uint8_t)(k + 1);
	}
	if (!decode(code, len, &in))
		return keep_entry(ret, "entry insn is not decoded");
	if (in.rejected)
		return keep_entry(ret, "entry insn is rejected by uprobes");
	if (in.emulated) {
		ret->offset = 0;
		ret->emulated = true;
		ret->reason = "entry insn is emulated";
		ret->null_arg = -1;
		return 0;
	}
	for (off = 0; off < len; off += in.len) {
		if (off && !decode(code + off, len - off, &in))
			return keep_entry(ret, "an earlier insn is not decoded");
		null_exit = in.kind == INSN_JCC && in.cc == CC_E && zero >= 0;
		/*
		 * The NULL check's je is emulated too; landing after it makes free(NULL) free. Any
		 * other conditional branch is reached by every call, with the arguments intact.
		 */
		if (in.emulated && (in.kind == INSN_PUSH || in.kind == INSN_NOP ||
				    (in.kind == INSN_JCC && !null_exit)))
			break;
		why = blocker(&in, null_exit);
		if (why)
			return keep_entry(ret, why);
		if (!follow_args(&in, where, args))
			return keep_entry(ret, "an earlier insn writes an argument register");
		if (null_exit)
			null_checked = zero;
		/* A zero test is a NULL check only of an argument as it was at entry. */
		if (in.writes_flags)
			zero = entry_value(in.zero_test, where);
		endbr_only &= in.kind == INSN_ENDBR;
	}
	if (off >= len)
		return keep_entry(ret, "no emulated insn within the bytes read");
	ret->offset = off;
	ret->emulated = true;
	ret->null_arg = null_checked;
	settle_args(where, args, ret->arg_at);
	if (null_checked >= 0)
		ret->reason = null_check_reasons[null_checked];
	else if (endbr_only)
		ret->reason = "skipped endbr64 (single-stepped)";
	else if (in.kind == INSN_JCC)
		ret->reason = "a conditional branch, after single-stepped insns that keep the "
			      "arguments it reads in argument registers";
	else
		ret->reason = "skipped single-stepped insns that only set flags or scratch regs";
	return 0;
}
