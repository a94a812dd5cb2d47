// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * boost.context coroutines: make_fcontext, jump_fcontext and ontop_fcontext, reported as the
 * core's creates and switches; a fiber ends when its stack is freed or unmapped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "memscoped/events.h"
#include "coro.h"
#include "probe_plan.h"
#include "process_table.h"
#include "runtime.h"

#define FCONTEXT_LIBRARY "libboost_context"

static const struct probe_fn fcontext_fns[] = {
	{ "make_fcontext", "fcontext_enter", MS_CORO_MAKE_FCONTEXT, false },
	{ "jump_fcontext", "fcontext_enter", MS_CORO_JUMP_FCONTEXT, false },
	{ "ontop_fcontext", "fcontext_enter", MS_CORO_ONTOP_FCONTEXT, false },
};

static int fcontext_attach(const struct runtime_ctx *ctx, struct process *p, enum runtime_want want,
			   char *msg, size_t len)
{
	struct coro_process *c = coro_process__attach(p, NULL);
	struct probe_plan *plan = calloc(1, sizeof(*plan));
	char *exe = NULL;
	int err;

	if (!c || !plan) {
		free(plan);
		return -ENOMEM;
	}
	/* Stacks of their own end when unmapped: munmap of the libc, if ucontext did not. */
	err = coro_process__attach_unmap(ctx, p);
	if (!err)
		err = runtime__plan_library((int)p->pid, FCONTEXT_LIBRARY, fcontext_fns,
					    sizeof(fcontext_fns) / sizeof(fcontext_fns[0]), plan,
					    &exe);
	if (err == -ENOENT)
		snprintf(msg, len,
			 "no fcontext in '%s' or a mapped libboost_context: make_fcontext, "
			 "jump_fcontext and ontop_fcontext not all found",
			 exe ? exe : "?");
	if (!err)
		err = runtime__attach_plan(ctx, p, plan, msg, len);
	if (!err) {
		c->fcontext = "fcontext";
		c->fcontext_requested = want == RUNTIME_NAMED;
		ctx->log(
			"pid %u: fcontext: make_fcontext, jump_fcontext and ontop_fcontext in '%s'",
			p->pid, plan->object);
	}
	free(exe);
	probe_plan__clear(plan);
	free(plan);
	return err;
}

static bool fcontext_attached(const struct process *p)
{
	const struct coro_process *c = coro_process__of(p);

	return c && c->fcontext;
}

/* Its events are the core's (handled by the ucontext row), told apart by the function. */
static bool fcontext_owns(const struct ms_event *e)
{
	return (e->type == MS_EV_CORO_CREATE || e->type == MS_EV_CORO_SWITCH) &&
	       (e->func == MS_CORO_MAKE_FCONTEXT || e->func == MS_CORO_JUMP_FCONTEXT ||
		e->func == MS_CORO_ONTOP_FCONTEXT);
}

static bool fcontext_listed(const struct process *p)
{
	return coro__fcontext_listed(coro_process__of(p));
}

static void fcontext_late_import(struct process *p, const uint64_t data[2])
{
	struct coro_process *c = coro_process__attach(p, NULL);

	(void)data;
	if (c)
		c->fcontext = "fcontext";
}

const struct runtime runtime_fcontext = {
	.name = "fcontext",
	.library = FCONTEXT_LIBRARY,
	.attach = fcontext_attach,
	.attached = fcontext_attached,
	.owns = fcontext_owns,
	.listed = fcontext_listed,
	.late_import = fcontext_late_import,
};
