// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "array.h"
#include "fd_pass.h"
#include "proc.h"
#include "process_table.h"
#include "runtime.h"
#include "watcher_grant.h"

/*
 * The last thing a runtime said while the helper attached it: the helper says it on failure
 * only (the daemon, reading the runtimes again, says the rest).
 */
static char runtime_said[512];

static void keep_runtime_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(runtime_said, sizeof(runtime_said), fmt, ap);
	va_end(ap);
}

/* FNV-1a of the device and inode of each executable file mapping, in address order. */
static int image_line(const char *line, void *ctx)
{
	unsigned long long inode;
	char perms[5], dev[16];
	uint64_t *h = ctx;
	const char *s;

	if (sscanf(line, "%*s %4s %*s %15s %llu", perms, dev, &inode) != 3 || perms[2] != 'x' ||
	    !inode)
		return 0;
	for (s = dev; *s; s++)
		*h = (*h ^ (uint8_t)*s) * 0x100000001b3ull;
	*h = (*h ^ inode) * 0x100000001b3ull;
	return 0;
}

/*
 * The runtimes found last time in a process of the same image (the same executable files
 * mapped): the others are not looked for again. Planning reads every object, which costs more
 * than attaching (8 ms against 3 for a C program here), and a restarting or forking service
 * is the same image each time. The objects decide; a library loaded later changes the key.
 */
static uint32_t image_runtimes(const struct watcher_images *c, uint32_t pid, uint64_t *ret_key)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	*ret_key = 0;
	if (proc__maps_lines((int)pid, image_line, &h))
		return ~0u;
	*ret_key = h;
	for (i = 0; i < WATCHER_IMAGES; i++)
		if (c->images[i].key == h)
			return c->images[i].runtimes;
	return ~0u;
}

static void image_remember(struct watcher_images *c, uint64_t key, uint32_t found)
{
	size_t i;

	if (!key)
		return;
	for (i = 0; i < WATCHER_IMAGES; i++)
		if (c->images[i].key == key)
			return;
	c->images[c->next] = (struct watcher_image){ key, found };
	c->next = (c->next + 1) % WATCHER_IMAGES;
}

uint32_t watcher_grant__runtimes(struct watcher_images *c, const struct runtime_ctx *base,
				 const char *requested, uint32_t pid, struct attachment *links)
{
	struct process_limits limits = { 0 };
	struct runtime_ctx ctx = *base;
	struct process_table *pt;
	struct process *p = NULL;
	uint32_t known, found = 0;
	uint64_t key;
	char *exe = NULL;
	size_t i;
	int err;

	if (!requested || !strcmp(requested, "none"))
		return 0;
	known = image_runtimes(c, pid, &key);
	pt = process_table__new(&limits, NULL);
	if (pt && !proc__exe((int)pid, &exe))
		p = process_table__add(pt, pid, "", exe);
	free(exe);
	if (p) {
		ctx.links = links;
		ctx.log = keep_runtime_msg;
		runtime_said[0] = '\0';
		err = runtime__attach_some(&ctx, p, requested, known);
		if (err && runtime_said[0] && proc__alive((int)pid))
			base->log("%s, ignoring (allocator only)", runtime_said);
		for (i = 0; i < nruntimes; i++)
			if (runtimes[i]->attached(p))
				found |= 1u << i;
		/* Found or not (-EINVAL: a runtime --runtime names is absent), it is the image's. */
		if (!err || err == -EINVAL)
			image_remember(c, key, found);
	}
	process_table__free(pt);
	return found;
}

/* Objects a grant passes at most (each a descriptor the daemon holds while it reads). */
#define GRANT_OBJECTS_MAX 256

struct grant_objects {
	char **paths;
	size_t n;
};

static int executable_object(const struct proc_mapping *m, void *ctx)
{
	struct grant_objects *g = ctx;
	char **paths;
	size_t i;

	if (m->perms[2] != 'x' || g->n == GRANT_OBJECTS_MAX)
		return 0;
	for (i = 0; i < g->n; i++)
		if (!strcmp(g->paths[i], m->path))
			return 0;
	paths = realloc(g->paths, (g->n + 1) * sizeof(*paths));
	if (!paths)
		return -ENOMEM;
	g->paths = paths;
	g->paths[g->n] = strdup(m->path);
	return g->paths[g->n++] ? 0 : -ENOMEM;
}

