/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Turns a probe plan into BPF links on one target process. */
#ifndef MEMSCOPED_ATTACH_H
#define MEMSCOPED_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "probe_plan.h"

struct bpf_object;
struct bpf_link;
struct bpf_program;

/* BPF_TRACE_UPROBE_MULTI: in the kernel since 6.6, not in libbpf 1.1's headers. */
#define MS_BPF_TRACE_UPROBE_MULTI 48

struct attachment {
	struct bpf_link **links; /* perf-event links (per probe) */
	size_t nlinks;
	size_t cap;
	int *fds; /* uprobe_multi links (per program and object) */
	size_t nfds;
	size_t fds_cap;
	size_t nprobes; /* probes covered by all of the above */
};

/*
 * Attaches every probe of the plan, filtered to pid: one uprobe_multi link per program when
 * multi is true (the programs must have been loaded with expected attach type
 * MS_BPF_TRACE_UPROBE_MULTI), else one perf-event link per probe. On failure err names the
 * probe; -EOPNOTSUPP from a multi attach means the kernel lacks uprobe_multi.
 */
int attach__plan(struct bpf_object *obj, int pid, const struct probe_plan *plan, bool multi,
		 struct attachment *a, char *err, size_t errlen);
/*
 * Attaches prog at n offsets of the object at path (cookies may be NULL): one uprobe_multi
 * link, or n perf-event links. Returns 0, or -EOPNOTSUPP without uprobe_multi, or -errno.
 */
int attach__offsets(struct bpf_program *prog, int pid, const char *path, const uint64_t *offsets,
		    const uint64_t *cookies, size_t n, bool retprobe, bool multi,
		    struct attachment *a);
/*
 * The fds of every link in a (at most max), to pass to another process; -E2BIG if more. Its
 * perf-event links stop detaching on destroy: the receiver's copy keeps them attached.
 */
int attach__fds(struct attachment *a, int *fds, size_t max);
/* Takes ownership of a link fd made elsewhere; 0 or -ENOMEM. */
int attach__adopt(struct attachment *a, int fd);
/*
 * Closes every BPF link and perf event this process holds, for a child just forked: a copy of
 * the daemon's links in a helper that outlives it keeps their probes in the target, and a
 * SIGKILLed daemon's links then go only when the helper's exit has unregistered them (seconds
 * under load: the kernel waits for RCU grace periods).
 */
void attach__close_inherited(void);
/* Detaches everything; safe to call twice. */
void attach__destroy(struct attachment *a);

#endif
