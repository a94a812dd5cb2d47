// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* memscoped: attach to running processes and attribute their heap, with eBPF. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "memscoped.skel.h"
#include "api_snapshot.h"
#include "attach.h"
#include "cli.h"
#include "event_decoder.h"
#include "exporter_prometheus.h"
#include "fd_pass.h"
#include "http_server.h"
#include "probe_plan.h"
#include "proc.h"
#include "report.h"
#include "runtime_coro.h"
#include "runtime_tokio.h"
#include "top.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/* The ring is drained on this period: events are submitted without wakeups. */
#define DRAIN_PERIOD_NS 10000000L
/* Targets are checked for exit this often. */
#define ALIVE_CHECK_NS 100000000L
/* Scrapes see metrics at most this old: rendering stays off the HTTP thread. */
#define METRICS_PERIOD_NS 1000000000L
/* The textfile is rewritten every --interval, or this often without one. */
#define TEXTFILE_PERIOD_S 10
/* Task types tracked per process; metrics cap their labels lower (--max-task-types). */

static volatile sig_atomic_t exiting;
static volatile sig_atomic_t report_requested;
static int verbose;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

/* SIGUSR1: print the reports now, keep running. */
static void on_report_signal(int sig)
{
	(void)sig;
	report_requested = 1;
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
static int missing_capabilities(bool switch_user, char *buf, size_t len)
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
		{ CAP_SETUID, "CAP_SETUID" }, /* --user only, as the next */
		{ CAP_SETGID, "CAP_SETGID" },
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

		if ((c == CAP_SETUID || c == CAP_SETGID) && !switch_user)
			continue;
		/* The kernel accepts CAP_SYS_ADMIN for BPF and perf events. */
		if ((data[c / 32].effective & (1u << (c % 32))) ||
		    (admin && (c == CAP_BPF || c == CAP_PERFMON)))
			continue;
		off += snprintf(buf + off, len - off, "%s%s", missing ? ", " : "", needed[i].name);
		missing++;
		if (off >= len)
			break;
	}
	return missing;
}

/*
 * Everything privileged is done once probes are attached, maps are open and the attach scan
 * has run: drop every capability (and the ability to regain any), so that a bug in the HTTP
 * or report path cannot act as root. Output files are still written as uid 0 without
 * CAP_DAC_OVERRIDE, so only where root may write by plain permissions.
 */
/* Becomes user (--user) for good: groups, gid, uid. Needs CAP_SETUID and CAP_SETGID. */
static int become(const struct passwd *user)
{
	if (setgroups(1, &user->pw_gid) || setresgid(user->pw_gid, user->pw_gid, user->pw_gid) ||
	    setresuid(user->pw_uid, user->pw_uid, user->pw_uid))
		return -errno;
	return 0;
}

/*
 * Drops every capability not in keep (a mask of 1 << CAP_*) from every set, for good, and
 * becomes user if not NULL (-EPERM if that fails).
 */
static int drop_capabilities(uint64_t keep, const struct passwd *user)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { 0 };
	int cap;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	for (cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (!(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) &&
		    errno != EINVAL)
			return -errno;
	/* The bounding set goes first: dropping it needs CAP_SETPCAP, which the uid change
	 * takes away along with the rest. */
	if (user && become(user))
		return -EPERM;
	if (keep && syscall(SYS_capget, &hdr, data))
		return -errno;
	data[0].effective &= (uint32_t)keep;
	data[0].permitted &= (uint32_t)keep;
	data[1].effective &= (uint32_t)(keep >> 32);
	data[1].permitted &= (uint32_t)(keep >> 32);
	data[0].inheritable = data[1].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
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

/* 0, or -errno if path cannot be written (as PATH.tmp renamed over it); creates nothing. */
static int writable(const char *path)
{
	char dir[PATH_MAX], *slash;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	return access(slash ? dir : ".", W_OK | X_OK) ? -errno : 0;
}

/*
 * Fails early, before attaching, if an output file cannot be written, by whoever will write
 * it (--user: checked in a child that becomes that user). Creates nothing.
 */
static int check_writable(const char *path, const char *what, const struct passwd *user)
{
	int err, status;
	pid_t child;

	if (!path || !strcmp(path, "-"))
		return 0;
	if (!user) {
		err = writable(path);
	} else if ((child = fork()) == 0) {
		err = become(user);
		_exit(-(err ? err : writable(path)));
	} else if (child < 0 || waitpid(child, &status, 0) < 0) {
		err = -errno;
	} else {
		err = WIFEXITED(status) ? -WEXITSTATUS(status) : -EIO;
	}
	if (err)
		log_err("cannot write %s '%s'%s%s: %s", what, path, user ? " as user " : "",
			user ? user->pw_name : "", strerror(-err));
	return err;
}

/* Readers never see a partial file: write a temporary one beside it, then rename. */
static int write_atomically(const char *path, int (*write_to)(FILE *f, const void *ctx),
			    const void *ctx)
{
	char tmp[PATH_MAX];
	FILE *f;
	int err;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -(errno = ENAMETOOLONG);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	err = write_to(f, ctx);
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		errno = -err;
	}
	return err;
}

