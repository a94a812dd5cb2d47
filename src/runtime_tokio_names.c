// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Names the future type of each tokio poll copy when its symbol cannot (legacy mangling has no
 * generic arguments). The copy's own code names it: raw::poll<T,S> jumps to Harness<T,S>::poll,
 * which calls drop_in_place<Box<Cell<T,S>>>, whose legacy symbol spells T out, and often T's
 * own poll function (an async fn's "{{closure}}"). What stays nameless is named by its spawn
 * site (below).
 *
 * Rust merges identical functions into one address with several names, so a helper says "T is
 * one of these". T is in every such set met on the way: intersect them. Futures of identical
 * code stay ambiguous unless T's own poll function, met on the way, picks one; then the name
 * lists them all ("A | B"), which is still true. Two copies that come to the same T and S met a
 * function merged without its other names (LTO): neither is named so.
 *
 * With DWARF (a debug file, or a binary built with debug info) none of this is needed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <gelf.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <libiberty/demangle.h>
#include "array.h"
#include "runtime_tokio.h"

/* Call depth searched: raw::poll -> Harness::poll -> poll_future -> Core::poll. */
#define MAX_DEPTH 4
#define MAX_VISITED 256
/* Larger functions are not the small generic shims on the way to T. */
#define MAX_FUNC_BYTES 16384
/* Names listed in an ambiguous type name. */
#define MAX_LISTED 3
/* A function merged from more types than this says nothing worth its cost. */
#define MAX_ALIASES 16

struct func {
	uint64_t vaddr, size;
	const char *name;
	char *demangled; /* computed once: thousands of copies meet the same helpers */
	bool demangle_tried;
};

/* Function symbols by address; merged functions are runs of one address. */
struct funcs {
	struct func *f;
	size_t n, cap;
};

static int collect(const struct elf_sym *sym, void *ctx)
{
	struct funcs *fs = ctx;

	if (sym->type != STT_FUNC || !sym->size)
		return 0;
	if (array__grow((void **)&fs->f, &fs->cap, fs->n, sizeof(*fs->f), 4096))
		return -ENOMEM;
	fs->f[fs->n++] = (struct func){ sym->vaddr, sym->size, sym->name };
	return 0;
}

static int by_vaddr(const void *a, const void *b)
{
	const struct func *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* The index of the first function at or above vaddr (n if none). */
static size_t lower_bound(const struct funcs *fs, uint64_t vaddr)
{
	size_t lo = 0, hi = fs->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (fs->f[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first of the names at vaddr, or NULL. */
static struct func *func_at(struct funcs *fs, uint64_t vaddr)
{
	size_t i = lower_bound(fs, vaddr);

	return i < fs->n && fs->f[i].vaddr == vaddr ? &fs->f[i] : NULL;
}

/* The demangled name (NULL if it does not demangle). */
static const char *demangled(struct func *f)
{
	if (!f->demangle_tried) {
		f->demangle_tried = true;
		f->demangled = cplus_demangle(f->name, DMGL_PARAMS | DMGL_RUST);
	}
	return f->demangled;
}

static bool has_prefix(const char *s, const char *const *prefixes)
{
	for (; *prefixes; prefixes++)
		if (!strncmp(s, *prefixes, strlen(*prefixes)))
			return true;
	return false;
}

static const char *const runtime_paths[] = { "tokio::", "<tokio::", "core::",	"<core::", "std::",
					     "<std::",	"alloc::",  "<alloc::", NULL };

char *runtime_tokio__cell_from_helper(const char *demangled)
{
	static const char cell[] = "tokio::runtime::task::core::Cell<";
	const char *p, *q;
	char *type;
	int depth = 0;

	if (strncmp(demangled, "core::ptr::drop_in_place<", 25))
		return NULL;
	p = strstr(demangled, cell);
	if (!p)
		return NULL;
	p += strlen(cell);
	/* Both arguments: up to the '>' closing Cell<. */
	for (q = p; *q && depth >= 0; q++)
		depth += (*q == '<') - (*q == '>');
	if (depth >= 0 || q - 1 == p)
		return NULL;
	type = strndup(p, (size_t)(q - 1 - p));
	/* Generic parameters ("T,S") are not types: concrete types are paths. */
	if (type && !strstr(type, "::")) {
		free(type);
		type = NULL;
	}
	return type;
}

bool runtime_tokio__is_user_function(const char *demangled)
{
	return strstr(demangled, "::") && !has_prefix(demangled, runtime_paths);
}

struct walk {
	struct elf_symbols *code;
	struct funcs *fs;
	uint64_t queue[MAX_VISITED]; /* functions to visit, breadth first; also the visited set */
	size_t n;
	char **cands; /* T is one of these (NULL: nothing known yet) */
	size_t ncands;
	bool no_cands;		       /* the sets met had nothing in common */
	const char *user[MAX_VISITED]; /* user functions called, in the order met */
	size_t nuser;
};

static void enqueue(struct walk *w, uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (w->queue[i] == vaddr)
			return;
	if (w->n < MAX_VISITED)
		w->queue[w->n++] = vaddr;
}

static bool in_list(char *const *list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

/* Keeps the candidates also in types[]; the first set is taken whole. Takes ownership. */
static void intersect(struct walk *w, char **types, size_t n)
{
	size_t i, k = 0;

	if (!w->cands && !w->no_cands) {
		w->cands = types;
		w->ncands = n;
		return;
	}
	for (i = 0; i < w->ncands; i++) {
		if (in_list(types, n, w->cands[i]))
			w->cands[k++] = w->cands[i];
		else
			free(w->cands[i]);
	}
	w->ncands = k;
	w->no_cands = !k;
	for (i = 0; i < n; i++)
		free(types[i]);
	free(types);
}

/* The call target at vaddr: T candidates from its names, a user function, or one to follow. */
static void callee(struct walk *w, struct func *g)
{
	struct func *end = w->fs->f + w->fs->n, *h;
	char **types = NULL, **more, *t;
	const char *d;
	size_t n = 0, i;

	for (h = g; h < end && h->vaddr == g->vaddr; h++)
		;
	if (h - g > MAX_ALIASES)
		return;
	for (h = g; h < end && h->vaddr == g->vaddr; h++) {
		d = demangled(h);
		if (!d)
			continue;
		t = runtime_tokio__cell_from_helper(d);
		if (h == g && !t) {
			for (i = 0; i < w->nuser && strcmp(w->user[i], d); i++)
				;
			if (!runtime_tokio__is_user_function(d))
				enqueue(w, g->vaddr);
			else if (i == w->nuser && w->nuser < MAX_VISITED)
				w->user[w->nuser++] = d;
		}
		if (!t || in_list(types, n, t)) {
			free(t);
			continue;
		}
		more = realloc(types, (n + 1) * sizeof(*types));
		if (!more) {
			free(t);
			continue;
		}
		types = more;
		types[n++] = t;
	}
	if (n)
		intersect(w, types, n);
	else
		free(types);
}

static void visit(struct walk *w, struct func *f)
{
	uint8_t buf[MAX_FUNC_BYTES];
	size_t len = f->size < sizeof(buf) ? f->size : sizeof(buf), i;
	struct func *g;
	int32_t rel;

	if (elf_symbols__read_vaddr(w->code, f->vaddr, buf, len))
		return;
	/*
	 * call/jmp rel32 by byte pattern: a stray E8/E9 inside another instruction would have to
	 * land exactly on a function's first byte to count.
	 */
	for (i = 0; i + 5 <= len; i++) {
		if (buf[i] != 0xe8 && buf[i] != 0xe9)
			continue;
		memcpy(&rel, buf + i + 1, 4);
		g = func_at(w->fs, f->vaddr + i + 5 + (int64_t)rel);
		if (g)
			callee(w, g);
	}
}

/* The future types of the sorted candidates, "A | B | C | …" (malloc'd). */
static char *join_types(char *const *cands, size_t n)
{
	char *s = NULL, *t, *prev = NULL, *next;
	size_t i, listed = 0;

	for (i = 0; i < n && listed <= MAX_LISTED; i++) {
		t = runtime_tokio__first_argument(cands[i]);
		/* The same future on another scheduler sorts next to it. */
		if (!t || (prev && !strcmp(prev, t))) {
			free(t);
			continue;
		}
		free(prev);
		prev = t;
		if (asprintf(&next, "%s%s%s", s ? s : "", s ? " | " : "",
			     listed++ < MAX_LISTED ? t : "…") < 0)
			next = NULL;
		free(s);
		s = next;
		if (!s)
			break;
	}
	free(prev);
	return s;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What a copy's code says of it: exactly its "T,S", or that T is one of several. */
struct verdict {
	char *cell; /* "T,S" */
	char *one_of;
};

static void decide(struct walk *w, struct verdict *ret)
{
	size_t i, k;
	char *t;

	if (w->ncands == 1) {
		ret->cell = strdup(w->cands[0]);
		return;
	}
	/* T's own poll function, when it is not inlined, tells T's among look-alikes. */
	for (i = 0; i < w->nuser; i++)
		for (k = 0; k < w->ncands; k++) {
			t = runtime_tokio__first_argument(w->cands[k]);
			if (t && !strcmp(t, w->user[i])) {
				free(t);
				ret->cell = strdup(w->cands[k]);
				return;
			}
			free(t);
		}
	if (w->ncands) {
		qsort(w->cands, w->ncands, sizeof(*w->cands), by_name);
		ret->one_of = join_types(w->cands, w->ncands);
	}
}

static void name_copy(struct elf_symbols *code, struct funcs *fs, uint64_t poll,
		      struct verdict *ret)
{
	struct walk w = { .code = code, .fs = fs };
	size_t head = 0, level_end, depth, i;
	struct func *f;

	enqueue(&w, poll);
	for (depth = 0; depth < MAX_DEPTH; depth++)
		for (level_end = w.n; head < level_end; head++) {
			f = func_at(fs, w.queue[head]);
			if (f)
				visit(&w, f);
		}
	decide(&w, ret);
	for (i = 0; i < w.ncands; i++)
		free(w.cands[i]);
	free(w.cands);
}

/*
 * Spawn sites, for copies whose code names nothing: a task's vtable is referenced (a
 * RIP-relative lea) only where a task of its type is created, in code generic over the type
 * (tokio 1.24: OwnedTasks<S>::bind<T>). Its callers, and theirs, lead up to the user function
 * that spawned it. A function merged with another, or reached from more than two copies, ends
 * the climb: one future has a copy per scheduler, and tokio's spawn code is generic over the
 * future, not the scheduler (Handle::spawn<T> reaches both), so two copies may share it.
 */
#define SPAWN_DEPTH 6
#define SCAN_CHUNK (1u << 20)

struct rung {
	uint64_t vaddr;	 /* referenced: a vtable (first rung) or a function's first byte */
	size_t polls[2]; /* whose: one copy, or the same twice, or one per scheduler */
	bool shared;	 /* reached from more copies */
};

struct climb {
	struct elf_symbols *code;
	struct funcs *fs;
	bool lea;	 /* the first rung: vtables, loaded by lea */
	struct rung *at; /* this rung, sorted by vaddr */
	size_t nat;
	struct rung *up; /* the functions referencing it */
	size_t nup, capup;
	int err;
};

static int by_rung(const void *a, const void *b)
{
	const struct rung *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* The function whose bytes hold vaddr (its first name), or NULL. */
static struct func *func_containing(struct funcs *fs, uint64_t vaddr)
{
	size_t lo = lower_bound(fs, vaddr + 1);

	while (lo-- > 0)
		if (vaddr < fs->f[lo].vaddr + fs->f[lo].size)
			return func_at(fs, fs->f[lo].vaddr);
		else if (fs->f[lo].vaddr + 0x100000 < vaddr)
			break;
	return NULL;
}

static void add_poll_to(struct rung *r, size_t poll)
{
	if (poll == r->polls[0] || poll == r->polls[1])
		return;
	if (r->polls[0] == r->polls[1])
		r->polls[1] = poll;
	else
		r->shared = true;
}

static void reference(struct climb *c, uint64_t from, uint64_t target)
{
	struct rung key = { .vaddr = target }, *r;
	struct func *f;
	size_t i;

	r = bsearch(&key, c->at, c->nat, sizeof(key), by_rung);
	f = r ? func_containing(c->fs, from) : NULL;
	if (!f)
		return;
	/* One entry per function and rung: a user function may spawn many types. */
	for (i = 0; i < c->nup; i++)
		if (c->up[i].vaddr == f->vaddr && c->up[i].polls[0] == r->polls[0] &&
		    c->up[i].polls[1] == r->polls[1])
			return;
	if (array__grow((void **)&c->up, &c->capup, c->nup, sizeof(*c->up), 64)) {
		c->err = -ENOMEM;
		return;
	}
	c->up[c->nup++] = (struct rung){ f->vaddr, { r->polls[0], r->polls[1] }, false };
}

static int scan_text(uint64_t vaddr, uint64_t size, void *ctx)
{
	struct climb *c = ctx;
	uint8_t *buf = malloc(SCAN_CHUNK + 8);
	uint64_t at, len;
	int32_t rel;
	size_t i;

	if (!buf)
		return -ENOMEM;
	/* Chunks overlap by 7 bytes: an instruction across a boundary is seen once. */
	for (at = vaddr; at < vaddr + size && !c->err; at += SCAN_CHUNK) {
		len = vaddr + size - at < SCAN_CHUNK + 7 ? vaddr + size - at : SCAN_CHUNK + 7;
		if (elf_symbols__read_vaddr(c->code, at, buf, (size_t)len))
			break;
		for (i = 0; i + 7 <= len && i < SCAN_CHUNK; i++) {
			if (c->lea && (buf[i] == 0x48 || buf[i] == 0x4c) && buf[i + 1] == 0x8d &&
			    (buf[i + 2] & 0xc7) == 0x05) {
				memcpy(&rel, buf + i + 3, 4);
				reference(c, at + i, at + i + 7 + (int64_t)rel);
			} else if (!c->lea && (buf[i] == 0xe8 || buf[i] == 0xe9)) {
				memcpy(&rel, buf + i + 1, 4);
				reference(c, at + i, at + i + 5 + (int64_t)rel);
			}
		}
	}
	free(buf);
	return c->err;
}

/* True if site is one of the items of the list "A | B | C". */
static bool listed(const char *list, const char *site)
{
	size_t n = strlen(site);
	const char *p;

	for (p = list; (p = strstr(p, site)); p++)
		if ((p == list || !strncmp(p - 3, " | ", 3)) &&
		    (!p[n] || !strncmp(p + n, " | ", 3)))
			return true;
	return false;
}

/* One name, or "A | B" of a copy's distinct spawn sites: appended to *sites (malloc'd). */
static void add_site(char **sites, const char *site)
{
	char *s;

	if (*sites && listed(*sites, site))
		return;
	if (asprintf(&s, "%s%s%s", *sites ? *sites : "", *sites ? " | " : "", site) < 0)
		return;
	free(*sites);
	*sites = s;
}

static bool merged(struct funcs *fs, struct func *f)
{
	return f + 1 < fs->f + fs->n && f[1].vaddr == f->vaddr && strcmp(f[1].name, f->name);
}

static int spawn_sites(struct elf_symbols *code, struct funcs *fs, const struct tokio_info *info,
		       char **sites)
{
	struct climb c = { .code = code, .fs = fs, .lea = true };
	struct func *f;
	size_t i, j, k, depth;
	const char *d;

	c.at = calloc(info->nvtables + 1, sizeof(*c.at));
	if (!c.at)
		return -ENOMEM;
	for (i = 0; i < info->nvtables; i++) {
		for (k = 0; k < info->npolls && info->polls[k].vaddr != info->vtables[i].poll; k++)
			;
		if (k < info->npolls && !info->polls[k].named && !sites[k])
			c.at[c.nat++] = (struct rung){ info->vtables[i].vaddr, { k, k }, false };
	}
	for (depth = 0; depth < SPAWN_DEPTH && c.nat && !c.err; depth++) {
		qsort(c.at, c.nat, sizeof(*c.at), by_rung);
		c.nup = 0;
		c.err = elf_symbols__foreach_text(code, scan_text, &c);
		/* A user function is the spawn site of each rung's copies. Tokio's own is the next
		 * rung if all that reach it are at most two copies (one future, two schedulers). */
		if (c.nup > 1)
			qsort(c.up, c.nup, sizeof(*c.up), by_rung);
		for (i = 0, k = 0; i < c.nup && !c.err; i = j) {
			f = func_at(fs, c.up[i].vaddr);
			d = merged(fs, f) ? NULL : demangled(f);
			for (j = i; j < c.nup && c.up[j].vaddr == c.up[i].vaddr; j++)
				if (d && runtime_tokio__is_user_function(d)) {
					add_site(&sites[c.up[j].polls[0]], d);
					add_site(&sites[c.up[j].polls[1]], d);
				} else if (j > i) {
					add_poll_to(&c.up[i], c.up[j].polls[0]);
					add_poll_to(&c.up[i], c.up[j].polls[1]);
				}
			if (d && !runtime_tokio__is_user_function(d) && !c.up[i].shared)
				c.up[k++] = c.up[i];
		}
		free(c.at);
		c.at = c.up;
		c.nat = k;
		c.up = NULL;
		c.capup = 0;
		c.lea = false;
	}
	free(c.at);
	free(c.up);
	return c.err;
}

int runtime_tokio__name_types(struct elf_symbols *code, struct elf_symbols *syms,
			      struct tokio_info *info)
{
	struct funcs fs = { 0 };
	struct verdict *v;
	char **sites;
	size_t i, k;
	bool twice;
	char *name;
	int err;

	v = calloc(info->npolls + 1, sizeof(*v));
	sites = calloc(info->npolls + 1, sizeof(*sites));
	if (!v || !sites) {
		free(v);
		free(sites);
		return -ENOMEM;
	}
	err = elf_symbols__foreach(syms, collect, &fs);
	if (err)
		goto out;
	if (fs.n > 1)
		qsort(fs.f, fs.n, sizeof(*fs.f), by_vaddr);
	for (i = 0; i < info->npolls; i++)
		if (!info->polls[i].named)
			name_copy(code, &fs, info->polls[i].vaddr, &v[i]);
	/*
	 * Each (T, S) has one poll copy. Two copies naming the same one met a function merged
	 * without aliases (LTO keeps one name of several): neither name can be trusted.
	 */
	for (i = 0; i < info->npolls; i++) {
		for (k = i + 1, twice = false; v[i].cell && k < info->npolls; k++)
			if (v[k].cell && !strcmp(v[i].cell, v[k].cell)) {
				free(v[k].cell);
				v[k].cell = NULL;
				twice = true;
			}
		name = NULL;
		if (v[i].cell && !twice)
			name = runtime_tokio__first_argument(v[i].cell);
		else if (v[i].one_of)
			name = strdup(v[i].one_of);
		if (name) {
			free(info->polls[i].type_name);
			info->polls[i].type_name = name;
			info->polls[i].named = !v[i].one_of;
			/* Named: no spawn site wanted (an empty one). */
			sites[i] = strdup("");
		}
	}
	/* What the code could not name at all is named by where it is spawned. */
	err = spawn_sites(code, &fs, info, sites);
	for (i = 0; i < info->npolls && !err; i++) {
		if (!sites[i] || !*sites[i] || asprintf(&name, "spawned in %s", sites[i]) < 0)
			continue;
		free(info->polls[i].type_name);
		info->polls[i].type_name = name;
	}
out:
	for (i = 0; i < info->npolls; i++) {
		free(v[i].cell);
		free(v[i].one_of);
		free(sites[i]);
	}
	free(sites);
	free(v);
	for (i = 0; i < fs.n; i++)
		free(fs.f[i].demangled);
	free(fs.f);
	return err;
}

/* The name of the subprogram at addr under die (namespaces and types nest them), or NULL. */
static const char *subprogram_at(Dwarf_Die *die, Dwarf_Addr addr, int depth)
{
	Dwarf_Attribute attr;
	Dwarf_Addr lowpc;
	const char *name = NULL;
	Dwarf_Die child;
	int tag;

	if (depth > 32 || dwarf_child(die, &child))
		return NULL;
	do {
		tag = dwarf_tag(&child);
		if (tag == DW_TAG_subprogram) {
			if (!dwarf_lowpc(&child, &lowpc) && lowpc == addr)
				return dwarf_formstring(
					dwarf_attr_integrate(&child, DW_AT_name, &attr));
		} else if (tag == DW_TAG_namespace || tag == DW_TAG_structure_type ||
			   tag == DW_TAG_union_type || tag == DW_TAG_enumeration_type) {
			name = subprogram_at(&child, addr, depth + 1);
		}
	} while (!name && !dwarf_siblingof(&child, &child));
	return name;
}

/*
 * DWARF names each poll copy's generic arguments outright: rustc gives the subprogram at its
 * address the name "poll<app::serve::{async_fn_env#0}, alloc::sync::Arc<…>>".
 */
int runtime_tokio__name_types_dwarf(struct elf_symbols *debug, struct tokio_info *info)
{
	Dwarf *dw = dwarf_begin(elf_symbols__fd(debug), DWARF_C_READ);
	Dwarf_Off off = 0, next;
	char *qualified, *type;
	const char *name;
	size_t hsize, i, named = 0;
	Dwarf_Die cu;

	if (!dw)
		return -ENOENT;
	/* rustc writes no .debug_aranges: ask each unit whether it covers a copy. */
	for (; !dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL); off = next) {
		if (!dwarf_offdie(dw, off + hsize, &cu))
			continue;
		for (i = 0; i < info->npolls; i++) {
			if (info->polls[i].named || dwarf_haspc(&cu, info->polls[i].vaddr) != 1)
				continue;
			name = subprogram_at(&cu, info->polls[i].vaddr, 0);
			type = NULL;
			if (name && !strncmp(name, "poll<", 5) &&
			    asprintf(&qualified, "tokio::runtime::task::raw::%s", name) >= 0) {
				type = runtime_tokio__type_from_demangled(qualified);
				free(qualified);
			}
			if (!type)
				continue;
			free(info->polls[i].type_name);
			info->polls[i].type_name = type;
			info->polls[i].named = true;
			named++;
		}
	}
	dwarf_end(dw);
	return named ? 0 : -ENOENT;
}
