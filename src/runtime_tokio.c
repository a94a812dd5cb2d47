// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <limits.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libiberty/demangle.h>
#include "memscoped/events.h"
#include "array.h"
#include "proc.h"
#include "probe_plan.h"
#include "process_table.h"
#include "runtime.h"
#include "runtime_tokio.h"

#define LEGACY_POLL "_ZN5tokio7runtime4task3raw4poll17h"
#define V0_POLL "5tokio7runtime4task3raw4poll"
/* A vtable's offsets are small: anything larger is not a vtable. */
#define MAX_CELL_OFFSET 0x10000

void runtime_tokio__clear(struct tokio_info *info)
{
	size_t i;

	for (i = 0; i < info->npolls; i++)
		free(info->polls[i].type_name);
	free(info->polls);
	free(info->vtables);
	memset(info, 0, sizeof(*info));
}

char *runtime_tokio__first_argument(const char *p)
{
	const char *q;
	int depth = 0;

	/* It ends at the ',' or '>' of depth 0. */
	for (q = p; *q; q++) {
		if (*q == '<' || *q == '(' || *q == '[')
			depth++;
		else if (*q == '>' || *q == ')' || *q == ']')
			depth--;
		if (depth < 0 || (depth == 0 && *q == ','))
			return q == p ? NULL : strndup(p, (size_t)(q - p));
	}
	return NULL;
}

char *runtime_tokio__type_from_demangled(const char *d)
{
	const char *p = strstr(d, "raw::poll::<");

	if (!p)
		p = strstr(d, "raw::poll<");
	return p ? runtime_tokio__first_argument(strchr(p, '<') + 1) : NULL;
}

static bool is_poll_symbol(const char *name)
{
	const char *p;

	if (!strncmp(name, LEGACY_POLL, strlen(LEGACY_POLL)))
		return true;
	if (strncmp(name, "_R", 2))
		return false;
	/* v0: the path ends in "4poll" followed by generic arguments, not "4poll_…". */
	p = strstr(name, V0_POLL);
	return p && p[strlen(V0_POLL)] != '_' &&
	       (p[strlen(V0_POLL)] < '0' || p[strlen(V0_POLL)] > '9');
}

static char *name_for_copy(const char *symbol, uint64_t vaddr, bool *ret_named)
{
	char *demangled = cplus_demangle(symbol, DMGL_PARAMS | DMGL_RUST), *type = NULL, *s;
	const char *hash;

	if (demangled) {
		type = runtime_tokio__type_from_demangled(demangled);
		free(demangled);
		*ret_named = type != NULL;
		if (type)
			return type;
	}
	/* Legacy mangling has no generic arguments: the hash tells the copies apart. */
	hash = strstr(symbol, "17h");
	if (hash && asprintf(&s, "tokio::runtime::task::raw::poll::h%.16s", hash + 3) >= 0)
		return s;
	return asprintf(&s, "poll@0x%llx", (unsigned long long)vaddr) >= 0 ? s : NULL;
}

static int add_poll(struct tokio_info *info, struct elf_symbols *e, uint64_t vaddr,
		    const char *symbol)
{
	struct tokio_poll *polls;
	uint64_t offset;
	size_t i;

	for (i = 0; i < info->npolls; i++)
		if (info->polls[i].vaddr == vaddr)
			return 0;
	if (elf_symbols__offset(e, vaddr, &offset))
		return 0;
	polls = realloc(info->polls, (info->npolls + 1) * sizeof(*polls));
	if (!polls)
		return -ENOMEM;
	info->polls = polls;
	polls[info->npolls].vaddr = vaddr;
	polls[info->npolls].offset = offset;
	polls[info->npolls].named = false;
	polls[info->npolls].type_name =
		name_for_copy(symbol ? symbol : "", vaddr, &polls[info->npolls].named);
	if (!polls[info->npolls].type_name)
		return -ENOMEM;
	info->npolls++;
	return 0;
}

