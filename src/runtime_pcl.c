// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* libpcl coroutines: co_create, co_exit_to and co_delete; its switches are ucontext's. */
#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "memscoped/events.h"
#include "coro.h"
#include "elf_symbols.h"
#include "probe_plan.h"
#include "proc.h"
#include "process_table.h"
#include "runtime.h"

#define PCL_LIBRARY "libpcl"

static const struct probe_fn pcl_fns[] = {
	{ "co_create", "pcl_return", MS_PCL_CREATE_RETURN, true },
	{ "co_create", "pcl_enter", MS_PCL_CREATE, false },
	{ "co_exit_to", "pcl_enter", MS_PCL_EXIT, false },
	{ "co_delete", "pcl_enter", MS_PCL_DELETE, false },
};

/* Where co_exit_to runs in the target: a co_create called from there is libpcl's own. */
static int exit_range(int pid, const struct probe_plan *plan, uint64_t *ret_lo, uint64_t *ret_hi)
{
	struct elf_symbols *e = elf_symbols__open(plan->open_path);
	struct elf_sym sym;
	uint64_t start;
	int err = -ENOENT;

	if (!e)
		return -errno;
	if (!elf_symbols__lookup(e, "co_exit_to", &sym) &&
	    !proc__load_start(pid, plan->object, &start)) {
		*ret_lo = start - elf_symbols__base_vaddr(e) + sym.vaddr;
		*ret_hi = *ret_lo + (sym.size ? sym.size : 1);
		err = 0;
	}
	elf_symbols__close(e);
	return err;
}

static int pcl_attach(const struct runtime_ctx *ctx, struct process *p, enum runtime_want want,
		      char *msg, size_t len)
{
	struct coro_process *c = coro_process__attach(p, NULL);
	struct probe_plan *plan = calloc(1, sizeof(*plan));
	uint64_t lo = 0, hi = 0;
	char *exe = NULL;
	int err;

	if (!c || !plan) {
		free(plan);
		return -ENOMEM;
	}
	err = runtime__plan_library((int)p->pid, PCL_LIBRARY, pcl_fns,
				    sizeof(pcl_fns) / sizeof(pcl_fns[0]), plan, &exe);
	if (!err)
		err = exit_range((int)p->pid, plan, &lo, &hi);
	if (err == -ENOENT)
		snprintf(msg, len,
			 "no pcl in '%s' or a mapped libpcl: co_create, co_exit_to and co_delete "
			 "not all found",
			 exe ? exe : "?");
	if (!err)
		err = runtime__attach_plan(ctx, p, plan, msg, len);
	if (!err) {
		c->pcl = "pcl";
		c->pcl_requested = want == RUNTIME_NAMED;
		c->pcl_exit_lo = lo;
		c->pcl_exit_hi = hi;
		ctx->log("pid %u: pcl: co_create, co_exit_to and co_delete in '%s'", p->pid,
			 plan->object);
	}
	free(exe);
	probe_plan__clear(plan);
	free(plan);
	return err;
}

static bool pcl_attached(const struct process *p)
{
	const struct coro_process *c = coro_process__of(p);

	return c && c->pcl;
}

/* The live pcl coroutine with this handle: its stack starts just past the handle's block. */
static size_t pcl_find(struct process *p, uint64_t handle)
{
	struct coro_stacks *cs = &coro_process__of(p)->stacks;
	size_t i = coro_stacks__lower(cs, handle);
	struct task *t;

	if (i < cs->n) {
		t = coro__task_at(p, cs->s[i].task);
		if (t && t->stack_base == handle)
			return i;
	}
	return cs->n;
}

static void pcl_event(struct process *p, const struct ms_event *e)
{
	struct coro_process *c = coro_process__of(p);
	struct coro_pcl_pending *pending;
	struct coro_stack *s;
	struct task *t;
	size_t i;

	if (!c || !c->pcl)
		return;
	switch (e->func) {
	case MS_PCL_CREATE:
		pending = coro__pcl_pending(c, e->tid, true);
		pending->func = e->addr;
		pending->internal = e->pcl.ret >= c->pcl_exit_lo && e->pcl.ret < c->pcl_exit_hi;
		break;
	case MS_PCL_CREATE_RETURN:
		pending = coro__pcl_pending(c, e->tid, false);
		if (!pending)
			break;
		t = task_table__at(p->tasks, pending->task);
		/* The handle names it: "pcl:0x<handle>", as the program knows it. */
		if (t && pending->task && e->addr)
			t->stack_base = e->addr;
		pending->active = false;
		break;
	case MS_PCL_EXIT:
		/* Its function returned (co_runner calls co_exit) or it called co_exit itself. */
		s = coro_stacks__find(&c->stacks, e->pcl.sp);
		t = s ? coro__task_at(p, s->task) : NULL;
		if (t && !task__ended(t)) {
			task_table__poll_end(p->tasks, t, e->ts, TASK_COMPLETED);
			c->ended_returned++;
		}
		break;
	case MS_PCL_DELETE:
		i = pcl_find(p, e->addr);
		if (i < c->stacks.n) {
			c->pcl_ended_deleted++;
			coro__end_stack(p, i, true, e->ts);
		}
		break;
	default:
		break;
	}
}

static bool pcl_owns(const struct ms_event *e)
{
	return e->type == MS_EV_PCL;
}

static bool pcl_listed(const struct process *p)
{
	return coro__pcl_listed(coro_process__of(p));
}

static void pcl_late_export(const struct process *p, uint64_t data[2])
{
	const struct coro_process *c = coro_process__of(p);

	data[0] = c ? c->pcl_exit_lo : 0;
	data[1] = c ? c->pcl_exit_hi : 0;
}

static void pcl_late_import(struct process *p, const uint64_t data[2])
{
	struct coro_process *c = coro_process__attach(p, NULL);

	if (!c)
		return;
	c->pcl = "pcl";
	c->pcl_exit_lo = data[0];
	c->pcl_exit_hi = data[1];
}

const struct runtime runtime_pcl = {
	.name = "pcl",
	.needs = "ucontext",
	.library = PCL_LIBRARY,
	.attach = pcl_attach,
	.attached = pcl_attached,
	.events = 1u << MS_EV_PCL,
	.event = pcl_event,
	.owns = pcl_owns,
	.listed = pcl_listed,
	.late_export = pcl_late_export,
	.late_import = pcl_late_import,
};
