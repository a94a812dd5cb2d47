/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Command line: the contract of the memscoped(8) manual. */
#ifndef MEMSCOPED_CLI_H
#define MEMSCOPED_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "memscoped/events.h"

#define MEMSCOPED_VERSION "0.1.0"

/* Each selector option may be given this many times. */
#define CLI_MAX_SELECTORS 32

struct cli_options {
	int pids[MS_MAX_TARGETS];
	size_t npids;
	/* Daemon mode (src/selector.c): a process matching any of these is a target. */
	const char *comms[CLI_MAX_SELECTORS]; /* --comm: POSIX extended regexes */
	size_t ncomms;
	const char *exes[CLI_MAX_SELECTORS]; /* --exe: globs */
	size_t nexes;
	const char *cgroups[CLI_MAX_SELECTORS]; /* --cgroup: cgroup v2 paths */
	size_t ncgroups;
	uint64_t max_targets;	    /* processes traced at once (the BPF targets map) */
	double forget_after;	    /* seconds an ended target's series stay in /metrics */
	uint64_t max_ended_targets; /* forgotten targets listed in the report */
	bool no_follow_forks;	    /* children of targets are not targets */
	double duration;	    /* seconds; 0 = until signal or every target exited */
	const char *report;	    /* JSON report path, "-" = stdout, NULL = none */
	const char *html;	    /* HTML report path, "-" = stdout, NULL = none */
	const char *pprof;	    /* gzip'd pprof profile of sampled stacks, NULL = none */
	const char *folded;	    /* folded stacks of live bytes, "-" = stdout, NULL = none */
	uint64_t sample_bytes;	    /* mean bytes between stack samples; 0 none, 1 all */
	double interval;	    /* seconds between stderr summaries; 0 = off */
	uint64_t ring_size;	    /* bytes, power of two */
	uint64_t max_allocations;   /* live blocks tracked per process */
	uint64_t max_threads;	    /* threads tracked per process */
	uint64_t max_tasks;	    /* tasks tracked per process */
	uint64_t max_ended_tasks;   /* ended tasks that hold nothing, kept for the report */
	uint64_t max_types;	    /* task types tracked per process */
	uint64_t max_task_types;    /* task_type label values per runtime in metrics */
	double stuck_after;	    /* seconds idle (or busy) before a live task is a suspect */
	const char *runtime;	    /* "auto", "none" or a runtime name */
	const char *allocator;	    /* "auto" or an allocator family name */
	const char *listen;	    /* [ADDR:]PORT for /metrics, NULL = off */
	const char *textfile;	    /* metrics file for node_exporter, NULL = off */
	const char *debug_dir;	    /* build-id debug files; NULL = the target's /usr/lib/debug */
	const char *user;	    /* become this user once attached; NULL = stay uid 0 */
	bool no_uprobe_multi;	    /* one perf-event link per probe */
	bool empty_programs;	    /* benchmarks: allocator programs that do nothing */
	bool scan;		    /* --mode scan: memory snapshots, no probe on the target */
	double scan_interval;	    /* seconds between snapshots in scan mode */
	bool leak_candidates;	    /* scan mode: chunks reachable from no root */
	bool freeze;		    /* scan mode: every thread in a ptrace stop during a snapshot */
	int verbose;
};

/* Exit codes (memscoped(8)). */
enum {
	EXIT_USAGE = 2, /* bad command line */
};

/*
 * Parses argv. flags are argp flags: 0 in the daemon (argp prints errors and exits with
 * EXIT_USAGE), ARGP_NO_EXIT | ARGP_NO_ERRS in tests. Returns 0 or -EINVAL.
 */
int cli__parse(int argc, char **argv, unsigned int flags, struct cli_options *ret);

/* Value parsers; each returns 0 or -EINVAL and leaves *ret untouched on failure. */
int cli__parse_seconds(const char *s, double *ret);
int cli__parse_u64(const char *s, uint64_t *ret);
int cli__parse_pid(const char *s, int *ret);

#endif
