// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* ucontext coroutines: makecontext, swapcontext and setcontext in the target's libc. */
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
#include "runtime_ucontext.h"

/* Entry probes only: a switch returns on another stack. */
static const struct probe_fn ucontext_fns[] = {
	{ "makecontext", "coro_create", MS_CORO_MAKECONTEXT, false },
	{ "swapcontext", "coro_switch", MS_CORO_SWAPCONTEXT, false },
	{ "setcontext", "coro_switch", MS_CORO_SETCONTEXT, false },
};

static const uint8_t *find_bytes(const uint8_t *p, const uint8_t *end, const uint8_t *pat, size_t n)
{
	for (; p + n <= end; p++)
		if (!memcmp(p, pat, n))
			return p;
	return NULL;
}

size_t ucontext__swapcontext_late_offset(const uint8_t *code, size_t len)
{
	/* mov %rdi,%r9: oucp kept in r9 across the rt_sigprocmask syscall. */
	static const uint8_t keep_oucp[] = { 0x49, 0x89, 0xf9 };
	/* mov 0xa0(%rdx),%rsp; the callee-saved loads; mov 0xa8(%rdx),%rcx; push %rcx */
	static const uint8_t restore[] = {
		0x48, 0x8b, 0xa2, 0xa0, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x9a, 0x80, 0x00, 0x00, 0x00,
		0x48, 0x8b, 0x6a, 0x78, 0x4c, 0x8b, 0x62, 0x48, 0x4c, 0x8b, 0x6a, 0x50, 0x4c, 0x8b,
		0x72, 0x58, 0x4c, 0x8b, 0x7a, 0x60, 0x48, 0x8b, 0x8a, 0xa8, 0x00, 0x00, 0x00, 0x51,
	};
	const uint8_t *end = code + len, *keep, *at;

	keep = find_bytes(code, end, keep_oucp, sizeof(keep_oucp));
	if (!keep)
		return 0;
	at = find_bytes(keep, end, restore, sizeof(restore));
	if (!at || find_bytes(at + sizeof(restore), end, restore, sizeof(restore)))
		return 0;
	return (size_t)(at - code) + sizeof(restore) - 1;
}

int ucontext__plan_from_elf(struct elf_symbols *e, struct probe_plan *plan)
{
	struct probe_spec *swap = NULL;
	struct elf_sym sym;
	uint8_t code[512];
	size_t i, late;
	ssize_t n;
	int err;

	err = probe_plan__functions(e, ucontext_fns, sizeof(ucontext_fns) / sizeof(ucontext_fns[0]),
				    plan);
	if (err)
		return err;
	for (i = 0; i < plan->nprobes; i++)
		if (plan->probes[i].cookie == MS_CORO_SWAPCONTEXT)
			swap = &plan->probes[i];
	/* Its entry is single-stepped: probe the emulated push after the switch if found. */
	if (!swap || elf_symbols__lookup(e, "swapcontext", &sym))
		return 0;
	n = elf_symbols__read(e, swap->offset, code,
			      sym.size && sym.size < sizeof(code) ? sym.size : sizeof(code));
	late = n > 0 ? ucontext__swapcontext_late_offset(code, (size_t)n) : 0;
	if (late) {
		swap->offset += late;
		swap->cookie = MS_CORO_SWAPCONTEXT_LATE;
	}
	return 0;
}

static int plan_object(int pid, const char *object, void *ctx)
{
	struct probe_plan *plan = ctx;
	struct elf_symbols *e;
	int err;

	probe_plan__clear(plan);
	snprintf(plan->object, sizeof(plan->object), "%s", object);
	e = elf_symbols__open_target(pid, object, plan->open_path, sizeof(plan->open_path));
	if (!e)
		return -errno;
	err = ucontext__plan_from_elf(e, plan);
	elf_symbols__close(e);
	return err;
}

int ucontext__plan(int pid, struct probe_plan *plan, char *err, size_t errlen)
{
	char libc[PATH_MAX] = "", *exe = NULL;
	int ret;

	ret = proc__exe(pid, &exe);
	if (ret == -ESRCH) {
		snprintf(err, errlen, "exited during attach");
		return ret;
	}
	if (ret) {
		snprintf(err, errlen, "cannot read /proc/%d/exe: %s", pid, strerror(-ret));
		return ret;
	}
	/* A static executable carries its own libc. */
	ret = plan_object(pid, exe, plan);
	if (ret == 0)
		goto out;
	ret = proc__try_libc(pid, plan_object, plan, libc, sizeof(libc));
	if (ret)
		snprintf(err, errlen,
			 "no ucontext in '%s'%s%s%s: makecontext, swapcontext and "
			 "setcontext not all found",
			 exe, libc[0] ? " or '" : "", libc, libc[0] ? "'" : "");
out:
	free(exe);
	return ret;
}

static int ucontext_attach(const struct runtime_ctx *ctx, struct process *p, enum runtime_want want,
			   char *msg, size_t len)
{
	struct coro_process *c;
	struct probe_plan *plan;
	int err;

	/* The core's state from the start: the watcher looks for libraries of processes with it. */
	c = coro_process__attach(p, NULL);
	plan = calloc(1, sizeof(*plan));
	if (!c || !plan) {
		free(plan);
		return -ENOMEM;
	}
	err = ucontext__plan((int)p->pid, plan, msg, len);
	if (!err) {
		c->requested = want == RUNTIME_NAMED;
		err = runtime__attach_plan(ctx, p, plan, msg, len);
	}
	if (!err && (want != RUNTIME_AUTO || ctx->verbose))
		ctx->log("pid %u: ucontext: makecontext, swapcontext and setcontext in '%s'",
			 p->pid, plan->object);
	probe_plan__clear(plan);
	free(plan);
	if (!err)
		err = coro_process__attach_unmap(ctx, p);
	c->ucontext_attached = !err;
	return err;
}

static bool ucontext_attached(const struct process *p)
{
	const struct coro_process *c = coro_process__of(p);

	return c && c->ucontext_attached;
}

/* The core's events: every stackful runtime's creates, switches and unmaps. */
static void ucontext_event(struct process *p, const struct ms_event *e)
{
	switch (e->type) {
	case MS_EV_CORO_CREATE:
		coro_process__create(p, e);
		break;
	case MS_EV_CORO_SWITCH:
		coro_process__switch(p, e);
		break;
	case MS_EV_CORO_UNMAP:
		coro_process__unmapped(p, e->addr, e->size, e->ts);
		break;
	default:
		break;
	}
}

/* A coroutine's stack holds the stack pointer: exact across threads and switches. */
static uint32_t ucontext_task_of(struct process *p, const struct ms_event *e)
{
	return coro_process__task_of(p, e->sp);
}

static bool ucontext_listed(const struct process *p)
{
	return coro__ucontext_listed(coro_process__of(p));
}

static bool coroutines_section(const struct process *p, struct runtime_section *ret)
{
	return coro_process__section(coro_process__of(p), ret);
}

const struct runtime runtime_ucontext = {
	.name = "ucontext",
	.attach = ucontext_attach,
	.attached = ucontext_attached,
	.events = 1u << MS_EV_CORO_CREATE | 1u << MS_EV_CORO_SWITCH | 1u << MS_EV_CORO_UNMAP,
	.event = ucontext_event,
	.task_of = ucontext_task_of,
	.block_freed = coro_process__block_freed,
	.listed = ucontext_listed,
	.section = coroutines_section,
};
