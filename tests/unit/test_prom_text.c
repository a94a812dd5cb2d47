// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "prom_text.h"

static void assert_text(struct prom_text *p, const char *expected)
{
	size_t len;
	const char *data = prom_text__data(p, &len);

	assert_string_equal(data, expected);
	assert_int_equal(len, strlen(expected));
}

static void test_prom_text_counter(void **state)
{
	struct prom_text *p = prom_text__new();
	struct prom_label labels[] = {
		{ "task", "worker-1" },
		{ "func", "malloc" },
	};

	(void)state;
	assert_non_null(p);
	assert_int_equal(
		prom_text__family(p, "memscoped_allocs_total", "counter", "Allocations seen."), 0);
	assert_int_equal(prom_text__sample(p, "memscoped_allocs_total", labels, 2, 12345), 0);
	assert_int_equal(prom_text__sample(p, "memscoped_allocs_total", labels, 1, 0), 0);
	assert_text(p, "# HELP memscoped_allocs_total Allocations seen.\n"
		       "# TYPE memscoped_allocs_total counter\n"
		       "memscoped_allocs_total{task=\"worker-1\",func=\"malloc\"} 12345\n"
		       "memscoped_allocs_total{task=\"worker-1\"} 0\n");
	prom_text__free(p);
}

static void test_prom_text_gauge_without_labels(void **state)
{
	struct prom_text *p = prom_text__new();

	(void)state;
	assert_int_equal(prom_text__family(p, "memscoped_heap_bytes", "gauge", "Live bytes."), 0);
	assert_int_equal(prom_text__sample(p, "memscoped_heap_bytes", NULL, 0, 4096), 0);
	assert_int_equal(prom_text__sample(p, "memscoped_heap_bytes", NULL, 0, -2.5), 0);
	assert_text(p, "# HELP memscoped_heap_bytes Live bytes.\n"
		       "# TYPE memscoped_heap_bytes gauge\n"
		       "memscoped_heap_bytes 4096\n"
		       "memscoped_heap_bytes -2.5\n");
	prom_text__free(p);
}

static void test_prom_text_histogram(void **state)
{
	static const double bounds[] = { 0.001, 0.5, 1, 1024 };
	static const uint64_t counts[] = { 1, 2, 0, 3, 4 };
	struct prom_label label = { "task", "t1" };
	struct prom_text *p = prom_text__new();

	(void)state;
	assert_int_equal(prom_text__family(p, "ms_age_seconds", "histogram", "Block ages."), 0);
	assert_int_equal(
		prom_text__histogram(p, "ms_age_seconds", &label, 1, bounds, counts, 4, 12.5), 0);
	assert_text(p, "# HELP ms_age_seconds Block ages.\n"
		       "# TYPE ms_age_seconds histogram\n"
		       "ms_age_seconds_bucket{task=\"t1\",le=\"0.001\"} 1\n"
		       "ms_age_seconds_bucket{task=\"t1\",le=\"0.5\"} 3\n"
		       "ms_age_seconds_bucket{task=\"t1\",le=\"1\"} 3\n"
		       "ms_age_seconds_bucket{task=\"t1\",le=\"1024\"} 6\n"
		       "ms_age_seconds_bucket{task=\"t1\",le=\"+Inf\"} 10\n"
		       "ms_age_seconds_sum{task=\"t1\"} 12.5\n"
		       "ms_age_seconds_count{task=\"t1\"} 10\n");
	prom_text__free(p);
}

static void test_prom_text_histogram_without_labels_or_bounds(void **state)
{
	static const uint64_t counts[] = { UINT64_MAX };
	struct prom_text *p = prom_text__new();

	(void)state;
	assert_int_equal(prom_text__histogram(p, "h", NULL, 0, NULL, counts, 0, 0.25), 0);
	assert_text(p, "h_bucket{le=\"+Inf\"} 18446744073709551615\n"
		       "h_sum 0.25\n"
		       "h_count 18446744073709551615\n");
	prom_text__free(p);
}

