// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include "proc.h"

#define PF_KTHREAD 0x00200000

static const struct proc_grant *grant;

void proc__use_grant(const struct proc_grant *g)
{
	grant = g;
}

static const struct proc_grant *granted(int pid)
{
	return grant && grant->pid == pid ? grant : NULL;
}

bool proc__granted(int pid)
{
	return granted(pid) != NULL;
}

int proc__open_maps(int pid)
{
	char path[64];
	int fd;

	if (granted(pid)) {
		/* A dup shares the offset: start over. */
		fd = fcntl(grant->maps_fd, F_DUPFD_CLOEXEC, 0);
		if (fd >= 0 && lseek(fd, 0, SEEK_SET) < 0) {
			close(fd);
			fd = -1;
		}
	} else {
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

int proc__open_root(int pid)
{
	char path[64];
	int fd;

	if (granted(pid))
		fd = fcntl(grant->root_fd, F_DUPFD_CLOEXEC, 0);
	else {
		snprintf(path, sizeof(path), "/proc/%d/root", pid);
		fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

int proc__comm(int pid, int tid, char comm[PROC_COMM_LEN])
{
	char path[64];
	FILE *f;
	size_t n;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(comm, 1, PROC_COMM_LEN - 1, f);
	fclose(f);
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return 0;
}

int proc__exe(int pid, char **ret_path)
{
	char link[64], buf[PATH_MAX];
	ssize_t n;

	if (granted(pid)) {
		*ret_path = strdup(grant->exe);
		return *ret_path ? 0 : -ENOMEM;
	}
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, buf, sizeof(buf) - 1);
	/* A user process has an executable until it exits: no link is a process exiting. */
	if (n < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	buf[n] = '\0';
	*ret_path = strdup(buf);
	return *ret_path ? 0 : -ENOMEM;
}

int proc__state(int pid, char *ret_state, bool *ret_kernel_thread)
{
	char path[64], buf[1024], *p;
	unsigned long flags = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: the state follows the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", ret_state, &flags) != 2)
		return -EIO;
	if (ret_kernel_thread)
		*ret_kernel_thread = flags & PF_KTHREAD;
	return 0;
}

int proc__cpu_seconds(int pid, double *ret_seconds)
{
	unsigned long long utime, stime;
	char path[64], buf[1024], *p;
	long tick = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15 (utime, stime), after the comm's last ')'. */
	p = strrchr(buf, ')');
	if (!p || tick <= 0 ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
		   &stime) != 2)
		return -EIO;
	*ret_seconds = (double)(utime + stime) / (double)tick;
	return 0;
}

int proc__read(int pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };

	if (granted(pid))
		return pread(grant->mem_fd, buf, len, (off_t)addr) == (ssize_t)len ? 0 : -EFAULT;
	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

bool proc__alive(int pid)
{
	char state, link[64], buf[16];

	if (proc__state(pid, &state, NULL) || state == 'Z' || state == 'X')
		return false;
	/* Exiting, not yet a zombie: its memory and executable are gone already. */
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	return readlink(link, buf, sizeof(buf)) >= 0 || errno != ENOENT;
}

bool proc__parse_maps_line(char *line, struct proc_mapping *ret)
{
	int path_at = 0;

	line[strcspn(line, "\n")] = '\0';
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %*s %*u %n", &ret->start,
		   &ret->end, ret->perms, &ret->offset, &path_at) < 4 ||
	    !path_at || line[path_at] != '/')
		return false;
	ret->path = line + path_at;
	return true;
}

int proc__maps_lines(int pid, int (*cb)(const char *line, void *ctx), void *ctx)
{
	char *line = NULL;
	size_t cap = 0;
	int ret = 0, fd;
	FILE *f;

	/* A granted maps descriptor reads the maps of now again from offset 0. */
	fd = proc__open_maps(pid);
	if (fd < 0)
		return fd;
	f = fdopen(fd, "re");
	if (!f) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while (!ret && getline(&line, &cap, f) > 0)
		ret = cb(line, ctx);
	free(line);
	fclose(f);
	return ret;
}

struct mapping_ctx {
	proc_mapping_cb cb;
	void *ctx;
	char line[PATH_MAX + 128];
};

