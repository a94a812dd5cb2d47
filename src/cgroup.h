/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* cgroup v2: where the hierarchy is mounted, which cgroup a process is in, what is under what. */
#ifndef MEMSCOPED_CGROUP_H
#define MEMSCOPED_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The cgroup2 mount point in a mountinfo stream into buf: 0, -ENOENT or -ENAMETOOLONG. */
int cgroup__mount_from(FILE *mountinfo, char *buf, size_t len);
/* The same from /proc/self/mountinfo: 0, -ENOENT (no cgroup2 mounted) or -errno. */
int cgroup__mount(char *buf, size_t len);
/* The v2 path of pid as /proc/PID/cgroup shows it ("/system.slice/foo.service"): 0 or -errno. */
int cgroup__of(int pid, char *buf, size_t len);
/* The "0::PATH" line of a /proc/PID/cgroup stream into buf: 0 or -ENOENT. */
int cgroup__of_stream(FILE *f, char *buf, size_t len);
/* path is the cgroup dir or one of its descendants. */
bool cgroup__contains(const char *dir, const char *path);

#endif