static void test_prom_text_histogram_rejects_bad_bounds(void **state)
{
	static const double unsorted[] = { 1, 0.5 };
	static const double equal[] = { 1, 1 };
	static const double inf[] = { 1, INFINITY };
	static const double nan[] = { NAN, 1 };
	static const uint64_t counts[] = { 1, 2, 3 };
	struct prom_text *p = prom_text__new();

	(void)state;
	assert_int_equal(prom_text__histogram(p, "h", NULL, 0, unsorted, counts, 2, 0), -EINVAL);
	assert_int_equal(prom_text__histogram(p, "h", NULL, 0, equal, counts, 2, 0), -EINVAL);
	assert_int_equal(prom_text__histogram(p, "h", NULL, 0, inf, counts, 2, 0), -EINVAL);
	assert_int_equal(prom_text__histogram(p, "h", NULL, 0, nan, counts, 2, 0), -EINVAL);
	assert_text(p, "");
	prom_text__free(p);
}

static void test_prom_text_label_escaping(void **state)
{
	struct prom_label label = { "comm", "a\\b\"c\nd" };
	struct prom_text *p = prom_text__new();

	(void)state;
	assert_int_equal(prom_text__sample(p, "m", &label, 1, 1), 0);
	assert_text(p, "m{comm=\"a\\\\b\\\"c\\nd\"} 1\n");
	prom_text__free(p);
}

