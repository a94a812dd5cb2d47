/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Which processes are targets in daemon mode: --comm (POSIX extended regex on /proc/PID/comm),
 * --exe (fnmatch on the executable's path as the target sees it), --cgroup (a cgroup v2 path
 * and its descendants). A process matching any selector is a target.
 */
#ifndef MEMSCOPED_SELECTOR_H
#define MEMSCOPED_SELECTOR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "container_id.h"

#define SELECTOR_COMM_LEN 16

/* What a process is, as the selectors and the target_info labels see it. */
struct proc_identity {
	char comm[SELECTOR_COMM_LEN];
	char exe[PATH_MAX];    /* as the target sees it (under its root) */
	char cgroup[PATH_MAX]; /* v2 path as /proc/PID/cgroup shows it; "" if none */
	char container_id[CONTAINER_ID_LEN + 1];
	char unit[256];
	uint32_t ns_pid; /* its pid in its own pid namespace (= pid when the same) */
};

struct selector;

struct selector *selector__new(void);
void selector__free(struct selector *s);
/* 0; -EINVAL with the regex's error in err. */
int selector__add_comm(struct selector *s, const char *regex, char *err, size_t errlen);
/* 0 or -ENOMEM. */
int selector__add_exe(struct selector *s, const char *glob);
/*
 * A cgroup path, checked under the cgroup2 mount mnt: 0; -EINVAL if not absolute, -ENOENT if
 * no such cgroup, -ENOMEM.
 */
int selector__add_cgroup(struct selector *s, const char *mnt, const char *path);
bool selector__empty(const struct selector *s);
/* The identity matches some selector. */
bool selector__match(const struct selector *s, const struct proc_identity *id);
/* Reads what the selectors and labels need from /proc: 0 or -errno (-ESRCH: gone). */
int selector__identify(int pid, struct proc_identity *ret);
/*
 * Only what s's selectors look at (every exec on the host goes through this); ret->comm is
 * taken as it is when set (the exec event carries it).
 */
int selector__identify_for(const struct selector *s, int pid, struct proc_identity *ret);

#endif