struct text {
	const char *data;
	size_t len;
};

static int write_text(FILE *f, const void *ctx)
{
	const struct text *t = ctx;

	return fwrite(t->data, 1, t->len, f) == t->len ? 0 : -EIO;
}

static int write_report_json(FILE *f, const void *ctx)
{
	return report_json__write(f, ctx);
}

/* Streamed to PATH.tmp: the report is never whole in memory. */
static int write_json_report(const char *path, const struct report_input *in)
{
	int err;

	if (!strcmp(path, "-"))
		return report_json__write(stdout, in);
	err = write_atomically(path, write_report_json, in);
	if (err)
		log_err("cannot write report '%s': %s", path, strerror(-err));
	return err;
}

static uint64_t lost_events(struct memscoped_bpf *skel)
{
	int ncpus = libbpf_num_possible_cpus(), i;
	uint64_t *values, sum = 0;
	uint32_t zero = 0;

	if (ncpus <= 0 || !skel)
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

/*
 * Marks targets that are gone; returns how many are still traced. Says once if tokio broke,
 * and once when a target exec'd (its report ends there: it leaves the BPF target map).
 */
static size_t update_alive(struct process_table *procs, int targets_fd)
{
	size_t i, alive = 0;

	for (i = 0; i < process_table__count(procs); i++) {
		struct process *p = process_table__at(procs, i);

		if (p->tokio && p->tokio->invalid && !p->tokio->invalid_logged) {
			p->tokio->invalid_logged = true;
			log_err("pid %u: a tokio task header failed validation against its vtable "
				"(unsupported tokio layout?); tasks are no longer tracked, the heap is",
				p->pid);
		}

		if (p->execed && targets_fd >= 0 &&
		    !bpf_map_delete_elem(targets_fd, &(uint32_t){ p->pid }))
			log_err("pid %u: exec'd a new program; its report ends at the exec", p->pid);
		if (!p->exited && !proc__alive((int)p->pid))
			p->exited = true;
		alive += !p->exited && !p->execed;
	}
	return alive;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { 0, ns };

	nanosleep(&ts, NULL);
}

/* Finds tokio in the target (as --runtime asks) and probes every poll copy; logs failures. */
static int attach_tokio(struct memscoped_bpf *skel, const struct cli_options *opts, bool multi,
			struct process *p, int pid, struct attachment *links)
{
	uint64_t *offsets, *cookies;
	char msg[512], path[PATH_MAX];
	size_t i, n;
	int err;

	if (strcmp(opts->runtime, "auto") && strcmp(opts->runtime, "tokio"))
		return 0;
	tokio_process__free(p->tokio);
	p->tokio = NULL;
	err = tokio_process__setup(p, pid, opts->debug_dir, msg, sizeof(msg));
	if (err == -ENOENT && !strcmp(opts->runtime, "auto")) {
		if (verbose)
			log_err("pid %d: %s", pid, msg);
		return 0;
	}
	if (err) {
		log_err("pid %d: %s", pid, msg);
		return err == -ENOENT ? -EINVAL : err;
	}
	n = p->tokio->info.npolls;
	offsets = calloc(n, sizeof(*offsets));
	cookies = calloc(n, sizeof(*cookies));
	if (!offsets || !cookies || proc__root_path(pid, p->tokio->object, path, sizeof(path))) {
		free(offsets);
		free(cookies);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		offsets[i] = p->tokio->info.polls[i].offset;
		/* The BPF program checks each header's vtable against this address. */
		cookies[i] = p->tokio->info.polls[i].vaddr + p->tokio->bias;
	}
	/* Return probes first, as for the allocator. */
	err = attach__offsets(skel->progs.task_poll_return, pid, path, offsets, NULL, n, true,
			      multi, links);
	if (!err)
		err = attach__offsets(skel->progs.task_poll_enter, pid, path, offsets, cookies, n,
				      false, multi, links);
	free(cookies);
	free(offsets);
	if (err && err != -EOPNOTSUPP)
		log_err("pid %d: %s", pid, proc__alive(pid) ? "failed to attach tokio probes" :
							      "exited during attach");
	if (!err)
		log_err("pid %d: tokio: %zu poll functions and %zu task vtables in '%s' (from %s)",
			pid, n, p->tokio->info.nvtables, p->tokio->object, p->tokio->info.source);
	return err;
}

/* libpcl's co_create (entry and return), co_exit_to and co_delete; its switches are ucontext's. */
static int attach_pcl(struct memscoped_bpf *skel, const struct cli_options *opts, bool multi,
		      struct process *p, int pid, struct attachment *links)
{
	bool requested = !strcmp(opts->runtime, "pcl");
	struct coro_pcl_plan *plan;
	char msg[512];
	int err;

	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	err = coro_pcl__plan(pid, plan, msg, sizeof(msg));
	if (err) {
		if (requested || err != -ENOENT || verbose)
			log_err("pid %d: %s", pid, msg);
		free(plan);
		return requested || err != -ENOENT ? (err == -ENOENT ? -EINVAL : err) : 0;
	}
	/* Return probe first, as for the allocator. */
	err = attach__offsets(skel->progs.pcl_return, pid, plan->probes.open_path,
			      &plan->create_offset, NULL, 1, true, multi, links);
	if (!err)
		err = attach__offsets(skel->progs.pcl_enter, pid, plan->probes.open_path,
				      plan->probes.offsets, plan->probes.cookies, plan->probes.n,
				      false, multi, links);
	if (err && err != -EOPNOTSUPP)
		log_err("pid %d: failed to attach uprobes to '%s': %s", pid, plan->probes.object,
			strerror(-err));
	if (!err) {
		p->coro->pcl = "pcl";
		p->coro->pcl_requested = requested;
		p->coro->pcl_exit_lo = plan->exit_lo;
		p->coro->pcl_exit_hi = plan->exit_hi;
		log_err("pid %d: pcl: co_create, co_exit_to and co_delete in '%s'", pid,
			plan->probes.object);
	}
	free(plan);
	return err;
}

/* munmap in the libc of plan: stacks of their own end when unmapped. Optional. */
static int attach_unmap(struct memscoped_bpf *skel, bool multi, int pid,
			const struct coro_probe_plan *plan, struct attachment *links)
{
	uint64_t cookie = MS_CORO_MUNMAP;
	int err;

	if (!plan->munmap_offset)
		return 0;
	err = attach__offsets(skel->progs.coro_unmap, pid, plan->open_path, &plan->munmap_offset,
			      &cookie, 1, false, multi, links);
	if (err && err != -EOPNOTSUPP)
		log_err("pid %d: failed to attach uprobe to '%s:munmap': %s, ignoring", pid,
			plan->object, strerror(-err));
	return err == -EOPNOTSUPP ? err : 0;
}

/* boost.context's make_fcontext, jump_fcontext and ontop_fcontext (one link). */
static int attach_fcontext(struct memscoped_bpf *skel, const struct cli_options *opts,
			   bool multi, struct process *p, int pid, struct attachment *links)
{
	bool requested = !strcmp(opts->runtime, "fcontext");
	struct coro_probe_plan *plan;
	char msg[512];
	int err;

	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	err = coro_fcontext__plan(pid, plan, msg, sizeof(msg));
	if (err) {
		if (requested || err != -ENOENT || verbose)
			log_err("pid %d: %s", pid, msg);
		free(plan);
		return requested || err != -ENOENT ? (err == -ENOENT ? -EINVAL : err) : 0;
	}
	err = attach__offsets(skel->progs.fcontext_enter, pid, plan->open_path, plan->offsets,
			      plan->cookies, plan->n, false, multi, links);
	if (err && err != -EOPNOTSUPP)
		log_err("pid %d: failed to attach uprobes to '%s': %s", pid, plan->object,
			strerror(-err));
	if (!err) {
		p->coro->fcontext = "fcontext";
		p->coro->fcontext_requested = requested;
		log_err("pid %d: fcontext: make_fcontext, jump_fcontext and ontop_fcontext in '%s'",
			pid, plan->object);
	}
	free(plan);
	return err;
}

/*
 * Stackful coroutines, as --runtime asks (auto: whichever the target maps). ucontext: probes
 * makecontext, swapcontext and setcontext (entry only: a switch returns on another stack);
 * pcl: those and libpcl's own; fcontext: boost.context's.
 */
static int attach_ucontext(struct memscoped_bpf *skel, const struct cli_options *opts,
			   bool multi, struct process *p, int pid, struct attachment *links)
{
	bool autodetect = !strcmp(opts->runtime, "auto");
	bool requested = !strcmp(opts->runtime, "ucontext") || !strcmp(opts->runtime, "pcl");
	struct coro_probe_plan *plan;
	char msg[512];
	size_t i;
	int err;

	if (!requested && !autodetect && strcmp(opts->runtime, "fcontext"))
		return 0;
	coro_process__free(p->coro);
	p->coro = coro_process__new("ucontext", NULL, pid);
	if (!p->coro)
		return -ENOMEM;
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	err = coro_ucontext__plan(pid, plan, msg, sizeof(msg));
	if (!requested && !autodetect) {
		/* fcontext alone: only munmap of the libc, if there is one. */
		err = err ? 0 : attach_unmap(skel, multi, pid, plan, links);
		free(plan);
		return err ? err : attach_fcontext(skel, opts, multi, p, pid, links);
	}
	if (err) {
		if (requested || err != -ENOENT || verbose)
			log_err("pid %d: %s", pid, msg);
		free(plan);
		if (requested || err != -ENOENT)
			return err == -ENOENT ? -EINVAL : err;
		return attach_fcontext(skel, opts, multi, p, pid, links);
	}
	p->coro->requested = !strcmp(opts->runtime, "ucontext");
	for (i = 0; i < plan->n && !err; i++)
		err = attach__offsets(i == 0 ? skel->progs.coro_create : skel->progs.coro_switch,
				      pid, plan->open_path, &plan->offsets[i], &plan->cookies[i], 1,
				      false, multi, links);
	if (err && err != -EOPNOTSUPP)
		log_err("pid %d: failed to attach uprobe to '%s:%s': %s", pid, plan->object,
			i == 1 ? "makecontext" : i == 2 ? "swapcontext" : "setcontext",
			strerror(-err));
	else if (!err && (requested || verbose))
		log_err("pid %d: ucontext: makecontext, swapcontext and setcontext in '%s'", pid,
			plan->object);
	if (!err)
		err = attach_unmap(skel, multi, pid, plan, links);
	free(plan);
	if (!err && strcmp(opts->runtime, "ucontext"))
		err = attach_pcl(skel, opts, multi, p, pid, links);
	if (!err && autodetect)
		err = attach_fcontext(skel, opts, multi, p, pid, links);
	return err;
}

/* Loads the BPF programs and attaches them to every target; logs what fails. */
static int load_and_attach(const struct cli_options *opts, bool multi,
			   struct process_table *procs, struct memscoped_bpf **ret_skel,
			   struct attachment *links)
{
	struct memscoped_bpf *skel;
	struct probe_plan *plan;
	char msg[512];
	uint32_t flags = 0;
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
		bpf_program__set_expected_attach_type(skel->progs.task_poll_enter,
						      MS_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.task_poll_return,
						      MS_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.coro_create,
						      MS_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.coro_switch,
						      MS_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.pcl_enter,
						      MS_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.pcl_return,
						      MS_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.fcontext_enter,
						      MS_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.coro_unmap,
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
		struct process *p = process_table__find(procs, (uint32_t)pid);

		probe_plan__clear(plan);
		err = probe_plan__allocator(pid, plan, msg, sizeof(msg));
		if (err) {
			log_err("pid %d: %s", pid, proc__alive(pid) ? msg : "exited during attach");
			break;
		}
		for (j = 0; j < plan->nnotes && verbose && multi != opts->no_uprobe_multi; j++)
			log_err("pid %d: %s: %s", pid, plan->object, plan->notes[j]);
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.targets), &(uint32_t){ (uint32_t)pid },
					&flags, BPF_ANY)) {
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
		err = attach_tokio(skel, opts, multi, p, pid, links);
		if (err == -EOPNOTSUPP && multi)
			break;
		/* attach_tokio said what failed. */
		if (err)
			break;
		err = attach_ucontext(skel, opts, multi, p, pid, links);
		if (err == -EOPNOTSUPP && multi)
			break;
		if (err) {
			log_err("pid %d: %s", pid,
				proc__alive(pid) ? "failed to attach coroutine probes" :
						   "exited during attach");
			break;
		}
		p->probes_attached = (uint32_t)(links->nprobes - before);
		log_err("attached %zu probes to pid %d (allocator in '%s'%s%s%s)%s",
			links->nprobes - before, pid, plan->object, p->tokio ? ", tokio in '" : "",
			p->tokio ? p->tokio->object : "", p->tokio ? "'" : "",
			multi ? "" : " (one link per probe)");
	}
	probe_plan__clear(plan);
	free(plan);
	return err;
}

