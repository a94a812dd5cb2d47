// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <stdio.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "memscoped/events.h"
#include "alloc_family.h"
#include "alloc_plan.h"
#include "array.h"
#include "attach.h"
#include "fd_pass.h"
#include "fork_window.h"
#include "privilege.h"
#include "proc.h"
#include "process_table.h"
#include "runtime.h"
#include "selector.h"
#include "watcher.h"
#include "watcher_grant.h"
#include "watcher_msg.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif

#define WATCH_PERIOD_MS 1000
/* What attaching needs; CAP_SYS_ADMIN stands in for CAP_BPF/CAP_PERFMON on older kernels,
 * CAP_CHECKPOINT_RESTORE opens /proc/PID/map_files. */
#define WATCH_CAPS                                                              \
	((1ull << CAP_BPF) | (1ull << CAP_PERFMON) | (1ull << CAP_SYS_PTRACE) | \
	 (1ull << CAP_SYS_ADMIN) | (1ull << CAP_DAC_READ_SEARCH) |              \
	 (1ull << CAP_CHECKPOINT_RESTORE))

/* A target the helper attached: its links are the helper's, closed at its exit or exec. */
struct helper_target {
	uint32_t pid;
	uint64_t since; /* the exec (fork, or start) it is traced from */
	int pidfd;
	struct attachment links;
};

struct watcher {
	struct process_table *procs;
	struct runtime_ctx ctx;
	struct watcher_config cfg;
	volatile sig_atomic_t *exiting;
	int fd; /* the socket, or -1 */
	pid_t pid;
	pid_t daemon_pid;
	/* In the helper only. */
	struct helper_target *targets;
	size_t ntargets, targets_cap;
	uint64_t missed;	 /* selected processes not attached: --max-targets, or gone */
	uint64_t gone_unmatched; /* processes gone before the selectors could see them */
	int *initial_pidfds;	 /* of the daemon's targets at start (procs' first ninitial) */
	size_t ninitial;
	struct watcher_images images;
	/* In the daemon only. */
	struct proc_grant *incoming; /* the descriptors of the process being attached */
	struct deferred *deferred;   /* the helper's word on forks not decoded yet */
	size_t ndeferred;
};

/* The helper's word on a child whose fork the daemon has not decoded yet. */
struct deferred {
	struct watch_msg *m;
	struct proc_grant *grant;
	uint64_t since; /* kept at most AWAIT_MS: its fork event may have been lost */
};

#define MAX_DEFERRED 16
/* How long the daemon waits for the helper's word on a process whose events it holds. */
#define AWAIT_MS 2000

/* Watched: a runtime whose library may be loaded later (dlopen). */
static bool watched(const struct runtime *r)
{
	return r->library != NULL;
}

