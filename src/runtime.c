// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "memscoped/events.h"
#include "elf_symbols.h"
#include "probe_plan.h"
#include "proc.h"
#include "process_table.h"
#include "runtime.h"

extern const struct runtime runtime_ucontext, runtime_pcl, runtime_fcontext, runtime_tokio,
	runtime_async_task;

/*
 * Stackful coroutines come first: an allocation on a coroutine's stack is that coroutine's
 * even inside a task of another runtime.
 */
const struct runtime *const runtimes[] = {
	&runtime_ucontext, &runtime_pcl, &runtime_fcontext, &runtime_tokio, &runtime_async_task,
};

const size_t nruntimes = sizeof(runtimes) / sizeof(runtimes[0]);

const struct runtime *runtime__find(const char *name)
{
	size_t i;

	for (i = 0; i < nruntimes; i++)
		if (!strcmp(runtimes[i]->name, name))
			return runtimes[i];
	return NULL;
}

void runtime__names(char *buf, size_t len, const char *sep)
{
	size_t i, off;

	off = (size_t)snprintf(buf, len, "auto");
	for (i = 0; i < nruntimes && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", sep, runtimes[i]->name);
	if (off < len)
		snprintf(buf + off, len - off, "%snone", sep);
}

static bool wanted(const struct runtime *r, const char *requested, enum runtime_want *ret)
{
	const struct runtime *named;

	if (!strcmp(requested, "auto")) {
		*ret = RUNTIME_AUTO;
		return true;
	}
	if (!strcmp(requested, r->name)) {
		*ret = RUNTIME_NAMED;
		return true;
	}
	named = runtime__find(requested);
	if (named && named->needs && !strcmp(named->needs, r->name)) {
		*ret = RUNTIME_NEEDED;
		return true;
	}
	return false;
}

int runtime__attach_all(const struct runtime_ctx *ctx, struct process *p, const char *requested)
{
	return runtime__attach_some(ctx, p, requested, ~0u);
}

int runtime__attach_some(const struct runtime_ctx *ctx, struct process *p, const char *requested,
			 uint32_t mask)
{
	const struct runtime *r, *base;
	enum runtime_want want;
	char msg[512];
	size_t i;
	int err;

	for (i = 0; i < nruntimes; i++) {
		r = runtimes[i];
		if (!(mask & (1u << i)) || !wanted(r, requested, &want))
			continue;
		/* A runtime on top of another is looked for only where that one is. */
		base = r->needs ? runtime__find(r->needs) : NULL;
		if (base && !base->attached(p))
			continue;
		msg[0] = '\0';
		err = r->attach(ctx, p, want, msg, sizeof(msg));
		if (err && err != -EOPNOTSUPP && !proc__alive((int)p->pid)) {
			ctx->log("pid %u: exited during attach", p->pid);
			return -ESRCH;
		}
		if (err == -ENOENT) {
			if (want != RUNTIME_AUTO || ctx->verbose)
				ctx->log("pid %u: %s", p->pid, msg);
			if (want != RUNTIME_AUTO)
				return -EINVAL;
			continue;
		}
		if (err == -EOPNOTSUPP)
			return err;
		if (err) {
			if (!msg[0])
				snprintf(msg, sizeof(msg), "%s: %s", r->name, strerror(-err));
			ctx->log("pid %u: %s", p->pid, msg);
			return err;
		}
	}
	return 0;
}

int runtime__attach_plan(const struct runtime_ctx *ctx, struct process *p,
			 const struct probe_plan *plan, char *msg, size_t len)
{
	int err;

	err = ctx->attach_plan(ctx, (int)p->pid, plan, msg, len);
	if (err && err != -EOPNOTSUPP && !proc__alive((int)p->pid))
		snprintf(msg, len, "exited during attach");
	return err;
}

static int plan_fns(int pid, const char *object, const struct probe_fn *fns, size_t n,
		    struct probe_plan *plan)
{
	struct elf_symbols *e;
	int err;

	probe_plan__clear(plan);
	snprintf(plan->object, sizeof(plan->object), "%s", object);
	e = elf_symbols__open_target(pid, object, plan->open_path, sizeof(plan->open_path));
	if (!e)
		return -errno;
	err = probe_plan__functions(e, fns, n, plan);
	elf_symbols__close(e);
	return err;
}

int runtime__plan_library(int pid, const char *prefix, const struct probe_fn *fns, size_t n,
			  struct probe_plan *plan, char **ret_exe)
{
	struct proc_objects *o = calloc(1, sizeof(*o));
	size_t i;
	int ret;

	if (!o)
		return -ENOMEM;
	ret = proc__exe(pid, ret_exe);
	if (ret) {
		free(o);
		return ret;
	}
	proc_objects__add(o, *ret_exe);
	proc__objects_named(pid, prefix, o);
	for (i = 0, ret = -ENOENT; i < o->n && ret; i++)
		ret = plan_fns(pid, o->paths[i], fns, n, plan);
	free(o);
	return ret;
}

uint32_t runtime__task_of(struct process *p, const struct ms_event *e)
{
	uint32_t task;
	size_t i;

	for (i = 0; i < nruntimes; i++)
		if (runtimes[i]->task_of && (task = runtimes[i]->task_of(p, e)))
			return task;
	return 0;
}

void runtime__block_freed(struct process *p, uint64_t addr, uint64_t ts)
{
	size_t i;

	for (i = 0; i < nruntimes; i++)
		if (runtimes[i]->block_freed)
			runtimes[i]->block_freed(p, addr, ts);
}

bool runtime__event(struct process *p, const struct ms_event *e)
{
	bool handled = false;
	size_t i;

	if (e->type >= 32)
		return false;
	for (i = 0; i < nruntimes; i++) {
		if (!(runtimes[i]->events & (1u << e->type)))
			continue;
		runtimes[i]->event(p, e);
		handled = true;
	}
	return handled;
}