static int parse_mapping(const char *line, void *ctx)
{
	struct mapping_ctx *m = ctx;
	struct proc_mapping map;

	snprintf(m->line, sizeof(m->line), "%s", line);
	return proc__parse_maps_line(m->line, &map) ? m->cb(&map, m->ctx) : 0;
}

int proc__mappings(int pid, proc_mapping_cb cb, void *ctx)
{
	struct mapping_ctx m = { .cb = cb, .ctx = ctx };

	return proc__maps_lines(pid, parse_mapping, &m);
}

struct libc_ctx {
	char *buf;
	size_t len;
	size_t mappings;
	size_t skip; /* distinct libc paths still to pass */
};

static int match_libc(const struct proc_mapping *m, void *ctx)
{
	struct libc_ctx *l = ctx;
	const char *base = strrchr(m->path, '/');

	l->mappings++;
	base = base ? base + 1 : m->path;
	if (strncmp(base, "libc.so", 7) && strncmp(base, "libc-", 5))
		return 0;
	/* A file's mappings are adjacent: a new path is the next candidate. */
	if (!strcmp(l->buf, m->path))
		return 0;
	snprintf(l->buf, l->len, "%s", m->path);
	return l->skip-- ? 0 : 1;
}

int proc__libc_path(int pid, size_t index, char *buf, size_t len)
{
	struct libc_ctx l = { buf, len, 0, index };
	int ret;

	buf[0] = '\0';
	ret = proc__mappings(pid, match_libc, &l);
	if (ret == 0)
		buf[0] = '\0'; /* fewer than index + 1 */
	/* No file mapped at all: the process is exiting (its memory is already gone). */
	return ret < 0 ? ret : l.mappings ? 0 : -ESRCH;
}

int proc__try_libc(int pid, int (*try_path)(int pid, const char *path, void *ctx), void *ctx,
		   char *ret_first, size_t len)
{
	char next[PATH_MAX];
	size_t i;
	int ret;

	ret = proc__libc_path(pid, 0, ret_first, len);
	if (ret < 0)
		return ret;
	if (!ret_first[0])
		return -ENOENT;
	ret = try_path(pid, ret_first, ctx);
	/* Another file named like a libc came first: the real one is a later candidate. */
	for (i = 1; ret && !proc__libc_path(pid, i, next, sizeof(next)) && next[0]; i++)
		ret = try_path(pid, next, ctx);
	return ret;
}

struct map_files_ctx {
	const char *path;
	uint64_t start, end;
};

static int match_path(const struct proc_mapping *m, void *ctx)
{
	struct map_files_ctx *f = ctx;

	if (strcmp(m->path, f->path))
		return 0;
	f->start = m->start;
	f->end = m->end;
	return 1;
}

