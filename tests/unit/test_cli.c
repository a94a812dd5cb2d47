// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <argp.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

static int parse_argv(char **argv, struct cli_options *ret)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	return cli__parse(argc, argv, ARGP_NO_EXIT | ARGP_NO_ERRS, ret);
}

/* parse(&opts, "--pid", "1", ...): argv[0] and the NULL end are added. */
#define parse(ret, ...) parse_argv((char *[]){ "memscoped", __VA_ARGS__, NULL }, ret)

/* A failed parse leaves the options untouched. */
#define assert_rejected(...)                                               \
	do {                                                               \
		struct cli_options o_;                                     \
		memset(&o_, 0xa5, sizeof(o_));                             \
		assert_int_equal(parse(&o_, __VA_ARGS__), -EINVAL);        \
		assert_int_equal(o_.npids, (size_t)0xa5a5a5a5a5a5a5a5ull); \
	} while (0)

static void test_cli_defaults(void **state)
{
	struct cli_options o;

	(void)state;
	assert_int_equal(parse(&o, "--pid", "1234"), 0);
	assert_int_equal(o.npids, 1);
	assert_int_equal(o.pids[0], 1234);
	assert_true(o.duration == 0);
	assert_null(o.report);
	assert_null(o.html);
	assert_true(o.interval == 0);
	assert_int_equal(o.ring_size, 8u << 20);
	assert_int_equal(o.max_allocations, 10000000);
	assert_int_equal(o.max_threads, 100000);
	assert_false(o.no_uprobe_multi);
	assert_int_equal(o.verbose, 0);
}

static void test_cli_long_options(void **state)
{
	struct cli_options o;

	(void)state;
	assert_int_equal(parse(&o, "--pid", "1", "--pid=2", "--duration", "2.5", "--report",
			       "out.json", "--interval=0.5", "--ring-size", "4096",
			       "--max-allocations", "5", "--max-threads=7", "--no-uprobe-multi",
			       "--verbose", "--user", "nobody", "--max-types", "12", "--html",
			       "out.html"),
			 0);
	assert_int_equal(o.npids, 2);
	assert_int_equal(o.pids[0], 1);
	assert_int_equal(o.pids[1], 2);
	assert_true(o.duration == 2.5);
	assert_string_equal(o.report, "out.json");
	assert_true(o.interval == 0.5);
	assert_int_equal(o.ring_size, 4096);
	assert_int_equal(o.max_allocations, 5);
	assert_int_equal(o.max_threads, 7);
	assert_true(o.no_uprobe_multi);
	assert_int_equal(o.verbose, 1);
	assert_string_equal(o.user, "nobody");
	assert_int_equal(o.max_types, 12);
	assert_string_equal(o.html, "out.html");
}

static void test_cli_short_options(void **state)
{
	struct cli_options o;

	(void)state;
	assert_int_equal(parse(&o, "-p", "10", "-p11", "-d", "60", "-r", "-", "-i", "1", "-vv",
			       "--ring-size", "1073741824"),
			 0);
	assert_int_equal(o.npids, 2);
	assert_int_equal(o.pids[0], 10);
	assert_int_equal(o.pids[1], 11);
	assert_true(o.duration == 60);
	assert_string_equal(o.report, "-");
	assert_true(o.interval == 1);
	assert_int_equal(o.verbose, 2);
	assert_int_equal(o.ring_size, 1ull << 30);
}

static void test_cli_max_targets(void **state)
{
	char *argv[2 + 2 * (MS_MAX_TARGETS + 1)];
	char pids[MS_MAX_TARGETS + 1][8];
	struct cli_options o;
	int i;

	(void)state;
	argv[0] = "memscoped";
	for (i = 0; i <= MS_MAX_TARGETS; i++) {
		snprintf(pids[i], sizeof(pids[i]), "%d", i + 1);
		argv[1 + 2 * i] = "-p";
		argv[2 + 2 * i] = pids[i];
	}
	argv[1 + 2 * MS_MAX_TARGETS] = NULL;
	assert_int_equal(parse_argv(argv, &o), 0);
	assert_int_equal(o.npids, MS_MAX_TARGETS);
	assert_int_equal(o.pids[MS_MAX_TARGETS - 1], MS_MAX_TARGETS);

	argv[1 + 2 * MS_MAX_TARGETS] = "-p";
	argv[2 + 2 * MS_MAX_TARGETS] = pids[MS_MAX_TARGETS];
	argv[3 + 2 * MS_MAX_TARGETS] = NULL;
	assert_int_equal(parse_argv(argv, &o), -EINVAL);
}

static void test_cli_bad_pid(void **state)
{
	(void)state;
	assert_rejected("--duration", "1");
	assert_rejected("--pid", "abc");
	assert_rejected("--pid", "0");
	assert_rejected("--pid", "-5");
	assert_rejected("--pid", "99999999999");
	assert_rejected("--pid", "");
	assert_rejected("-p", "12x");
}

