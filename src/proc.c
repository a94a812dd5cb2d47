// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "proc.h"

#define PF_KTHREAD 0x00200000

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

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
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

bool proc__alive(int pid)
{
	char state;

	return proc__state(pid, &state, NULL) == 0 && state != 'Z' && state != 'X';
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

int proc__mappings(int pid, proc_mapping_cb cb, void *ctx)
{
	struct proc_mapping m;
	char path[64], *line = NULL;
	size_t cap = 0;
	int ret = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!ret && getline(&line, &cap, f) > 0)
		if (proc__parse_maps_line(line, &m))
			ret = cb(&m, ctx);
	free(line);
	fclose(f);
	return ret;
}

int proc__root_path(int pid, const char *path, char *buf, size_t len)
{
	int n = snprintf(buf, len, "/proc/%d/root%s", pid, path);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
