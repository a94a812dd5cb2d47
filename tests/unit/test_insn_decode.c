// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "insn_decode.h"
#include "fixtures_libc_entry.h"

static struct probe_placement place(const uint8_t *code, size_t len)
{
	struct probe_placement p;

	assert_int_equal(insn_decode__placement(code, len, &p), 0);
	assert_non_null(p.reason);
	assert_true(p.offset < len);
	return p;
}

static void assert_entry(const uint8_t *code, size_t len, const char *why)
{
	struct probe_placement p = place(code, len);

	assert_int_equal(p.offset, 0);
	assert_false(p.emulated);
	assert_non_null(strstr(p.reason, why));
}

/* The probe moved to a conditional branch at off: reached by every call, emulated. */
static void assert_branch(const uint8_t *code, size_t len, size_t off)
{
	struct probe_placement p = place(code, len);

	assert_int_equal(p.offset, off);
	assert_true(p.emulated);
	assert_int_equal(p.null_arg, -1);
	assert_non_null(strstr(p.reason, "conditional branch"));
}

static void test_placement_free_skips_null_check(void **state)
{
	struct probe_placement p = place(libc_free, sizeof(libc_free));

	(void)state;
	assert_int_equal(p.offset, 9);
	assert_true(p.emulated);
	assert_string_equal(p.reason,
			    "skipped NULL check of %rdi (calls with %rdi == 0 are not seen)");
}

static void test_placement_push_entry_stays(void **state)
{
	const uint8_t *fns[] = { libc_malloc, libc_calloc, libc_realloc };
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		struct probe_placement p = place(fns[i], 32);

		assert_int_equal(p.offset, 0);
		assert_true(p.emulated);
		assert_string_equal(p.reason, "entry insn is emulated");
	}
}

/* cmpb $0,__malloc_initialized(%rip) only sets flags; the push after it is emulated. */
static void test_placement_flag_check_then_push_moves(void **state)
{
	const uint8_t *fns[] = { libc_posix_memalign, libc_valloc, libc_pvalloc };
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		struct probe_placement p = place(fns[i], 32);

		assert_int_equal(p.offset, 7);
		assert_true(p.emulated);
		assert_non_null(strstr(p.reason, "only set flags"));
	}
}

static void test_placement_flag_check_then_je_lands_on_the_je(void **state)
{
	(void)state;
	/* cmpb $0,x(%rip) (7 bytes); je */
	assert_branch(libc_aligned_alloc, 32, 7);
}

static void test_placement_mul_stays(void **state)
{
	(void)state;
	/* mov %rsi,%rax may be skipped; mul %rdx (writes %rdx) is outside the subset */
	assert_entry(libc_reallocarray, 32, "not decoded");
}

static void test_placement_non_argument_test_lands_on_the_je(void **state)
{
	/* test %rax,%rax; je; push %rbp */
	static const uint8_t c[] = { 0x48, 0x85, 0xc0, 0x0f, 0x84, 0x10, 0, 0, 0, 0x55 };

	(void)state;
	assert_branch(c, sizeof(c), 3);
}

static void test_placement_skipped_write_of_rdi_stays(void **state)
{
	/* test %rdi,%rdi; je; mov %rax,%rdi; push %rbp */
	static const uint8_t c[] = { 0x48, 0x85, 0xff, 0x74, 0x10, 0x48, 0x89, 0xc7, 0x55 };
	/* test %rdi,%rdi; je; lea 0x8(%rax),%rsi; push %rbp */
	static const uint8_t lea[] = { 0x48, 0x85, 0xff, 0x74, 0x10, 0x48, 0x8d, 0x70, 0x08, 0x55 };
	/* test %rdi,%rdi; je; mov $1,%dil; push %rbp */
	static const uint8_t dil[] = { 0x48, 0x85, 0xff, 0x74, 0x10, 0x40, 0xb7, 0x01, 0x55 };

	(void)state;
	assert_entry(c, sizeof(c), "writes an argument register");
	assert_entry(lea, sizeof(lea), "writes an argument register");
	assert_entry(dil, sizeof(dil), "writes an argument register");
}

