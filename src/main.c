// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* memscoped: attach to running processes and attribute their heap, with eBPF. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "memscoped.skel.h"
#include "attach.h"
#include "cli.h"
#include "event_decoder.h"
#include "probe_plan.h"
#include "proc.h"
#include "report.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/* The ring is drained on this period: events are submitted without wakeups. */
#define DRAIN_PERIOD_NS 10000000L
/* Targets are checked for exit this often. */
#define ALIVE_CHECK_NS 100000000L

static volatile sig_atomic_t exiting;
static int verbose;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

static void log_err(const char *fmt, ...)
{
	va_list ap;

	fputs("memscoped: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && verbose < 2)
		return 0;
	if (!verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Names the capabilities memscoped lacks into buf; returns how many are missing. */
static int missing_capabilities(char *buf, size_t len)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { 0 };
	static const struct {
		int cap;
		const char *name;
	} needed[] = {
		{ CAP_BPF, "CAP_BPF" },
		{ CAP_PERFMON, "CAP_PERFMON" },
		{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
	};
	size_t i, off = 0;
	int missing = 0;
	bool admin;

	buf[0] = '\0';
	if (syscall(SYS_capget, &hdr, data))
		return 0;
	admin = data[0].effective & (1u << CAP_SYS_ADMIN);
	for (i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		int c = needed[i].cap;

		/* The kernel accepts CAP_SYS_ADMIN for BPF and perf events. */
		if ((data[c / 32].effective & (1u << (c % 32))) || (admin && c != CAP_SYS_PTRACE))
			continue;
		off += snprintf(buf + off, len - off, "%s%s", missing ? ", " : "", needed[i].name);
		missing++;
		if (off >= len)
			break;
	}
	return missing;
}

static void name_thread(uint32_t pid, uint32_t tid, char comm[COMM_LEN])
{
	if (proc__comm((int)pid, (int)tid, comm))
		comm[0] = '\0';
}

/* Checks one --pid before anything is attached; logs and returns -errno on a bad one. */
static int check_target(int pid)
{
	bool kthread = false;
	char state;
	int err;

	err = proc__state(pid, &state, &kthread);
	if (err == -ENOENT) {
		log_err("pid %d: no such process", pid);
		return err;
	}
	if (err) {
		log_err("pid %d: cannot read /proc/%d/stat: %s", pid, pid, strerror(-err));
		return err;
	}
	if (kthread) {
		log_err("pid %d: is a kernel thread, it has no user-space heap", pid);
		return -EINVAL;
	}
	if (state == 'Z' || state == 'X') {
		log_err("pid %d: has exited (zombie)", pid);
		return -ESRCH;
	}
	return 0;
}

static int check_report_path(const char *path)
{
	int fd;

	if (!path || !strcmp(path, "-"))
		return 0;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_err("cannot write report '%s': %s", path, strerror(errno));
		return -errno;
	}
	close(fd);
	return 0;
}

static int write_json_report(const char *path, const struct report_input *in)
{
	char tmp[4096];
	FILE *f;
	int err;

	if (!strcmp(path, "-"))
		return report_json__write(stdout, in);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f) {
		err = -errno;
		log_err("cannot write report '%s': %s", tmp, strerror(-err));
		return err;
	}
	err = report_json__write(f, in);
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		log_err("cannot write report '%s': %s", path, strerror(-err));
		unlink(tmp);
	}
	return err;
}

static int handle_event(void *ctx, void *data, size_t len)
{
	event_decoder__handle(ctx, data, len);
	return 0;
}

static uint64_t lost_events(struct memscoped_bpf *skel)
{
	int ncpus = libbpf_num_possible_cpus(), i;
	uint64_t *values, sum = 0;
	uint32_t zero = 0;

	if (ncpus <= 0)
		return 0;
	values = calloc((size_t)ncpus, sizeof(*values));
	if (!values)
		return 0;
	if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.lost), &zero, values))
		for (i = 0; i < ncpus; i++)
			sum += values[i];
	free(values);
	return sum;
}

/* Marks targets that are gone; returns how many are still alive. */
static size_t update_alive(struct process_table *procs)
{
	size_t i, alive = 0;

	for (i = 0; i < process_table__count(procs); i++) {
		struct process *p = process_table__at(procs, i);

		if (!p->exited && !proc__alive((int)p->pid))
			p->exited = true;
		alive += !p->exited;
	}
	return alive;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { 0, ns };

	nanosleep(&ts, NULL);
}

/* Loads the BPF programs and attaches them to every target; logs what fails. */
static int load_and_attach(const struct cli_options *opts, bool multi,
			   struct memscoped_bpf **ret_skel, struct attachment *links)
{
	struct memscoped_bpf *skel;
	struct probe_plan *plan;
	char msg[512];
	uint8_t one = 1;
	size_t i, j;
	int err;

