/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What the attach helper (watcher.c) tells the daemon: one message, fixed size, per event. */
#ifndef MEMSCOPED_WATCHER_MSG_H
#define MEMSCOPED_WATCHER_MSG_H

#include <limits.h>
#include <stdint.h>
#include "selector.h"

enum watch_kind {
	WATCH_LIBRARY,	/* a runtime's library loaded later: links attached */
	WATCH_BEGIN,	/* a selected process: tracing begins at its exec */
	WATCH_ATTACHED, /* a process's allocator probes are live */
	WATCH_FAILED,	/* a selected process could not be attached: text says why */
	WATCH_GRANT,	/* before ATTACHED: its maps, mem and root; object: its executable */
	WATCH_OBJECTS, /* before ATTACHED: its mapped objects; object: their paths, NUL-separated */
};

struct watch_msg {
	uint32_t kind;
	uint32_t pid;
	uint32_t runtime; /* LIBRARY: index in runtimes[]; ATTACHED: the runtimes, 1 << index */
	uint32_t parent;  /* ATTACHED: the target it was forked from, 0 for an exec */
	uint64_t data[2]; /* LIBRARY: what the runtime's late_export said */
	uint64_t nprobes;
	uint64_t exec_ns; /* BEGIN, ATTACHED: the exec (fork) event's time */
	uint64_t live_ns; /* ATTACHED: its probes are live */
	uint32_t functions;
	uint32_t window_lost; /* ATTACHED: a forked child lost a breakpoint before its probe */
	char family[32];
	char object[PATH_MAX];
	char text[1536];	 /* ATTACHED: the allocator's description; FAILED: why */
	struct proc_identity id; /* BEGIN */
};

#endif
