// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The stackful-coroutine core every stackful runtime (ucontext, pcl, fcontext) shares: live
 * stacks, the lifecycle of the coroutines on them, and the target's maps and symbols.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libiberty/demangle.h>
#include "memscoped/events.h"
#include "coro.h"
#include "runtime.h"
#include "elf_symbols.h"
#include "probe_plan.h"
#include "proc.h"
#include "process_table.h"
/* A stack larger than this is not one (a corrupt or uninitialised ucontext). */
#define MAX_STACK_SIZE (1ull << 32)
/* A mapping larger than this is no coroutine stack (glibc arenas are 64 MiB). */
#define MAX_DEDICATED_STACK (32ull << 20)
#define MAX_GUARD (1ull << 20)
/* glibc aligns each thread arena's heap to its 64 MiB maximum: no stack mapping starts there. */
#define ARENA_HEAP_ALIGN (64ull << 20)
#define CORO_MAX_ENTRIES 4096
/*
 * __start_context calls setcontext(uc_link) with its stack pointer a few words under the top
 * of the coroutine's stack (the entry function's frame is gone): uc_link, stack arguments past
 * the sixth and the alignment padding lie above it.
 */
#define RETURN_FRAME_BYTES 256

/* Live stacks: a sorted array, binary search. */

size_t coro_stacks__lower(const struct coro_stacks *cs, uint64_t addr)
{
	size_t lo = 0, hi = cs->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (cs->s[mid].hi <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct coro_stack *coro_stacks__find(const struct coro_stacks *cs, uint64_t addr)
{
	size_t i = coro_stacks__lower(cs, addr);

	return i < cs->n && cs->s[i].lo <= addr ? &cs->s[i] : NULL;
}

int coro_stacks__insert(struct coro_stacks *cs, const struct coro_stack *s)
{
	size_t i = coro_stacks__lower(cs, s->lo);
	struct coro_stack *grown;

	if (s->lo >= s->hi || (i < cs->n && cs->s[i].lo < s->hi))
		return -EEXIST;
	if (cs->n == cs->cap) {
		grown = realloc(cs->s, (cs->cap ? cs->cap * 2 : 64) * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		cs->s = grown;
		cs->cap = cs->cap ? cs->cap * 2 : 64;
	}
	memmove(&cs->s[i + 1], &cs->s[i], (cs->n - i) * sizeof(*cs->s));
	cs->s[i] = *s;
	cs->n++;
	return 0;
}

void coro_stacks__remove_at(struct coro_stacks *cs, size_t i)
{
	if (i >= cs->n)
		return;
	memmove(&cs->s[i], &cs->s[i + 1], (cs->n - i - 1) * sizeof(*cs->s));
	cs->n--;
}

void coro_stacks__clear(struct coro_stacks *cs)
{
	free(cs->s);
	memset(cs, 0, sizeof(*cs));
}

/*
 * The real environment, the target's maps and ELF symbols. The daemon drops its capabilities once attached, after which /proc/PID/maps and
 * /proc/PID/root can no longer be opened: both are opened at attach and kept.
 */
struct real_env {
	int maps_fd;
	int root_fd;
};

static int maps_lines(const struct real_env *r, int (*cb)(char *line, void *ctx), void *ctx)
{
	return proc__maps_fd_lines(r->maps_fd, cb, ctx);
}

struct vma_ctx {
	uint64_t addr;
	uint64_t prev_end;
	bool prev_guard; /* the previous mapping is anonymous, PROT_NONE and small */
	struct coro_vma found;
	bool have;
};

static int vma_line(char *line, void *ctx)
{
	struct vma_ctx *v = ctx;
	unsigned long long start, end, offset;
	char perms[8] = "", path[64] = "";
	struct coro_vma m = { 0 };
	int n = 0;

	if (sscanf(line, "%llx-%llx %7s %llx %*s %*u %n", &start, &end, perms, &offset, &n) < 4 ||
	    !n)
		return 0;
	sscanf(line + n, "%63s", path);
	m.start = start;
	m.end = end;
	m.writable = perms[1] == 'w';
	m.stack = !strcmp(path, "[stack]");
	m.anon = !path[0];
	m.guard_below = v->prev_guard && v->prev_end == m.start;
	if (start <= v->addr && v->addr < end) {
		v->found = m;
		v->have = true;
		return 1;
	}
	v->prev_end = end;
	v->prev_guard = m.anon && !strncmp(perms, "---", 3) && end - start <= MAX_GUARD;
	return 0;
}

static int real_vma(void *ctx, uint64_t addr, struct coro_vma *ret)
{
	struct vma_ctx v = { .addr = addr };
	int err;

	err = maps_lines(ctx, vma_line, &v);
	if (err < 0)
		return err;
	if (!v.have)
		return -ENOENT;
	*ret = v.found;
	return 0;
}

struct sym_ctx {
	uint64_t addr; /* runtime address */
	char *path;
	uint64_t first_start;
	bool have_first;
};

static int find_object(char *line, void *ctx)
{
	struct sym_ctx *s = ctx;
	struct proc_mapping m;

	if (!proc__parse_maps_line(line, &m) || m.start > s->addr || s->addr >= m.end)
		return 0;
	s->path = strdup(m.path);
	return 1;
}

static int first_mapping(char *line, void *ctx)
{
	struct sym_ctx *s = ctx;
	struct proc_mapping m;

	if (!proc__parse_maps_line(line, &m) || strcmp(m.path, s->path) || m.offset != 0)
		return 0;
	s->first_start = m.start;
	s->have_first = true;
	return 1;
}

struct containing {
	uint64_t vaddr;
	struct elf_sym sym;
	bool found;
};

static int containing_symbol(const struct elf_sym *sym, void *ctx)
{
	struct containing *c = ctx;

	if (sym->type != STT_FUNC && sym->type != STT_GNU_IFUNC)
		return 0;
	if (sym->vaddr == c->vaddr ||
	    (sym->vaddr < c->vaddr && c->vaddr < sym->vaddr + sym->size)) {
		c->sym = *sym;
		c->found = true;
		return 1;
	}
	return 0;
}

/* "name" demangled, without a "@VERSION" suffix; malloc'd. */
static char *symbol_name(const char *name)
{
	char *plain = strndup(name, strcspn(name, "@")), *d;

	if (!plain)
		return NULL;
	d = cplus_demangle(plain, DMGL_PARAMS);
	if (d) {
		free(plain);
		return d;
	}
	return plain;
}

static char *real_symbolize(void *ctx, uint64_t addr)
{
	struct real_env *r = ctx;
	struct sym_ctx s = { .addr = addr };
	struct containing c = { 0 };
	char path[PATH_MAX], *name = NULL;
	struct elf_symbols *e;
	const char *base;

	if (maps_lines(r, find_object, &s) < 0 || !s.path)
		goto out;
	if (maps_lines(r, first_mapping, &s) < 0 || !s.have_first)
		goto out;
	/* Through the target's root opened at attach: its files, inside its container. */
	if (snprintf(path, sizeof(path), "/proc/self/fd/%d%s", r->root_fd, s.path) >=
	    (int)sizeof(path))
		goto out;
	e = elf_symbols__open(path);
	if (e) {
		c.vaddr = addr - s.first_start + elf_symbols__base_vaddr(e);
		elf_symbols__foreach(e, containing_symbol, &c);
		if (c.found)
			name = symbol_name(c.sym.name);
		elf_symbols__close(e);
	}
	/* Stripped: name the place, so that coroutines of one function still group. */
	if (!name) {
		base = strrchr(s.path, '/');
		if (asprintf(&name, "%s+0x%" PRIx64, base ? base + 1 : s.path,
			     addr - s.first_start) < 0)
			name = NULL;
	}
out:
	free(s.path);
	return name;
}

static struct real_env *real_env_open(int pid)
{
	struct real_env *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	/* Through the helper's descriptors when it attached the process (proc.h). */
	r->maps_fd = proc__open_maps(pid);
	r->root_fd = proc__open_root(pid);
	return r;
}

static void real_env_close(struct real_env *r)
{
	if (!r)
		return;
	if (r->maps_fd >= 0)
		close(r->maps_fd);
	if (r->root_fd >= 0)
		close(r->root_fd);
	free(r);
}

struct coro_process *coro_process__new(const char *runtime, const struct coro_env *env, int pid)
{
	struct coro_process *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->runtime = runtime;
	if (env) {
		c->env = *env;
	} else {
		c->real = real_env_open(pid);
		c->env.vma = real_vma;
		c->env.symbolize = real_symbolize;
		c->env.ctx = c->real;
	}
	c->gens_mask = 255;
	c->gens = calloc(c->gens_mask + 1, sizeof(*c->gens));
	if (!c->gens || (!env && !c->real)) {
		coro_process__free(c);
		return NULL;
	}
	return c;
}

void coro_process__free(struct coro_process *c)
{
	if (!c)
		return;
	coro_stacks__clear(&c->stacks);
	real_env_close(c->real);
	free(c->types);
	free(c->gens);
	free(c);
}

/* Per-stack generations: open addressing on the stack address. */

static struct coro_generation *gen_slot(struct coro_process *c, uint64_t lo)
{
	size_t i = (size_t)((lo * 0x9e3779b97f4a7c15ull) >> 24) & c->gens_mask;

	while (c->gens[i].lo && c->gens[i].lo != lo)
		i = (i + 1) & c->gens_mask;
	return &c->gens[i];
}

static uint32_t next_generation(struct coro_process *c, uint64_t lo)
{
	struct coro_generation *g, *old;
	size_t cap, i;

	if ((c->ngens + 1) * 2 > c->gens_mask + 1) {
		cap = (c->gens_mask + 1) * 2;
		old = c->gens;
		c->gens = calloc(cap, sizeof(*c->gens));
		if (!c->gens) {
			c->gens = old;
			return 0;
		}
		c->gens_mask = cap - 1;
		for (i = 0; i < cap / 2; i++)
			if (old[i].lo)
				*gen_slot(c, old[i].lo) = old[i];
		free(old);
	}
	g = gen_slot(c, lo);
	if (!g->lo) {
		g->lo = lo;
		c->ngens++;
	}
	return ++g->generation;
}

static uint32_t type_of_entry(struct process *p, struct coro_process *c, const char *runtime,
			      uint64_t entry)
{
	struct coro_entry_type *grown;
	char *name;
	uint32_t type;
	size_t i;

	for (i = 0; i < c->ntypes; i++)
		if (c->types[i].entry == entry && c->types[i].runtime == runtime)
			return c->types[i].type;
	/* Symbolizing reads the maps and an ELF file: only for so many functions. */
	if (c->ntypes >= CORO_MAX_ENTRIES)
		return task_table__type(p->tasks, runtime, "other");
	name = entry && c->env.symbolize ? c->env.symbolize(c->env.ctx, entry) : NULL;
	if (!name && entry && asprintf(&name, "0x%" PRIx64, entry) < 0)
		name = NULL;
	/* Entry 0: found at a switch, its makecontext (and function) unseen. */
	type = task_table__type(p->tasks, runtime, name ? name : CORO_TYPE_UNSEEN);
	free(name);
	/* Bounded by the number of distinct entry functions, itself bounded by task types. */
	if (c->ntypes == c->types_cap) {
		grown = realloc(c->types, (c->types_cap ? c->types_cap * 2 : 16) * sizeof(*grown));
		if (!grown)
			return type;
		c->types = grown;
		c->types_cap = c->types_cap ? c->types_cap * 2 : 16;
	}
	c->types[c->ntypes].entry = entry;
	c->types[c->ntypes].runtime = runtime;
	c->types[c->ntypes++].type = type;
	return type;
}

struct task *coro__task_at(struct process *p, uint32_t index)
{
	struct task *t = task_table__at(p->tasks, index);

	return t && t->state != TASK_DEALLOCATED ? t : NULL;
}

/* Ends the coroutine of stack i (its stack is gone or taken) and forgets the stack. */
void coro__end_stack(struct process *p, size_t i, bool cancelled, uint64_t ts)
{
	struct task *t = coro__task_at(p, coro_process__of(p)->stacks.s[i].task);

	if (t) {
		t->cancel_seen |= cancelled && !task__ended(t);
		task_table__dealloc(p->tasks, t, ts);
	}
	coro_stacks__remove_at(&coro_process__of(p)->stacks, i);
}

/* Every live stack overlapping [lo, hi) ends: it was reused or freed while suspended. */
static void end_overlapping(struct process *p, uint64_t lo, uint64_t hi, uint64_t *counter,
			    uint64_t ts)
{
	struct coro_stacks *cs = &coro_process__of(p)->stacks;
	size_t i = coro_stacks__lower(cs, lo);

	while (i < cs->n && cs->s[i].lo < hi) {
		/* A fiber that left by ontop_fcontext finished, unless it was being unwound. */
		coro__end_stack(p, i, !cs->s[i].exiting || cs->s[i].unwinding, ts);
		(*counter)++;
	}
}

static struct task *start(struct process *p, uint64_t lo, uint64_t hi, uint64_t link, uint32_t type,
			  enum task_discovery how, uint64_t ts)
{
	struct coro_process *c = coro_process__of(p);
	struct coro_stack s = { .lo = lo, .hi = hi, .link = link };
	struct task *t;

	t = task_table__spawn(p->tasks, lo | CORO_KEY_BIT, type, TASK_ASYNC, how, ts);
	if (!t)
		return NULL;
	t->stack_base = lo;
	t->stack_size = hi - lo;
	t->generation = next_generation(c, lo);
	s.task = task_table__index(p->tasks, t);
	if (coro_stacks__insert(&c->stacks, &s)) {
		/* Out of memory: without its stack the coroutine cannot be followed. */
		task_table__dealloc(p->tasks, t, ts);
		return NULL;
	}
	return t;
}

static void forget_regions(struct coro_process *c, uint64_t lo, uint64_t hi)
{
	size_t i;

	for (i = 0; i < c->nregions; i++)
		if (c->regions[i].lo < hi && lo < c->regions[i].hi)
			c->regions[i].hi = c->regions[i].lo; /* empty: never matches */
}

/* The co_create in progress on thread tid, or with add a new slot for it (oldest reused). */
struct coro_pcl_pending *coro__pcl_pending(struct coro_process *c, uint32_t tid, bool add)
{
	struct coro_pcl_pending *slot;
	size_t i;

	if (!c->pcl)
		return NULL;
	for (i = 0; i < CORO_PCL_PENDING; i++)
		if (c->pending[i].active && c->pending[i].tid == tid)
			return &c->pending[i];
	if (!add)
		return NULL;
	slot = &c->pending[c->next_pending];
	c->next_pending = (c->next_pending + 1) % CORO_PCL_PENDING;
	memset(slot, 0, sizeof(*slot));
	slot->tid = tid;
	slot->active = true;
	return slot;
}

void coro_process__create(struct process *p, const struct ms_event *e)
{
	struct coro_process *c = coro_process__of(p);
	uint64_t lo = e->coro_create.stack, size = e->coro_create.stack_size;
	struct coro_pcl_pending *pending;
	const char *runtime;
	struct task *t;

	if (!c)
		return;
	c->created++;
	if (!lo || !size || size > MAX_STACK_SIZE || lo + size < lo) {
		c->bad_creates++;
		return;
	}
	/* A new coroutine on a stack in use: the old one can never run again. */
	end_overlapping(p, lo, lo + size, &c->ended_reused, e->ts);
	forget_regions(c, lo, lo + size);
	pending = e->func == MS_CORO_MAKECONTEXT ? coro__pcl_pending(c, e->tid, false) : NULL;
	if (pending && pending->internal) {
		/* libpcl's delete helper: its stack runs nothing of the program's. Stack ranges
		 * are bounded by --max-tasks like the coroutines that own the others. */
		c->pcl_internal++;
		if (p->tasks->max_tasks && c->stacks.n >= p->tasks->max_tasks)
			p->tasks->tasks_dropped++;
		else
			coro_stacks__insert(&c->stacks,
					    &(struct coro_stack){ .lo = lo, .hi = lo + size });
		return;
	}
	runtime = pending ? c->pcl : c->runtime;
	if (e->func == MS_CORO_MAKE_FCONTEXT && c->fcontext) {
		runtime = c->fcontext;
		c->fcontext_created++;
	}
	t = start(p, lo, lo + size, e->coro_create.link,
		  type_of_entry(p, c, runtime, pending ? pending->func : e->coro_create.entry),
		  TASK_FOUND_SPAWN, e->ts);
	if (pending && t) {
		pending->task = task_table__index(p->tasks, t);
		c->pcl_created++;
	}
}

static bool in_region(const struct coro_region_entry *r, uint64_t addr)
{
	return r->lo <= addr && addr < r->hi;
}

static void remember_region(struct coro_process *c, uint64_t lo, uint64_t hi, enum coro_region kind)
{
	struct coro_region_entry *r;

	if (c->nregions < CORO_REGION_CACHE) {
		r = &c->regions[c->nregions++];
	} else {
		r = &c->regions[c->next_region];
		c->next_region = (c->next_region + 1) % CORO_REGION_CACHE;
	}
	r->lo = lo;
	r->hi = hi;
	r->kind = kind;
}

/*
 * A switch target outside every known stack: the thread's own stack (its mapping holds the
 * thread pointer, or is [stack]), a coroutine from before attach on a stack of its own (a
 * mapping above a guard page), or something memscoped cannot tell.
 */
static enum coro_region classify(struct coro_process *c, uint64_t sp, uint64_t fsbase,
				 struct coro_vma *ret_vma)
{
	struct coro_vma v;
	enum coro_region kind;
	size_t i;

	for (i = 0; i < c->nregions; i++)
		if (in_region(&c->regions[i], sp) && c->regions[i].kind != CORO_REGION_DEDICATED)
			return c->regions[i].kind;
	if (!c->env.vma || c->env.vma(c->env.ctx, sp, &v))
		return CORO_REGION_UNKNOWN;
	if (v.stack || (fsbase >= v.start && fsbase < v.end))
		kind = CORO_REGION_THREAD;
	else if (v.anon && v.writable && v.guard_below && v.end - v.start <= MAX_DEDICATED_STACK &&
		 (v.start & (ARENA_HEAP_ALIGN - 1)))
		kind = CORO_REGION_DEDICATED;
	else
		kind = CORO_REGION_UNKNOWN;
	if (kind != CORO_REGION_DEDICATED)
		remember_region(c, v.start, v.end, kind);
	*ret_vma = v;
	return kind;
}

/* A mapping found at a switch may also hold stacks seen made: it ends where they begin. */
static void clip(const struct coro_stacks *cs, uint64_t target, struct coro_vma *v)
{
	size_t i = coro_stacks__lower(cs, target);

	if (i < cs->n && cs->s[i].lo < v->end)
		v->end = cs->s[i].lo;
	if (i > 0 && cs->s[i - 1].hi > v->start)
		v->start = cs->s[i - 1].hi;
}

void coro_process__switch(struct process *p, const struct ms_event *e)
{
	struct coro_process *c = coro_process__of(p);
	uint64_t sp = e->coro_switch.sp, target = e->coro_switch.target_sp;
	struct coro_stack *from, *to;
	struct task *ft = NULL, *tt = NULL;
	struct coro_vma v;
	bool returned, fcontext;

	if (!c)
		return;
	c->switches++;
	from = coro_stacks__find(&c->stacks, sp);
	to = target ? coro_stacks__find(&c->stacks, target) : NULL;
	if (from)
		ft = coro__task_at(p, from->task);
	/* setcontext into its own saved context: it keeps running. */
	if (from && from == to)
		return;
	if (ft) {
		from->exiting = e->func == MS_CORO_ONTOP_FCONTEXT;
		/*
		 * __start_context resumes uc_link once the entry function has returned; for a
		 * coroutine found at a switch, uc_link is unknown: its top of stack tells.
		 */
		returned = e->func == MS_CORO_SETCONTEXT && sp + RETURN_FRAME_BYTES >= from->hi &&
			   (!from->link || e->addr == from->link);
		task_table__poll_end(p->tasks, ft, e->ts, returned ? TASK_COMPLETED : TASK_IDLE);
		ft->last_tid = e->tid;
		if (returned) {
			c->ended_returned++;
			task_table__dealloc(p->tasks, ft, e->ts);
			coro_stacks__remove_at(&c->stacks, (size_t)(from - c->stacks.s));
			to = target ? coro_stacks__find(&c->stacks, target) : NULL;
		}
	}
	if (to) {
		to->unwinding = e->func == MS_CORO_ONTOP_FCONTEXT;
		tt = coro__task_at(p, to->task);
	} else if (!target) {
		c->unknown_switches++;
	} else {
		switch (classify(c, target, e->coro_switch.fsbase, &v)) {
		case CORO_REGION_THREAD:
			break;
		case CORO_REGION_DEDICATED:
			clip(&c->stacks, target, &v);
			fcontext = c->fcontext && (e->func == MS_CORO_JUMP_FCONTEXT ||
						   e->func == MS_CORO_ONTOP_FCONTEXT);
			tt = start(p, v.start, v.end, 0,
				   type_of_entry(p, c, fcontext ? c->fcontext : c->runtime, 0),
				   TASK_FOUND_FIRST_POLL, 0);
			c->discovered += tt != NULL;
			c->fcontext_discovered += tt && fcontext;
			break;
		default:
			c->unknown_switches++;
			break;
		}
	}
	if (tt) {
		task_table__poll_begin(p->tasks, tt, e->ts);
		tt->last_tid = e->tid;
	}
}

uint32_t coro_process__task_of(struct process *p, uint64_t sp)
{
	struct coro_process *c = coro_process__of(p);
	struct coro_stack *s;

	if (!c || !c->stacks.n)
		return 0;
	s = coro_stacks__find(&c->stacks, sp);
	return s ? s->task : 0;
}

void coro_process__block_freed(struct process *p, uint64_t addr, uint64_t ts)
{
	struct coro_process *c = coro_process__of(p);
	struct heap_block b;
	uint64_t size = 1;

	if (!c || !c->stacks.n)
		return;
	/* A block from before attach has no known size: only a stack starting at it ends. */
	if (heap_table__lookup(p->blocks, addr, &b))
		size = b.size ? b.size : 1;
	end_overlapping(p, addr, addr + size, &c->ended_freed, ts);
}

void coro_process__unmapped(struct process *p, uint64_t addr, uint64_t size, uint64_t ts)
{
	struct coro_process *c = coro_process__of(p);

	if (!c || !size || addr + size < addr)
		return;
	/* What lay there (a thread's stack, say) may come back as something else. */
	forget_regions(c, addr, addr + size);
	if (c->stacks.n)
		end_overlapping(p, addr, addr + size, &c->ended_unmapped, ts);
}

/* The key of the core's state in a process: every stackful runtime shares it. */
static const char coro_key;

static void coro_state_free(void *state)
{
	coro_process__free(state);
}

struct coro_process *coro_process__of(const struct process *p)
{
	return process__state(p, &coro_key);
}

struct coro_process *coro_process__attach(struct process *p, const struct coro_env *env)
{
	struct coro_process *c = coro_process__of(p);

	if (c)
		return c;
	c = coro_process__new(CORO_RUNTIME_UCONTEXT, env, (int)p->pid);
	if (!c || process__set_state(p, &coro_key, c, coro_state_free))
		return NULL;
	return c;
}

void coro_process__detach(struct process *p)
{
	process__set_state(p, &coro_key, NULL, NULL);
}

static int plan_munmap(int pid, const char *object, void *ctx)
{
	static const struct probe_fn munmap_fn = { "munmap", "coro_unmap", MS_CORO_MUNMAP, false };
	struct probe_plan *plan = ctx;
	struct elf_symbols *e;
	int err;

	probe_plan__clear(plan);
	snprintf(plan->object, sizeof(plan->object), "%s", object);
	e = elf_symbols__open_target(pid, object, plan->open_path, sizeof(plan->open_path));
	if (!e)
		return -errno;
	err = probe_plan__functions(e, &munmap_fn, 1, plan);
	elf_symbols__close(e);
	return err;
}

int coro_process__attach_unmap(const struct runtime_ctx *ctx, struct process *p)
{
	struct coro_process *c = coro_process__of(p);
	struct probe_plan *plan;
	char msg[512], *exe = NULL;
	int err;

	if (!c || c->unmap_attached)
		return 0;
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	/* munmap of the libc (or a static executable's own): optional, stacks then live on. */
	err = proc__try_libc((int)p->pid, plan_munmap, plan, msg, sizeof(msg));
	if (err && !msg[0] && !proc__exe((int)p->pid, &exe))
		err = plan_munmap((int)p->pid, exe, plan);
	free(exe);
	if (!err) {
		err = ctx->attach_plan(ctx, (int)p->pid, plan, msg, sizeof(msg));
		if (err && err != -EOPNOTSUPP)
			ctx->log("pid %u: %s, ignoring", p->pid, msg);
		c->unmap_attached = !err;
	}
	probe_plan__clear(plan);
	free(plan);
	return err == -EOPNOTSUPP ? err : 0;
}

/* ucontext is listed for coroutines made outside libpcl, pcl for those made by co_create. */
bool coro__ucontext_listed(const struct coro_process *c)
{
	return c && (c->requested || c->discovered > c->fcontext_discovered ||
		     c->created > c->pcl_created + c->pcl_internal + c->fcontext_created);
}

bool coro__fcontext_listed(const struct coro_process *c)
{
	return c && c->fcontext &&
	       (c->fcontext_requested || c->fcontext_created || c->fcontext_discovered);
}

bool coro__pcl_listed(const struct coro_process *c)
{
	return c && c->pcl && (c->pcl_requested || c->pcl_created);
}

static void field(struct runtime_section *s, const char *key, uint64_t value)
{
	if (s->n < RUNTIME_FIELDS) {
		s->fields[s->n].key = key;
		s->fields[s->n++].value = value;
	}
}

bool coro_process__section(const struct coro_process *c, struct runtime_section *ret)
{
	if (!coro__ucontext_listed(c) && !coro__pcl_listed(c) && !coro__fcontext_listed(c))
		return false;
	ret->name = "coroutines";
	ret->n = 0;
	field(ret, "created", c->created);
	field(ret, "discovered", c->discovered);
	field(ret, "switches", c->switches);
	field(ret, "unknown_switches", c->unknown_switches);
	field(ret, "bad_creates", c->bad_creates);
	field(ret, "ended_returned", c->ended_returned);
	field(ret, "ended_stack_freed", c->ended_freed);
	field(ret, "ended_stack_unmapped", c->ended_unmapped);
	field(ret, "ended_stack_reused", c->ended_reused);
	field(ret, "live_stacks", c->stacks.n);
	if (c->fcontext)
		field(ret, "fcontext_created", c->fcontext_created);
	if (c->pcl) {
		field(ret, "pcl_created", c->pcl_created);
		field(ret, "pcl_deleted", c->pcl_ended_deleted);
	}
	ret->note = "coroutines created before attach appear at their first switch (only those on "
		    "a stack mapping of their own; the others count as unknown switches)";
	return true;
}