/* One runtime in one target: attached when a library of its name appears in the maps. */
static void watch_runtime(struct watcher *w, struct process *p, size_t ri, size_t *seen)
{
	const struct runtime *r = runtimes[ri];
	struct watch_msg m = { .kind = WATCH_LIBRARY, .pid = p->pid, .runtime = (uint32_t)ri };
	struct attachment a = { 0 };
	struct runtime_ctx ctx = w->ctx;
	int fds[FD_PASS_MAX], n, err;
	char msg[512];
	size_t mapped;

	if (r->attached(p))
		return;
	mapped = proc__count_named((int)p->pid, r->library);
	if (mapped <= *seen)
		return;
	*seen = mapped;
	ctx.links = &a;
	msg[0] = '\0';
	err = r->attach(&ctx, p, RUNTIME_AUTO, msg, sizeof(msg));
	if (err && err != -ENOENT && msg[0])
		ctx.log("pid %u: %s", p->pid, msg);
	n = err ? err : attach__fds(&a, fds, FD_PASS_MAX);
	if (n > 0) {
		if (r->late_export)
			r->late_export(p, m.data);
		m.nprobes = a.nprobes;
		fd_pass__send(w->fd, &m, sizeof(m), fds, (size_t)n);
	}
	attach__destroy(&a);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void send_msg(struct watcher *w, const struct watch_msg *m)
{
	fd_pass__send(w->fd, m, sizeof(*m), NULL, 0);
}

static struct helper_target *helper_target(struct watcher *w, uint32_t pid)
{
	size_t i;

	for (i = 0; i < w->ntargets; i++)
		if (w->targets[i].pid == pid)
			return &w->targets[i];
	return NULL;
}

/* Its links closed and it leaves the targets map (the map is --max-targets long). */
/*
 * Closes links of an exited target in a child: the last close of a uprobe link waits for the
 * kernel to unregister its probes (RCU grace periods, up to a second under load), which would
 * delay the next exec's attach. The child holds them until we closed ours, so its close is the
 * last one; if we die first, it sees the pipe's end and closes them all the same.
 */
static void destroy_links_later(struct attachment *a)
{
	int pipefd[2];
	pid_t pid;
	char c;

	if (!a->nfds && !a->nlinks)
		return;
	if (pipe2(pipefd, O_CLOEXEC)) {
		attach__destroy(a);
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(pipefd[1]);
		while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
			;
		attach__destroy(a);
		_exit(0);
	}
	close(pipefd[0]);
	attach__destroy(a);
	close(pipefd[1]);
}

static void drop_target(struct watcher *w, struct helper_target *t, bool keep_in_map)
{
	/* An exec'd target's old links go now: they would fire in its new image as well. */
	if (keep_in_map)
		attach__destroy(&t->links);
	else
		destroy_links_later(&t->links);
	if (t->pidfd >= 0)
		close(t->pidfd);
	if (!keep_in_map)
		bpf_map_delete_elem(w->cfg.targets_fd, &t->pid);
	*t = w->targets[--w->ntargets];
}

/*
 * A dynamic executable's libraries are mapped by its loader after the exec: wait for libc (at
 * most 500 ms; a static one or one without glibc's loader needs no wait).
 */
static void wait_loaded(int pid)
{
	int i;

	for (i = 0; i < 500; i++) {
		if (!proc__count_named(pid, "ld-linux") || proc__count_named(pid, "libc.so"))
			return;
		usleep(1000);
	}
}

/* The allocator probes of one new target, into t->links; msg says what failed. */
static int attach_allocator(struct watcher *w, struct helper_target *t, struct watch_msg *m)
{
	struct alloc_plan *plan = calloc(1, sizeof(*plan));
	uint32_t flags = 0;
	size_t k;
	int err, tries;

	if (!plan)
		return -ENOMEM;
	/* The loader may still be mapping libc's segments. */
	for (tries = 0; tries < 50; tries++) {
		err = alloc_plan__build((int)t->pid, w->cfg.allocator, plan, m->text,
					sizeof(m->text));
		if (!err || !proc__alive((int)t->pid))
			break;
		usleep(2000);
	}
	if (!err && bpf_map_update_elem(w->cfg.targets_fd, &t->pid, &flags, BPF_ANY)) {
		err = -errno;
		snprintf(m->text, sizeof(m->text), "failed to add target: %s", strerror(-err));
	}
	/*
	 * Runtimes first: reading their objects is the long part, and the daemon holds the
	 * target's events from the first probe live until ATTACHED (watcher__before_event).
	 */
	if (!err)
		m->runtime = watcher_grant__runtimes(&w->images, &w->ctx, w->cfg.runtime, t->pid,
						     &t->links);
	/*
	 * A breakpoint taken out of a forked child before now: its calls since were neither seen
	 * nor counted. Its own probes (return probes first) put it back and keep it.
	 */
	if (!err && m->parent && fork_window__intact((int)t->pid, plan) != 1)
		m->window_lost = 1;
	for (k = 0; !err && k < plan->n; k++)
		err = attach__plan(w->ctx.obj, (int)t->pid, &plan->objects[k], w->ctx.multi,
				   &t->links, m->text, sizeof(m->text));
	if (!err) {
		m->live_ns = now_ns();
		m->nprobes = t->links.nprobes;
		m->functions = (uint32_t)probe_plan__entry_functions(&plan->objects[plan->primary]);
		snprintf(m->family, sizeof(m->family), "%s", plan->families[plan->primary]->name);
		snprintf(m->object, sizeof(m->object), "%s", plan->objects[plan->primary].object);
		alloc_plan__describe(plan, m->text, sizeof(m->text));
	}
	alloc_plan__clear(plan);
	free(plan);
	return err;
}

/*
 * Traces pid from its exec (or fork from parent) at ts: tells the daemon first, so that no
 * event of it can come before its record, then attaches. Never a process the selectors (or
 * the following of a target) did not choose.
 */
static void begin_target(struct watcher *w, uint32_t pid, uint32_t parent, uint64_t ts)
{
	struct watch_msg *m = calloc(1, sizeof(*m));
	struct helper_target *t;
	int err;

	if (!m)
		return;
	m->parent = parent;
	m->exec_ns = ts;
	t = helper_target(w, pid);
	if (t)
		drop_target(w, t, true); /* its old image's probes go before the new image's */
	if (w->ntargets >= w->cfg.max_targets ||
	    array__grow((void **)&w->targets, &w->targets_cap, w->ntargets, sizeof(*w->targets),
			16)) {
		w->missed++;
		snprintf(m->text, sizeof(m->text), "not traced: --max-targets %zu reached",
			 w->cfg.max_targets);
		m->kind = WATCH_FAILED;
		m->pid = pid;
		send_msg(w, m);
		if (!parent)
			bpf_map_delete_elem(w->cfg.targets_fd, &pid);
		free(m);
		return;
	}
	t = &w->targets[w->ntargets++];
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->since = ts;
	t->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (!parent)
		wait_loaded((int)pid);
	m->pid = pid;
	m->parent = parent;
	m->exec_ns = ts;
	if (!parent) {
		if (selector__identify((int)pid, &m->id)) {
			drop_target(w, t, false);
			w->missed++;
			m->kind = WATCH_FAILED;
			snprintf(m->text, sizeof(m->text), "exited during attach");
			send_msg(w, m);
			free(m);
			return;
		}
		m->kind = WATCH_BEGIN;
		send_msg(w, m);
	}
	err = attach_allocator(w, t, m);
	if (!err && !proc__alive((int)pid))
		err = -ESRCH;
	if (!err && (m->runtime || w->cfg.grant)) {
		m->nprobes = t->links.nprobes;
		err = watcher_grant__send(w->fd, pid, t->pidfd);
		if (err == -ESRCH)
			err = 0; /* exited: ATTACHED without descriptors, the daemon reads none */
	}
	if (err) {
		if (err == -ESRCH || !proc__alive((int)pid))
			snprintf(m->text, sizeof(m->text), "exited during attach");
		m->kind = WATCH_FAILED;
		drop_target(w, t, false);
	} else {
		m->kind = WATCH_ATTACHED;
	}
	send_msg(w, m);
	free(m);
}

/*
 * Chosen: a selector matches it (comm as the exec event saw it, or NULL), and it is none of
 * memscoped's own processes. A process gone before it could be matched is counted, once said.
 */
static bool chosen(struct watcher *w, uint32_t pid, const char *comm)
{
	struct proc_identity *id;
	bool match;
	int err;

	if (selector__empty(w->cfg.selector) || pid == (uint32_t)w->daemon_pid ||
	    pid == (uint32_t)getpid())
		return false;
	id = malloc(sizeof(*id));
	if (!id)
		return false;
	snprintf(id->comm, sizeof(id->comm), "%s", comm ? comm : "");
	err = selector__identify_for(w->cfg.selector, (int)pid, id);
	match = !err && selector__match(w->cfg.selector, id);
	free(id);
	if (err == -ESRCH || err == -ENOENT) {
		if (!w->gone_unmatched++)
			w->ctx.log("pid %u: exited before its executable or cgroup could be read "
				   "(it may have been a target); later ones are not said",
				   pid);
	}
	return match;
}

/*
 * A process the daemon traces from the start (--pid): its probes are the daemon's. Still that
 * process, not a later one given its pid (its pidfd says).
 */
static bool initial_target(struct watcher *w, uint32_t pid)
{
	struct process *p;
	size_t i;

	for (i = 0; i < w->ninitial; i++) {
		p = process_table__at(w->procs, i);
		if (p->pid == pid)
			return !p->execed && w->initial_pidfds[i] >= 0 &&
			       !syscall(SYS_pidfd_send_signal, w->initial_pidfds[i], 0, NULL, 0);
	}
	return false;
}

static int on_proc_event(void *ctx, void *data, size_t len)
{
	const struct ms_proc_event *e = data;
	struct watcher *w = ctx;
	struct helper_target *t;

	if (len < sizeof(*e))
		return 0;
	t = helper_target(w, e->pid);
	/* Its pid given to another process since: that one is chosen, or not, on its own. */
	if (t && t->pidfd >= 0 && syscall(SYS_pidfd_send_signal, t->pidfd, 0, NULL, 0)) {
		drop_target(w, t, true);
		t = NULL;
	}
	/* An exec from before the helper found the process at start is its current image. */
	if (t && e->ts <= t->since)
		return 0;
	/*
	 * Only a child of a process the helper chose or the daemon was given at start: the
	 * daemon can write the targets map, so a fork event alone proves nothing.
	 */
	if (e->type == MS_PROC_FORK) {
		if (helper_target(w, e->parent) || initial_target(w, e->parent))
			begin_target(w, e->pid, e->parent, e->ts);
		return 0;
	}
	if (initial_target(w, e->pid)) {
		/* --pid targets end at their exec, as without selectors: the daemon holds their links. */
		process_table__find(w->procs, e->pid)->execed = true;
		bpf_map_delete_elem(w->cfg.targets_fd, &e->pid);
		return 0;
	}
	/* A target that execs stays traced, planned for its new image. */
	if (t || chosen(w, e->pid, e->comm))
		begin_target(w, e->pid, 0, e->ts);
	return 0;
}

/* Processes running at start that the selectors choose. */
static void select_running(struct watcher *w)
{
	struct dirent *de;
	DIR *dir = opendir("/proc");
	uint32_t pid;
	char *end;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		pid = (uint32_t)strtoul(de->d_name, &end, 10);
		if (!pid || *end || initial_target(w, pid) || helper_target(w, pid) ||
		    !chosen(w, pid, NULL))
			continue;
		begin_target(w, pid, 0, now_ns());
	}
	closedir(dir);
}

