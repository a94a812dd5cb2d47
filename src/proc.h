/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What /proc says about a target process. */
#ifndef MEMSCOPED_PROC_H
#define MEMSCOPED_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROC_COMM_LEN 16

/* A file-backed mapping of the target, in /proc/PID/maps order. */
struct proc_mapping {
	uint64_t start, end, offset;
	char perms[5];
	const char *path; /* valid during the callback only */
};

int proc__comm(int pid, int tid, char comm[PROC_COMM_LEN]);
/* The executable's path as the target sees it (malloc'd); -ESRCH if it is exiting, -errno. */
int proc__exe(int pid, char **ret_path);
/* The one-letter state of /proc/PID/stat ('R', 'S', 'Z', ...); -errno. */
int proc__state(int pid, char *ret_state, bool *ret_kernel_thread);
/* CPU time the process (every thread) has used, user + system; -errno. */
int proc__cpu_seconds(int pid, double *ret_seconds);
/* True while the process exists and is not exiting (its memory released) or a zombie. */
bool proc__alive(int pid);
/* Reads len bytes of process pid at addr (process_vm_readv): 0, or -EFAULT if not all of them. */
int proc__read(int pid, uint64_t addr, void *buf, size_t len);

/*
 * What the attach helper opened for the unprivileged daemon: one process's /proc/PID/maps,
 * /proc/PID/mem and /proc/PID/root, and its mapped objects, as file descriptors (the kernel
 * checks access when they are opened, not when they are read). While it is in use, every
 * proc__ function below reads that process through them instead of /proc/PID.
 */
struct proc_grant {
	int pid;
	int maps_fd, mem_fd, root_fd;
	const char *exe;
	size_t nobjects;
	char **paths; /* as the target's maps name them */
	int *fds;
};

/* Reads pid through g until the next call (NULL: through /proc again); g must outlive it. */
void proc__use_grant(const struct proc_grant *g);
bool proc__granted(int pid);
/* A new descriptor of pid's /proc/PID/maps, and of its root directory (O_PATH); -errno. */
int proc__open_maps(int pid);
int proc__open_root(int pid);

typedef int (*proc_mapping_cb)(const struct proc_mapping *m, void *ctx);
/* Walks file-backed mappings; a nonzero cb return stops the walk and is returned. */
int proc__mappings(int pid, proc_mapping_cb cb, void *ctx);
/* Calls cb for every line of /proc/PID/maps; a nonzero return stops and is returned. */
int proc__maps_lines(int pid, int (*cb)(const char *line, void *ctx), void *ctx);
/* Parses one maps line; false if it is not a file-backed mapping. */
bool proc__parse_maps_line(char *line, struct proc_mapping *ret);

/*
 * The index-th distinct file named like a libc that the target maps, in address order, as it
 * names it (buf "" if there are fewer); 0, -ESRCH if it maps nothing (exiting), or -errno.
 * Callers take the first one that parses: a process may map other files named libc.so.6.
 */
int proc__libc_path(int pid, size_t index, char *buf, size_t len);

/*
 * Calls try_path(pid, path, ctx) on each libc candidate of proc__libc_path in turn until one
 * returns 0. Returns that 0 or the last one's error; -ENOENT if no libc is mapped, or
 * proc__libc_path's error. ret_first (len bytes) gets the first candidate ("" if none).
 */
int proc__try_libc(int pid, int (*try_path)(int pid, const char *path, void *ctx), void *ctx,
		   char *ret_first, size_t len);

/*
 * Where the target's file at path can be opened from here: /proc/PID/root/path, or for a
 * mapped file deleted since ("PATH (deleted)" in its maps) /proc/PID/map_files/START-END.
 */
int proc__root_path(int pid, const char *path, char *buf, size_t len);

/* Calls cb for every line of a maps file opened earlier (fd, read with pread); as above. */
int proc__maps_fd_lines(int fd, int (*cb)(char *line, void *ctx), void *ctx);

/* Where the target loaded the start of the file at path (its mapping at offset 0); -ENOENT. */
int proc__load_start(int pid, const char *path, uint64_t *ret_start);

#define PROC_OBJECTS_MAX 8

/* Objects of the target, for a runtime that looks in several. */
struct proc_objects {
	char paths[PROC_OBJECTS_MAX][PATH_MAX];
	size_t n;
};

/* Adds path unless it is there (or the list is full). */
void proc_objects__add(struct proc_objects *o, const char *path);
/* Adds every object pid maps whose file name starts with prefix; 0 or -errno. */
int proc__objects_named(int pid, const char *prefix, struct proc_objects *o);
/* How many distinct objects named prefix* pid maps (a cheap check before planning). */
size_t proc__count_named(int pid, const char *prefix);

/* The daemon's own figures for the conventional process_* metrics. */
struct proc_self_stats {
	double cpu_seconds;
	double start_time_seconds; /* since the epoch */
	uint64_t resident_bytes;
	uint64_t virtual_bytes;
	uint64_t open_fds;
	uint64_t max_fds;
};

int proc__self_stats(struct proc_self_stats *ret);

#endif
