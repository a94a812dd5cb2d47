// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * memscoped: attach to running processes and attribute their heap, with eBPF. Wiring only, on
 * libbpf-bootstrap's model: parse, check, open, configure, load, attach, loop, one cleanup.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "memscoped.skel.h"
#include "alloc_plan.h"
#include "attach.h"
#include "cgroup.h"
#include "cli.h"
#include "ended_table.h"
#include "daemon.h"
#include "http_server.h"
#include "log.h"
#include "privilege.h"
#include "stack_profile.h"
#include "stacks.h"
#include "probe_plan.h"
#include "proc.h"
#include "prom_text.h"
#include "runtime.h"
#include "scan_mode.h"
#include "selector.h"
#include "top.h"
#include "timeseries.h"
#include "watcher.h"

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

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && verbose < 2)
		return 0;
	if (!verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
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

/* Fails early, before attaching, if an output file cannot be written by whoever will. */
static int check_writable(const char *path, const char *what, const struct passwd *user)
{
	int err;

	if (!path || !strcmp(path, "-"))
		return 0;
	err = privilege__writable(path, user);
	if (err)
		log_err("cannot write %s '%s'%s%s: %s", what, path, user ? " as user " : "",
			user ? user->pw_name : "", strerror(-err));
	return err;
}

/* Everything that must hold before touching a target; logs what does not. */
static int check_options(const struct cli_options *o, const struct passwd **ret_user,
			 struct passwd *user)
{
	char msg[512];
	size_t i, j;

	for (i = 0; i < o->npids; i++)
		for (j = 0; j < i; j++)
			if (o->pids[i] == o->pids[j]) {
				log_err("pid %d given twice", o->pids[i]);
				return EXIT_USAGE;
			}
	*ret_user = NULL;
	if (o->user) {
		struct passwd *pw = getpwnam(o->user);

		if (!pw) {
			log_err("invalid --user '%s': no such user", o->user);
			return EXIT_USAGE;
		}
		*user = *pw;
		user->pw_name = (char *)o->user;
		*ret_user = user;
	}
	if (privilege__missing(o->user, msg, sizeof(msg))) {
		log_err("missing capabilities: %s (run as root)", msg);
		return 1;
	}
	if (check_writable(o->report, "report", *ret_user) ||
	    check_writable(o->html, "HTML report", *ret_user) ||
	    check_writable(o->textfile, "textfile", *ret_user) ||
	    check_writable(o->pprof, "pprof profile", *ret_user) ||
	    check_writable(o->folded, "folded stacks", *ret_user))
		return 1;
	if ((o->pprof || o->folded) && !o->sample_bytes) {
		log_err("--pprof and --folded need stacks: --sample-bytes is 0");
		return EXIT_USAGE;
	}
	for (i = 0; i < o->npids; i++)
		if (check_target(o->pids[i]))
			return 1;
	return 0;
}

/* The selectors of daemon mode, checked: one line for a bad one. NULL on error. */
static struct selector *build_selector(const struct cli_options *o)
{
	struct selector *s = selector__new();
	char mnt[PATH_MAX], msg[256];
	size_t i;
	int err = 0;

	if (!s) {
		log_err("out of memory");
		return NULL;
	}
	for (i = 0; i < o->ncomms && !err; i++) {
		err = selector__add_comm(s, o->comms[i], msg, sizeof(msg));
		if (err)
			log_err("invalid --comm '%s': %s", o->comms[i], msg);
	}
	for (i = 0; i < o->nexes && !err; i++)
		if ((err = selector__add_exe(s, o->exes[i])))
			log_err("out of memory");
	if (!err && o->ncgroups) {
		err = cgroup__mount(mnt, sizeof(mnt));
		if (err)
			log_err("--cgroup needs the cgroup v2 hierarchy: %s",
				err == -ENOENT ? "no cgroup2 file system is mounted" :
						 strerror(-err));
	}
	for (i = 0; i < o->ncgroups && !err; i++) {
		err = selector__add_cgroup(s, mnt, o->cgroups[i]);
		if (err)
			log_err("invalid --cgroup '%s': %s", o->cgroups[i],
				err == -ENOENT ? "no such cgroup" : strerror(-err));
	}
	if (err) {
		selector__free(s);
		return NULL;
	}
	return s;
}

static int add_targets(struct daemon *d)
{
	static struct proc_identity id;
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
		if (!selector__identify((int)p->pid, &id)) {
			p->ns_pid = id.ns_pid;
			if (process__set_labels(p, id.cgroup, id.container_id, id.unit))
				return -ENOMEM;
		}
	}
	return 0;
}