static void test_placement_skipped_write_of_scratch_moves(void **state)
{
	/* mov %rdi,%rax; test %rdi,%rdi; je; push %rbp */
	static const uint8_t c[] = { 0x48, 0x89, 0xf8, 0x48, 0x85, 0xff, 0x74, 0x10, 0x55 };
	/* test %rdi,%rdi; je; mov $1,%bh (not %dil: no REX); push %rbp */
	static const uint8_t bh[] = { 0x48, 0x85, 0xff, 0x74, 0x10, 0xb7, 0x01, 0x55 };
	struct probe_placement p = place(c, sizeof(c));

	(void)state;
	assert_int_equal(p.offset, 8);
	assert_non_null(strstr(p.reason, "%rdi"));
	assert_int_equal(place(bh, sizeof(bh)).offset, 7);
}

static void test_placement_skipped_stack_write_stays(void **state)
{
	/* test %rdi,%rdi; je; sub $0x18,%rsp; push %rbp */
	static const uint8_t sub[] = { 0x48, 0x85, 0xff, 0x74, 0x10, 0x48, 0x83, 0xec, 0x18, 0x55 };
	/* test %rdi,%rdi; je; mov %rsi,0x8(%rax); push %rbp */
	static const uint8_t mem[] = { 0x48, 0x85, 0xff, 0x74, 0x10, 0x48, 0x89, 0x70, 0x08, 0x55 };
	/* test %rax,%rax; push %rbp with a REX the kernel does not emulate */
	static const uint8_t rex_push[] = { 0x48, 0x85, 0xc0, 0x40, 0x55 };

	(void)state;
	assert_entry(sub, sizeof(sub), "writes the stack");
	assert_entry(mem, sizeof(mem), "memory");
	assert_entry(rex_push, sizeof(rex_push), "writes the stack");
}

static void test_placement_jne_lands_on_the_jne(void **state)
{
	/* test %rdi,%rdi; jne; push %rbp: NULL calls reach the jne too */
	static const uint8_t near[] = { 0x48, 0x85, 0xff, 0x0f, 0x85, 0x10, 0, 0, 0, 0x55 };
	static const uint8_t shrt[] = { 0x48, 0x85, 0xff, 0x75, 0x10, 0x55 };

	(void)state;
	assert_branch(near, sizeof(near), 3);
	assert_branch(shrt, sizeof(shrt), 3);
}

static void test_placement_null_check_forms(void **state)
{
	/* cmp $0,%rsi; je; push %r12 */
	static const uint8_t cmp8[] = { 0x48, 0x83, 0xfe, 0x00, 0x74, 0x10, 0x41, 0x54 };
	/* cmp $0,%r8 (imm32); jz near; push %rbx */
	static const uint8_t cmp32[] = {
		0x49, 0x81, 0xf8, 0, 0, 0, 0, 0x0f, 0x84, 1, 0, 0, 0, 0x53
	};
	struct probe_placement p = place(cmp8, sizeof(cmp8));

	(void)state;
	assert_int_equal(p.offset, 6);
	assert_non_null(strstr(p.reason, "%rsi"));
	p = place(cmp32, sizeof(cmp32));
	assert_int_equal(p.offset, 13);
	assert_non_null(strstr(p.reason, "%r8"));
}

static void test_placement_not_null_checks_land_on_the_je(void **state)
{
	/* cmp $1,%rdi; je */
	static const uint8_t one[] = { 0x48, 0x83, 0xff, 0x01, 0x74, 0x10, 0x55 };
	/* test %edi,%edi (32 bits of a pointer); je */
	static const uint8_t edi[] = { 0x85, 0xff, 0x74, 0x10, 0x55 };
	/* test %rdi,%rsi; je */
	static const uint8_t two[] = { 0x48, 0x85, 0xfe, 0x74, 0x10, 0x55 };
	/* test %rdi,%rdi; add $1,%rax (flags now from the add); je */
	static const uint8_t add[] = { 0x48, 0x85, 0xff, 0x48, 0x83, 0xc0, 0x01, 0x74, 0x10, 0x55 };

	(void)state;
	assert_branch(one, sizeof(one), 4);
	assert_branch(edi, sizeof(edi), 2);
	assert_branch(two, sizeof(two), 3);
	assert_branch(add, sizeof(add), 7);
}