static void test_cli_bad_duration_and_interval(void **state)
{
	(void)state;
	assert_rejected("-p", "1", "--duration", "x");
	assert_rejected("-p", "1", "--duration", "-1");
	assert_rejected("-p", "1", "--duration", "inf");
	assert_rejected("-p", "1", "--duration", "nan");
	assert_rejected("-p", "1", "--duration", "");
	assert_rejected("-p", "1", "--interval", "junk");
	assert_rejected("-p", "1", "-i", "-0.5");
}

static void test_cli_bad_ring_size(void **state)
{
	(void)state;
	assert_rejected("-p", "1", "--ring-size", "1000");
	assert_rejected("-p", "1", "--ring-size", "0");
	assert_rejected("-p", "1", "--ring-size", "2048");
	assert_rejected("-p", "1", "--ring-size", "2147483648");
	assert_rejected("-p", "1", "--ring-size", "big");
}

static void test_cli_bad_limits_and_report(void **state)
{
	(void)state;
	assert_rejected("-p", "1", "--max-allocations", "0");
	assert_rejected("-p", "1", "--max-threads", "-1");
	assert_rejected("-p", "1", "--max-types", "0");
	assert_rejected("-p", "1", "--max-types", "1000001");
	assert_rejected("-p", "1", "--report", "");
	assert_rejected("-p", "1", "--html", "");
}

static void test_cli_bad_syntax(void **state)
{
	(void)state;
	assert_rejected("-p", "1", "extra");
	assert_rejected("-p", "1", "--no-such-flag");
	assert_rejected("-p", "1", "-x");
	assert_rejected("-p");
}

static void test_cli_mode(void **state)
{
	struct cli_options o;

	(void)state;
	assert_int_equal(parse(&o, "-p", "1"), 0);
	assert_false(o.scan);
	assert_true(o.scan_interval == 60);
	assert_int_equal(parse(&o, "-p", "1", "--mode", "trace"), 0);
	assert_false(o.scan);
	assert_int_equal(parse(&o, "-p", "1", "--mode=scan", "--scan-interval", "1.5"), 0);
	assert_true(o.scan);
	assert_true(o.scan_interval == 1.5);
	assert_rejected("-p", "1", "--mode", "sample");
	assert_rejected("-p", "1", "--mode", "");
	assert_rejected("-p", "1", "--mode", "scan", "--scan-interval", "0.05");
	assert_rejected("-p", "1", "--mode", "scan", "--scan-interval", "x");
	assert_rejected("-p", "1", "--mode", "scan", "--user", "nobody");
	assert_rejected("-p", "1", "--mode", "scan", "--empty-programs");
	assert_rejected("-p", "1", "--leak-candidates");
	assert_rejected("-p", "1", "--mode", "scan", "--pprof", "/tmp/x.pb.gz");
	assert_rejected("-p", "1", "--mode", "scan", "--folded", "/tmp/x.folded");
	assert_rejected("--comm", "x", "--mode", "scan");
	assert_int_equal(parse(&o, "-p", "1", "--mode", "scan", "--leak-candidates"), 0);
	assert_true(o.leak_candidates);
	assert_false(o.freeze);
	assert_rejected("-p", "1", "--freeze");
	assert_rejected("-p", "1", "--mode", "trace", "--freeze");
	assert_int_equal(parse(&o, "-p", "1", "--mode", "scan", "--freeze"), 0);
	assert_true(o.freeze);
}

static void test_cli_allocator(void **state)
{
	struct cli_options o;

	(void)state;
	assert_int_equal(parse(&o, "-p", "1"), 0);
	assert_string_equal(o.allocator, "auto");
	assert_false(o.empty_programs);
	assert_int_equal(parse(&o, "-p", "1", "--allocator", "jemalloc", "--empty-programs"), 0);
	assert_string_equal(o.allocator, "jemalloc");
	assert_true(o.empty_programs);
	assert_int_equal(parse(&o, "-p", "1", "--allocator=rust"), 0);
	assert_string_equal(o.allocator, "rust");
	assert_rejected("-p", "1", "--allocator", "hoard");
	assert_rejected("-p", "1", "--allocator", "");
	assert_rejected("-p", "1", "--allocator", "JEMALLOC");
}

