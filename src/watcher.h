/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The attach helper. The daemon holds no capability once attached, so a child keeps just those
 * that attaching needs and does what is attached later: a runtime's library loaded after attach
 * (dlopen; it looks at the targets' maps every second and passes the links to the daemon), and
 * in daemon mode the processes the selectors choose, at start and at each exec, and the
 * children of targets (it holds their links, and tells the daemon of each before attaching).
 * It takes no input: the daemon cannot ask it for anything, only close the socket.
 */
#ifndef MEMSCOPED_WATCHER_H
#define MEMSCOPED_WATCHER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct attachment;
struct ms_event;
struct process;
struct process_table;
struct runtime_ctx;
struct selector;
struct watcher;

/* What the helper does besides watching libraries. */
struct watcher_config {
	bool watch_libraries;		 /* --runtime auto: runtimes' libraries loaded later */
	const struct selector *selector; /* daemon mode: the processes it attaches; NULL: none */
	int proc_ring_fd;		 /* the proc_events ring (execs, forks), or -1 */
	int targets_fd;			 /* the targets map */
	const char *allocator;		 /* --allocator */
	const char *runtime;		 /* --runtime: what it attaches to selected processes */
	size_t max_targets;		 /* targets it attaches at once */
	bool grant;			 /* pass descriptors even without runtimes (stacks) */
	/*
	 * In the daemon, for each process the helper attached, while the helper's descriptors of
	 * it are in use (proc__use_grant): the daemon takes the runtimes of mask (bits of
	 * runtimes[]) as the helper found them, and what else reads the process.
	 */
	void (*attached)(void *ctx, struct process *p, uint32_t mask);
	void *attached_ctx;
};

/*
 * Starts the helper over procs; ctx is how it attaches (its log, verbose off). NULL if it
 * could not start (logged through ctx->log): later libraries and processes are not seen then.
 */
struct watcher *watcher__start(struct process_table *procs, const struct runtime_ctx *ctx,
			       const struct watcher_config *cfg, volatile sig_atomic_t *exiting);
/* Takes the links the watcher made into links. */
void watcher__receive(struct watcher *w, struct attachment *links);
/*
 * The watcher sends a library's links before their first event can exist, so an event of a
 * runtime not yet attached means its message is waiting: takes it first.
 */
void watcher__before_event(struct watcher *w, struct attachment *links, const struct ms_event *e);
/* Selected processes the helper said it could not attach (0 for NULL). */
uint64_t watcher__missed(const struct watcher *w);
/* Ends the watcher and waits for it; accepts NULL. */
void watcher__stop(struct watcher *w);

#endif
