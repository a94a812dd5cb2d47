/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Libraries loaded after attach (dlopen). The daemon holds no capability once attached, so a
 * child keeps just those that attaching needs, looks at the targets' maps every second for a
 * runtime's library (struct runtime.library), attaches to it and passes the links to the
 * daemon. It takes no input: the daemon cannot ask it for anything, only close the socket.
 */
#ifndef MEMSCOPED_WATCHER_H
#define MEMSCOPED_WATCHER_H

#include <signal.h>

struct attachment;
struct ms_event;
struct process_table;
struct runtime_ctx;
struct watcher;

/*
 * Starts the watcher over procs; ctx is how the child attaches (its log, verbose off). NULL
 * if it could not start (logged through ctx->log): later libraries are not seen then.
 */
struct watcher *watcher__start(struct process_table *procs, const struct runtime_ctx *ctx,
			       volatile sig_atomic_t *exiting);
/* Takes the links the watcher made into links. */
void watcher__receive(struct watcher *w, struct attachment *links);
/*
 * The watcher sends a library's links before their first event can exist, so an event of a
 * runtime not yet attached means its message is waiting: takes it first.
 */
void watcher__before_event(struct watcher *w, struct attachment *links, const struct ms_event *e);
/* Ends the watcher and waits for it; accepts NULL. */
void watcher__stop(struct watcher *w);

#endif