/* The targets' objects for the sampled stacks, opened while still privileged. */
static void open_stacks(struct daemon *d)
{
	size_t i;
	int err;

	if (!d->opts.sample_bytes)
		return;
	d->stacks = stacks__new(d->opts.sample_bytes, STACKS_MAX_SERIES, d->opts.debug_dir);
	if (!d->stacks) {
		log_err("cannot keep sampled stacks: out of memory, ignoring");
		return;
	}
	for (i = 0; i < process_table__count(d->decoder.procs); i++) {
		struct process *p = process_table__at(d->decoder.procs, i);

		err = stacks__add_process(d->stacks, p->pid);
		if (err)
			log_err("pid %u: cannot read its objects for stacks: %s, ignoring", p->pid,
				strerror(-err));
	}
}

/* Selectors: processes are chosen as they come (src/selector.c), not only at start. */
static bool daemon_mode(const struct cli_options *o)
{
	return o->ncomms || o->nexes || o->ncgroups;
}

/* The kernel's BTF has a struct of this name. */
static bool kernel_has_struct(const char *name)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool has;

	if (!btf)
		return false;
	has = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT) > 0;
	btf__free(btf);
	return has;
}

/*
 * The fork window is counted from the uretprobe syscall (bpf/memscoped.bpf.c window_return):
 * only with fork following and uprobe_multi links, and where the kernel has that syscall and
 * the uprobe structures window_return reads (6.13's: struct hprobe in a return instance, a
 * list of consumers). Elsewhere nothing is loaded for it and children say so.
 */
static bool count_fork_window(const struct cli_options *o, bool multi)
{
	return daemon_mode(o) && !o->no_follow_forks && multi &&
	       libbpf_find_vmlinux_btf_id("__x64_sys_uretprobe", BPF_TRACE_FENTRY) > 0 &&
	       libbpf_find_vmlinux_btf_id("uprobe_multi_link_ret_handler", BPF_TRACE_FENTRY) > 0 &&
	       kernel_has_struct("hprobe");
}

/* Opens the BPF object and sets what must be set before load; window: may count the window. */
static struct memscoped_bpf *open_bpf(const struct cli_options *o, bool multi, bool window)
{
	struct memscoped_bpf *skel;
	struct bpf_program *prog;

	skel = memscoped_bpf__open();
	if (!skel) {
		log_err("failed to open BPF object: %s", strerror(errno));
		return NULL;
	}
	bpf_map__set_max_entries(skel->maps.events, (uint32_t)o->ring_size);
	bpf_map__set_max_entries(skel->maps.targets, (uint32_t)o->max_targets);
	skel->rodata->empty_programs = o->empty_programs;
	skel->rodata->sample_bytes = o->sample_bytes;
	stack_profile__gaps((uint32_t *)skel->rodata->sample_gaps, MS_SAMPLE_GAPS);
	skel->rodata->select_execs = daemon_mode(o);
	skel->rodata->follow_forks = daemon_mode(o) && !o->no_follow_forks;
	skel->rodata->count_fork_window = window && count_fork_window(o, multi);
	bpf_program__set_autoload(skel->progs.window_return, skel->rodata->count_fork_window);
	/* Not preallocated; unused (and the smallest) when the window is not counted. */
	bpf_map__set_max_entries(skel->maps.fork_pending,
				 skel->rodata->count_fork_window ? (uint32_t)o->max_targets : 1);
	/* Every uprobe program may be attached by uprobe_multi links. */
	bpf_object__for_each_program(prog, skel->obj)
		if (multi && bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE)
			bpf_program__set_expected_attach_type(prog, MS_BPF_TRACE_UPROBE_MULTI);
	return skel;
}

