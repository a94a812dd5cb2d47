// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <argp.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc_family.h"
#include "cli.h"
#include "http_server.h"
#include "runtime.h"

const char *argp_program_version = "memscoped " MEMSCOPED_VERSION;
const char *argp_program_bug_address = "<https://github.com/memscoped/memscoped/issues>";

enum {
	OPT_RING_SIZE = 0x100,
	OPT_MAX_ALLOCATIONS,
	OPT_MAX_THREADS,
	OPT_NO_UPROBE_MULTI,
	OPT_MAX_TASKS,
	OPT_MAX_ENDED_TASKS,
	OPT_MAX_TYPES,
	OPT_USER,
	OPT_MAX_TASK_TYPES,
	OPT_STUCK_AFTER,
	OPT_RUNTIME,
	OPT_LISTEN,
	OPT_TEXTFILE,
	OPT_DEBUG_DIR,
	OPT_ALLOCATOR,
	OPT_EMPTY_PROGRAMS,
	OPT_HTML,
	OPT_SAMPLE_BYTES,
	OPT_PPROF,
	OPT_FOLDED,
	OPT_MODE,
	OPT_SCAN_INTERVAL,
	OPT_LEAK_CANDIDATES,
	OPT_FREEZE,
	OPT_COMM,
	OPT_EXE,
	OPT_CGROUP,
	OPT_MAX_TARGETS,
	OPT_FORGET_AFTER,
	OPT_NO_FOLLOW_FORKS,
	OPT_MAX_ENDED_TARGETS,
};

