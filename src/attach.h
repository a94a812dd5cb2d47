/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Turns a probe plan into BPF links on one target process. */
#ifndef MEMSCOPED_ATTACH_H
#define MEMSCOPED_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include "probe_plan.h"

struct bpf_object;
struct bpf_link;

/* BPF_TRACE_UPROBE_MULTI: in the kernel since 6.6, not in libbpf 1.1's headers. */
#define MS_BPF_TRACE_UPROBE_MULTI 48

struct attachment {
	struct bpf_link **links; /* perf-event links (per probe) */
	size_t nlinks;
	size_t cap;
	int *fds;		 /* uprobe_multi links (per program and object) */
	size_t nfds;
	size_t fds_cap;
	size_t nprobes;		 /* probes covered by all of the above */
};

/*
 * Attaches every probe of the plan, filtered to pid: one uprobe_multi link per program when
 * multi is true (the programs must have been loaded with expected attach type
 * MS_BPF_TRACE_UPROBE_MULTI), else one perf-event link per probe. On failure err names the
 * probe; -EOPNOTSUPP from a multi attach means the kernel lacks uprobe_multi.
 */
int attach__plan(struct bpf_object *obj, int pid, const struct probe_plan *plan, bool multi,
		 struct attachment *a, char *err, size_t errlen);
/* Detaches everything; safe to call twice. */
void attach__destroy(struct attachment *a);

#endif