/* What the process's allocator is, for the reports and the blind-probe warning. */
static void record_allocator(struct process *p, const struct alloc_plan *plan, const char *desc)
{
	const struct probe_plan *primary = &plan->objects[plan->primary];

	p->allocator.family = plan->families[plan->primary]->name;
	free(p->allocator.object);
	p->allocator.object = strdup(primary->object);
	p->allocator.functions = (uint32_t)probe_plan__entry_functions(primary);
	free(p->allocator.probed);
	p->allocator.probed = strdup(desc);
	if (proc__cpu_seconds((int)p->pid, &p->allocator.cpu_at_attach))
		p->allocator.cpu_at_attach = 0;
}

/* The allocators and the runtimes --runtime asks for, in one target; logs what fails. */
static int attach_target(struct memscoped_bpf *skel, const struct runtime_ctx *ctx,
			 const struct cli_options *o, struct process *p)
{
	int pid = (int)p->pid, err;
	size_t before = ctx->links->nprobes, i, k;
	struct alloc_plan *plan;
	char msg[1536], rt[PATH_MAX + 32], found[2 * PATH_MAX] = "";
	uint32_t flags = 0;

	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	err = alloc_plan__build(pid, o->allocator, plan, msg, sizeof(msg));
	if (err) {
		log_err("pid %d: %s", pid, proc__alive(pid) ? msg : "exited during attach");
		goto out;
	}
	for (k = 0; k < plan->n; k++)
		for (i = 0;
		     i < plan->objects[k].nnotes && verbose && ctx->multi != o->no_uprobe_multi;
		     i++)
			log_err("pid %d: %s: %s", pid, plan->objects[k].object,
				plan->objects[k].notes[i]);
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.targets), &(uint32_t){ (uint32_t)pid },
				&flags, BPF_ANY)) {
		err = -errno;
		log_err("pid %d: failed to add target: %s", pid, strerror(-err));
		goto out;
	}
	for (k = 0; k < plan->n && !err; k++)
		err = attach__plan(skel->obj, pid, &plan->objects[k], ctx->multi, ctx->links, msg,
				   sizeof(msg));
	if (err == -EOPNOTSUPP && ctx->multi)
		goto out;
	if (!err && !proc__alive(pid))
		err = -ESRCH;
	if (err) {
		log_err("pid %d: %s", pid, proc__alive(pid) ? msg : "exited during attach");
		goto out;
	}
	err = strcmp(o->runtime, "none") ? runtime__attach_all(ctx, p, o->runtime) : 0;
	if (err)
		goto out;
	p->probes_attached = (uint32_t)(ctx->links->nprobes - before);
	alloc_plan__describe(plan, msg, sizeof(msg));
	record_allocator(p, plan, msg);
	log_err("pid %d: allocator %s", pid, msg);
	for (i = 0; i < nruntimes; i++)
		if (runtimes[i]->describe && !runtimes[i]->describe(p, rt, sizeof(rt)))
			snprintf(found + strlen(found), sizeof(found) - strlen(found), ", %s", rt);
	log_err("attached %zu probes to pid %d (allocator in '%s'%s)%s",
		ctx->links->nprobes - before, pid, plan->objects[plan->primary].object, found,
		ctx->multi ? "" : " (one link per probe)");
out:
	alloc_plan__clear(plan);
	free(plan);
	return err;
}

/* How the runtimes attach their plans (runtime.h). */
static int attach_plan(const struct runtime_ctx *ctx, int pid, const struct probe_plan *plan,
		       char *err, size_t errlen)
{
	return attach__plan(ctx->obj, pid, plan, ctx->multi, ctx->links, err, errlen);
}

/* The helper attached it already (watcher.c): the daemon only reads what the runtimes need. */
static int attached_by_helper(const struct runtime_ctx *ctx, int pid, const struct probe_plan *plan,
			      char *err, size_t errlen)
{
	(void)ctx;
	(void)pid;
	(void)plan;
	(void)err;
	(void)errlen;
	return 0;
}