/* Everything the main loop owns. */
struct daemon {
	struct cli_options opts;
	struct memscoped_bpf *skel;
	struct ring_buffer *rb;
	struct attachment links;
	struct event_decoder decoder;
	struct http_server *http;
	struct prom_text *metrics;
	struct bpf_link *exec_link; /* sched_process_exec: a target's exec ends its report */
	uint64_t start;
	bool multi;	     /* uprobe_multi links, not one perf-event link per probe */
	int watch_fd;	     /* the library watcher's socket, or -1 */
	pid_t watch_pid;
};

/*
 * Libraries loaded after attach (dlopen). The daemon holds no capability once attached, so a
 * child keeps just those that attaching needs, looks at the targets' maps every second for a
 * coroutine runtime's library, attaches to it and passes the links to the daemon. It takes
 * no input: the daemon cannot ask it for anything, only close the socket to end it.
 */
enum watch_runtime { WATCH_PCL = 1, WATCH_FCONTEXT };

struct watch_msg {
	uint32_t pid;
	uint32_t runtime;	   /* enum watch_runtime */
	uint64_t exit_lo, exit_hi; /* pcl: where co_exit_to runs */
	uint64_t nprobes;
};

#define WATCH_PERIOD_MS 1000
/* What attaching needs; CAP_SYS_ADMIN stands in for CAP_BPF/CAP_PERFMON on older kernels,
 * CAP_CHECKPOINT_RESTORE opens /proc/PID/map_files. */