static bool target_gone(const struct helper_target *t)
{
	return !proc__alive((int)t->pid) ||
	       (t->pidfd >= 0 && syscall(SYS_pidfd_send_signal, t->pidfd, 0, NULL, 0));
}

/* Targets that exited leave the map and give their links back. */
static void reap_targets(struct watcher *w, struct ring_buffer *rb)
{
	bool gone = false;
	size_t i;

	for (i = 0; i < w->ntargets && !gone; i++)
		gone = target_gone(&w->targets[i]);
	if (!gone)
		return;
	/*
	 * A target forks before it dies: its children's fork events, in the ring since, are
	 * read while it still counts as their parent.
	 */
	if (rb)
		ring_buffer__consume(rb);
	for (i = w->ntargets; i-- > 0;)
		if (target_gone(&w->targets[i]))
			drop_target(w, &w->targets[i], false);
}

static void watch(struct watcher *w, pid_t daemon_pid)
{
	struct pollfd pfd[2] = { { .fd = w->fd, .events = POLLIN }, { .fd = -1 } };
	size_t n = process_table__count(w->procs), i, j;
	struct ring_buffer *rb = NULL;
	uint64_t next_tick;
	size_t *seen = calloc(n * nruntimes + 1, sizeof(*seen));
	int *pidfds = calloc(n + 1, sizeof(*pidfds));
	struct process *p;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	attach__close_inherited();
	if (getppid() != daemon_pid || !seen || !pidfds || privilege__drop(WATCH_CAPS, NULL))
		_exit(1);
	w->ctx.verbose = 0; /* every second: only what it attaches is news */
	for (i = 0; i < n; i++) {
		p = process_table__at(w->procs, i);
		/* A pidfd follows this process, not a later one given its pid. */
		pidfds[i] = (int)syscall(SYS_pidfd_open, p->pid, 0);
		for (j = 0; j < nruntimes; j++)
			if (watched(runtimes[j]))
				seen[i * nruntimes + j] =
					proc__count_named((int)p->pid, runtimes[j]->library);
	}
	if (w->cfg.proc_ring_fd >= 0) {
		rb = ring_buffer__new(w->cfg.proc_ring_fd, on_proc_event, w, NULL);
		if (!rb)
			_exit(1);
		pfd[1].fd = ring_buffer__epoll_fd(rb);
		pfd[1].events = POLLIN;
	}
	w->initial_pidfds = pidfds;
	w->ninitial = n;
	select_running(w);
	next_tick = now_ns();
	/* The daemon never writes: readable means it closed its end or is gone. */
	while (!*w->exiting && poll(pfd, rb ? 2 : 1, WATCH_PERIOD_MS) >= 0 && !pfd[0].revents) {
		if (rb)
			ring_buffer__consume(rb);
		/* The children that closed links (destroy_links_later). */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (now_ns() < next_tick)
			continue;
		next_tick = now_ns() + WATCH_PERIOD_MS * 1000000ull;
		reap_targets(w, rb);
		for (i = 0; i < n && w->cfg.watch_libraries; i++) {
			p = process_table__at(w->procs, i);
			if (p->execed || pidfds[i] < 0 ||
			    syscall(SYS_pidfd_send_signal, pidfds[i], 0, NULL, 0) ||
			    !proc__alive((int)p->pid))
				continue;
			for (j = 0; j < nruntimes; j++)
				if (watched(runtimes[j]))
					watch_runtime(w, p, j, &seen[i * nruntimes + j]);
		}
	}
	_exit(0);
}