/*
 * The descriptors the daemon reads the target through (proc.h): its maps, mem and root, and
 * its executable objects, opened here where the kernel's access checks are made. Only for a
 * target the helper attached; objects past GRANT_OBJECTS_MAX are read through its root.
 */
/* The process pidfd follows is still there: what was opened by its pid is its own. */
static bool still_there(int pidfd)
{
	return pidfd < 0 || !syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0);
}

int watcher_grant__send(int sock, uint32_t pid, int pidfd)
{
	struct grant_objects *g = calloc(1, sizeof(*g));
	struct watch_msg *m = calloc(1, sizeof(*m));
	char path[PATH_MAX], *exe = NULL;
	int fds[FD_PASS_MAX], n = 0, err = 0;
	size_t i, off = 0, len;

	if (!g || !m) {
		free(g);
		free(m);
		return -ENOMEM;
	}
	m->pid = pid;
	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	fds[n++] = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%u/mem", pid);
	fds[n++] = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%u/root", pid);
	fds[n++] = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || proc__exe((int)pid, &exe) ||
	    proc__mappings((int)pid, executable_object, g) < 0 || !still_there(pidfd))
		err = -ESRCH;
	m->kind = WATCH_GRANT;
	snprintf(m->object, sizeof(m->object), "%s", exe ? exe : "");
	if (!err && fd_pass__send(sock, m, sizeof(*m), fds, 3) < 0)
		err = -EPIPE;
	for (i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	m->kind = WATCH_OBJECTS;
	for (i = 0, n = 0; !err && i <= g->n; i++) {
		len = i < g->n ? strlen(g->paths[i]) + 1 : 0;
		/* Full, or the last: send what is gathered. */
		if (n && (i == g->n || n == FD_PASS_MAX || off + len > sizeof(m->object))) {
			if (!still_there(pidfd))
				err = -ESRCH;
			else if (fd_pass__send(sock, m, sizeof(*m), fds, (size_t)n) < 0)
				err = -EPIPE;
			while (n)
				close(fds[--n]);
			off = 0;
		}
		if (i == g->n || err)
			break;
		if (len > sizeof(m->object) ||
		    proc__root_path((int)pid, g->paths[i], path, sizeof(path)) ||
		    (fds[n] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		memcpy(m->object + off, g->paths[i], len);
		off += len;
		n++;
	}
	for (i = 0; i < g->n; i++)
		free(g->paths[i]);
	free(g->paths);
	free(exe);
	free(g);
	free(m);
	return err;
}

void watcher_grant__free(struct proc_grant *g)
{
	size_t i;

	if (!g)
		return;
	if (g->maps_fd >= 0)
		close(g->maps_fd);
	if (g->mem_fd >= 0)
		close(g->mem_fd);
	if (g->root_fd >= 0)
		close(g->root_fd);
	for (i = 0; i < g->nobjects; i++) {
		close(g->fds[i]);
		free(g->paths[i]);
	}
	free(g->paths);
	free(g->fds);
	free((char *)g->exe);
	free(g);
}

struct proc_grant *watcher_grant__begin(const struct watch_msg *m, int *fds, int n)
{
	struct proc_grant *g = calloc(1, sizeof(*g));
	int i;

	if (!g || n != 3 || !(g->exe = strdup(m->object))) {
		for (i = 0; i < n; i++)
			close(fds[i]);
		free(g);
		return NULL;
	}
	g->pid = (int)m->pid;
	g->maps_fd = fds[0];
	g->mem_fd = fds[1];
	g->root_fd = fds[2];
	return g;
}

void watcher_grant__objects(struct proc_grant *g, const struct watch_msg *m, int *fds, int n)
{
	size_t off = 0, len;
	int i;

	for (i = 0; i < n; i++) {
		len = strnlen(m->object + off, sizeof(m->object) - off);
		if (!g || g->pid != (int)m->pid || off + len >= sizeof(m->object) ||
		    array__grow((void **)&g->fds, &(size_t){ g->nobjects }, g->nobjects,
				sizeof(*g->fds), 1) ||
		    array__grow((void **)&g->paths, &(size_t){ g->nobjects }, g->nobjects,
				sizeof(*g->paths), 1) ||
		    !(g->paths[g->nobjects] = strndup(m->object + off, len))) {
			close(fds[i]);
			continue;
		}
		g->fds[g->nobjects++] = fds[i];
		off += len + 1;
	}
}
