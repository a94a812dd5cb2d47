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
#include "memscoped/events.h"
#include "attach.h"
#include "fd_pass.h"
#include "privilege.h"
#include "proc.h"
#include "process_table.h"
#include "runtime.h"
#include "watcher.h"

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

struct watch_msg {
	uint32_t pid;
	uint32_t runtime; /* index in runtimes[] */
	uint64_t data[2]; /* what the runtime's late_export said */
	uint64_t nprobes;
};

struct watcher {
	struct process_table *procs;
	struct runtime_ctx ctx;
	volatile sig_atomic_t *exiting;
	int fd; /* the socket, or -1 */
	pid_t pid;
};

/* Watched: a runtime whose library may be loaded later (dlopen). */
static bool watched(const struct runtime *r)
{
	return r->library != NULL;
}

/* One runtime in one target: attached when a library of its name appears in the maps. */
static void watch_runtime(struct watcher *w, struct process *p, size_t ri, size_t *seen)
{
	const struct runtime *r = runtimes[ri];
	struct watch_msg m = { .pid = p->pid, .runtime = (uint32_t)ri };
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

static void watch(struct watcher *w, pid_t daemon_pid)
{
	struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
	size_t n = process_table__count(w->procs), i, j;
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
	/* The daemon never writes: readable means it closed its end or is gone. */
	while (!*w->exiting && poll(&pfd, 1, WATCH_PERIOD_MS) == 0) {
		for (i = 0; i < n; i++) {
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
			       volatile sig_atomic_t *exiting)
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

void watcher__receive(struct watcher *w, struct attachment *links)
{
	const struct runtime *r;
	struct watch_msg m;
	int fds[FD_PASS_MAX], n, i;
	struct process *p;

	while (w && w->fd >= 0) {
		n = fd_pass__recv(w->fd, &m, sizeof(m), fds);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			w->ctx.log(
				"the library watcher stopped%s%s, ignoring: libraries loaded from "
				"now on are not traced",
				n == -EPIPE ? "" : ": ", n == -EPIPE ? "" : strerror(-n));
			close(w->fd);
			w->fd = -1;
			return;
		}
		p = process_table__find(w->procs, m.pid);
		r = m.runtime < nruntimes ? runtimes[m.runtime] : NULL;
		for (i = 0; i < n; i++)
			if (!p || !r || p->execed || attach__adopt(links, fds[i]))
				close(fds[i]);
		if (!p || !r || p->execed)
			continue;
		links->nprobes += m.nprobes;
		p->probes_attached += (uint32_t)m.nprobes;
		if (r->late_import)
			r->late_import(p, m.data);
		w->ctx.log("pid %u: %s: its library was loaded after attach; %" PRIu64
			   " probes attached",
			   m.pid, r->name, m.nprobes);
	}
}

void watcher__before_event(struct watcher *w, struct attachment *links, const struct ms_event *e)
{
	struct process *p;
	size_t i;

	if (!w || w->fd < 0)
		return;
	for (i = 0; i < nruntimes; i++) {
		if (!watched(runtimes[i]) || !runtimes[i]->owns || !runtimes[i]->owns(e))
			continue;
		p = process_table__find(w->procs, e->pid);
		if (p && !runtimes[i]->attached(p))
			watcher__receive(w, links);
		return;
	}
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
	free(w);
}
