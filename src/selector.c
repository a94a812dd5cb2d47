// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "array.h"
#include "cgroup.h"
#include "selector.h"

struct selector {
	regex_t *comms;
	size_t ncomms, comms_cap;
	char **exes;
	size_t nexes, exes_cap;
	char **cgroups;
	size_t ncgroups, cgroups_cap;
};

struct selector *selector__new(void)
{
	return calloc(1, sizeof(struct selector));
}

void selector__free(struct selector *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->ncomms; i++)
		regfree(&s->comms[i]);
	for (i = 0; i < s->nexes; i++)
		free(s->exes[i]);
	for (i = 0; i < s->ncgroups; i++)
		free(s->cgroups[i]);
	free(s->comms);
	free(s->exes);
	free(s->cgroups);
	free(s);
}

int selector__add_comm(struct selector *s, const char *regex, char *err, size_t errlen)
{
	int ret;

	if (array__grow((void **)&s->comms, &s->comms_cap, s->ncomms, sizeof(*s->comms), 4))
		return -ENOMEM;
	ret = regcomp(&s->comms[s->ncomms], regex, REG_EXTENDED | REG_NOSUB);
	if (ret) {
		regerror(ret, &s->comms[s->ncomms], err, errlen);
		regfree(&s->comms[s->ncomms]);
		return ret == REG_ESPACE ? -ENOMEM : -EINVAL;
	}
	s->ncomms++;
	return 0;
}

static int add_string(char ***v, size_t *n, size_t *cap, const char *str)
{
	if (array__grow((void **)v, cap, *n, sizeof(**v), 4))
		return -ENOMEM;
	(*v)[*n] = strdup(str);
	if (!(*v)[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

int selector__add_exe(struct selector *s, const char *glob)
{
	return add_string(&s->exes, &s->nexes, &s->exes_cap, glob);
}

int selector__add_cgroup(struct selector *s, const char *mnt, const char *path)
{
	char dir[PATH_MAX];
	struct stat st;

	if (path[0] != '/')
		return -EINVAL;
	if (snprintf(dir, sizeof(dir), "%s%s", mnt, path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	if (stat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return add_string(&s->cgroups, &s->ncgroups, &s->cgroups_cap, path);
}

bool selector__empty(const struct selector *s)
{
	return !s || (!s->ncomms && !s->nexes && !s->ncgroups);
}

bool selector__match(const struct selector *s, const struct proc_identity *id)
{
	size_t i;

	for (i = 0; i < s->ncomms; i++)
		if (!regexec(&s->comms[i], id->comm, 0, NULL, 0))
			return true;
	for (i = 0; i < s->nexes; i++)
		if (id->exe[0] && !fnmatch(s->exes[i], id->exe, 0))
			return true;
	for (i = 0; i < s->ncgroups; i++)
		if (id->cgroup[0] && cgroup__contains(s->cgroups[i], id->cgroup))
			return true;
	return false;
}

/* The pid in the innermost pid namespace: the last field of NSpid. */
static uint32_t ns_pid(int pid)
{
	char path[64], *line = NULL, *last;
	unsigned long v = (unsigned long)pid;
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return (uint32_t)pid;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "NSpid:", 6))
			continue;
		last = strrchr(line, '\t');
		if (last)
			v = strtoul(last + 1, NULL, 10);
		break;
	}
	free(line);
	fclose(f);
	return (uint32_t)v;
}

/* The executable as the target sees it: a chroot's prefix taken off the host's path. */
static int exe_as_seen(int pid, char *buf, size_t len)
{
	char link[64], root[PATH_MAX];
	ssize_t n, r;
	size_t rl;

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, buf, len - 1);
	if (n < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	buf[n] = '\0';
	snprintf(link, sizeof(link), "/proc/%d/root", pid);
	r = readlink(link, root, sizeof(root) - 1);
	if (r <= 1)
		return 0;
	root[r] = '\0';
	rl = (size_t)r;
	if (!strncmp(buf, root, rl) && buf[rl] == '/')
		memmove(buf, buf + rl, strlen(buf + rl) + 1);
	return 0;
}

static int read_comm(int pid, struct proc_identity *ret)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	n = fread(ret->comm, 1, sizeof(ret->comm) - 1, f);
	fclose(f);
	ret->comm[n] = '\0';
	ret->comm[strcspn(ret->comm, "\n")] = '\0';
	return 0;
}

int selector__identify_for(const struct selector *s, int pid, struct proc_identity *ret)
{
	int err = 0;

	ret->exe[0] = ret->cgroup[0] = '\0';
	if (s->ncomms && !ret->comm[0])
		err = read_comm(pid, ret);
	if (!err && s->nexes)
		err = exe_as_seen(pid, ret->exe, sizeof(ret->exe));
	if (!err && s->ncgroups && cgroup__of(pid, ret->cgroup, sizeof(ret->cgroup)))
		ret->cgroup[0] = '\0';
	return err;
}

int selector__identify(int pid, struct proc_identity *ret)
{
	int err;

	memset(ret, 0, sizeof(*ret));
	err = read_comm(pid, ret);
	if (err)
		return err;
	err = exe_as_seen(pid, ret->exe, sizeof(ret->exe));
	if (err)
		return err;
	if (cgroup__of(pid, ret->cgroup, sizeof(ret->cgroup)))
		ret->cgroup[0] = '\0';
	container_id__parse(ret->cgroup, ret->container_id);
	container_id__unit(ret->cgroup, ret->unit, sizeof(ret->unit));
	ret->ns_pid = ns_pid(pid);
	return 0;
}