struct sym_ctx {
	struct tokio_info *info;
	struct elf_symbols *e;
	int err;
};

static int on_symbol(const struct elf_sym *sym, void *ctx)
{
	struct sym_ctx *c = ctx;

	if (sym->type != STT_FUNC || !is_poll_symbol(sym->name))
		return 0;
	c->err = add_poll(c->info, c->e, sym->vaddr, sym->name);
	return c->err;
}

/*
 * A vtable in a PIE: 7 consecutive R_X86_64_RELATIVE slots pointing into code, then three
 * plain words (no relocation) with scheduler_offset <= id_offset < trailer_offset.
 */
int runtime_tokio__find_vtables(struct elf_symbols *e, struct tokio_info *info)
{
	struct elf_reloc *r = NULL;
	size_t n = 0;
	struct tokio_vtable *vt;
	uint64_t words[3];
	size_t i, k;
	int err;

	err = elf_symbols__relative_sorted(e, &r, &n);
	if (err)
		goto out;
	for (i = 0; i + 7 <= n; i++) {
		for (k = 0; k < 7; k++)
			if (r[i + k].offset != r[i].offset + 8 * k ||
			    !elf_symbols__is_text(e, r[i + k].addend))
				break;
		if (k < 7)
			continue;
		if (i + 7 < n && r[i + 7].offset < r[i].offset + 80)
			continue;
		if (elf_symbols__read_vaddr(e, r[i].offset + 56, words, sizeof(words)))
			continue;
		/*
		 * The scheduler follows the 32-byte header at the future's alignment: a power of
		 * two >= 32; all offsets are multiples of 8 (rejects look-alike fmt tables).
		 */
		if (!(words[1] <= words[2] && words[2] < words[0] && words[0] < MAX_CELL_OFFSET &&
		      words[1] >= 32 && !(words[1] & (words[1] - 1)) &&
		      !((words[0] | words[2]) & 7)))
			continue;
		vt = realloc(info->vtables, (info->nvtables + 1) * sizeof(*vt));
		if (!vt) {
			err = -ENOMEM;
			goto out;
		}
		info->vtables = vt;
		vt += info->nvtables++;
		vt->vaddr = r[i].offset;
		vt->poll = r[i].addend;
		vt->trailer_offset = words[0];
		vt->scheduler_offset = words[1];
		vt->id_offset = words[2];
		i += 6;
	}
out:
	free(r);
	return err;
}

int runtime_tokio__discover(struct elf_symbols *e, struct elf_symbols *syms, struct tokio_info *ret)
{
	struct sym_ctx c = { ret, e, 0 };
	size_t i;
	int err;

	memset(ret, 0, sizeof(*ret));
	elf_symbols__foreach(syms ? syms : e, on_symbol, &c);
	err = c.err;
	if (!err)
		err = runtime_tokio__find_vtables(e, ret);
	ret->source = ret->npolls ? "symbols" : "vtables";
	/* Stripped: every vtable's slot 0 is a poll copy. With symbols, they must agree. */
	for (i = 0; !err && i < ret->nvtables; i++)
		if (!ret->npolls || !strcmp(ret->source, "vtables"))
			err = add_poll(ret, e, ret->vtables[i].poll, NULL);
	if (!err && (!ret->npolls || !ret->nvtables))
		err = -ENOENT;
	/* DWARF, where there is some, names every copy; the code names what is left. */
	if (!err)
		runtime_tokio__name_types_dwarf(syms ? syms : e, ret);
	if (!err && !strcmp(ret->source, "symbols"))
		err = runtime_tokio__name_types(e, syms ? syms : e, ret);
	if (err)
		runtime_tokio__clear(ret);
	return err;
}

const struct tokio_vtable *runtime_tokio__vtable(const struct tokio_info *info, uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < info->nvtables; i++)
		if (info->vtables[i].vaddr == vaddr)
			return &info->vtables[i];
	return NULL;
}

