// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "folded.h"
#include "pprof.h"
#include "stack_profile.h"

static void test_stack_profile_weight_unbiases(void **state)
{
	double bytes, count;

	(void)state;
	/* Every allocation sampled: what it is. */
	stack_profile__weight(100, 1, &bytes, &count);
	assert_true(bytes == 100 && count == 1);
	/* Z = R: p = 1 - 1/e. */
	stack_profile__weight(524288, 524288, &bytes, &count);
	assert_true(fabs(count - 1 / (1 - exp(-1))) < 1e-9);
	assert_true(fabs(bytes - 524288 / (1 - exp(-1))) < 1e-6);
	/* Z << R: about R bytes and R/Z allocations. */
	stack_profile__weight(16, 524288, &bytes, &count);
	assert_true(fabs(bytes - 524288) < 16);
	assert_true(fabs(count - 32768) < 1);
	/* Z >> R: certain. */
	stack_profile__weight(1 << 30, 524288, &bytes, &count);
	assert_true(bytes == (double)(1 << 30) && count == 1);
}

static void test_stack_profile_gaps_mean_one(void **state)
{
	uint32_t gaps[1024];
	double sum = 0;
	size_t i;

	(void)state;
	stack_profile__gaps(gaps, 1024);
	for (i = 0; i < 1024; i++) {
		sum += gaps[i];
		if (i)
			assert_true(gaps[i] >= gaps[i - 1]);
	}
	assert_true(fabs(sum / 1024 / 65536 - 1) < 1e-4);
	/* The median of Exp(1) is ln 2. */
	assert_true(fabs((gaps[511] + gaps[512]) / 2.0 / 65536 - log(2)) < 0.01);
}

/* main -> a -> b (leaf b) with two frames named, one by object+offset. */
static struct stack_profile *profile(void)
{
	struct stack_profile *p = stack_profile__new(1, 100);
	const char *names[] = { "b", "a", "main" };
	uint32_t frames[4];
	bool fresh;
	long m, f;
	int i;

	assert_non_null(p);
	m = stack_profile__mapping(p, 7, "/bin/x", 0x1000, 0x2000, 0, "abcd");
	assert_int_equal(m, 0);
	for (i = 0; i < 3; i++) {
		f = stack_profile__frame(p, 7, 0x1100 + (uint64_t)i, &fresh);
		assert_true(fresh);
		p->frames[f].function = strdup(names[i]);
		p->frames[f].mapping = 1;
		frames[i] = (uint32_t)f;
	}
	f = stack_profile__frame(p, 7, 0x1100, &fresh);
	assert_false(fresh);
	f = stack_profile__frame(p, 7, 0x1f00, &fresh);
	p->frames[f].mapping = 1;
	p->frames[f].offset = 0xf00;
	frames[3] = (uint32_t)f;
	assert_int_equal(stack_profile__add(p, &(struct sp_sample){ .pid = 7,
								    .tid = 8,
								    .addr = 0x10,
								    .size = 100,
								    .frames = frames,
								    .nframes = 3 }),
			 0);
	assert_int_equal(stack_profile__add(p, &(struct sp_sample){ .pid = 7,
								    .tid = 8,
								    .addr = 0x20,
								    .size = 50,
								    .frames = frames,
								    .nframes = 3 }),
			 0);
	assert_int_equal(stack_profile__add(p, &(struct sp_sample){ .pid = 7,
								    .tid = 8,
								    .addr = 0x30,
								    .size = 30,
								    .task = 2,
								    .task_id = 42,
								    .task_type = "conn",
								    .frames = frames + 1,
								    .nframes = 3 }),
			 0);
	return p;
}

static char *folded(const struct stack_profile *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(folded__write(f, p), 0);
	fclose(f);
	return text;
}

static void test_stack_profile_folded_root_first_task_type_root(void **state)
{
	struct stack_profile *p = profile();
	char *text = folded(p);

	(void)state;
	assert_string_equal(text, "conn;x+0xf00;main;a 30\n"
				  "main;a;b 150\n");
	free(text);
	stack_profile__free(p);
}

static void test_stack_profile_frees_leave_inuse(void **state)
{
	struct stack_profile *p = profile();
	char *text;

	(void)state;
	stack_profile__freed(p, 7, 0x10);
	stack_profile__freed(p, 7, 0x10); /* twice: once only */
	stack_profile__freed(p, 8, 0x20); /* another process */
	stack_profile__freed(p, 7, 0x30);
	text = folded(p);
	assert_string_equal(text, "main;a;b 50\n");
	free(text);
	assert_true(p->series[0].alloc_space == 150 && p->series[0].alloc_objects == 2);
	assert_true(p->series[0].inuse_space == 50 && p->series[0].inuse_objects == 1);
	stack_profile__free(p);
}

static void test_stack_profile_pprof_encodes_string_table_first_empty(void **state)
{
	struct stack_profile *p = profile();
	uint8_t *raw;
	size_t len;

	(void)state;
	assert_int_equal(pprof__encode(p, 1, 2, &raw, &len), 0);
	/* Field 1 (sample_type), length-delimited, first. */
	assert_true(len > 100);
	assert_int_equal(raw[0], 0x0a);
	/* The string table holds "" (tag 0x32, length 0) and the labels. */
	assert_non_null(memmem(raw, len, "\x32\x00", 2));
	assert_non_null(memmem(raw, len, "task_type", 9));
	assert_non_null(memmem(raw, len, "inuse_space", 11));
	free(raw);
	stack_profile__free(p);
}

static void test_stack_profile_bounded(void **state)
{
	struct stack_profile *p = stack_profile__new(1, 2);
	uint32_t frame = 0;
	bool fresh;
	int i;

	(void)state;
	assert_int_equal(stack_profile__frame(p, 1, 0x10, &fresh), 0);
	for (i = 0; i < 3; i++)
		stack_profile__add(p, &(struct sp_sample){ .pid = 1,
							   .tid = (uint32_t)i + 1,
							   .addr = 0x100 + (uint64_t)i,
							   .size = 8,
							   .frames = &frame,
							   .nframes = 1 });
	assert_int_equal(p->nseries, 2);
	assert_int_equal(p->samples_dropped, 1);
	stack_profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stack_profile_weight_unbiases),
		cmocka_unit_test(test_stack_profile_gaps_mean_one),
		cmocka_unit_test(test_stack_profile_folded_root_first_task_type_root),
		cmocka_unit_test(test_stack_profile_frees_leave_inuse),
		cmocka_unit_test(test_stack_profile_pprof_encodes_string_table_first_empty),
		cmocka_unit_test(test_stack_profile_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