/* The pid helper_attached reads: a line about it is dropped once it has exited. */
static int reading_pid;

__attribute__((format(printf, 1, 2))) static void reading_log(const char *fmt, ...)
{
	va_list ap;

	if (!proc__alive(reading_pid))
		return; /* it exited after the helper attached it: its record says so */
	va_start(ap, fmt);
	fputs("memscoped: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/*
 * A process the helper attached after start (selectors, exec, fork), read here through the
 * descriptors it passed (proc__use_grant is in force): the runtimes it attached, as for a
 * --pid target (task types, the attach scan), and its objects for the sampled stacks.
 */
static void helper_attached(void *ctx, struct process *p, uint32_t mask)
{
	struct daemon *d = ctx;
	struct runtime_ctx rc = {
		.links = &d->links,
		.attach_plan = attached_by_helper,
		.multi = true,
		.verbose = verbose,
		.debug_dir = d->opts.debug_dir,
		.log = reading_log,
	};
	uint64_t t0 = daemon__now();
	int err;

	reading_pid = (int)p->pid;
	if (mask && runtime__attach_some(&rc, p, d->opts.runtime, mask) == -ESRCH)
		return;
	if (mask)
		daemon__scan_process(p);
	err = d->stacks ? stacks__add_process(d->stacks, p->pid) : 0;
	if (err)
		log_err("pid %u: cannot read its objects for stacks: %s, ignoring", p->pid,
			strerror(-err));
	/* The daemon's loop waits meanwhile: what it costs per process the helper attaches. */
	if (verbose)
		log_err("pid %u: runtimes%s read in %.1f ms", p->pid,
			d->stacks ? " and stacks" : "", (double)(daemon__now() - t0) / 1e6);
}

/*
 * Opens and loads the BPF object. The fork-window counter reads kernel structures that another
 * kernel may lay out otherwise, beyond what its CO-RE checks foresee: if the object does not
 * load with it, it loads once more without it (children then say fork_window_counted: false),
 * before anything else is given up. Returns 0, -EINVAL (no object: *ret NULL) or the load's
 * error (*ret the object that failed).
 */
static int load_bpf(const struct cli_options *o, bool multi, struct memscoped_bpf **ret)
{
	struct memscoped_bpf *skel;
	int err;

	*ret = skel = open_bpf(o, multi, true);
	if (!skel)
		return -EINVAL;
	if (!memscoped_bpf__load(skel))
		return 0;
	err = -errno;
	if (!skel->rodata->count_fork_window)
		return err;
	memscoped_bpf__destroy(skel);
	*ret = skel = open_bpf(o, multi, false);
	if (!skel)
		return -EINVAL;
	if (memscoped_bpf__load(skel))
		return -errno;
	log_err("cannot load the fork-window counter: %s, ignoring (children's windows are not "
		"counted)",
		strerror(-err));
	return 0;
}

/* Loads the BPF programs and attaches them to every target; logs what fails. */
static int load_and_attach(struct daemon *d, bool multi, struct memscoped_bpf **ret_skel)
{
	struct runtime_ctx ctx = {
		.links = &d->links,
		.attach_plan = attach_plan,
		.multi = multi,
		.verbose = verbose,
		.debug_dir = d->opts.debug_dir,
		.log = log_err,
	};
	struct memscoped_bpf *skel;
	size_t i;
	int err;

	err = load_bpf(&d->opts, multi, &skel);
	*ret_skel = skel;
	if (!skel)
		return err;
	if (err) {
		/* A kernel without uprobe_multi rejects the attach type at load. */
		if (multi)
			return -EOPNOTSUPP;
		log_err("failed to load BPF programs: %s (is this kernel built with BTF?)",
			strerror(-err));
		return err;
	}
	ctx.obj = skel->obj;
	for (i = 0; i < process_table__count(d->decoder.procs) && !err; i++)
		err = attach_target(skel, &ctx, &d->opts, process_table__at(d->decoder.procs, i));
	return err;
}

int main(int argc, char **argv)
{
	struct daemon d = { .lost_fd = -1, .targets_fd = -1, .fork_pending_fd = -1 };
	struct cli_options *o = &d.opts;
	const struct passwd *user;
	struct passwd user_buf;
	struct memscoped_bpf *skel = NULL;
	struct bpf_link *exec_link = NULL;   /* a target's exec ends its report */
	struct bpf_link *fork_link = NULL;   /* a target's children are targets */
	struct bpf_link *exit_link = NULL;   /* a dead target leaves the map */
	struct bpf_link *window_link = NULL; /* a child's calls before its probes are live */
	struct process_limits limits;
	struct selector *selector = NULL;
	bool multi;
	size_t i;
	char line[256];
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
	err = check_options(o, &user, &user_buf);
	if (err)
		return err;
	d.daemon_mode = daemon_mode(o);
	if (d.daemon_mode) {
		selector = build_selector(o);
		if (!selector)
			return EXIT_USAGE;
	}
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
	/* One point a second, or one per --interval. */
	if (o->report || o->html)
		d.series = timeseries__new(o->interval > 0 ? o->interval : 1, TIMESERIES_POINTS);
	/* Daemon mode runs for weeks: forgotten targets keep their final figures only. */
	if (d.daemon_mode)
		d.ended = ended_table__new(o->max_ended_targets);
	if (!d.decoder.procs || ((o->listen || o->textfile) && !d.metrics) ||
	    (d.daemon_mode && !d.ended) || ((o->report || o->html) && !d.series) ||
	    add_targets(&d)) {
		log_err("out of memory");
		goto cleanup;
	}

	/* A scrape during the attach sees the targets, with nothing counted yet. */
	d.start = daemon__now();
	event_decoder__time_passed(&d.decoder, d.start);
	daemon__publish_metrics(&d, false);
	if (o->scan) {
		/* No BPF at all: the loop, reports and metrics, fed by memory snapshots. */
		if (scan_mode__start(&d))
			goto cleanup;
		daemon__run(&d, &exiting, &report_requested);
		daemon__update_alive(&d);
		daemon__publish_metrics(&d, true);
		err = daemon__write_reports(&d) ? 1 : 0;
		goto cleanup;
	}
	multi = !o->no_uprobe_multi;
	err = load_and_attach(&d, multi, &skel);
	if (err == -EOPNOTSUPP) {
		if (verbose)
			log_err("the kernel has no uprobe_multi links, using one link per probe");
		attach__destroy(&d.links);
		memscoped_bpf__destroy(skel);
		multi = false;
		err = load_and_attach(&d, false, &skel);
	}
	if (err) {
		err = 1;
		goto cleanup;
	}
	err = 1;
	d.lost_fd = bpf_map__fd(skel->maps.lost);
	d.targets_fd = bpf_map__fd(skel->maps.targets);
	d.rb = ring_buffer__new(bpf_map__fd(skel->maps.events), daemon__handle_event, &d, NULL);
	if (!d.rb) {
		log_err("failed to create ring buffer: %s", strerror(errno));
		goto cleanup;
	}
	exec_link = bpf_program__attach(skel->progs.on_exec);
	if (!exec_link)
		log_err("cannot watch for exec: %s, ignoring (an exec'd target keeps its old figures)",
			strerror(errno));
	if (skel->rodata->follow_forks) {
		fork_link = bpf_program__attach(skel->progs.on_fork);
		if (!fork_link)
			log_err("cannot watch for forks: %s, ignoring (children are not traced)",
				strerror(errno));
	}
	/* Daemon mode: a dead target's pid is no target once it can be given again. */
	if (d.daemon_mode) {
		exit_link = bpf_program__attach(skel->progs.on_exit);
		if (!exit_link)
			log_err("cannot watch for exits: %s, ignoring", strerror(errno));
	}
	/* A dead child's entry leaves fork_pending by on_exit: no counting without it. */
	if (skel->rodata->count_fork_window && !exit_link) {
		log_err("cannot count the calls of a child before its probes are live: no exit "
			"program, ignoring (its report says so)");
	} else if (skel->rodata->count_fork_window) {
		struct bpf_prog_info info = { 0 };
		uint32_t len = sizeof(info);

		if (!bpf_obj_get_info_by_fd(bpf_program__fd(skel->progs.alloc_return), &info, &len))
			skel->bss->alloc_return_id = info.id;
		window_link = bpf_program__attach(skel->progs.window_return);
		/* Without it a child's calls before its probes are live are not counted. */
		if (window_link && skel->bss->alloc_return_id)
			d.fork_pending_fd = bpf_map__fd(skel->maps.fork_pending);
		else
			log_err("cannot count the calls of a child before its probes are live: %s, "
				"ignoring (its report says so)",
				strerror(errno));
	}

	d.start = daemon__now();
	for (i = 0; i < process_table__count(d.decoder.procs); i++)
		process_table__at(d.decoder.procs, i)->start_ns = d.start;
	daemon__scan(&d);
	open_stacks(&d);
	if (!strcmp(o->runtime, "auto") || d.daemon_mode)
		d.watcher = watcher__start(
			d.decoder.procs,
			&(struct runtime_ctx){ .obj = skel->obj,
					       .attach_plan = attach_plan,
					       .multi = multi,
					       .debug_dir = o->debug_dir,
					       .log = log_err },
			&(struct watcher_config){
				.watch_libraries = !strcmp(o->runtime, "auto"),
				.selector = selector,
				.proc_ring_fd =
					d.daemon_mode ? bpf_map__fd(skel->maps.proc_events) : -1,
				.targets_fd = d.targets_fd,
				.allocator = o->allocator,
				.runtime = o->runtime,
				.max_targets = o->max_targets,
				.grant = d.stacks != NULL,
				.attached = helper_attached,
				.attached_ctx = &d,
			},
			&exiting);
	if (d.daemon_mode && !d.watcher) {
		err = 1;
		goto cleanup;
	}
	/*
	 * Everything privileged is done: drop every capability (and the ability to regain any).
	 * Output files are still written as uid 0 without CAP_DAC_OVERRIDE, so only where root
	 * may write by plain permissions.
	 */
	err = privilege__drop(0, user);
	if (err == -EPERM && user) {
		log_err("cannot become user '%s': %s", o->user, strerror(-err));
		err = 1;
		goto cleanup;
	}
	if (err)
		log_err("cannot drop capabilities: %s, ignoring", strerror(-err));
	else if (verbose)
		log_err("dropped all capabilities%s%s", user ? ", now user " : "",
			user ? o->user : "");
	daemon__run(&d, &exiting, &report_requested);

	/* Detach first so a flood of events cannot delay the exit, then take what is left. */
	watcher__receive(d.watcher, &d.links);
	/* Forked children's last messages wait for their fork events. */
	daemon__drain(&d);
	watcher__receive(d.watcher, &d.links);
	d.targets_missed = watcher__missed(d.watcher);
	watcher__stop(d.watcher);
	d.watcher = NULL;
	attach__destroy(&d.links);
	daemon__drain(&d);
	daemon__update_alive(&d);
	daemon__publish_metrics(&d, true);
	stacks__set_lost(d.stacks, skel->bss->samples_lost);
	err = daemon__write_reports(&d) ? 1 : 0;
	if (d.stacks && stacks__summary(d.stacks, line, sizeof(line)) > 0)
		log_err("%s", line);

cleanup:
	watcher__stop(d.watcher);
	bpf_link__destroy(exec_link);
	bpf_link__destroy(fork_link);
	bpf_link__destroy(exit_link);
	bpf_link__destroy(window_link);
	http_server__stop(d.http);
	attach__destroy(&d.links);
	ring_buffer__free(d.rb);
	memscoped_bpf__destroy(skel);
	prom_text__free(d.metrics);
	timeseries__free(d.series);
	stacks__free(d.stacks);
	process_table__free(d.decoder.procs);
	ended_table__free(d.ended);
	selector__free(selector);
	return err;
}