const struct tokio_poll *runtime_tokio__poll(const struct tokio_info *info, uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < info->npolls; i++)
		if (info->polls[i].vaddr == vaddr)
			return &info->polls[i];
	return NULL;
}

static int by_vaddr(const void *a, const void *b)
{
	const struct tokio_vtable *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* The key of tokio's state in a process. */
static const char tokio_key;

static void tokio_state_free(void *state)
{
	tokio_process__free(state);
}

struct tokio_process *tokio_process__of(const struct process *p)
{
	return process__state(p, &tokio_key);
}

struct tokio_process *tokio_process__new(struct process *p, struct tokio_info *info, uint64_t bias)
{
	struct tokio_process *t = calloc(1, sizeof(*t));
	const struct tokio_poll *poll;
	size_t i;

	if (!t)
		return NULL;
	t->vt_types = calloc(info->nvtables + 1, sizeof(*t->vt_types));
	if (!t->vt_types) {
		free(t);
		return NULL;
	}
	t->info = *info;
	memset(info, 0, sizeof(*info));
	t->bias = bias;
	qsort(t->info.vtables, t->info.nvtables, sizeof(*t->info.vtables), by_vaddr);
	for (i = 0; i < t->info.nvtables; i++) {
		poll = runtime_tokio__poll(&t->info, t->info.vtables[i].poll);
		t->vt_types[i] =
			task_table__type(p->tasks, "tokio", poll ? poll->type_name : "unknown");
	}
	if (process__set_state(p, &tokio_key, t, tokio_state_free))
		return NULL;
	return t;
}

void tokio_process__free(struct tokio_process *t)
{
	if (!t)
		return;
	runtime_tokio__clear(&t->info);
	free(t->object);
	free(t->vt_types);
	free(t);
}

static const struct tokio_vtable *find_vtable(const struct tokio_process *t, uint64_t rt_addr)
{
	struct tokio_vtable key = { .vaddr = rt_addr - t->bias };

	return bsearch(&key, t->info.vtables, t->info.nvtables, sizeof(key), by_vaddr);
}

uint32_t tokio_process__task_of(struct process *p, uint64_t header)
{
	struct task *task;

	if (!header || !tokio_process__of(p))
		return 0;
	task = task_table__find(p->tasks, header);
	return task ? task_table__index(p->tasks, task) : 0;
}

/* The live lifetime at this header, unless its cell was freed and reused unseen. */
static struct task *current(struct process *p, uint64_t hdr, const struct heap_block *cell,
			    bool have_cell)
{
	struct task *task = task_table__find(p->tasks, hdr);
	uint32_t idx;

	if (!task)
		return NULL;
	idx = task_table__index(p->tasks, task);
	if (have_cell && cell->task != (idx | TASK_CELL_BIT) &&
	    task->discovered == TASK_FOUND_SPAWN && task->spawn_ns)
		return NULL;
	return task;
}

/* The task's cell, allocated since attach: its size, its parent, and it stops counting as
 * the parent's live bytes. */
static void adopt_cell(struct process *p, struct task *task, const struct heap_block *cell)
{
	struct task *parent =
		cell->task & TASK_CELL_BIT ? NULL : task_table__at(p->tasks, cell->task);

	task->parent_id = parent ? parent->runtime_id : 0;
	task_table__cell(p->tasks, task, cell->size);
	process__claim_cell(p, cell->addr, task_table__index(p->tasks, task), NULL);
}

void tokio_process__poll_enter(struct process *p, const struct ms_event *e)
{
	struct tokio_process *t = tokio_process__of(p);
	const struct tokio_vtable *vt;
	struct heap_block cell;
	struct task *task;
	bool have_cell;

	if (!t || t->invalid)
		return;
	vt = find_vtable(t, e->poll.vtable);
	if (!vt) {
		t->unknown_vtables++;
		return;
	}
	have_cell = heap_table__lookup(p->blocks, e->addr, &cell);
	task = current(p, e->addr, &cell, have_cell);
	/*
	 * Found by the attach scan, yet its cell was allocated after attach: it was spawned while
	 * the scan ran (its events still queued). It is a spawn: take its cell's figures.
	 */
	if (task && task->discovered == TASK_FOUND_ATTACH_SCAN && have_cell &&
	    !(cell.task & TASK_CELL_BIT)) {
		/*
		 * Its id and type too: the scan may have read a later task's header at this address
		 * (the queued events are of one that lived there before), the poll read this one's.
		 */
		if (e->poll.id)
			task->runtime_id = e->poll.id;
		task->kind = e->poll.owner_id ? TASK_ASYNC : TASK_BLOCKING;
		task_table__retype(p->tasks, task, t->vt_types[vt - t->info.vtables]);
		task->discovered = TASK_FOUND_SPAWN;
		task->spawn_ns = p->start_ns + cell.time_cs * 10000000ull;
		task->last_poll_end_ns = 0;
		adopt_cell(p, task, &cell);
	}
	if (!task) {
		/* The first poll of an unseen header: a task spawned since attach (or before). */
		task = task_table__spawn(p->tasks, e->addr, t->vt_types[vt - t->info.vtables],
					 e->poll.owner_id ? TASK_ASYNC : TASK_BLOCKING,
					 TASK_FOUND_SPAWN,
					 have_cell ? p->start_ns + cell.time_cs * 10000000ull : 0);
		if (!task)
			return;
		task->runtime_id = e->poll.id;
		if (have_cell) {
			adopt_cell(p, task, &cell);
		} else {
			task->discovered = TASK_FOUND_FIRST_POLL;
			/* Allocated before attach: the cell's size is at least this. */
			task_table__cell(p->tasks, task, vt->trailer_offset + 32);
		}
	}
	task->detached = !(e->poll.state & TOKIO_STATE_JOIN_INTEREST);
	task->cancel_seen |= !!(e->poll.state & TOKIO_STATE_CANCELLED);
	task_table__poll_begin(p->tasks, task, e->ts);
}

void tokio_process__poll_exit(struct process *p, const struct ms_event *e)
{
	struct tokio_process *t = tokio_process__of(p);
	enum task_state ended = TASK_IDLE;
	struct task *task;

	if (!t || t->invalid)
		return;
	/* Gone already: the cell was freed inside the poll, which ended the task. */
	task = task_table__find(p->tasks, e->addr);
	if (!task)
		return;
	if (e->poll.state & TOKIO_STATE_CANCELLED)
		ended = TASK_CANCELLED;
	else if (e->poll.state & TOKIO_STATE_COMPLETE)
		ended = TASK_COMPLETED;
	task->detached = !(e->poll.state & TOKIO_STATE_JOIN_INTEREST);
	task_table__poll_end(p->tasks, task, e->ts, ended);
}

/* The target's executable first, then each other object it maps executable, once. */
struct objects {
	char **paths;
	size_t n;
};

static int add_object(struct objects *o, const char *path)
{
	char **paths;
	size_t i;

	for (i = 0; i < o->n; i++)
		if (!strcmp(o->paths[i], path))
			return 0;
	paths = realloc(o->paths, (o->n + 1) * sizeof(*paths));
	if (!paths)
		return -ENOMEM;
	o->paths = paths;
	o->paths[o->n] = strdup(path);
	return o->paths[o->n++] ? 0 : -ENOMEM;
}

static int on_mapping(const struct proc_mapping *m, void *ctx)
{
	return m->perms[2] == 'x' && m->path[0] == '/' ? add_object(ctx, m->path) : 0;
}

/*
 * A separate debug file found by build-id, as gdb lays them out: under debug_dir as given, or
 * by default under the target's own /usr/lib/debug (inside its container, if any).
 */
static struct elf_symbols *open_debug_file(int pid, const char *debug_dir, struct elf_symbols *e)
{
	char id[128], rel[PATH_MAX], path[PATH_MAX];

	if (elf_symbols__build_id(e, id, sizeof(id)) || strlen(id) < 3)
		return NULL;
	if (snprintf(rel, sizeof(rel), "%s/.build-id/%.2s/%s.debug",
		     debug_dir ? debug_dir : "/usr/lib/debug", id, id + 2) >= (int)sizeof(rel))
		return NULL;
	if (debug_dir)
		return elf_symbols__open(rel);
	if (proc__root_path(pid, rel, path, sizeof(path)))
		return NULL;
	return elf_symbols__open(path);
}

/* tokio in one object of the target: 0, -ENOENT, or -errno with err set. */
static int setup_object(struct process *p, int pid, const char *object, const char *debug_dir,
			char *err, size_t errlen)
{
	struct elf_symbols *e, *debug;
	uint64_t start;
	struct tokio_process *t;
	struct tokio_info info;
	char path[PATH_MAX];
	int ret;

	e = elf_symbols__open_target(pid, object, path, sizeof(path));
	if (!e) {
		ret = -errno;
		snprintf(err, errlen, "cannot read '%s': %s", object, strerror(errno));
		return ret;
	}
	debug = open_debug_file(pid, debug_dir, e);
	ret = runtime_tokio__discover(e, debug, &info);
	if (!ret && debug && !strcmp(info.source, "symbols"))
		info.source = "its build-id debug file";
	if (!ret && proc__load_start(pid, object, &start)) {
		snprintf(err, errlen, "'%s' is not mapped by pid %d", object, pid);
		runtime_tokio__clear(&info);
		ret = -ESRCH;
	}
	if (!ret) {
		t = tokio_process__new(p, &info, start - elf_symbols__base_vaddr(e));
		if (t)
			t->object = strdup(object);
		if (!t || !t->object) {
			process__set_state(p, &tokio_key, NULL, NULL);
			runtime_tokio__clear(&info);
			ret = -ENOMEM;
		}
	}
	elf_symbols__close(debug);
	elf_symbols__close(e);
	return ret;
}

int tokio_process__setup(struct process *p, int pid, const char *debug_dir, char *err,
			 size_t errlen)
{
	struct objects o = { 0 };
	int ret, exe_err = 0;
	size_t i;

	ret = add_object(&o, p->exe);
	if (!ret && proc__mappings(pid, on_mapping, &o) < 0)
		ret = -ESRCH;
	for (i = 0; !ret && i < o.n && !tokio_process__of(p); i++) {
		ret = setup_object(p, pid, o.paths[i], debug_dir, err, errlen);
		/* A library that cannot be read is not tokio's; the executable must be. */
		if (ret && ret != -ESRCH && ret != -ENOMEM) {
			if (!i)
				exe_err = ret;
			ret = 0;
		}
	}
	if (!ret && !tokio_process__of(p)) {
		if (exe_err && exe_err != -ENOENT)
			ret = exe_err; /* err says why the executable could not be read */
		else
			ret = -ENOENT;
		if (ret == -ENOENT)
			snprintf(err, errlen,
				 "no tokio in '%s' nor in the %zu objects it maps: no "
				 "tokio::runtime::task::raw::poll symbols (nor in build-id debug "
				 "files) and no task vtables in their relocations",
				 p->exe, o.n ? o.n - 1 : 0);
	}
	for (i = 0; i < o.n; i++)
		free(o.paths[i]);
	free(o.paths);
	return ret;
}

/* Every poll copy: a return probe and an entry probe whose cookie is its runtime address. */
static int tokio_plan(const struct tokio_process *t, int pid, struct probe_plan *plan)
{
	const struct tokio_poll *poll;
	size_t i;
	int pass;

	snprintf(plan->object, sizeof(plan->object), "%s", t->object);
	if (proc__root_path(pid, t->object, plan->open_path, sizeof(plan->open_path)))
		return -ENAMETOOLONG;
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < t->info.npolls; i++) {
			poll = &t->info.polls[i];
			/* The BPF program checks each header's vtable against this address. */
			if (probe_plan__add(
				    plan,
				    &(struct probe_spec){
					    .symbol = poll->type_name,
					    .prog = pass ? "task_poll_enter" : "task_poll_return",
					    .cookie = MS_TASK_COOKIE(
						    poll->vaddr + t->bias, TOKIO_HDR_VTABLE / 8,
						    TOKIO_VT_POLL / 8, TOKIO_HDR_STATE / 8,
						    MS_TASK_TOKIO, true),
					    .retprobe = !pass,
					    .offset = poll->offset }))
				return -ENOMEM;
		}
	return 0;
}