struct watcher *watcher__start(struct process_table *procs, const struct runtime_ctx *ctx,
			       const struct watcher_config *cfg, volatile sig_atomic_t *exiting)
{
	struct watcher *w = calloc(1, sizeof(*w));
	pid_t daemon_pid = getpid();
	int sv[2];

	if (!w || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		ctx->log("cannot watch for libraries loaded later: %s, ignoring", strerror(errno));
		free(w);
		return NULL;
	}
	w->procs = procs;
	w->ctx = *ctx;
	w->cfg = *cfg;
	w->daemon_pid = daemon_pid;
	w->exiting = exiting;
	w->pid = fork();
	if (w->pid == 0) {
		close(sv[0]);
		w->fd = sv[1];
		watch(w, daemon_pid);
	}
	close(sv[1]);
	if (w->pid < 0) {
		ctx->log("cannot watch for libraries loaded later: %s, ignoring", strerror(errno));
		close(sv[0]);
		free(w);
		return NULL;
	}
	w->fd = sv[0];
	fcntl(w->fd, F_SETFL, O_NONBLOCK);
	return w;
}

/* A selected process's record, from its exec on. */
static void begin_record(struct watcher *w, const struct watch_msg *m)
{
	struct process *old = process_table__find(w->procs, m->pid), *p;

	/* The same pid's last record: the image before this exec, or a process long gone. */
	if (old && !old->exited && !old->execed) {
		old->execed = true;
		old->ended_ns = m->exec_ns;
	}
	p = process_table__add(w->procs, m->pid, m->id.comm, m->id.exe);
	if (!p || process__set_labels(p, m->id.cgroup, m->id.container_id, m->id.unit)) {
		w->ctx.log("pid %u: out of memory, ignoring", m->pid);
		return;
	}
	p->ns_pid = m->id.ns_pid;
	p->exec_ns = m->exec_ns;
	p->start_ns = m->exec_ns;
	p->attach_pending = true;
}

