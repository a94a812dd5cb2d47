// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "privilege.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/* Names the capabilities memscoped lacks into buf; returns how many are missing. */
int privilege__missing(bool switch_user, char *buf, size_t len)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { 0 };
	static const struct {
		int cap;
		const char *name;
	} needed[] = {
		{ CAP_BPF, "CAP_BPF" },
		{ CAP_PERFMON, "CAP_PERFMON" },
		{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
		{ CAP_SETUID, "CAP_SETUID" }, /* --user only, as the next */
		{ CAP_SETGID, "CAP_SETGID" },
	};
	size_t i, off = 0;
	int missing = 0;
	bool admin;

	buf[0] = '\0';
	if (syscall(SYS_capget, &hdr, data))
		return 0;
	admin = data[0].effective & (1u << CAP_SYS_ADMIN);
	for (i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		int c = needed[i].cap;

		if ((c == CAP_SETUID || c == CAP_SETGID) && !switch_user)
			continue;
		/* The kernel accepts CAP_SYS_ADMIN for BPF and perf events. */
		if ((data[c / 32].effective & (1u << (c % 32))) ||
		    (admin && (c == CAP_BPF || c == CAP_PERFMON)))
			continue;
		off += snprintf(buf + off, len - off, "%s%s", missing ? ", " : "", needed[i].name);
		missing++;
		if (off >= len)
			break;
	}
	return missing;
}

int privilege__become(const struct passwd *user)
{
	if (setgroups(1, &user->pw_gid) || setresgid(user->pw_gid, user->pw_gid, user->pw_gid) ||
	    setresuid(user->pw_uid, user->pw_uid, user->pw_uid))
		return -errno;
	return 0;
}

int privilege__drop(uint64_t keep, const struct passwd *user)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { 0 };
	int cap;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	for (cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (!(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) &&
		    errno != EINVAL)
			return -errno;
	/* The bounding set goes first: dropping it needs CAP_SETPCAP, which the uid change
	 * takes away along with the rest. */
	if (user && privilege__become(user))
		return -EPERM;
	if (keep && syscall(SYS_capget, &hdr, data))
		return -errno;
	data[0].effective &= (uint32_t)keep;
	data[0].permitted &= (uint32_t)keep;
	data[1].effective &= (uint32_t)(keep >> 32);
	data[1].permitted &= (uint32_t)(keep >> 32);
	data[0].inheritable = data[1].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

/* 0, or -errno if path cannot be written (as PATH.tmp renamed over it); creates nothing. */
static int writable(const char *path)
{
	char dir[PATH_MAX], *slash;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	return access(slash ? dir : ".", W_OK | X_OK) ? -errno : 0;
}

int privilege__writable(const char *path, const struct passwd *user)
{
	int err, status;
	pid_t child;

	if (!user)
		return writable(path);
	child = fork();
	if (child == 0) {
		err = privilege__become(user);
		_exit(-(err ? err : writable(path)));
	}
	if (child < 0 || waitpid(child, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? -WEXITSTATUS(status) : -EIO;
}
