// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "alloc_plan.h"
#include "fork_window.h"
#include "probe_plan.h"
#include "proc.h"

struct probe_check {
	const struct probe_plan *plan;
	int pid;
	int fd; /* the object, for its own bytes */
	int result;
};

/* Each executable mapping of the object: the probes in its file range. */
static int check_mapping(const struct proc_mapping *m, void *ctx)
{
	struct probe_check *c = ctx;
	const struct probe_spec *p;
	uint8_t own, now;
	size_t i;

	if (!m->path || strcmp(m->path, c->plan->object) || m->perms[2] != 'x')
		return 0;
	for (i = 0; i < c->plan->nprobes && c->result == 1; i++) {
		p = &c->plan->probes[i];
		if (p->offset < m->offset || p->offset - m->offset >= m->end - m->start)
			continue;
		if (pread(c->fd, &own, 1, (off_t)p->offset) != 1)
			c->result = -EIO;
		else if (proc__read(c->pid, m->start + (p->offset - m->offset), &now, 1))
			c->result = -EFAULT;
		else if (now == own) /* a breakpoint (or an optimised probe's call) changes it */
			c->result = 0;
	}
	return c->result == 1 ? 0 : 1;
}

/* With user shadow stacks the kernel's return trampoline traps instead of calling uretprobe. */
static bool shadow_stack(int pid)
{
	char path[64], line[256];
	bool on = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "x86_Thread_features:", 20))
			on = strstr(line, "shstk") != NULL;
	fclose(f);
	return on;
}

int fork_window__intact(int child, const struct alloc_plan *plan)
{
	struct probe_check c = { .pid = child, .result = 1 };
	size_t k;
	int err = 0;

	if (shadow_stack(child))
		return -EOPNOTSUPP;

	for (k = 0; !err && k < plan->n && c.result == 1; k++) {
		c.plan = &plan->objects[k];
		c.fd = open(c.plan->open_path, O_RDONLY | O_CLOEXEC);
		if (c.fd < 0)
			return -errno;
		err = proc__mappings(child, check_mapping, &c);
		close(c.fd);
		if (err > 0)
			err = 0;
	}
	return err ? err : c.result;
}