/* The record ATTACHED or FAILED is about: the process the helper began, not an older one. */
static struct process *awaiting(struct watcher *w, const struct watch_msg *m)
{
	struct process *p = process_table__find(w->procs, m->pid);

	/* Begun by the helper (exec, fork) and not attached yet, even if the daemon gave up. */
	if (!p || p->exited || p->execed || !p->exec_ns || p->probes_attached)
		return NULL;
	return !m->parent || p->parent == m->parent ? p : NULL;
}

static void attached_record(struct watcher *w, const struct watch_msg *m, struct proc_grant *g)
{
	struct process *p = awaiting(w, m);
	const struct alloc_family *f = alloc_family__find(m->family);
	char rt[PATH_MAX + 32], found[2 * PATH_MAX] = "";
	size_t i;

	w->ctx.log("pid %u: allocator %s", m->pid, m->text);
	if (p) {
		if (m->parent) {
			p->fork_window_live_ns = m->live_ns;
			p->fork_window_uncounted |= m->window_lost != 0;
		}
		p->attach_pending = false;
		p->probes_attached = (uint32_t)m->nprobes;
		p->attach_latency_ns = m->live_ns > m->exec_ns ? m->live_ns - m->exec_ns : 0;
		p->allocator.family = f ? f->name : NULL;
		free(p->allocator.object);
		p->allocator.object = strdup(m->object);
		p->allocator.functions = m->functions;
		free(p->allocator.probed);
		p->allocator.probed = strdup(m->text);
		if (proc__cpu_seconds((int)p->pid, &p->allocator.cpu_at_attach))
			p->allocator.cpu_at_attach = 0;
		/* Its runtimes and the rest, read through the helper's descriptors. */
		if (g && g->pid == (int)p->pid && w->cfg.attached) {
			proc__use_grant(g);
			w->cfg.attached(w->cfg.attached_ctx, p, m->runtime);
			proc__use_grant(NULL);
		}
		for (i = 0; i < nruntimes; i++)
			if (runtimes[i]->describe && !runtimes[i]->describe(p, rt, sizeof(rt)))
				snprintf(found + strlen(found), sizeof(found) - strlen(found),
					 ", %s", rt);
	}
	w->ctx.log("attached %" PRIu64 " probes to pid %u (allocator in '%s'%s)%s", m->nprobes,
		   m->pid, m->object, found, m->parent ? " (forked)" : "");
}