static void test_placement_only_the_arguments_read_are_kept(void **state)
{
	/* jemalloc 5.3's free: mov %rdi,%rax; mov x(%rip),%rdx; mov %rdi,%rcx; shr $0x1a,%rax;
	 * and $-0x40000000,%rcx; and $0xf0,%eax; cmp 0x1b0(%rax),%rcx; jne */
	static const uint8_t c[] = { 0x48, 0x89, 0xf8, 0x48, 0x8b, 0x15, 0x0e, 0x53, 0x0a, 0x00,
				     0x48, 0x89, 0xf9, 0x48, 0xc1, 0xe8, 0x1a, 0x48, 0x81, 0xe1,
				     0x00, 0x00, 0x00, 0xc0, 0x25, 0xf0, 0x00, 0x00, 0x00, 0x48,
				     0x3b, 0x88, 0xb0, 0x01, 0x00, 0x00, 0x75, 0x10 };
	struct probe_placement p;

	(void)state;
	/* Every argument live: the write of %rdx keeps it at entry. */
	assert_entry(c, sizeof(c), "writes an argument register");
	/* free reads only %rdi. */
	assert_int_equal(insn_decode__placement_args(c, sizeof(c), 1u << 0, &p), 0);
	assert_int_equal(p.offset, 36);
	assert_true(p.emulated);
	/* ... but not if the probe read %rcx, which it writes on the way. */
	assert_int_equal(insn_decode__placement_args(c, sizeof(c), 1u << 3, &p), 0);
	assert_int_equal(p.offset, 0);
}

static void test_placement_arguments_moved_to_another_register(void **state)
{
	/* mimalloc 2.0's malloc: mov x(%rip),%rax; mov %rdi,%rsi; mov %fs:(%rax),%rdi;
	 * cmp $0x400,%rsi; ja */
	static const uint8_t mi_malloc[] = { 0x48, 0x8b, 0x05, 0x49, 0xb4, 0x00, 0x00, 0x48,
					     0x89, 0xfe, 0x64, 0x48, 0x8b, 0x38, 0x48, 0x81,
					     0xfe, 0x00, 0x04, 0x00, 0x00, 0x77, 0x29 };
	/* mov %rdi,%rcx; test %rdi,%rdi; je; lea -1(%rdi),%rdi; test %rcx,%rcx; jne */
	static const uint8_t freed[] = { 0x48, 0x89, 0xf9, 0x48, 0x85, 0xff, 0x74, 0x5d, 0x48,
					 0x8d, 0x7f, 0xff, 0x48, 0x85, 0xc9, 0x75, 0x10 };
	/* mov %edi,%esi (32 bits); mov $0,%edi; cmp $1,%rsi; ja: the size is cut, stays */
	static const uint8_t cut[] = { 0x89, 0xfe, 0xbf, 0,    0,    0,	  0,
				       0x48, 0x83, 0xfe, 0x01, 0x77, 0x10 };
	struct probe_placement p;

	(void)state;
	assert_int_equal(insn_decode__placement_args(mi_malloc, sizeof(mi_malloc), 1u << 0, &p), 0);
	assert_int_equal(p.offset, 21);
	assert_int_equal(p.arg_at[0], 2); /* the size is in %rsi at the ja */
	assert_int_equal(insn_decode__placement_args(freed, sizeof(freed), 1u << 0, &p), 0);
	assert_int_equal(p.offset, 15);
	assert_int_equal(p.arg_at[0], 4); /* the pointer is in %rcx */
	/* Its first test was of the pointer as passed: a NULL check of %rdi, skipped. */
	assert_int_equal(p.null_arg, insn_decode__arg_register(1));
	assert_int_equal(insn_decode__placement_args(cut, sizeof(cut), 1u << 0, &p), 0);
	assert_int_equal(p.offset, 0);
	/* With every argument live, the overwritten %rdi keeps the probe at entry. */
	assert_int_equal(insn_decode__placement(mi_malloc, sizeof(mi_malloc), &p), 0);
	assert_int_equal(p.offset, 0);
}

