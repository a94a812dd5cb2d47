// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cgroup.h"

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

int cgroup__mount_from(FILE *mountinfo, char *buf, size_t len)
{
	char *line = NULL, *save, *field, *mnt, *sep;
	size_t cap = 0;
	int i, err = -ENOENT;

	while (err == -ENOENT && getline(&line, &cap, mountinfo) > 0) {
		/* id parent major:minor root mountpoint options [optional...] - fstype ... */
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		mnt = NULL;
		field = strtok_r(line, " ", &save);
		for (i = 1; field && i < 5; i++) {
			field = strtok_r(NULL, " ", &save);
			if (i == 4)
				mnt = field;
		}
		if (!mnt)
			continue;
		unescape(mnt);
		err = strlen(mnt) < len ? 0 : -ENAMETOOLONG;
		if (!err)
			strcpy(buf, mnt);
	}
	free(line);
	return err;
}

int cgroup__mount(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int err;

	if (!f)
		return -errno;
	err = cgroup__mount_from(f, buf, len);
	fclose(f);
	return err;
}

int cgroup__of_stream(FILE *f, char *buf, size_t len)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int err = -ENOENT;

	while (err == -ENOENT && (n = getline(&line, &cap, f)) > 0) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		err = strlen(line + 3) < len ? 0 : -ENAMETOOLONG;
		if (!err)
			strcpy(buf, line + 3);
	}
	free(line);
	return err;
}

int cgroup__of(int pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	err = cgroup__of_stream(f, buf, len);
	fclose(f);
	return err;
}

bool cgroup__contains(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	/* "/a/" and "/a" are the same cgroup. */
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return !strncmp(dir, path, n) && (path[n] == '\0' || path[n] == '/');
}