#define WATCH_CAPS                                                                           \
	((1ull << CAP_BPF) | (1ull << CAP_PERFMON) | (1ull << CAP_SYS_PTRACE) |              \
	 (1ull << CAP_SYS_ADMIN) | (1ull << CAP_DAC_READ_SEARCH) |                            \
	 (1ull << CAP_CHECKPOINT_RESTORE))

/* One runtime in one target: attached when a library of its name appears in the maps. */
static void watch_runtime(struct daemon *d, struct process *p, enum watch_runtime runtime,
			  size_t *seen)
{
	const char *prefix = runtime == WATCH_PCL ? CORO_PCL_LIBRARY : CORO_FCONTEXT_LIBRARY;
	struct watch_msg m = { .pid = p->pid, .runtime = runtime };
	struct attachment a = { 0 };
	int fds[FD_PASS_MAX], n, err;
	size_t mapped;

	if (runtime == WATCH_PCL ? p->coro->pcl != NULL : p->coro->fcontext != NULL)
		return;
	mapped = coro__libraries_mapped((int)p->pid, prefix);
	if (mapped <= *seen)
		return;
	*seen = mapped;
	err = runtime == WATCH_PCL ? attach_pcl(d->skel, &d->opts, d->multi, p, (int)p->pid, &a) :
				     attach_fcontext(d->skel, &d->opts, d->multi, p, (int)p->pid,
						     &a);
	n = err ? err : attach__fds(&a, fds, FD_PASS_MAX);
	if (n > 0) {
		m.exit_lo = p->coro->pcl_exit_lo;
		m.exit_hi = p->coro->pcl_exit_hi;
		m.nprobes = a.nprobes;
		fd_pass__send(d->watch_fd, &m, sizeof(m), fds, (size_t)n);
	}
	attach__destroy(&a);
}