static void test_placement_endbr64_is_skipped(void **state)
{
	static const uint8_t push[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55 };
	/* endbr64; test %rdi,%rdi; je; push %rbp */
	static const uint8_t check[] = {
		0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x85, 0xff, 0x74, 0x10, 0x55
	};
	uint8_t cet_free[36];
	struct probe_placement p = place(push, sizeof(push));

	(void)state;
	assert_int_equal(p.offset, 4);
	assert_true(p.emulated);
	assert_string_equal(p.reason, "skipped endbr64 (single-stepped)");
	assert_int_equal(place(check, sizeof(check)).offset, 9);

	memcpy(cet_free, push, 4);
	memcpy(cet_free + 4, libc_free, 32);
	p = place(cet_free, sizeof(cet_free));
	assert_int_equal(p.offset, 13);
	assert_non_null(strstr(p.reason, "%rdi"));
}

static void test_placement_emulated_nops(void **state)
{
	/* test %rax,%rax; nop5 (x86_nops[5]: emulated) */
	static const uint8_t nop5[] = { 0x48, 0x85, 0xc0, 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	/* test %rax,%rax; 66 nopl (%rax) (not in x86_nops: single-stepped); push %rbp */
	static const uint8_t nopw[] = { 0x48, 0x85, 0xc0, 0x66, 0x0f, 0x1f, 0x00, 0x55 };
	/* test %rax,%rax; pause (f3 90: "prefix* + nop") */
	static const uint8_t pause[] = { 0x48, 0x85, 0xc0, 0xf3, 0x90 };
	/* test %rax,%rax; xchg %eax,%r8d (41 90: not a nop) */
	static const uint8_t xchg[] = { 0x48, 0x85, 0xc0, 0x41, 0x90, 0x55 };

	(void)state;
	assert_int_equal(place(nop5, sizeof(nop5)).offset, 3);
	assert_int_equal(place(nopw, sizeof(nopw)).offset, 7);
	assert_int_equal(place(pause, sizeof(pause)).offset, 3);
	assert_entry(xchg, sizeof(xchg), "argument register");
}

static void test_placement_rejected_never_chosen(void **state)
{
	/* test %rax,%rax; cs nopw 0x0(%rax,%rax,1) (0x2e: rejected) */
	static const uint8_t cs_nop[] = { 0x48, 0x85, 0xc0, 0x66, 0x2e, 0x0f, 0x1f,
					  0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x55 };
	/* test %rax,%rax; lock push (#UD anyway; 0xf0 is rejected) */
	static const uint8_t lock_push[] = { 0x48, 0x85, 0xc0, 0xf0, 0x55 };
	static const uint8_t int3[] = { 0xcc, 0x55 };
	/* test %rdi,%rdi; ds je (the 0x3e prefix is rejected) */
	static const uint8_t ds_je[] = { 0x48, 0x85, 0xff, 0x3e, 0x74, 0x01, 0x55 };

	(void)state;
	assert_entry(cs_nop, sizeof(cs_nop), "rejected");
	assert_entry(lock_push, sizeof(lock_push), "rejected");
	assert_entry(int3, sizeof(int3), "rejected by uprobes");
	assert_entry(ds_je, sizeof(ds_je), "rejected");
}

static void test_placement_emulated_branch_at_entry_stays(void **state)
{
	/* jmp rel32 (a thunk) and je rel8 at entry are emulated */
	static const uint8_t jmp[] = { 0xe9, 0x10, 0x00, 0x00, 0x00 };
	static const uint8_t je[] = { 0x74, 0x10 };
	struct probe_placement p = place(jmp, sizeof(jmp));

	(void)state;
	assert_int_equal(p.offset, 0);
	assert_true(p.emulated);
	p = place(je, sizeof(je));
	assert_int_equal(p.offset, 0);
	assert_true(p.emulated);
}

static void test_placement_truncated_stays(void **state)
{
	struct probe_placement p;
	size_t len;

	(void)state;
	/* Cut inside test, after it, inside je and after je: nothing emulated is seen. */
	for (len = 1; len <= 9; len++)
		assert_entry(libc_free, len,
			     len == 3 || len == 9 ? "no emulated insn" : "not decoded");
	p = place(libc_free, 10);
	assert_int_equal(p.offset, 9);
	/* cmpb cut inside its displacement */
	assert_entry(libc_posix_memalign, 5, "not decoded");
}

static void test_placement_empty_is_einval(void **state)
{
	struct probe_placement p = { 0 };

	(void)state;
	assert_int_equal(insn_decode__placement(libc_free, 0, &p), -EINVAL);
	assert_null(p.reason);
}

static void test_placement_all_ff_stays(void **state)
{
	uint8_t c[32];

	(void)state;
	memset(c, 0xff, sizeof(c));
	assert_entry(c, sizeof(c), "not decoded");
	memset(c, 0x66, sizeof(c));
	assert_entry(c, sizeof(c), "not decoded");
	memset(c, 0x00, sizeof(c));
	assert_entry(c, sizeof(c), "memory");
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_placement_random_bytes_are_safe(void **state)
{
	/* Bytes a prologue is made of, so that random buffers get past the first insn. */
	static const uint8_t common[] = { 0x48, 0x85, 0xff, 0x0f, 0x84, 0x74, 0x55, 0x41, 0x54,
					  0x80, 0x3d, 0x00, 0xf3, 0x1e, 0xfa, 0x1f, 0x66, 0x90 };
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	size_t moved = 0;
	int i;

	(void)state;
	for (i = 0; i < 100000; i++) {
		/* Exactly len bytes on the heap, so ASan sees any read past the end. */
		size_t len = 1 + xorshift(&seed) % 32, j;
		uint8_t *c = test_malloc(len);
		struct probe_placement p;

		for (j = 0; j < len; j++) {
			uint64_t r = xorshift(&seed);

			c[j] = i % 2 ? (uint8_t)r : common[r % sizeof(common)];
		}
		p = place(c, len);
		moved += p.offset != 0;
		assert_true(insn_decode__length(c, len) <= len);
		test_free(c);
	}
	/* The walk past the entry insn was exercised, not only the first decode. */
	assert_true(moved > 100);
}

static void test_length_prologue_insns(void **state)
{
	static const struct {
		uint8_t code[15];
		size_t len;
	} cases[] = {
		{ { 0x48, 0x85, 0xff }, 3 },				 /* test %rdi,%rdi */
		{ { 0x0f, 0x84, 0xbf, 0, 0, 0 }, 6 },			 /* je rel32 */
		{ { 0x55 }, 1 },					 /* push %rbp */
		{ { 0x41, 0x54 }, 2 },					 /* push %r12 */
		{ { 0x5b }, 1 },					 /* pop %rbx */
		{ { 0x48, 0x8d, 0x77, 0xf0 }, 4 },			 /* lea -0x10(%rdi),%rsi */
		{ { 0x48, 0x83, 0xec, 0x18 }, 4 },			 /* sub $0x18,%rsp */
		{ { 0x48, 0x81, 0xec, 0, 1, 0, 0 }, 7 },		 /* sub $0x100,%rsp */
		{ { 0x48, 0x8b, 0x1d, 0xd6, 0x9e, 0x13, 0 }, 7 },	 /* mov disp(%rip),%rbx */
		{ { 0x80, 0x3d, 0x46, 0x1b, 0x14, 0, 0 }, 7 },		 /* cmpb $0,disp(%rip) */
		{ { 0x74, 0x07 }, 2 },					 /* je rel8 */
		{ { 0xe9, 0x32, 0xf6, 0xff, 0xff }, 5 },		 /* jmp rel32 */
		{ { 0xe8, 0, 0, 0, 0 }, 5 },				 /* call rel32 */
		{ { 0xc3 }, 1 },					 /* ret */
		{ { 0x66, 0x90 }, 2 },					 /* xchg %ax,%ax */
		{ { 0xf3, 0x0f, 0x1e, 0xfa }, 4 },			 /* endbr64 */
		{ { 0x48, 0x89, 0x74, 0x24, 0x08 }, 5 },		 /* mov %rsi,0x8(%rsp) */
		{ { 0x48, 0x89, 0x3c, 0x24 }, 4 },			 /* mov %rdi,(%rsp) */
		{ { 0x64, 0xc7, 0x00, 0x0c, 0, 0, 0 }, 7 },		 /* movl $0xc,%fs:(%rax) */
		{ { 0x31, 0xc0 }, 2 },					 /* xor %eax,%eax */
		{ { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 }, 10 },		 /* movabs $imm64,%rax */
		{ { 0x66, 0xb8, 1, 2 }, 4 },				 /* mov $imm16,%ax */
		{ { 0xf6, 0x47, 0x08, 0x01 }, 4 },			 /* testb $1,0x8(%rdi) */
		{ { 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 8 },		 /* nopl 0x0(%rax,%rax,1) */
		{ { 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 10 }, /* cs nopw */
		{ { 0x8b, 0x04, 0x25, 0, 0, 0, 0 }, 7 },		 /* mov 0x0,%eax (SIB) */
		{ { 0x48, 0xf7, 0xe2 }, 0 },				 /* mul %rdx: unsupported */
		{ { 0x0f, 0x05 }, 0 },					 /* syscall: unsupported */
		{ { 0x66, 0xe9, 0, 0 }, 0 }, /* jmpw: vendor-dependent */
		{ { 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48,
		    0x48, 0x55 },
		  0 }, /* REX after REX */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t want = cases[i].len;

		assert_int_equal(insn_decode__length(cases[i].code, sizeof(cases[i].code)), want);
		/* One byte short is truncated, never read past. */
		if (want)
			assert_int_equal(insn_decode__length(cases[i].code, want - 1), 0);
	}
}

static void test_length_over_15_bytes_is_0(void **state)
{
	/* 14 prefixes then push: 15 bytes is the longest insn the CPU accepts */
	uint8_t c[16];

	(void)state;
	memset(c, 0x66, sizeof(c));
	c[14] = 0x55;
	assert_int_equal(insn_decode__length(c, sizeof(c)), 15);
	c[14] = 0x66;
	c[15] = 0x55;
	assert_int_equal(insn_decode__length(c, sizeof(c)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placement_free_skips_null_check),
		cmocka_unit_test(test_placement_push_entry_stays),
		cmocka_unit_test(test_placement_flag_check_then_push_moves),
		cmocka_unit_test(test_placement_flag_check_then_je_lands_on_the_je),
		cmocka_unit_test(test_placement_mul_stays),
		cmocka_unit_test(test_placement_non_argument_test_lands_on_the_je),
		cmocka_unit_test(test_placement_skipped_write_of_rdi_stays),
		cmocka_unit_test(test_placement_skipped_write_of_scratch_moves),
		cmocka_unit_test(test_placement_skipped_stack_write_stays),
		cmocka_unit_test(test_placement_jne_lands_on_the_jne),
		cmocka_unit_test(test_placement_null_check_forms),
		cmocka_unit_test(test_placement_not_null_checks_land_on_the_je),
		cmocka_unit_test(test_placement_only_the_arguments_read_are_kept),
		cmocka_unit_test(test_placement_arguments_moved_to_another_register),
		cmocka_unit_test(test_placement_endbr64_is_skipped),
		cmocka_unit_test(test_placement_emulated_nops),
		cmocka_unit_test(test_placement_rejected_never_chosen),
		cmocka_unit_test(test_placement_emulated_branch_at_entry_stays),
		cmocka_unit_test(test_placement_truncated_stays),
		cmocka_unit_test(test_placement_empty_is_einval),
		cmocka_unit_test(test_placement_all_ff_stays),
		cmocka_unit_test(test_placement_random_bytes_are_safe),
		cmocka_unit_test(test_length_prologue_insns),
		cmocka_unit_test(test_length_over_15_bytes_is_0),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
