// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "attach.h"

static int keep(struct attachment *a, struct bpf_link *link)
{
	struct bpf_link **links;

	if (a->nlinks == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;

		links = realloc(a->links, cap * sizeof(*links));
		if (!links)
			return -ENOMEM;
		a->links = links;
		a->cap = cap;
	}
	a->links[a->nlinks++] = link;
	return 0;
}

int attach__plan(struct bpf_object *obj, int pid, const struct probe_plan *plan,
		 struct attachment *a, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	struct bpf_program *prog;
	struct bpf_link *link;
	size_t i;
	int ret;

	for (i = 0; i < plan->nprobes; i++) {
		const struct probe_spec *p = &plan->probes[i];

		prog = bpf_object__find_program_by_name(obj, p->prog);
		if (!prog) {
			snprintf(err, errlen, "no BPF program '%s'", p->prog);
			return -ENOENT;
		}
		opts.retprobe = p->retprobe;
		opts.bpf_cookie = p->cookie;
		link = bpf_program__attach_uprobe_opts(prog, pid, plan->open_path, p->offset, &opts);
		if (!link) {
			ret = -errno;
			snprintf(err, errlen, "failed to attach %s to '%s:%s': %s",
				 p->retprobe ? "uretprobe" : "uprobe", plan->object, p->symbol,
				 strerror(-ret));
			return ret;
		}
		ret = keep(a, link);
		if (ret) {
			bpf_link__destroy(link);
			snprintf(err, errlen, "out of memory");
			return ret;
		}
	}
	return 0;
}

void attach__destroy(struct attachment *a)
{
	size_t i;

	for (i = 0; i < a->nlinks; i++)
		bpf_link__destroy(a->links[i]);
	free(a->links);
	memset(a, 0, sizeof(*a));
}