static void failed_record(struct watcher *w, const struct watch_msg *m)
{
	struct process *p = awaiting(w, m);

	w->missed++;
	w->ctx.log("pid %u: %s", m->pid, m->text);
	if (!p)
		p = process_table__find(w->procs, m->pid);
	if (p && p->attach_pending)
		p->attach_pending = false;
	if (p && !p->exited && !p->execed && p->exec_ns) {
		p->exited = true;
		p->ended_ns = m->exec_ns;
	}
}

static void deferred_drop(struct watcher *w, size_t i)
{
	/* A process the helper could not attach is missed, whether its record came or not. */
	if (w->deferred[i].m->kind == WATCH_FAILED)
		w->missed++;
	free(w->deferred[i].m);
	watcher_grant__free(w->deferred[i].grant);
	w->deferred[i] = w->deferred[--w->ndeferred];
}

/*
 * ATTACHED or FAILED: applied now, or kept for a child whose fork the daemon has not decoded
 * yet (the fork is in the parent's events, the word on the child may come first).
 */
static void helper_word(struct watcher *w, const struct watch_msg *m)
{
	struct proc_grant *g = w->incoming && w->incoming->pid == (int)m->pid ? w->incoming : NULL;
	struct deferred *d;

	struct process *p = process_table__find(w->procs, m->pid);
	uint64_t now = now_ns();
	size_t i;

	if (g)
		w->incoming = NULL;
	/* Words whose fork never came (a lost event) give their descriptors back. */
	for (i = w->ndeferred; i-- > 0;)
		if (now - w->deferred[i].since > AWAIT_MS * 1000000ull)
			deferred_drop(w, i);
	/* Kept only while the child has no record: one that ended takes its word now. */
	if (m->parent && (!p || p->parent != m->parent)) {
		if (w->ndeferred == MAX_DEFERRED)
			deferred_drop(w, 0);
		d = w->deferred ? w->deferred : calloc(MAX_DEFERRED, sizeof(*d));
		w->deferred = d;
		if (d && (d[w->ndeferred].m = malloc(sizeof(*m)))) {
			d += w->ndeferred;
			memcpy(d->m, m, sizeof(*m));
			d->grant = g;
			d->since = now;
			w->ndeferred++;
			return;
		}
	}
	if (m->kind == WATCH_ATTACHED)
		attached_record(w, m, g);
	else
		failed_record(w, m);
	watcher_grant__free(g);
}

/* The word kept for p's fork, if it came: applied. */
static bool take_deferred(struct watcher *w, struct process *p)
{
	struct deferred d;
	size_t i;

	for (i = 0; i < w->ndeferred; i++) {
		if (w->deferred[i].m->pid != p->pid || w->deferred[i].m->parent != p->parent)
			continue;
		d = w->deferred[i];
		w->deferred[i] = w->deferred[--w->ndeferred];
		if (d.m->kind == WATCH_ATTACHED)
			attached_record(w, d.m, d.grant);
		else
			failed_record(w, d.m);
		free(d.m);
		watcher_grant__free(d.grant);
		return true;
	}
	return false;
}

static void library_attached(struct watcher *w, struct attachment *links, const struct watch_msg *m,
			     int *fds, int n)
{
	struct process *p = process_table__find(w->procs, m->pid);
	const struct runtime *r = m->runtime < nruntimes ? runtimes[m->runtime] : NULL;
	int i;

	for (i = 0; i < n; i++)
		if (!p || !r || p->execed || attach__adopt(links, fds[i]))
			close(fds[i]);
	if (!p || !r || p->execed)
		return;
	links->nprobes += m->nprobes;
	p->probes_attached += (uint32_t)m->nprobes;
	if (r->late_import)
		r->late_import(p, m->data);
	w->ctx.log("pid %u: %s: its library was loaded after attach; %" PRIu64 " probes attached",
		   m->pid, r->name, m->nprobes);
}