static void watch_libraries(struct daemon *d, pid_t daemon_pid)
{
	struct pollfd pfd = { .fd = d->watch_fd, .events = POLLIN };
	size_t n = process_table__count(d->decoder.procs), i;
	size_t *seen = calloc(2 * n + 1, sizeof(*seen));
	int *pidfds = calloc(n + 1, sizeof(*pidfds));
	struct process *p;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	attach__close_inherited();
	if (getppid() != daemon_pid || !seen || !pidfds || drop_capabilities(WATCH_CAPS, NULL))
		_exit(1);
	verbose = false; /* every second: only what it attaches is news */
	for (i = 0; i < n; i++) {
		p = process_table__at(d->decoder.procs, i);
		/* A pidfd follows this process, not a later one given its pid. */
		pidfds[i] = (int)syscall(SYS_pidfd_open, p->pid, 0);
		seen[2 * i] = coro__libraries_mapped((int)p->pid, CORO_PCL_LIBRARY);
		seen[2 * i + 1] = coro__libraries_mapped((int)p->pid, CORO_FCONTEXT_LIBRARY);
	}
	/* The daemon never writes: readable means it closed its end or is gone. */
	while (!exiting && poll(&pfd, 1, WATCH_PERIOD_MS) == 0) {
		for (i = 0; i < n; i++) {
			p = process_table__at(d->decoder.procs, i);
			if (!p->coro || pidfds[i] < 0 ||
			    syscall(SYS_pidfd_send_signal, pidfds[i], 0, NULL, 0) ||
			    !proc__alive((int)p->pid))
				continue;
			watch_runtime(d, p, WATCH_PCL, &seen[2 * i]);
			watch_runtime(d, p, WATCH_FCONTEXT, &seen[2 * i + 1]);
		}
	}
	_exit(0);
}