static int tokio_attach(const struct runtime_ctx *ctx, struct process *p, enum runtime_want want,
			char *msg, size_t len)
{
	struct probe_plan *plan;
	struct tokio_process *t;
	int err;

	(void)want;
	process__set_state(p, &tokio_key, NULL, NULL);
	err = tokio_process__setup(p, (int)p->pid, ctx->debug_dir, msg, len);
	if (err)
		return err;
	t = tokio_process__of(p);
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	err = tokio_plan(t, (int)p->pid, plan);
	if (!err)
		err = runtime__attach_plan(ctx, p, plan, msg, len);
	probe_plan__clear(plan);
	free(plan);
	if (!err)
		ctx->log("pid %u: tokio: %zu poll functions and %zu task vtables in '%s' (from %s)",
			 p->pid, t->info.npolls, t->info.nvtables, t->object, t->info.source);
	return err;
}

static bool tokio_attached(const struct process *p)
{
	return tokio_process__of(p) != NULL;
}

static void tokio_event(struct process *p, const struct ms_event *e)
{
	struct tokio_process *t;

	if (e->func != MS_TASK_TOKIO)
		return;
	switch (e->type) {
	case MS_EV_TASK_ENTER:
		tokio_process__poll_enter(p, e);
		break;
	case MS_EV_TASK_EXIT:
		tokio_process__poll_exit(p, e);
		break;
	case MS_EV_TASK_INVALID:
		t = tokio_process__of(p);
		if (t)
			t->invalid = true;
		break;
	default:
		break;
	}
}