static void test_cli_daemon_mode(void **state)
{
	struct cli_options o;

	(void)state;
	assert_int_equal(parse(&o, "-p", "1"), 0);
	assert_int_equal(o.max_targets, MS_DEFAULT_MAX_TARGETS);
	assert_true(o.forget_after == 300);
	assert_int_equal(o.max_ended_targets, 10000);
	assert_false(o.no_follow_forks);
	/* A selector alone is a target; each is repeatable. */
	assert_int_equal(parse(&o, "--comm", "^nginx$", "--comm=worker", "--exe", "/opt/*",
			       "--cgroup", "/system.slice/a.service", "--max-targets", "1000",
			       "--forget-after", "0", "--no-follow-forks", "--max-ended-targets",
			       "0"),
			 0);
	assert_int_equal(o.ncomms, 2);
	assert_string_equal(o.comms[1], "worker");
	assert_int_equal(o.nexes, 1);
	assert_int_equal(o.ncgroups, 1);
	assert_int_equal(o.max_targets, 1000);
	assert_true(o.forget_after == 0);
	assert_int_equal(o.max_ended_targets, 0);
	assert_true(o.no_follow_forks);
	assert_rejected("--comm", "(");
	assert_rejected("--comm", "a{2");
	assert_rejected("--exe", "");
	assert_rejected("--cgroup", "relative/path");
	assert_rejected("--comm", "x", "--max-targets", "0");
	assert_rejected("--comm", "x", "--max-targets", "65537");
	assert_rejected("--comm", "x", "--forget-after", "-1");
	assert_rejected("--comm", "x", "--max-ended-targets", "10000001");
	assert_rejected("--comm", "x", "--max-ended-targets", "-1");
	assert_rejected("-p", "1", "-p", "2", "--max-targets", "1");
	assert_rejected("--max-targets", "10");
}

static void test_cli_parse_seconds(void **state)
{
	double v = -7;

	(void)state;
	assert_int_equal(cli__parse_seconds("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(cli__parse_seconds("1.25", &v), 0);
	assert_true(v == 1.25);
	assert_int_equal(cli__parse_seconds("1e9", &v), 0);
	assert_true(v == 1e9);

	v = -7;
	assert_int_equal(cli__parse_seconds("1e10", &v), -EINVAL);
	assert_int_equal(cli__parse_seconds("1e999", &v), -EINVAL);
	assert_int_equal(cli__parse_seconds("", &v), -EINVAL);
	assert_int_equal(cli__parse_seconds("1s", &v), -EINVAL);
	assert_int_equal(cli__parse_seconds("-0.1", &v), -EINVAL);
	assert_int_equal(cli__parse_seconds("infinity", &v), -EINVAL);
	assert_int_equal(cli__parse_seconds("NaN", &v), -EINVAL);
	assert_true(v == -7);
}

static void test_cli_parse_u64(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(cli__parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cli__parse_u64("18446744073709551615", &v), 0);
	assert_int_equal(v, UINT64_MAX);
	/* Decimal only: no hex, and no octal surprise for a leading zero. */
	assert_int_equal(cli__parse_u64("0x1000", &v), -EINVAL);
	assert_int_equal(cli__parse_u64("010", &v), 0);
	assert_int_equal(v, 10);

	v = 7;
	assert_int_equal(cli__parse_u64("18446744073709551616", &v), -EINVAL);
	assert_int_equal(cli__parse_u64("", &v), -EINVAL);
	assert_int_equal(cli__parse_u64("-1", &v), -EINVAL);
	assert_int_equal(cli__parse_u64("+1", &v), -EINVAL);
	assert_int_equal(cli__parse_u64(" -1", &v), -EINVAL);
	assert_int_equal(cli__parse_u64("12abc", &v), -EINVAL);
	assert_int_equal(cli__parse_u64("1.5", &v), -EINVAL);
	assert_int_equal(v, 7);
}

static void test_cli_parse_pid(void **state)
{
	int pid = 7;

	(void)state;
	assert_int_equal(cli__parse_pid("1", &pid), 0);
	assert_int_equal(pid, 1);
	assert_int_equal(cli__parse_pid("2147483647", &pid), 0);
	assert_int_equal(pid, 2147483647);

	pid = 7;
	assert_int_equal(cli__parse_pid("2147483648", &pid), -EINVAL);
	assert_int_equal(cli__parse_pid("0", &pid), -EINVAL);
	assert_int_equal(cli__parse_pid("-5", &pid), -EINVAL);
	assert_int_equal(cli__parse_pid("abc", &pid), -EINVAL);
	assert_int_equal(pid, 7);
	/* Process ids are decimal: a leading zero must not make "010" pid 8. */
	if (cli__parse_pid("010", &pid) == 0)
		assert_int_equal(pid, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_defaults),
		cmocka_unit_test(test_cli_long_options),
		cmocka_unit_test(test_cli_short_options),
		cmocka_unit_test(test_cli_max_targets),
		cmocka_unit_test(test_cli_bad_pid),
		cmocka_unit_test(test_cli_bad_duration_and_interval),
		cmocka_unit_test(test_cli_bad_ring_size),
		cmocka_unit_test(test_cli_bad_limits_and_report),
		cmocka_unit_test(test_cli_bad_syntax),
		cmocka_unit_test(test_cli_mode),
		cmocka_unit_test(test_cli_allocator),
		cmocka_unit_test(test_cli_daemon_mode),
		cmocka_unit_test(test_cli_parse_seconds),
		cmocka_unit_test(test_cli_parse_u64),
		cmocka_unit_test(test_cli_parse_pid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