/* Starts the watcher (for --runtime auto); without it, later libraries are not seen. */
static void watch_start(struct daemon *d)
{
	pid_t daemon_pid = getpid();
	int sv[2];

	d->watch_fd = -1;
	if (strcmp(d->opts.runtime, "auto"))
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		log_err("cannot watch for libraries loaded later: %s, ignoring", strerror(errno));
		return;
	}
	d->watch_pid = fork();
	if (d->watch_pid == 0) {
		close(sv[0]);
		d->watch_fd = sv[1];
		watch_libraries(d, daemon_pid);
	}
	close(sv[1]);
	if (d->watch_pid < 0) {
		log_err("cannot watch for libraries loaded later: %s, ignoring", strerror(errno));
		close(sv[0]);
		return;
	}
	d->watch_fd = sv[0];
	fcntl(d->watch_fd, F_SETFL, O_NONBLOCK);
}

/* Takes the links the watcher made. */
static void watch_receive(struct daemon *d)
{
	struct watch_msg m;
	int fds[FD_PASS_MAX], n, i;
	struct process *p;

	while (d->watch_fd >= 0) {
		n = fd_pass__recv(d->watch_fd, &m, sizeof(m), fds);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			log_err("the library watcher stopped%s%s, ignoring: libraries loaded from now "
				"on are not traced", n == -EPIPE ? "" : ": ",
				n == -EPIPE ? "" : strerror(-n));
			close(d->watch_fd);
			d->watch_fd = -1;
			return;
		}
		p = process_table__find(d->decoder.procs, m.pid);
		for (i = 0; i < n; i++)
			if (!p || !p->coro || p->execed || attach__adopt(&d->links, fds[i]))
				close(fds[i]);
		if (!p || !p->coro || p->execed)
			continue;
		d->links.nprobes += m.nprobes;
		p->probes_attached += (uint32_t)m.nprobes;
		if (m.runtime == WATCH_PCL) {
			p->coro->pcl = "pcl";
			p->coro->pcl_exit_lo = m.exit_lo;
			p->coro->pcl_exit_hi = m.exit_hi;
		} else {
			p->coro->fcontext = "fcontext";
		}
		log_err("pid %u: %s: its library was loaded after attach; %" PRIu64
			" probes attached", m.pid, m.runtime == WATCH_PCL ? "pcl" : "fcontext",
			m.nprobes);
	}
}

static void watch_stop(struct daemon *d)
{
	if (d->watch_fd >= 0)
		close(d->watch_fd);
	d->watch_fd = -1;
	if (d->watch_pid > 0)
		while (waitpid(d->watch_pid, NULL, 0) < 0 && errno == EINTR)
			;
	d->watch_pid = 0;
}

static int handle_event(void *ctx, void *data, size_t len)
{
	struct daemon *d = ctx;
	const struct ms_event *e = data;
	struct process *p;

	/*
	 * The watcher sends a library's links before their first event can exist, so an event
	 * of a runtime not yet known means its message is waiting: take it first.
	 */
	if (len >= sizeof(*e) && d->watch_fd >= 0 &&
	    (e->type == MS_EV_PCL ||
	     ((e->type == MS_EV_CORO_CREATE || e->type == MS_EV_CORO_SWITCH) &&
	      (e->func == MS_CORO_MAKE_FCONTEXT || e->func == MS_CORO_JUMP_FCONTEXT ||
	       e->func == MS_CORO_ONTOP_FCONTEXT)))) {
		p = process_table__find(d->decoder.procs, e->pid);
		if (p && p->coro && !(e->type == MS_EV_PCL ? p->coro->pcl : p->coro->fcontext))
			watch_receive(d);
	}
	event_decoder__handle(&d->decoder, data, len);
	return 0;
}

static void fill_report(struct daemon *d, struct report_input *r)
{
	uint64_t now = now_ns();

	r->duration_seconds = (double)(now - d->start) / 1e9;
	r->events_received = d->decoder.stats.received;
	r->events_lost = lost_events(d->skel);
	r->procs = d->decoder.procs;
	r->now_ns = now;
	r->stuck_after_ns = (uint64_t)(d->opts.stuck_after * 1e9);
}

/* Renders the metrics once for both the HTTP endpoint and the textfile. */
static int render_metrics(struct daemon *d)
{
	struct proc_self_stats self;
	struct report_input r;
	struct exporter_input in = { 0 };

	fill_report(d, &r);
	in.procs = r.procs;
	in.events_received = r.events_received;
	in.events_lost = r.events_lost;
	in.now_ns = r.now_ns;
	in.stuck_after_ns = r.stuck_after_ns;
	in.max_task_types = d->opts.max_task_types;
	in.self = proc__self_stats(&self) ? NULL : &self;
	return exporter_prometheus__render(d->metrics, &in);
}

static void publish_metrics(struct daemon *d, bool textfile)
{
	const char *text;
	size_t len;

	if (!d->metrics || render_metrics(d))
		return;
	text = prom_text__data(d->metrics, &len);
	if (d->http)
		http_server__publish(d->http, text, len);
	if (textfile && d->opts.textfile &&
	    write_atomically(d->opts.textfile, write_text, &(struct text){ text, len }))
		log_err("cannot write metrics to '%s': %s, ignoring", d->opts.textfile,
			strerror(errno));
}