/*
 * Kept words whose child's record exists now (its fork decoded since): applied, whether or not
 * the child has an event for watcher__before_event to wait on (one in its window has none).
 */
static void take_ready(struct watcher *w)
{
	struct process *p;
	size_t i;

	for (i = w->ndeferred; i-- > 0;) {
		if (i >= w->ndeferred)
			continue;
		p = process_table__find(w->procs, w->deferred[i].m->pid);
		if (p && p->parent == w->deferred[i].m->parent && p->attach_pending)
			take_deferred(w, p);
	}
}

void watcher__receive(struct watcher *w, struct attachment *links)
{
	struct watch_msg *m;
	int fds[FD_PASS_MAX], n;

	if (!w || w->fd < 0)
		return;
	m = malloc(sizeof(*m));
	while (m && w->fd >= 0) {
		n = fd_pass__recv(w->fd, m, sizeof(*m), fds);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			w->ctx.log(
				"the attach helper stopped%s%s, ignoring: libraries and processes "
				"started from now on are not traced",
				n == -EPIPE ? "" : ": ", n == -EPIPE ? "" : strerror(-n));
			close(w->fd);
			w->fd = -1;
			break;
		}
		switch (m->kind) {
		case WATCH_LIBRARY:
			library_attached(w, links, m, fds, n);
			break;
		case WATCH_BEGIN:
			begin_record(w, m);
			break;
		case WATCH_ATTACHED:
		case WATCH_FAILED:
			helper_word(w, m);
			break;
		case WATCH_GRANT:
			watcher_grant__free(w->incoming);
			w->incoming = watcher_grant__begin(m, fds, n);
			break;
		case WATCH_OBJECTS:
			watcher_grant__objects(w->incoming, m, fds, n);
			break;
		default:
			while (n > 0)
				close(fds[--n]);
			break;
		}
	}
	free(m);
	take_ready(w);
}

/*
 * An event of a process the helper is attaching: its probes are live, so its word (and its
 * runtimes) is on the way. Waits for it, so that no event of the process is decoded before
 * the daemon has its runtimes and its attach scan; the helper sends it within its attach.
 */
static void await_attached(struct watcher *w, struct attachment *links, struct process *p)
{
	struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
	/* One deadline: the helper's words on other processes do not extend it. */
	uint64_t deadline = now_ns() + AWAIT_MS * 1000000ull, now;

	while (p->attach_pending && !take_deferred(w, p)) {
		pfd.fd = w->fd;
		now = now_ns();
		if (w->fd < 0 || now >= deadline ||
		    poll(&pfd, 1, (int)((deadline - now + 999999) / 1000000)) <= 0) {
			/* No word yet (a lost process event, or a slow helper): said, not waited on. */
			p->attach_pending = false;
			w->ctx.log(
				"pid %u: no word from the attach helper within %d ms: its events "
				"are decoded without its runtimes until it comes",
				p->pid, AWAIT_MS);
			break;
		}
		watcher__receive(w, links);
	}
}

void watcher__before_event(struct watcher *w, struct attachment *links, const struct ms_event *e)
{
	struct process *p;
	size_t i;

	if (!w || w->fd < 0)
		return;
	p = process_table__find(w->procs, e->pid);
	/* A process the helper began to trace: its record is waiting. */
	if (!p || p->execed || p->exited) {
		watcher__receive(w, links);
		p = process_table__find(w->procs, e->pid);
	} else {
		for (i = 0; i < nruntimes; i++) {
			if (!watched(runtimes[i]) || !runtimes[i]->owns || !runtimes[i]->owns(e))
				continue;
			if (!runtimes[i]->attached(p))
				watcher__receive(w, links);
			break;
		}
	}
	if (p && p->attach_pending && !p->execed && !p->exited)
		await_attached(w, links, p);
}

uint64_t watcher__missed(const struct watcher *w)
{
	return w ? w->missed : 0;
}

void watcher__stop(struct watcher *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->pid > 0)
		while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
			;
	while (w->ndeferred)
		deferred_drop(w, 0);
	free(w->deferred);
	watcher_grant__free(w->incoming);
	free(w);
}