static const struct argp_option options[] = {
	{ "pid", 'p', "PID", 0, "Attach to this process (repeatable)", 0 },
	{ "comm", OPT_COMM, "REGEX", 0,
	  "Trace every process whose /proc/PID/comm matches this POSIX extended regex, running "
	  "now or started later (repeatable)",
	  0 },
	{ "exe", OPT_EXE, "GLOB", 0,
	  "Trace every process whose executable path (as the process sees it) matches this glob "
	  "(repeatable)",
	  0 },
	{ "cgroup", OPT_CGROUP, "PATH", 0,
	  "Trace every process in this cgroup v2 path or below it, e.g. /system.slice/foo.service "
	  "(repeatable)",
	  0 },
	{ "max-targets", OPT_MAX_TARGETS, "N", 0,
	  "Processes traced at once; more matching ones are counted as missed (default 256)", 0 },
	{ "forget-after", OPT_FORGET_AFTER, "SECONDS", 0,
	  "An exited target's series leave /metrics this long after its exit, and the report keeps "
	  "its final figures only (default 300; 0 = never)",
	  0 },
	{ "max-ended-targets", OPT_MAX_ENDED_TARGETS, "N", 0,
	  "Forgotten targets listed in the report; older ones are counted and summed (default "
	  "10000)",
	  0 },
	{ "no-follow-forks", OPT_NO_FOLLOW_FORKS, NULL, 0,
	  "Do not trace the children of traced processes", 0 },
	{ "duration", 'd', "SECONDS", 0,
	  "Stop after this long (default: until SIGINT/SIGTERM or every target exited)", 0 },
	{ "report", 'r', "FILE", 0, "On exit, write the JSON report to FILE ('-' = stdout)", 0 },
	{ "html", OPT_HTML, "FILE", 0,
	  "On exit, also write a self-contained HTML report to FILE ('-' = stdout)", 0 },
	{ "interval", 'i', "SECONDS", 0, "Print a short summary to stderr every SECONDS (0 = off)",
	  0 },
	{ "ring-size", OPT_RING_SIZE, "BYTES", 0,
	  "BPF ring buffer size, a power of two (default 8388608)", 0 },
	{ "max-allocations", OPT_MAX_ALLOCATIONS, "N", 0,
	  "Live allocations tracked per process (default 10000000)", 0 },
	{ "max-threads", OPT_MAX_THREADS, "N", 0, "Threads tracked per process (default 100000)",
	  0 },
	{ "stuck-after", OPT_STUCK_AFTER, "SECONDS", 0,
	  "A live task idle (or polled nonstop) this long is a suspect (default 30)", 0 },
	{ "runtime", OPT_RUNTIME, "NAME", 0,
	  "Task runtime: auto (default), none, or one by name (tokio, ucontext, pcl, "
	  "fcontext, async-task; see memscoped(8))",
	  0 },
	{ "allocator", OPT_ALLOCATOR, "NAME", 0,
	  "Allocator to probe: auto (default: what the target uses), or one by name (glibc, "
	  "jemalloc, mimalloc, tcmalloc, rust; see memscoped(8))",
	  0 },
	{ "listen", OPT_LISTEN, "[ADDR:]PORT", 0,
	  "Serve Prometheus metrics at http://ADDR:PORT/metrics (default address 127.0.0.1)", 0 },
	{ "textfile", OPT_TEXTFILE, "PATH", 0,
	  "Also write the metrics to PATH atomically every interval (node_exporter textfile)", 0 },
	{ "debug-dir", OPT_DEBUG_DIR, "DIR", 0,
	  "Look for separate debug files in DIR/.build-id (default: the target's /usr/lib/debug)",
	  0 },
	{ "max-tasks", OPT_MAX_TASKS, "N", 0, "Tasks tracked per process (default 1000000)", 0 },
	{ "max-ended-tasks", OPT_MAX_ENDED_TASKS, "N", 0,
	  "Ended tasks that hold no memory kept for the report, per process; older ones are "
	  "forgotten, their counts kept (default 100000)",
	  0 },
	{ "max-types", OPT_MAX_TYPES, "N", 0,
	  "Task types tracked per process; tasks of further types are counted under \"other\" "
	  "(default 10000)",
	  0 },
	{ "max-task-types", OPT_MAX_TASK_TYPES, "N", 0,
	  "task_type label values per runtime in metrics; the rest are \"other\" (default 50)", 0 },
	{ "user", OPT_USER, "NAME", 0,
	  "Once attached, become this user (the report's and textfile's directories must be "
	  "writable by it); default: stay uid 0 without capabilities",
	  0 },
	{ "no-uprobe-multi", OPT_NO_UPROBE_MULTI, NULL, 0,
	  "Attach one perf-event link per probe instead of one uprobe_multi link per program "
	  "(kernels before 6.6 fall back to this by themselves)",
	  0 },
	{ "empty-programs", OPT_EMPTY_PROGRAMS, NULL, 0,
	  "For benchmarks: the same allocator probes with programs that do nothing (the uprobe "
	  "floor); no allocation is tracked",
	  0 },
	{ "sample-bytes", OPT_SAMPLE_BYTES, "BYTES", 0,
	  "Capture the call stack of about one allocation per BYTES allocated, per thread "
	  "(default 524288; 1 = every allocation; 0 = no stacks)",
	  0 },
	{ "pprof", OPT_PPROF, "FILE", 0,
	  "On exit and SIGUSR1, write the sampled stacks as a gzip'd pprof heap profile", 0 },
	{ "folded", OPT_FOLDED, "FILE", 0,
	  "On exit and SIGUSR1, write the live bytes' sampled stacks folded (flame graphs)", 0 },
	{ "mode", OPT_MODE, "MODE", 0,
	  "trace (default): uprobes on the allocator and the runtimes, exact; scan: no probe on "
	  "the target, its memory is read every --scan-interval (heap census, live tasks, "
	  "retained heap)",
	  0 },
	{ "scan-interval", OPT_SCAN_INTERVAL, "SECONDS", 0,
	  "In scan mode, read the target's memory this often (default 60)", 0 },
	{ "leak-candidates", OPT_LEAK_CANDIDATES, NULL, 0,
	  "In scan mode, also list the heap chunks no pointer in the process's writable memory "
	  "reaches (a second walk of the heap each snapshot)",
	  0 },
	{ "freeze", OPT_FREEZE, NULL, 0,
	  "In scan mode, hold every thread of the target in a ptrace stop for the length of each "
	  "snapshot: a consistent view, and registers as leak roots",
	  0 },
	{ "verbose", 'v', NULL, 0, "Explain probe placement; show libbpf's messages", 0 },
	{ 0 },
};

