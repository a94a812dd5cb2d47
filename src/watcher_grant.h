/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A process the attach helper attaches in daemon mode, beyond its allocator: its runtimes
 * attached in the helper (with what was found in each image remembered), and the descriptors
 * the helper passes the daemon so that it reads the same process without privilege (proc.h's
 * proc_grant): the helper's side sends them, the daemon's side puts them together.
 */
#ifndef MEMSCOPED_WATCHER_GRANT_H
#define MEMSCOPED_WATCHER_GRANT_H

#include <stdint.h>
#include "watcher_msg.h"

struct attachment;
struct proc_grant;
struct runtime_ctx;

#define WATCHER_IMAGES 64

/* Images (the executable files a process maps) and the runtimes found in each. */
struct watcher_images {
	struct watcher_image {
		uint64_t key;
		uint32_t runtimes; /* 1 << index in runtimes[] */
	} images[WATCHER_IMAGES];
	size_t next;
};

/*
 * Helper: attaches the runtimes requested asks for to pid into links, through base; logs a
 * failure through base->log. Returns those attached, as 1 << index in runtimes[].
 */
uint32_t watcher_grant__runtimes(struct watcher_images *c, const struct runtime_ctx *base,
				 const char *requested, uint32_t pid, struct attachment *links);
/*
 * Helper: sends GRANT (maps, mem, root) and OBJECTS (executable objects) for pid on sock; with
 * pidfd (or -1), nothing opened after the process it follows is gone (its pid given again).
 * 0, -ESRCH if pid is gone, -EPIPE, -ENOMEM.
 */
int watcher_grant__send(int sock, uint32_t pid, int pidfd);

/* Daemon: the grant a GRANT message begins (it takes fds), NULL if malformed or no memory. */
struct proc_grant *watcher_grant__begin(const struct watch_msg *m, int *fds, int n);
/* Daemon: adds an OBJECTS message's descriptors to g (takes fds; closed if g is not m's pid's). */
void watcher_grant__objects(struct proc_grant *g, const struct watch_msg *m, int *fds, int n);
/* Closes every descriptor of g; accepts NULL. */
void watcher_grant__free(struct proc_grant *g);

#endif
