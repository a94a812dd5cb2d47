// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
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
#include "elf_symbols.h"
#include "proc.h"
#include "process_table.h"
#include "runtime_coro.h"

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

/* ---- live stacks: a sorted array, binary search ---- */

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
 * ---- the real environment: the target's maps and ELF symbols ----
 * The daemon drops its capabilities once attached, after which /proc/PID/maps and
 * /proc/PID/root can no longer be opened: both are opened at attach and kept.
 */
struct real_env {
	int maps_fd;
	int root_fd;
};

/* Calls cb for every line of the target's maps, from the fd opened at attach. */
static int maps_lines(const struct real_env *r, int (*cb)(char *line, void *ctx), void *ctx)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int ret = 0;

	for (;;) {
		if (cap - len < 4096) {
			char *grown = realloc(buf, cap ? cap * 2 : 65536);

			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
			cap = cap ? cap * 2 : 65536;
		}
		n = pread(r->maps_fd, buf + len, cap - len - 1, (off_t)len);
		if (n < 0) {
			ret = -errno;
			free(buf);
			return ret;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line && !ret; line = strtok_r(NULL, "\n", &save))
		ret = cb(line, ctx);
	free(buf);
	return ret;
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
	uint64_t addr;	/* runtime address */
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
	char path[64];

	if (!r)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	r->maps_fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	r->root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
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

/* ---- per-stack generations: open addressing on the stack address ---- */

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

/* ---- task types: the entry function ---- */

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

/* ---- lifecycle ---- */

static struct task *task_at(struct process *p, uint32_t index)
{
	struct task *t = task_table__at(p->tasks, index);

	return t && t->state != TASK_DEALLOCATED ? t : NULL;
}

/* Ends the coroutine of stack i (its stack is gone or taken) and forgets the stack. */
static void end_stack(struct process *p, size_t i, bool cancelled, uint64_t ts)
{
	struct task *t = task_at(p, p->coro->stacks.s[i].task);

	if (t) {
		t->cancel_seen |= cancelled && !task__ended(t);
		task_table__dealloc(p->tasks, t, ts);
	}
	coro_stacks__remove_at(&p->coro->stacks, i);
}

/* Every live stack overlapping [lo, hi) ends: it was reused or freed while suspended. */
static void end_overlapping(struct process *p, uint64_t lo, uint64_t hi, uint64_t *counter,
			    uint64_t ts)
{
	struct coro_stacks *cs = &p->coro->stacks;
	size_t i = coro_stacks__lower(cs, lo);

	while (i < cs->n && cs->s[i].lo < hi) {
		/* A fiber that left by ontop_fcontext finished, unless it was being unwound. */
		end_stack(p, i, !cs->s[i].exiting || cs->s[i].unwinding, ts);
		(*counter)++;
	}
}

static struct task *start(struct process *p, uint64_t lo, uint64_t hi, uint64_t link,
			  uint32_t type, enum task_discovery how, uint64_t ts)
{
	struct coro_process *c = p->coro;
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
static struct coro_pcl_pending *pcl_pending(struct coro_process *c, uint32_t tid, bool add)
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
	struct coro_process *c = p->coro;
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
	pending = e->func == MS_CORO_MAKECONTEXT ? pcl_pending(c, e->tid, false) : NULL;
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

static void remember_region(struct coro_process *c, uint64_t lo, uint64_t hi,
			    enum coro_region kind)
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
	struct coro_process *c = p->coro;
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
		ft = task_at(p, from->task);
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
		tt = task_at(p, to->task);
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

/* The live pcl coroutine with this handle: its stack starts just past the handle's block. */
static size_t pcl_find(struct process *p, uint64_t handle)
{
	struct coro_stacks *cs = &p->coro->stacks;
	size_t i = coro_stacks__lower(cs, handle);
	struct task *t;

	if (i < cs->n) {
		t = task_at(p, cs->s[i].task);
		if (t && t->stack_base == handle)
			return i;
	}
	return cs->n;
}

void coro_process__pcl(struct process *p, const struct ms_event *e)
{
	struct coro_process *c = p->coro;
	struct coro_pcl_pending *pending;
	struct coro_stack *s;
	struct task *t;
	size_t i;

	if (!c || !c->pcl)
		return;
	switch (e->func) {
	case MS_PCL_CREATE:
		pending = pcl_pending(c, e->tid, true);
		pending->func = e->addr;
		pending->internal = e->pcl.ret >= c->pcl_exit_lo && e->pcl.ret < c->pcl_exit_hi;
		break;
	case MS_PCL_CREATE_RETURN:
		pending = pcl_pending(c, e->tid, false);
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
		t = s ? task_at(p, s->task) : NULL;
		if (t && !task__ended(t)) {
			task_table__poll_end(p->tasks, t, e->ts, TASK_COMPLETED);
			c->ended_returned++;
		}
		break;
	case MS_PCL_DELETE:
		i = pcl_find(p, e->addr);
		if (i < c->stacks.n) {
			c->pcl_ended_deleted++;
			end_stack(p, i, true, e->ts);
		}
		break;
	default:
		break;
	}
}

uint32_t coro_process__task_of(struct process *p, uint64_t sp)
{
	struct coro_stack *s;

	if (!p->coro || !p->coro->stacks.n)
		return 0;
	s = coro_stacks__find(&p->coro->stacks, sp);
	return s ? s->task : 0;
}

void coro_process__block_freed(struct process *p, uint64_t addr, uint64_t ts)
{
	struct heap_block b;
	uint64_t size = 1;

	if (!p->coro || !p->coro->stacks.n)
		return;
	/* A block from before attach has no known size: only a stack starting at it ends. */
	if (heap_table__lookup(p->blocks, addr, &b))
		size = b.size ? b.size : 1;
	end_overlapping(p, addr, addr + size, &p->coro->ended_freed, ts);
}

void coro_process__unmapped(struct process *p, uint64_t addr, uint64_t size, uint64_t ts)
{
	if (!p->coro || !size || addr + size < addr)
		return;
	/* What lay there (a thread's stack, say) may come back as something else. */
	forget_regions(p->coro, addr, addr + size);
	if (p->coro->stacks.n)
		end_overlapping(p, addr, addr + size, &p->coro->ended_unmapped, ts);
}

/* ---- where the functions are ---- */

static const struct {
	const char *symbol;
	enum ms_coro_func func;
} ucontext_fns[] = {
	{ "makecontext", MS_CORO_MAKECONTEXT },
	{ "swapcontext", MS_CORO_SWAPCONTEXT },
	{ "setcontext", MS_CORO_SETCONTEXT },
};

static const uint8_t *find_bytes(const uint8_t *p, const uint8_t *end, const uint8_t *pat,
				 size_t n)
{
	for (; p + n <= end; p++)
		if (!memcmp(p, pat, n))
			return p;
	return NULL;
}

size_t coro_swapcontext_late_offset(const uint8_t *code, size_t len)
{
	/* mov %rdi,%r9: oucp kept in r9 across the rt_sigprocmask syscall. */
	static const uint8_t keep_oucp[] = { 0x49, 0x89, 0xf9 };
	/* mov 0xa0(%rdx),%rsp; the callee-saved loads; mov 0xa8(%rdx),%rcx; push %rcx */
	static const uint8_t restore[] = {
		0x48, 0x8b, 0xa2, 0xa0, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x9a, 0x80, 0x00, 0x00,
		0x00, 0x48, 0x8b, 0x6a, 0x78, 0x4c, 0x8b, 0x62, 0x48, 0x4c, 0x8b, 0x6a, 0x50,
		0x4c, 0x8b, 0x72, 0x58, 0x4c, 0x8b, 0x7a, 0x60, 0x48, 0x8b, 0x8a, 0xa8, 0x00,
		0x00, 0x00, 0x51,
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

int coro_ucontext__plan_from_elf(struct elf_symbols *e, struct coro_probe_plan *plan)
{
	struct elf_sym sym;
	uint8_t code[512];
	uint64_t offset;
	size_t i, late;
	ssize_t n;

	plan->n = 0;
	for (i = 0; i < sizeof(ucontext_fns) / sizeof(ucontext_fns[0]); i++) {
		if (elf_symbols__lookup(e, ucontext_fns[i].symbol, &sym) ||
		    sym.type != STT_FUNC || elf_symbols__offset(e, sym.vaddr, &offset))
			return -ENOENT;
		plan->offsets[plan->n] = offset;
		plan->cookies[plan->n++] = ucontext_fns[i].func;
		if (ucontext_fns[i].func != MS_CORO_SWAPCONTEXT)
			continue;
		/* Its entry is single-stepped: probe the emulated push after the switch if found. */
		n = elf_symbols__read(e, offset, code,
				      sym.size && sym.size < sizeof(code) ? sym.size : sizeof(code));
		late = n > 0 ? coro_swapcontext_late_offset(code, (size_t)n) : 0;
		if (late) {
			plan->offsets[plan->n - 1] = offset + late;
			plan->cookies[plan->n - 1] = MS_CORO_SWAPCONTEXT_LATE;
		}
	}
	/* Optional: without it, stacks of their own live on once unmapped. */
	plan->munmap_offset = 0;
	if (!elf_symbols__lookup(e, "munmap", &sym) && sym.type == STT_FUNC &&
	    elf_symbols__offset(e, sym.vaddr, &offset) == 0)
		plan->munmap_offset = offset;
	return 0;
}

static int plan_object(int pid, const char *object, void *ctx)
{
	struct coro_probe_plan *plan = ctx;
	struct elf_symbols *e;
	int err;

	snprintf(plan->object, sizeof(plan->object), "%s", object);
	e = elf_symbols__open_target(pid, object, plan->open_path, sizeof(plan->open_path));
	if (!e)
		return -errno;
	err = coro_ucontext__plan_from_elf(e, plan);
	elf_symbols__close(e);
	return err;
}

int coro_ucontext__plan(int pid, struct coro_probe_plan *plan, char *err, size_t errlen)
{
	char libc[PATH_MAX] = "", *exe = NULL;
	int ret;

	ret = proc__exe(pid, &exe);
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
		snprintf(err, errlen, "no ucontext in '%s'%s%s%s: makecontext, swapcontext and "
				      "setcontext not all found",
			 exe, libc[0] ? " or '" : "", libc, libc[0] ? "'" : "");
out:
	free(exe);
	return ret;
}

struct fn_spec {
	const char *symbol;
	uint32_t func; /* enum ms_pcl_func or ms_coro_func */
};

static const struct fn_spec pcl_fns[] = {
	{ "co_create", MS_PCL_CREATE },
	{ "co_exit_to", MS_PCL_EXIT },
	{ "co_delete", MS_PCL_DELETE },
};

static const struct fn_spec fcontext_fns[] = {
	{ "make_fcontext", MS_CORO_MAKE_FCONTEXT },
	{ "jump_fcontext", MS_CORO_JUMP_FCONTEXT },
	{ "ontop_fcontext", MS_CORO_ONTOP_FCONTEXT },
};

struct candidates {
	const char *prefix; /* of the library's file name */
	char paths[8][PATH_MAX];
	size_t n;
};

/* The executable first, then every mapped object whose name starts with the prefix. */
static int find_candidates(const struct proc_mapping *m, void *ctx)
{
	struct candidates *c = ctx;
	const char *base = strrchr(m->path, '/');
	size_t i;

	base = base ? base + 1 : m->path;
	if (strncmp(base, c->prefix, strlen(c->prefix)) ||
	    c->n == sizeof(c->paths) / sizeof(c->paths[0]))
		return 0;
	for (i = 0; i < c->n; i++)
		if (!strcmp(c->paths[i], m->path))
			return 0;
	snprintf(c->paths[c->n++], PATH_MAX, "%s", m->path);
	return 0;
}

struct load_ctx {
	const char *path;
	uint64_t start;
	bool found;
};

static int first_load(const struct proc_mapping *m, void *ctx)
{
	struct load_ctx *l = ctx;

	if (m->offset != 0 || strcmp(m->path, l->path))
		return 0;
	l->start = m->start;
	l->found = true;
	return 1;
}

static int plan_fns(int pid, const char *object, const struct fn_spec *fns, size_t nfns,
		    struct coro_pcl_plan *plan)
{
	struct coro_probe_plan *pp = &plan->probes;
	struct load_ctx l = { .path = object };
	struct elf_symbols *e;
	struct elf_sym sym;
	uint64_t offset;
	size_t i;
	int err = 0;

	snprintf(pp->object, sizeof(pp->object), "%s", object);
	e = elf_symbols__open_target(pid, object, pp->open_path, sizeof(pp->open_path));
	if (!e)
		return -errno;
	pp->n = 0;
	for (i = 0; i < nfns; i++) {
		if (elf_symbols__lookup(e, fns[i].symbol, &sym) || sym.type != STT_FUNC ||
		    elf_symbols__offset(e, sym.vaddr, &offset)) {
			err = -ENOENT;
			break;
		}
		pp->offsets[pp->n] = offset;
		pp->cookies[pp->n++] = fns[i].func;
		if (fns != pcl_fns)
			continue;
		if (fns[i].func == MS_PCL_CREATE)
			plan->create_offset = offset;
		if (fns[i].func != MS_PCL_EXIT)
			continue;
		/* Where co_exit_to runs in the target: co_create called from there is internal. */
		if (proc__mappings(pid, first_load, &l) < 0 || !l.found) {
			err = -ENOENT;
			break;
		}
		plan->exit_lo = l.start - elf_symbols__base_vaddr(e) + sym.vaddr;
		plan->exit_hi = plan->exit_lo + (sym.size ? sym.size : 1);
	}
	elf_symbols__close(e);
	return err;
}

size_t coro__libraries_mapped(int pid, const char *prefix)
{
	struct candidates *c = calloc(1, sizeof(*c));
	size_t n = 0;

	if (!c)
		return 0;
	c->prefix = prefix;
	if (proc__mappings(pid, find_candidates, c) >= 0)
		n = c->n;
	free(c);
	return n;
}

/* The first of the executable and the mapped objects named prefix* that has all of fns. */
static int plan_library(int pid, const char *prefix, const struct fn_spec *fns, size_t nfns,
			struct coro_pcl_plan *plan, char **ret_exe)
{
	struct candidates *c = calloc(1, sizeof(*c));
	size_t i;
	int ret;

	if (!c)
		return -ENOMEM;
	ret = proc__exe(pid, ret_exe);
	if (ret) {
		free(c);
		return ret;
	}
	c->prefix = prefix;
	snprintf(c->paths[c->n++], PATH_MAX, "%s", *ret_exe);
	ret = proc__mappings(pid, find_candidates, c);
	for (i = 0, ret = -ENOENT; i < c->n && ret; i++)
		ret = plan_fns(pid, c->paths[i], fns, nfns, plan);
	free(c);
	return ret;
}

int coro_pcl__plan(int pid, struct coro_pcl_plan *plan, char *err, size_t errlen)
{
	char *exe = NULL;
	int ret;

	ret = plan_library(pid, CORO_PCL_LIBRARY, pcl_fns, sizeof(pcl_fns) / sizeof(pcl_fns[0]), plan,
			   &exe);
	if (ret)
		snprintf(err, errlen,
			 "no pcl in '%s' or a mapped libpcl: co_create, co_exit_to and co_delete "
			 "not all found", exe ? exe : "?");
	free(exe);
	return ret;
}

int coro_fcontext__plan(int pid, struct coro_probe_plan *plan, char *err, size_t errlen)
{
	struct coro_pcl_plan *p = calloc(1, sizeof(*p));
	char *exe = NULL;
	int ret;

	if (!p)
		return -ENOMEM;
	ret = plan_library(pid, CORO_FCONTEXT_LIBRARY, fcontext_fns,
			   sizeof(fcontext_fns) / sizeof(fcontext_fns[0]), p, &exe);
	if (ret)
		snprintf(err, errlen,
			 "no fcontext in '%s' or a mapped libboost_context: make_fcontext, "
			 "jump_fcontext and ontop_fcontext not all found", exe ? exe : "?");
	else
		*plan = p->probes;
	free(exe);
	free(p);
	return ret;
}