	skel = memscoped_bpf__open();
	if (!skel) {
		err = -errno;
		log_err("failed to open BPF object: %s", strerror(-err));
		return err;
	}
	*ret_skel = skel;
	bpf_map__set_max_entries(skel->maps.events, (uint32_t)opts->ring_size);
	if (multi) {
		bpf_program__set_expected_attach_type(skel->progs.alloc_entry,
						      MS_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.alloc_return,
						      MS_BPF_TRACE_UPROBE_MULTI);
	}
	if (memscoped_bpf__load(skel)) {
		err = -errno;
		/* A kernel without uprobe_multi rejects the attach type at load. */
		if (multi)
			return -EOPNOTSUPP;
		log_err("failed to load BPF programs: %s (is this kernel built with BTF?)",
			strerror(-err));
		return err;
	}
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	for (i = 0; i < opts->npids; i++) {
		int pid = opts->pids[i];
		size_t before = links->nprobes;

		probe_plan__clear(plan);
		err = probe_plan__allocator(pid, plan, msg, sizeof(msg));
		if (err) {
			log_err("pid %d: %s", pid, proc__alive(pid) ? msg : "exited during attach");
			break;
		}
		for (j = 0; j < plan->nnotes && verbose && multi != opts->no_uprobe_multi; j++)
			log_err("pid %d: %s: %s", pid, plan->object, plan->notes[j]);
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.targets), &(uint32_t){ (uint32_t)pid },
					&one, BPF_ANY)) {
			err = -errno;
			log_err("pid %d: failed to add target: %s", pid, strerror(-err));
			break;
		}
		err = attach__plan(skel->obj, pid, plan, multi, links, msg, sizeof(msg));
		if (err == -EOPNOTSUPP && multi)
			break;
		if (!err && !proc__alive(pid))
			err = -ESRCH;
		if (err) {
			log_err("pid %d: %s", pid, proc__alive(pid) ? msg : "exited during attach");
			break;
		}
		log_err("attached %zu probes to pid %d in '%s'%s", links->nprobes - before, pid,
			plan->object, multi ? "" : " (one link per probe)");
	}
	probe_plan__clear(plan);
	free(plan);
	return err;
}

int main(int argc, char **argv)
{
	struct process_limits limits;
	struct cli_options opts;
	struct memscoped_bpf *skel = NULL;
	struct ring_buffer *rb = NULL;
	struct attachment links = { 0 };
	struct event_decoder decoder = { 0 };
	struct report_input report = { 0 };
	uint64_t start, now, next_alive, next_summary = 0, deadline = 0;
	char msg[512];
	size_t i, j;
	int err = 1;

	if (cli__parse(argc, argv, 0, &opts))
		return EXIT_USAGE;
	verbose = opts.verbose;
	libbpf_set_print(libbpf_print);

	for (i = 0; i < opts.npids; i++)
		for (j = 0; j < i; j++)
			if (opts.pids[i] == opts.pids[j]) {
				log_err("pid %d given twice", opts.pids[i]);
				return EXIT_USAGE;
			}
	if (missing_capabilities(msg, sizeof(msg))) {
		log_err("missing capabilities: %s (run as root)", msg);
		return 1;
	}
	if (check_report_path(opts.report))
		return 1;
	for (i = 0; i < opts.npids; i++)
		if (check_target(opts.pids[i]))
			return 1;

	limits.max_allocations = opts.max_allocations;
	limits.max_threads = opts.max_threads;
	decoder.procs = process_table__new(&limits, name_thread);
	if (!decoder.procs) {
		log_err("out of memory");
		goto cleanup;
	}

	err = load_and_attach(&opts, !opts.no_uprobe_multi, &skel, &links);
	if (err == -EOPNOTSUPP) {
		if (verbose)
			log_err("the kernel has no uprobe_multi links, using one link per probe");
		attach__destroy(&links);
		memscoped_bpf__destroy(skel);
		err = load_and_attach(&opts, false, &skel, &links);
	}
	if (err) {
		err = 1;
		goto cleanup;
	}
	for (i = 0; i < opts.npids; i++) {
		char comm[PROC_COMM_LEN] = "", *exe = NULL;
		struct process *p;

		proc__comm(opts.pids[i], 0, comm);
		proc__exe(opts.pids[i], &exe);
		p = process_table__add(decoder.procs, (uint32_t)opts.pids[i], comm, exe);
		free(exe);
		if (!p) {
			log_err("out of memory");
			goto cleanup;
		}
	}

	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), handle_event, &decoder, NULL);
	if (!rb) {
		log_err("failed to create ring buffer: %s", strerror(errno));
		goto cleanup;
	}

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_signal }, NULL);
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_signal }, NULL);

	start = now_ns();
	decoder.start_ns = start;
	report.procs = decoder.procs;
	next_alive = start + ALIVE_CHECK_NS;
	if (opts.duration > 0)
		deadline = start + (uint64_t)(opts.duration * 1e9);
	if (opts.interval > 0)
		next_summary = start + (uint64_t)(opts.interval * 1e9);

	while (!exiting) {
		ring_buffer__consume(rb);
		now = now_ns();
		if (deadline && now >= deadline)
			break;
		if (now >= next_alive) {
			next_alive = now + ALIVE_CHECK_NS;
			/* Drain first: a target's last events precede its exit. */
			ring_buffer__consume(rb);
			if (!update_alive(decoder.procs))
				break;
		}
		if (next_summary && now >= next_summary) {
			next_summary = now + (uint64_t)(opts.interval * 1e9);
			report.duration_seconds = (double)(now - start) / 1e9;
			report.events_received = decoder.stats.received;
			report.events_lost = lost_events(skel);
			report_text__summary(stderr, &report);
		}
		sleep_ns(DRAIN_PERIOD_NS);
	}

	/* Detach first so a flood of events cannot delay the exit, then take what is left. */
	attach__destroy(&links);
	ring_buffer__consume(rb);
	update_alive(decoder.procs);
	report.duration_seconds = (double)(now_ns() - start) / 1e9;
	report.events_received = decoder.stats.received;
	report.events_lost = lost_events(skel);
	report_text__write(stdout, &report);
	err = 0;
	if (opts.report && write_json_report(opts.report, &report))
		err = 1;

cleanup:
	attach__destroy(&links);
	ring_buffer__free(rb);
	memscoped_bpf__destroy(skel);
	process_table__free(decoder.procs);
	return err;
}
