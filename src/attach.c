// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/bpf.h>
#include <bpf/libbpf.h>
#include "array.h"
#include "attach.h"
#include "fd_pass.h"

/* The link_create part of union bpf_attr for uprobe_multi (kernel 6.6+ uapi). */
struct uprobe_multi_attr {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags;
	uint64_t path;
	uint64_t offsets;
	uint64_t ref_ctr_offsets;
	uint64_t cookies;
	uint32_t cnt;
	uint32_t multi_flags; /* BPF_F_UPROBE_MULTI_RETURN */
	uint32_t pid;
	uint32_t __pad;
};

#define UPROBE_MULTI_RETURN 1u

/*
 * Closes every fd above stderr but a and b. A forked helper that outlives the daemon must not
 * hold the daemon's links: they would keep their probes in the target until it exits.
 */
static void keep_only_fds(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0u, 0);
}

/*
 * BPF_LINK_CREATE in a short-lived child, which passes the link back over a socket. A SIGKILL
 * that lands while the kernel is placing uprobes makes it fail to remove the ones already
 * placed ("failed to unregister, leaking uprobe"), leaving breakpoints in the target for good.
 * Killing the daemon now never interrupts that call: the child finishes it, and if the daemon
 * is gone its exit releases the link cleanly. Returns the link fd or -errno.
 */
static int link_create_in_child(const struct uprobe_multi_attr *attr)
{
	int sv[2], fd = -1, n, err = 0;
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	child = fork();
	if (child < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (child == 0) {
		keep_only_fds((int)attr->prog_fd, sv[1]);
		fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, attr, sizeof(*attr));
		err = fd < 0 ? errno : 0;
		_exit(fd_pass__send(sv[1], &err, sizeof(err), &fd, fd >= 0) < 0);
	}
	close(sv[1]);
	n = fd_pass__recv(sv[0], &err, sizeof(err), &fd);
	if (n < 0)
		err = -n;
	else if (!err && n != 1)
		err = EIO;
	close(sv[0]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	return !err ? fd : -err;
}

static int attach_multi(struct bpf_program *prog, int pid, const char *path,
			const uint64_t *offsets, const uint64_t *cookies, uint32_t n, bool retprobe,
			struct attachment *a)
{
	struct uprobe_multi_attr attr;
	int fd;

	if (array__grow((void **)&a->fds, &a->fds_cap, a->nfds, sizeof(*a->fds), 16))
		return -ENOMEM;
	memset(&attr, 0, sizeof(attr));
	attr.prog_fd = (uint32_t)bpf_program__fd(prog);
	attr.attach_type = MS_BPF_TRACE_UPROBE_MULTI;
	attr.path = (uint64_t)(uintptr_t)path;
	attr.offsets = (uint64_t)(uintptr_t)offsets;
	attr.cookies = (uint64_t)(uintptr_t)cookies;
	attr.cnt = n;
	attr.multi_flags = retprobe ? UPROBE_MULTI_RETURN : 0;
	attr.pid = (uint32_t)pid;
	/* The bpf_attr tail past our struct must be zero: the kernel checks it. */
	fd = link_create_in_child(&attr);
	if (fd < 0)
		return fd == -EINVAL || fd == -ENOSYS ? -EOPNOTSUPP : fd;
	a->fds[a->nfds++] = fd;
	a->nprobes += n;
	return 0;
}

static int attach_single(struct bpf_program *prog, int pid, const char *path, uint64_t offset,
			 uint64_t cookie, bool retprobe, struct attachment *a)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe, .bpf_cookie = cookie);
	struct bpf_link *link;
	int err;

	err = array__grow((void **)&a->links, &a->cap, a->nlinks, sizeof(*a->links), 16);
	if (err)
		return err;
	link = bpf_program__attach_uprobe_opts(prog, pid, path, offset, &opts);
	if (!link)
		return -errno;
	a->links[a->nlinks++] = link;
	a->nprobes++;
	return 0;
}

int attach__offsets(struct bpf_program *prog, int pid, const char *path, const uint64_t *offsets,
		    const uint64_t *cookies, size_t n, bool retprobe, bool multi,
		    struct attachment *a)
{
	size_t i;
	int err;