/* The JSON API's snapshot, copied only while someone reads the API (the tasks can be 100k). */
static void publish_api(struct daemon *d, uint64_t now)
{
	struct api_snapshot *snap;
	struct report_input r;

	if (!d->http)
		return;
	/* Unread for a while: the last copy goes too. */
	if (!http_server__api_wanted(d->http, now)) {
		http_server__publish_api(d->http, NULL);
		return;
	}
	fill_report(d, &r);
	snap = api_snapshot__new(&r, API_SNAPSHOT_MAX_TASKS);
	if (snap)
		http_server__publish_api(d->http, snap);
	if (verbose >= 2 && snap)
		log_err("api snapshot: %zu tasks in %.1f ms", snap->ntasks,
			(double)snap->build_ns / 1e6);
}

static int write_reports(struct daemon *d)
{
	struct report_input r;

	fill_report(d, &r);
	report_text__write(stdout, &r);
	return d->opts.report ? write_json_report(d->opts.report, &r) : 0;
}

static uint64_t period_ns(double seconds)
{
	return (uint64_t)(seconds * 1e9);
}

static void run(struct daemon *d)
{
	const struct cli_options *o = &d->opts;
	uint64_t now, next_alive, next_metrics, next_textfile, next_summary = 0, deadline = 0;
	struct report_input r;

	next_alive = d->start + ALIVE_CHECK_NS;
	next_metrics = d->start;
	next_textfile = d->start + period_ns(o->interval > 0 ? o->interval : TEXTFILE_PERIOD_S);
	if (o->duration > 0)
		deadline = d->start + period_ns(o->duration);
	if (o->interval > 0)
		next_summary = d->start + period_ns(o->interval);

	while (!exiting) {
		watch_receive(d);
		ring_buffer__consume(d->rb);
		now = now_ns();
		if (deadline && now >= deadline)
			break;
		if (now >= next_alive) {
			next_alive = now + ALIVE_CHECK_NS;
			/* Drain first: a target's last events precede its exit. */
			ring_buffer__consume(d->rb);
			if (!update_alive(d->decoder.procs, bpf_map__fd(d->skel->maps.targets)))
				break;
		}
		if (report_requested) {
			report_requested = 0;
			write_reports(d);
		}
		if (now >= next_metrics) {
			next_metrics = now + METRICS_PERIOD_NS;
			publish_metrics(d, now >= next_textfile);
			publish_api(d, now);
			if (now >= next_textfile)
				next_textfile = now + period_ns(o->interval > 0 ? o->interval :
										 TEXTFILE_PERIOD_S);
		}
		if (next_summary && now >= next_summary) {
			next_summary = now + period_ns(o->interval);
			fill_report(d, &r);
			report_text__summary(stderr, &r);
		}
		sleep_ns(DRAIN_PERIOD_NS);
	}
}

/* Tasks alive before attach that may never run again: found in memory, once. */
static void scan_tasks(struct daemon *d)
{
	struct tokio_scan_stats st;
	struct process *p;
	size_t i;
	int err;

	for (i = 0; i < process_table__count(d->decoder.procs); i++) {
		p = process_table__at(d->decoder.procs, i);
		if (!p->tokio)
			continue;
		err = tokio_process__scan(p, (int)p->pid, now_ns(), &st);
		if (err)
			log_err("pid %u: attach scan failed: %s, ignoring", p->pid, strerror(-err));
		else
			log_err("pid %u: attach scan: %" PRIu64 " tokio tasks in %.1f MiB in %.1f ms",
				p->pid, st.found, (double)st.bytes / (1 << 20),
				(double)st.elapsed_ns / 1e6);
	}
}