int proc__root_path(int pid, const char *path, char *buf, size_t len)
{
	static const char deleted[] = " (deleted)";
	size_t plen = strlen(path), dlen = strlen(deleted);
	struct map_files_ctx f = { path, 0, 0 };
	const struct proc_grant *g = granted(pid);
	size_t i;
	int n, ret;

	/* Granted: the object the helper opened, else the path under the root it opened. */
	for (i = 0; g && i < g->nobjects; i++)
		if (!strcmp(g->paths[i], path)) {
			n = snprintf(buf, len, "/proc/self/fd/%d", g->fds[i]);
			return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
		}
	if (g) {
		n = snprintf(buf, len, "/proc/self/fd/%d%s", g->root_fd, path);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}

	/*
	 * A file replaced or removed since the target mapped it (a package upgrade replaces
	 * libc.so.6 under running services): its path is gone, the mapping still reaches it.
	 */
	if (plen > dlen && !strcmp(path + plen - dlen, deleted)) {
		ret = proc__mappings(pid, match_path, &f);
		if (ret <= 0)
			return ret < 0 ? ret : -ENOENT;
		n = snprintf(buf, len, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, f.start,
			     f.end);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	/*
	 * A mapped file through its mapping: right in a container (maps shows its own paths) and
	 * in a chroot (maps shows the host's, which do not exist under /proc/PID/root). It needs
	 * CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE; without them, the root's path.
	 */
	if (proc__mappings(pid, match_path, &f) > 0) {
		n = snprintf(buf, len, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, f.start,
			     f.end);
		if (n > 0 && (size_t)n < len && !access(buf, R_OK))
			return 0;
	}
	n = snprintf(buf, len, "/proc/%d/root%s", pid, path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Boot time in seconds since the epoch, for process start times. */
static double boot_time(void)
{
	struct timespec real, boot;

	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	return (double)(real.tv_sec - boot.tv_sec) + (double)(real.tv_nsec - boot.tv_nsec) / 1e9;
}

int proc__self_stats(struct proc_self_stats *ret)
{
	unsigned long utime, stime, vsize;
	unsigned long long start;
	long rss, tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	struct dirent *d;
	char buf[1024], *p;
	uint64_t fds = 0;
	size_t n;
	FILE *f;
	DIR *dir;

	f = fopen("/proc/self/stat", "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* Fields 14, 15 (utime, stime), 22 (starttime), 23 (vsize), 24 (rss). */
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
			 "%*d %*d %llu %lu %ld",
			 &utime, &stime, &start, &vsize, &rss) != 5)
		return -EIO;
	dir = opendir("/proc/self/fd");
	if (dir) {
		while ((d = readdir(dir)))
			fds += d->d_name[0] != '.';
		closedir(dir);
		fds--; /* the directory's own descriptor */
	}
	ret->cpu_seconds = (double)(utime + stime) / (double)tick;
	ret->start_time_seconds = boot_time() + (double)start / (double)tick;
	ret->resident_bytes = (uint64_t)rss * (uint64_t)page;
	ret->virtual_bytes = vsize;
	ret->open_fds = fds;
	ret->max_fds = getrlimit(RLIMIT_NOFILE, &rl) ? 0 : rl.rlim_cur;
	return 0;
}

int proc__maps_fd_lines(int fd, int (*cb)(char *line, void *ctx), void *ctx)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int ret = 0;

	for (;;) {
		if (cap - len < 4096) {
			char *grown = realloc(buf, cap ? cap * 2 : 65536);

			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
			cap = cap ? cap * 2 : 65536;
		}
		n = pread(fd, buf + len, cap - len - 1, (off_t)len);
		if (n < 0) {
			ret = -errno;
			free(buf);
			return ret;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line && !ret; line = strtok_r(NULL, "\n", &save))
		ret = cb(line, ctx);
	free(buf);
	return ret;
}

struct load_ctx {
	const char *path;
	uint64_t start;
	bool found;
};

static int first_load(const struct proc_mapping *m, void *ctx)
{
	struct load_ctx *l = ctx;

	if (m->offset != 0 || strcmp(m->path, l->path))
		return 0;
	l->start = m->start;
	l->found = true;
	return 1;
}

int proc__load_start(int pid, const char *path, uint64_t *ret_start)
{
	struct load_ctx l = { .path = path };
	int err;

	err = proc__mappings(pid, first_load, &l);
	if (err < 0)
		return err;
	if (!l.found)
		return -ENOENT;
	*ret_start = l.start;
	return 0;
}

void proc_objects__add(struct proc_objects *o, const char *path)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (!strcmp(o->paths[i], path))
			return;
	if (o->n < PROC_OBJECTS_MAX)
		snprintf(o->paths[o->n++], PATH_MAX, "%s", path);
}

struct named_ctx {
	const char *prefix;
	struct proc_objects *o;
};

static int match_named(const struct proc_mapping *m, void *ctx)
{
	struct named_ctx *c = ctx;
	const char *base = strrchr(m->path, '/');

	base = base ? base + 1 : m->path;
	if (!strncmp(base, c->prefix, strlen(c->prefix)))
		proc_objects__add(c->o, m->path);
	return 0;
}

int proc__objects_named(int pid, const char *prefix, struct proc_objects *o)
{
	struct named_ctx c = { prefix, o };
	int err = proc__mappings(pid, match_named, &c);

	return err < 0 ? err : 0;
}

size_t proc__count_named(int pid, const char *prefix)
{
	struct proc_objects *o = calloc(1, sizeof(*o));
	size_t n = 0;

	if (!o)
		return 0;
	if (!proc__objects_named(pid, prefix, o))
		n = o->n;
	free(o);
	return n;
}