static void test_prom_text_invalid_utf8_replaced(void **state)
{
	struct prom_label labels[] = {
		{ "ok", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9b" },
		{ "cut", "ab\xe2\x82" },
		{ "bad", "\xff\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80" },
	};
	struct prom_text *p = prom_text__new();

	(void)state;
	assert_int_equal(prom_text__sample(p, "m", labels, 3, 1), 0);
	assert_text(p, "m{ok=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9b\","
		       "cut=\"ab\xef\xbf\xbd\xef\xbf\xbd\","
		       "bad=\""
		       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 1\n");
	prom_text__free(p);
}

static void test_prom_text_help_escaping(void **state)
{
	struct prom_text *p = prom_text__new();

	(void)state;
	assert_int_equal(prom_text__family(p, "m", "untyped", "a \\ \"b\"\nc"), 0);
	assert_text(p, "# HELP m a \\\\ \"b\"\\nc\n# TYPE m untyped\n");
	prom_text__free(p);
}

static void test_prom_text_special_values(void **state)
{
	struct prom_text *p = prom_text__new();

	(void)state;
	prom_text__sample(p, "m", NULL, 0, INFINITY);
	prom_text__sample(p, "m", NULL, 0, -INFINITY);
	prom_text__sample(p, "m", NULL, 0, NAN);
	assert_text(p, "m +Inf\nm -Inf\nm NaN\n");
	prom_text__free(p);
}

static void test_prom_text_number_formats(void **state)
{
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ -0.0, "0" },
		{ 12345, "12345" },
		{ -7, "-7" },
		{ 1e15, "1000000000000000" },
		{ 9007199254740991.0, "9007199254740991" },
		{ 9007199254740992.0, "9007199254740992" },
		{ 1e20, "1e+20" },
		{ 0.1, "0.1" },
		{ 0.001, "0.001" },
		{ 1.0 / 3, "0.3333333333333333" },
		{ 2.0 / 3, "0.6666666666666666" },
		{ 123.456, "123.456" },
		{ 5e-324, "5e-324" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
	};
	char expected[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct prom_text *p = prom_text__new();

		assert_int_equal(prom_text__sample(p, "m", NULL, 0, cases[i].v), 0);
		snprintf(expected, sizeof(expected), "m %s\n", cases[i].text);
		assert_text(p, expected);
		prom_text__free(p);
	}
}

static void test_prom_text_rejects_bad_names(void **state)
{
	struct prom_label bad_name = { "a-b", "x" };
	struct prom_label null_value = { "a", NULL };
	struct prom_text *p = prom_text__new();

	(void)state;
	assert_int_equal(prom_text__sample(p, "1m", NULL, 0, 1), -EINVAL);
	assert_int_equal(prom_text__sample(p, "m m", NULL, 0, 1), -EINVAL);
	assert_int_equal(prom_text__sample(p, "", NULL, 0, 1), -EINVAL);
	assert_int_equal(prom_text__sample(p, "m", &bad_name, 1, 1), -EINVAL);
	assert_int_equal(prom_text__sample(p, "m", &null_value, 1, 1), -EINVAL);
	assert_int_equal(prom_text__sample(p, "m", NULL, 1, 1), -EINVAL);
	assert_int_equal(prom_text__family(p, "m", "countr", "x"), -EINVAL);
	assert_int_equal(prom_text__sample(p, "ns:m_1", NULL, 0, 1), 0);
	assert_text(p, "ns:m_1 1\n");
	prom_text__free(p);
}

static void test_prom_text_grows_and_resets(void **state)
{
	struct prom_text *p = prom_text__new();
	struct prom_label label = { "task", "" };
	char value[300];
	size_t i, len;

	(void)state;
	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	label.value = value;
	for (i = 0; i < 1000; i++)
		assert_int_equal(prom_text__sample(p, "m", &label, 1, i), 0);
	prom_text__data(p, &len);
	assert_int_equal(len, 1000 * (strlen("m{task=\"\"} \n") + 299) + 10 + 90 * 2 + 900 * 3);

	prom_text__reset(p);
	assert_text(p, "");
	assert_int_equal(prom_text__sample(p, "m", NULL, 0, 1), 0);
	assert_text(p, "m 1\n");
	prom_text__free(p);
	prom_text__free(NULL);
}

static void test_prom_cap_returns_other(void **state)
{
	struct prom_cap *c = prom_cap__new(2);
	char key[8] = "alpha";
	const char *kept;

	(void)state;
	assert_non_null(c);
	kept = prom_cap__key(c, key);
	assert_string_equal(kept, "alpha");
	assert_ptr_not_equal(kept, key);
	strcpy(key, "beta");
	assert_string_equal(kept, "alpha");
	assert_string_equal(prom_cap__key(c, key), "beta");
	assert_string_equal(prom_cap__key(c, "gamma"), "other");
	assert_string_equal(prom_cap__key(c, "alpha"), "alpha");
	assert_ptr_equal(prom_cap__key(c, "alpha"), kept);
	assert_string_equal(prom_cap__key(c, "delta"), "other");
	assert_string_equal(prom_cap__key(c, NULL), "other");
	assert_int_equal(prom_cap__overflows(c), 3);
	prom_cap__free(c);
	prom_cap__free(NULL);
}

static void test_prom_cap_default_max(void **state)
{
	struct prom_cap *c = prom_cap__new(0);
	char key[16];
	int i;

	(void)state;
	for (i = 0; i < PROM_CAP_DEFAULT_MAX; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_string_equal(prom_cap__key(c, key), key);
	}
	assert_string_equal(prom_cap__key(c, "one-more"), PROM_CAP_OTHER);
	assert_string_equal(prom_cap__key(c, "k0"), "k0");
	assert_int_equal(prom_cap__overflows(c), 1);
	prom_cap__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prom_text_counter),
		cmocka_unit_test(test_prom_text_gauge_without_labels),
		cmocka_unit_test(test_prom_text_histogram),
		cmocka_unit_test(test_prom_text_histogram_without_labels_or_bounds),
		cmocka_unit_test(test_prom_text_histogram_rejects_bad_bounds),
		cmocka_unit_test(test_prom_text_label_escaping),
		cmocka_unit_test(test_prom_text_invalid_utf8_replaced),
		cmocka_unit_test(test_prom_text_help_escaping),
		cmocka_unit_test(test_prom_text_special_values),
		cmocka_unit_test(test_prom_text_number_formats),
		cmocka_unit_test(test_prom_text_rejects_bad_names),
		cmocka_unit_test(test_prom_text_grows_and_resets),
		cmocka_unit_test(test_prom_cap_returns_other),
		cmocka_unit_test(test_prom_cap_default_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