static int add_targets(struct daemon *d)
{
	char comm[PROC_COMM_LEN], *exe;
	struct process *p;
	size_t i;

	for (i = 0; i < d->opts.npids; i++) {
		comm[0] = '\0';
		exe = NULL;
		proc__comm(d->opts.pids[i], 0, comm);
		proc__exe(d->opts.pids[i], &exe);
		p = process_table__add(d->decoder.procs, (uint32_t)d->opts.pids[i], comm, exe);
		free(exe);
		if (!p)
			return -ENOMEM;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct daemon d = { .watch_fd = -1 };
	struct process_limits limits;
	struct cli_options *o = &d.opts;
	struct passwd user = { 0 }, *pw;
	char msg[512];
	size_t i, j;
	int err;

	if (argc > 1 && !strcmp(argv[1], "top"))
		return top__main(argc - 1, argv + 1);
	/* Before anything else: a signal during the attach must not kill us half-attached. */
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_signal }, NULL);
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_signal }, NULL);
	sigaction(SIGUSR1, &(struct sigaction){ .sa_handler = on_report_signal }, NULL);

	if (cli__parse(argc, argv, 0, o))
		return EXIT_USAGE;
	verbose = o->verbose;
	libbpf_set_print(libbpf_print);

	for (i = 0; i < o->npids; i++)
		for (j = 0; j < i; j++)
			if (o->pids[i] == o->pids[j]) {
				log_err("pid %d given twice", o->pids[i]);
				return EXIT_USAGE;
			}
	if (o->user) {
		pw = getpwnam(o->user);
		if (!pw) {
			log_err("invalid --user '%s': no such user", o->user);
			return EXIT_USAGE;
		}
		user = *pw;
		user.pw_name = (char *)o->user;
	}
	if (missing_capabilities(o->user, msg, sizeof(msg))) {
		log_err("missing capabilities: %s (run as root)", msg);
		return 1;
	}
	if (check_writable(o->report, "report", o->user ? &user : NULL) ||
	    check_writable(o->textfile, "textfile", o->user ? &user : NULL))
		return 1;
	for (i = 0; i < o->npids; i++)
		if (check_target(o->pids[i]))
			return 1;
	/* Listen before attaching anything: a bad address must not touch the targets. */
	if (o->listen) {
		err = http_server__start(o->listen, &d.http);
		if (err) {
			log_err("cannot listen on '%s': %s", o->listen,
				err == -EINVAL ? "expected [ADDR:]PORT" : strerror(-err));
			return 1;
		}
		top__tell_port(http_server__port(d.http));
	}

	err = 1;
	limits.max_allocations = o->max_allocations;
	limits.max_threads = o->max_threads;
	limits.max_tasks = o->max_tasks;
	limits.max_ended_tasks = o->max_ended_tasks;
	limits.max_task_types = o->max_types;
	d.decoder.procs = process_table__new(&limits, name_thread);
	d.metrics = (o->listen || o->textfile) ? prom_text__new() : NULL;
	if (!d.decoder.procs || ((o->listen || o->textfile) && !d.metrics) || add_targets(&d)) {
		log_err("out of memory");
		goto cleanup;
	}

	/* A scrape during the attach sees the targets, with nothing counted yet. */
	d.start = now_ns();
	publish_metrics(&d, false);
	d.multi = !o->no_uprobe_multi;
	err = load_and_attach(o, d.multi, d.decoder.procs, &d.skel, &d.links);
	if (err == -EOPNOTSUPP) {
		if (verbose)
			log_err("the kernel has no uprobe_multi links, using one link per probe");
		attach__destroy(&d.links);
		memscoped_bpf__destroy(d.skel);
		d.multi = false;
		err = load_and_attach(o, false, d.decoder.procs, &d.skel, &d.links);
	}
	if (err) {
		err = 1;
		goto cleanup;
	}
	err = 1;
	d.rb = ring_buffer__new(bpf_map__fd(d.skel->maps.events), handle_event, &d, NULL);
	if (!d.rb) {
		log_err("failed to create ring buffer: %s", strerror(errno));
		goto cleanup;
	}
	d.exec_link = bpf_program__attach(d.skel->progs.on_exec);
	if (!d.exec_link)
		log_err("cannot watch for exec: %s, ignoring (an exec'd target keeps its old figures)",
			strerror(errno));

	d.start = now_ns();
	for (i = 0; i < process_table__count(d.decoder.procs); i++)
		process_table__at(d.decoder.procs, i)->start_ns = d.start;
	scan_tasks(&d);
	watch_start(&d);
	err = drop_capabilities(0, o->user ? &user : NULL);
	if (err == -EPERM && o->user) {
		log_err("cannot become user '%s': %s", o->user, strerror(-err));
		err = 1;
		goto cleanup;
	}
	if (err)
		log_err("cannot drop capabilities: %s, ignoring", strerror(-err));
	else if (verbose)
		log_err("dropped all capabilities%s%s", o->user ? ", now user " : "",
			o->user ? o->user : "");
	run(&d);

	/* Detach first so a flood of events cannot delay the exit, then take what is left. */
	watch_stop(&d);
	attach__destroy(&d.links);
	ring_buffer__consume(d.rb);
	update_alive(d.decoder.procs, bpf_map__fd(d.skel->maps.targets));
	publish_metrics(&d, true);
	err = write_reports(&d) ? 1 : 0;

cleanup:
	watch_stop(&d);
	bpf_link__destroy(d.exec_link);
	http_server__stop(d.http);
	attach__destroy(&d.links);
	ring_buffer__free(d.rb);
	memscoped_bpf__destroy(d.skel);
	prom_text__free(d.metrics);
	process_table__free(d.decoder.procs);
	return err;
}
