/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Turns a probe plan into BPF links on one target process. */
#ifndef MEMSCOPED_ATTACH_H
#define MEMSCOPED_ATTACH_H

#include <stddef.h>
#include "probe_plan.h"

struct bpf_object;
struct bpf_link;

struct attachment {
	struct bpf_link **links;
	size_t nlinks;
	size_t cap;
};

/* Attaches every probe of the plan, filtered to pid. On failure err names the probe. */
int attach__plan(struct bpf_object *obj, int pid, const struct probe_plan *plan,
		 struct attachment *a, char *err, size_t errlen);
/* Detaches everything; safe to call twice. */
void attach__destroy(struct attachment *a);

#endif