static const char doc[] =
	"memscoped -- attribute a running process's heap to its tasks, with eBPF.\v"
	"Live task view: memscoped top [--connect=[ADDR:]PORT], or memscoped top -p PID "
	"[OPTION...] (see memscoped top --help).\n"
	"Exit status: 0 success, 1 runtime failure (attach, permissions), 2 bad command line.";

int cli__parse_seconds(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e9)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cli__parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	/* Decimal digits only: strtoull would skip spaces, take a sign, and read 010 as 8. */
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cli__parse_pid(const char *s, int *ret)
{
	uint64_t v;

	if (cli__parse_u64(s, &v) || v == 0 || v > INT_MAX)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* Whether regex compiles as --comm will compile it; err says why not. */
static bool valid_regex(const char *regex, char *err, size_t len)
{
	regex_t re;
	int ret;

	ret = regcomp(&re, regex, REG_EXTENDED | REG_NOSUB);
	if (ret)
		regerror(ret, &re, err, len);
	regfree(&re);
	return !ret;
}

/* Reports a bad argument; with ARGP_NO_EXIT argp_error returns, so parsing stops here. */
static error_t fail(struct argp_state *state, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	argp_error(state, "%s", msg);
	return EINVAL;
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct cli_options *o = state->input;
	char names[256];
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int pid;

	switch (key) {
	case 'p':
		if (cli__parse_pid(arg, &pid))
			return fail(state, "invalid --pid '%s': expected a process id", arg);
		if (o->npids == MS_MAX_TARGETS)
			return fail(state, "too many --pid: at most %d", MS_MAX_TARGETS);
		o->pids[o->npids++] = pid;
		break;
	case OPT_COMM:
		if (o->ncomms == CLI_MAX_SELECTORS)
			return fail(state, "too many --comm: at most %d", CLI_MAX_SELECTORS);
		if (!valid_regex(arg, names, sizeof(names)))
			return fail(state, "invalid --comm '%s': %s", arg, names);
		o->comms[o->ncomms++] = arg;
		break;
	case OPT_EXE:
		if (o->nexes == CLI_MAX_SELECTORS)
			return fail(state, "too many --exe: at most %d", CLI_MAX_SELECTORS);
		if (!*arg)
			return fail(state, "invalid --exe '': expected a glob");
		o->exes[o->nexes++] = arg;
		break;
	case OPT_CGROUP:
		if (o->ncgroups == CLI_MAX_SELECTORS)
			return fail(state, "too many --cgroup: at most %d", CLI_MAX_SELECTORS);
		if (arg[0] != '/')
			return fail(state,
				    "invalid --cgroup '%s': expected an absolute cgroup path", arg);
		o->cgroups[o->ncgroups++] = arg;
		break;
	case OPT_MAX_TARGETS:
		if (cli__parse_u64(arg, &o->max_targets) || !o->max_targets ||
		    o->max_targets > 65536)
			return fail(state, "invalid --max-targets '%s': expected 1 to 65536", arg);
		break;
	case OPT_FORGET_AFTER:
		if (cli__parse_seconds(arg, &o->forget_after))
			return fail(state, "invalid --forget-after '%s': expected seconds", arg);
		break;
	case OPT_MAX_ENDED_TARGETS:
		if (cli__parse_u64(arg, &o->max_ended_targets) || o->max_ended_targets > 10000000)
			return fail(state,
				    "invalid --max-ended-targets '%s': expected 0 to 10000000",
				    arg);
		break;
	case OPT_NO_FOLLOW_FORKS:
		o->no_follow_forks = true;
		break;
	case 'd':
		if (cli__parse_seconds(arg, &o->duration))
			return fail(state, "invalid --duration '%s': expected seconds", arg);
		break;
	case 'i':
		if (cli__parse_seconds(arg, &o->interval))
			return fail(state, "invalid --interval '%s': expected seconds", arg);
		break;
	case 'r':
		if (!*arg)
			return fail(state, "invalid --report '': expected a file name or '-'");
		o->report = arg;
		break;
	case OPT_HTML:
		if (!*arg)
			return fail(state, "invalid --html '': expected a file name or '-'");
		o->html = arg;
		break;
	case OPT_SAMPLE_BYTES:
		if (cli__parse_u64(arg, &o->sample_bytes) || o->sample_bytes > (1ull << 40))
			return fail(state,
				    "invalid --sample-bytes '%s': expected bytes from 0 to "
				    "1099511627776",
				    arg);
		break;
	case OPT_PPROF:
		if (!*arg)
			return fail(state, "invalid --pprof '': expected a file name");
		o->pprof = arg;
		break;
	case OPT_FOLDED:
		if (!*arg)
			return fail(state, "invalid --folded '': expected a file name or '-'");
		o->folded = arg;
		break;
	case OPT_RING_SIZE:
		if (cli__parse_u64(arg, &o->ring_size) || o->ring_size < 4096 ||
		    o->ring_size > (1ull << 30) || (o->ring_size & (o->ring_size - 1)))
			return fail(state,
				    "invalid --ring-size '%s': expected a power of two from "
				    "4096 to 1073741824",
				    arg);
		break;
	case OPT_MAX_ALLOCATIONS:
		if (cli__parse_u64(arg, &o->max_allocations) || !o->max_allocations)
			return fail(state,
				    "invalid --max-allocations '%s': expected a positive number",
				    arg);
		break;
	case OPT_MAX_THREADS:
		if (cli__parse_u64(arg, &o->max_threads) || !o->max_threads)
			return fail(state, "invalid --max-threads '%s': expected a positive number",
				    arg);
		break;
	case OPT_STUCK_AFTER:
		if (cli__parse_seconds(arg, &o->stuck_after) || o->stuck_after <= 0)
			return fail(state, "invalid --stuck-after '%s': expected seconds > 0", arg);
		break;
	case OPT_RUNTIME:
		if (strcmp(arg, "auto") && strcmp(arg, "none") && !runtime__find(arg)) {
			runtime__names(names, sizeof(names), ", ");
			return fail(state, "invalid --runtime '%s': expected one of %s", arg,
				    names);
		}
		o->runtime = arg;
		break;
	case OPT_ALLOCATOR:
		if (strcmp(arg, "auto") && !alloc_family__find(arg)) {
			alloc_family__names(names, sizeof(names), ", ");
			return fail(state, "invalid --allocator '%s': expected auto or one of %s",
				    arg, names);
		}
		o->allocator = arg;
		break;
	case OPT_LISTEN:
		if (http_server__parse_addr(arg, &addr, &addr_len))
			return fail(state, "invalid --listen '%s': expected [ADDR:]PORT", arg);
		o->listen = arg;
		break;
	case OPT_TEXTFILE:
		if (!*arg)
			return fail(state, "invalid --textfile '': expected a file name");
		o->textfile = arg;
		break;
	case OPT_USER:
		o->user = arg;
		break;
	case OPT_DEBUG_DIR:
		if (!*arg)
			return fail(state, "invalid --debug-dir '': expected a directory");
		o->debug_dir = arg;
		break;
	case OPT_MAX_TASKS:
		if (cli__parse_u64(arg, &o->max_tasks) || !o->max_tasks || o->max_tasks > 100000000)
			return fail(state, "invalid --max-tasks '%s': expected 1 to 100000000",
				    arg);
		break;
	case OPT_MAX_TYPES:
		if (cli__parse_u64(arg, &o->max_types) || !o->max_types || o->max_types > 1000000)
			return fail(state, "invalid --max-types '%s': expected 1 to 1000000", arg);
		break;
	case OPT_MAX_ENDED_TASKS:
		if (cli__parse_u64(arg, &o->max_ended_tasks) || !o->max_ended_tasks ||
		    o->max_ended_tasks > 100000000)
			return fail(state,
				    "invalid --max-ended-tasks '%s': expected 1 to 100000000", arg);
		break;
	case OPT_MAX_TASK_TYPES:
		if (cli__parse_u64(arg, &o->max_task_types) || !o->max_task_types)
			return fail(state,
				    "invalid --max-task-types '%s': expected a positive number",
				    arg);
		break;
	case OPT_NO_UPROBE_MULTI:
		o->no_uprobe_multi = true;
		break;
	case OPT_EMPTY_PROGRAMS:
		o->empty_programs = true;
		break;
	case OPT_MODE:
		if (strcmp(arg, "trace") && strcmp(arg, "scan"))
			return fail(state, "invalid --mode '%s': expected trace or scan", arg);
		o->scan = !strcmp(arg, "scan");
		break;
	case OPT_SCAN_INTERVAL:
		if (cli__parse_seconds(arg, &o->scan_interval) || o->scan_interval < 0.1)
			return fail(state, "invalid --scan-interval '%s': expected seconds >= 0.1",
				    arg);
		break;
	case OPT_LEAK_CANDIDATES:
		o->leak_candidates = true;
		break;
	case OPT_FREEZE:
		o->freeze = true;
		break;
	case 'v':
		o->verbose++;
		break;
	case ARGP_KEY_ARG:
		return fail(state, "unexpected argument '%s'", arg);
		break;
	case ARGP_KEY_END:
		if (!o->npids && !o->ncomms && !o->nexes && !o->ncgroups)
			return fail(
				state,
				"no target: give at least one --pid, --comm, --exe or --cgroup");
		if (o->npids > o->max_targets)
			return fail(state, "%zu --pid but --max-targets %llu", o->npids,
				    (unsigned long long)o->max_targets);
		if (o->leak_candidates && !o->scan)
			return fail(state, "--leak-candidates needs --mode scan");
		if (o->freeze && !o->scan)
			return fail(state, "--freeze needs --mode scan");
		/* A uid change takes CAP_SYS_PTRACE away, and every snapshot needs it. */
		if (o->scan && o->user)
			return fail(state, "--user cannot be used with --mode scan");
		if (o->scan && (o->empty_programs || o->no_uprobe_multi))
			return fail(state, "--empty-programs and --no-uprobe-multi are for "
					   "--mode trace");
		/* Stacks are taken by the allocator probes, which scan mode does not place. */
		if (o->scan && (o->pprof || o->folded))
			return fail(state, "--pprof and --folded need --mode trace");
		/* Scan mode reads the processes it was given; it does not follow any. */
		if (o->scan && (o->ncomms || o->nexes || o->ncgroups))
			return fail(state, "--comm, --exe and --cgroup need --mode trace");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

int cli__parse(int argc, char **argv, unsigned int flags, struct cli_options *ret)
{
	static const struct argp argp = { options, parse_opt, NULL, doc, NULL, NULL, NULL };
	struct cli_options o = {
		.ring_size = MS_DEFAULT_RING_SIZE,
		.sample_bytes = 524288,
		.max_allocations = 10000000,
		.max_threads = 100000,
		.max_tasks = 1000000,
		.max_ended_tasks = 100000,
		.max_types = 10000,
		.max_task_types = 50,
		.max_targets = MS_DEFAULT_MAX_TARGETS,
		.forget_after = 300,
		.max_ended_targets = 10000,
		.stuck_after = 30,
		.runtime = "auto",
		.allocator = "auto",
		.scan_interval = 60,
	};

	char **args;
	int err;

	/* getopt names argv[0] in its messages: make them read "memscoped: ...". */
	args = calloc((size_t)argc + 1, sizeof(*args));
	if (!args)
		return -ENOMEM;
	memcpy(args, argv, (size_t)argc * sizeof(*args));
	args[0] = (char *)"memscoped";
	argp_err_exit_status = EXIT_USAGE;
	err = argp_parse(&argp, argc, args, flags, NULL, &o);
	free(args);
	if (err)
		return -EINVAL;
	*ret = o;
	return 0;
}