	if (!n)
		return 0;
	if (multi)
		return attach_multi(prog, pid, path, offsets, cookies, (uint32_t)n, retprobe, a);
	for (i = 0; i < n; i++) {
		err = attach_single(prog, pid, path, offsets[i], cookies ? cookies[i] : 0, retprobe,
				    a);
		if (err)
			return err;
	}
	return 0;
}

/* All probes of one program and kind in the plan, as one group. */
static int attach_group(struct bpf_program *prog, int pid, const struct probe_plan *plan,
			bool retprobe, bool multi, struct attachment *a)
{
	uint64_t *offsets, *cookies;
	size_t i, n = 0;
	int err;

	offsets = calloc(plan->nprobes, sizeof(*offsets));
	cookies = calloc(plan->nprobes, sizeof(*cookies));
	if (!offsets || !cookies) {
		free(offsets);
		free(cookies);
		return -ENOMEM;
	}
	for (i = 0; i < plan->nprobes; i++) {
		if (plan->probes[i].retprobe != retprobe ||
		    strcmp(plan->probes[i].prog, bpf_program__name(prog)))
			continue;
		offsets[n] = plan->probes[i].offset;
		cookies[n++] = plan->probes[i].cookie;
	}
	err = attach__offsets(prog, pid, plan->open_path, offsets, cookies, n, retprobe, multi, a);
	free(cookies);
	free(offsets);
	return err;
}

int attach__plan(struct bpf_object *obj, int pid, const struct probe_plan *plan, bool multi,
		 struct attachment *a, char *err, size_t errlen)
{
	struct bpf_program *prog;
	size_t i, j;
	int pass, ret;

	/*
	 * Return probes first: a call entered between the two would otherwise leave its thread
	 * "inside the allocator" forever, hiding every later call on that thread.
	 */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < plan->nprobes; i++) {
			const struct probe_spec *p = &plan->probes[i];

			if (p->retprobe != (pass == 0))
				continue;
			prog = bpf_object__find_program_by_name(obj, p->prog);
			if (!prog) {
				snprintf(err, errlen, "no BPF program '%s'", p->prog);
				return -ENOENT;
			}
			/* The first probe of each (program, kind) attaches the group. */
			for (j = 0; j < i; j++)
				if (plan->probes[j].retprobe == p->retprobe &&
				    !strcmp(plan->probes[j].prog, p->prog))
					break;
			ret = j < i ? 0 : attach_group(prog, pid, plan, p->retprobe, multi, a);
			if (ret) {
				snprintf(err, errlen, "failed to attach %s%s to '%s:%s': %s",
					 p->retprobe ? "uretprobe" : "uprobe",
					 multi ? " (uprobe_multi)" : "", plan->object, p->symbol,
					 strerror(-ret));
				return ret;
			}
		}
	}
	return 0;
}

int attach__fds(struct attachment *a, int *fds, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < a->nfds && n < max; i++)
		fds[n++] = a->fds[i];
	for (i = 0; i < a->nlinks && n < max; i++) {
		/* Owned by whoever holds the fd now: destroying ours must not detach it. */
		bpf_link__disconnect(a->links[i]);
		fds[n++] = bpf_link__fd(a->links[i]);
	}
	return n == a->nfds + a->nlinks ? (int)n : -E2BIG;
}

int attach__adopt(struct attachment *a, int fd)
{
	if (array__grow((void **)&a->fds, &a->fds_cap, a->nfds, sizeof(*a->fds), 16))
		return -ENOMEM;
	a->fds[a->nfds++] = fd;
	return 0;
}

void attach__close_inherited(void)
{
	char path[64], target[64];
	struct dirent *de;
	DIR *dir;
	ssize_t n;
	int fd;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		fd = atoi(de->d_name);
		if (fd <= 2 || fd == dirfd(dir))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (!strcmp(target, "anon_inode:bpf_link") ||
		    !strcmp(target, "anon_inode:[perf_event]"))
			close(fd);
	}
	closedir(dir);
}

void attach__destroy(struct attachment *a)
{
	size_t i;

	for (i = 0; i < a->nlinks; i++)
		bpf_link__destroy(a->links[i]);
	for (i = 0; i < a->nfds; i++)
		close(a->fds[i]);
	free(a->links);
	free(a->fds);
	memset(a, 0, sizeof(*a));
}