static uint32_t tokio_task_of(struct process *p, const struct ms_event *e)
{
	return tokio_process__task_of(p, e->task);
}

static int tokio_scan(struct process *p, uint64_t now_ns, char *msg, size_t len)
{
	struct tokio_scan_stats st;
	int err;

	if (!tokio_process__of(p))
		return -ENOENT;
	err = tokio_process__scan(p, (int)p->pid, now_ns, &st);
	if (!err)
		snprintf(msg, len, "attach scan: %llu tokio tasks in %.1f MiB in %.1f ms",
			 (unsigned long long)st.found, (double)st.bytes / (1 << 20),
			 (double)st.elapsed_ns / 1e6);
	return err;
}

static const char *tokio_problem(struct process *p)
{
	struct tokio_process *t = tokio_process__of(p);

	if (!t || !t->invalid || t->invalid_logged)
		return NULL;
	t->invalid_logged = true;
	return "a tokio task header failed validation against its vtable (unsupported tokio "
	       "layout?); tasks are no longer tracked, the heap is";
}

static int tokio_describe(const struct process *p, char *buf, size_t len)
{
	const struct tokio_process *t = tokio_process__of(p);

	if (!t)
		return -ENOENT;
	snprintf(buf, len, "tokio in '%s'", t->object);
	return 0;
}

const struct runtime runtime_tokio = {
	.name = "tokio",
	.attach = tokio_attach,
	.attached = tokio_attached,
	.events = 1u << MS_EV_TASK_ENTER | 1u << MS_EV_TASK_EXIT | 1u << MS_EV_TASK_INVALID,
	.event = tokio_event,
	.task_of = tokio_task_of,
	.scan = tokio_scan,
	.problem = tokio_problem,
	.listed = tokio_attached,
	.describe = tokio_describe,
};
