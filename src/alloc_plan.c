// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gelf.h>
#include "alloc_plan.h"
#include "proc.h"

#define MAX_OBJECTS 512

struct objects {
	char *paths[MAX_OBJECTS];
	uint64_t starts[MAX_OBJECTS]; /* lowest mapped address */
	size_t n;
};

static bool listed(const struct objects *o, const char *path)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (!strcmp(o->paths[i], path))
			return true;
	return false;
}

static void push(struct objects *o, const char *path, uint64_t start)
{
	char *s;

	if (o->n == MAX_OBJECTS || listed(o, path))
		return;
	s = strdup(path);
	if (!s)
		return;
	o->starts[o->n] = start;
	o->paths[o->n++] = s;
}

/* A file named like a libc (libc.so.6, libc-2.31.so): glibc's, or a damaged look-alike. */
static bool libc_named(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5);
}

enum collect_mode { COLLECT_WANTED, COLLECT_LIBRARIES, COLLECT_LIBC };

struct mapped {
	struct objects *o;
	enum collect_mode mode;
	const char *want; /* COLLECT_WANTED: a path or file name to match */
};

static bool names(const char *path, const char *want)
{
	const char *base = strrchr(path, '/');

	if (!strcmp(path, want))
		return true;
	/* LD_PRELOAD may name a file name the loader found on its search path. */
	return !strchr(want, '/') && base && !strcmp(base + 1, want);
}

static int collect(const struct proc_mapping *m, void *ctx)
{
	struct mapped *c = ctx;

	if (m->perms[2] != 'x' || m->path[0] != '/')
		return 0;
	switch (c->mode) {
	case COLLECT_WANTED:
		if (!names(m->path, c->want))
			return 0;
		break;
	case COLLECT_LIBRARIES:
		if (libc_named(m->path))
			return 0;
		break;
	case COLLECT_LIBC:
		if (!libc_named(m->path))
			return 0;
		break;
	}
	push(c->o, m->path, m->start);
	return 0;
}

/*
 * Libraries in load order: the loader maps them top-down, so the first loaded is the highest
 * (/proc/PID/maps lists them by address, the other way round).
 */
static void sort_by_start_descending(struct objects *o, size_t from)
{
	size_t i, j;

	for (i = from + 1; i < o->n; i++)
		for (j = i; j > from && o->starts[j - 1] < o->starts[j]; j--) {
			char *p = o->paths[j];
			uint64_t s = o->starts[j];

			o->paths[j] = o->paths[j - 1];
			o->starts[j] = o->starts[j - 1];
			o->paths[j - 1] = p;
			o->starts[j - 1] = s;
		}
}

/* The LD_PRELOAD objects the target maps, in the variable's order. */
static void preloaded(int pid, struct objects *o)
{
	char path[64], *env = NULL, *s, *tok, *save;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (getdelim(&env, &len, '\0', f) > 0) {
		struct mapped c = { o, COLLECT_WANTED, NULL };

		if (strncmp(env, "LD_PRELOAD=", 11))
			continue;
		s = env + 11;
		for (tok = strtok_r(s, " :", &save); tok; tok = strtok_r(NULL, " :", &save)) {
			c.want = tok;
			proc__mappings(pid, collect, &c);
		}
		break;
	}
	free(env);
	fclose(f);
}

struct found {
	const struct alloc_family *family;
	const char *prefix;
	size_t object; /* index in struct objects */
};

void alloc_plan__clear(struct alloc_plan *plan)
{
	size_t i;

	for (i = 0; i < ALLOC_PLAN_MAX; i++)
		probe_plan__clear(&plan->objects[i]);
	memset(plan->families, 0, sizeof(plan->families));
	plan->n = 0;
	plan->primary = 0;
}

void alloc_plan__describe(const struct alloc_plan *plan, char *buf, size_t len)
{
	size_t i, k, at = 0;
	int w;

	buf[0] = '\0';
	for (k = 0; k < plan->n; k++) {
		/* The primary first. */
		i = k == 0 ? plan->primary : (k <= plan->primary ? k - 1 : k);
		w = snprintf(buf + at, len - at, "%s%s in '%s' (%zu functions)", k ? ", " : "",
			     plan->families[i]->name, plan->objects[i].object,
			     probe_plan__entry_functions(&plan->objects[i]));
		if (w < 0 || (size_t)w >= len - at)
			return;
		at += (size_t)w;
	}
}

static void searched(const struct objects *o, char *buf, size_t len)
{
	size_t i, at = 0;
	int w;

	buf[0] = '\0';
	for (i = 0; i < o->n; i++) {
		w = snprintf(buf + at, len - at, "%s'%s'", i ? ", " : "", o->paths[i]);
		if (w < 0 || (size_t)w >= len - at)
			return;
		at += (size_t)w;
	}
}

/* glibc's malloc debugging layer (mtrace, mcheck) defines malloc and calls libc's: glibc. */
static bool passes_through(const char *path)
{
	const char *base = strrchr(path, '/');

	return !strncmp(base ? base + 1 : path, "libc_malloc_debug.so", 20);
}

static bool defines(struct elf_symbols *e, const char *name)
{
	struct elf_sym sym;

	return !elf_symbols__lookup(e, name, &sym) &&
	       (sym.type == STT_FUNC || sym.type == STT_GNU_IFUNC);
}

int alloc_plan__build(int pid, const char *requested, struct alloc_plan *plan, char *err,
		      size_t errlen)
{
	const struct alloc_family *want = NULL;
	struct found found[16];
	struct objects o = { .n = 0 };
	size_t i, j, nfound = 0, binder = SIZE_MAX, first_library, first_libc;
	char open_path[PATH_MAX], list[1024];
	bool custom_global = false, other = false;
	char *exe = NULL;
	int ret;

	alloc_plan__clear(plan);
	if (requested && strcmp(requested, "auto")) {
		want = alloc_family__find(requested);
		if (!want) {
			snprintf(err, errlen, "unknown allocator '%s'", requested);
			return -EINVAL;
		}
	}
	ret = proc__exe(pid, &exe);
	if (ret == -ESRCH) {
		snprintf(err, errlen, "exited during attach");
		return ret;
	}
	if (ret) {
		snprintf(err, errlen, "cannot read /proc/%d/exe: %s", pid, strerror(-ret));
		return ret;
	}
	/* The dynamic linker's order: the executable, LD_PRELOAD, libraries; libc last. */
	push(&o, exe, 0);
	preloaded(pid, &o);
	first_library = o.n;
	{
		struct mapped c = { &o, COLLECT_LIBRARIES, NULL };

		ret = proc__mappings(pid, collect, &c);
		sort_by_start_descending(&o, first_library);
		first_libc = o.n;
		c.mode = COLLECT_LIBC;
		if (ret >= 0)
			ret = proc__mappings(pid, collect, &c);
	}
	if (ret < 0) {
		snprintf(err, errlen, "cannot read /proc/%d/maps: %s", pid, strerror(-ret));
		goto out;
	}
	for (i = 0; i < o.n; i++) {
		struct elf_symbols *e =
			elf_symbols__open_target(pid, o.paths[i], open_path, sizeof(open_path));
		bool known = false;

		if (!e)
			continue;
		for (j = 0; j < alloc_nfamilies && nfound < 16; j++) {
			const char *prefix = alloc_family__detect(alloc_families[j], e);

			if (!prefix)
				continue;
			/*
			 * glibc's names are glibc only in a libc or a static executable, and
			 * not where another family also defines them (mimalloc's __libc_malloc).
			 */
			if (alloc_families[j] == &alloc_glibc &&
			    (known || (i != 0 && !libc_named(o.paths[i]))))
				continue;
			found[nfound++] = (struct found){ alloc_families[j], prefix, i };
			known = true;
			if (alloc_families[j] == &alloc_rust) {
				struct elf_sym sym;

				/*
				 * A #[global_allocator]: __rg_alloc (older rustc), or no __rdl_alloc
				 * (the System allocator's shim) behind __rust_alloc (newer ones
				 * inline the allocator into it).
				 */
				custom_global = !alloc_rust.lookup(e, "__rg_alloc", &sym) ||
						alloc_rust.lookup(e, "__rdl_alloc", &sym);
			} else if (alloc_families[j] != &alloc_glibc) {
				other = true;
			}
		}
		if (binder == SIZE_MAX && !passes_through(o.paths[i]) && defines(e, "malloc") &&
		    defines(e, "free")) {
			binder = i;
			if (!known && i < first_libc) {
				snprintf(
					err, errlen,
					"unknown allocator: '%s' defines malloc and free but is none of "
					"jemalloc, mimalloc, tcmalloc or glibc",
					o.paths[i]);
				elf_symbols__close(e);
				ret = -EPROTO;
				goto out;
			}
		}
		elf_symbols__close(e);
	}
	for (i = 0; i < nfound && plan->n < ALLOC_PLAN_MAX; i++) {
		const struct found *f = &found[i];
		struct probe_plan *pp = &plan->objects[plan->n];
		struct elf_symbols *e;

		if (want && f->family != want)
			continue;
		/* Rust's shims only over an allocator memscoped cannot name (or when asked). */
		if (!want && f->family == &alloc_rust && (!custom_global || other))
			continue;
		snprintf(pp->object, sizeof(pp->object), "%s", o.paths[f->object]);
		e = elf_symbols__open_target(pid, pp->object, pp->open_path, sizeof(pp->open_path));
		if (!e)
			continue;
		ret = probe_plan__family_from_elf(e, f->family, f->prefix, pp);
		elf_symbols__close(e);
		if (ret) {
			probe_plan__clear(pp);
			continue;
		}
		plan->families[plan->n] = f->family;
		if (f->object == binder)
			plan->primary = plan->n;
		plan->n++;
	}
	/* Rust's shims over an unnamed allocator: what the program's allocations go through. */
	for (i = 0; i < plan->n; i++)
		if (plan->families[i] == &alloc_rust)
			plan->primary = i;
	ret = 0;
	if (plan->n)
		goto out;
	searched(&o, list, sizeof(list));
	if (!proc__alive(pid))
		snprintf(err, errlen, "exited during attach");
	else if (want)
		snprintf(err, errlen, "allocator '%s' not found; searched %s", want->name, list);
	else
		snprintf(err, errlen, "no allocator symbols: searched %s", list);
	ret = -ENOENT;
out:
	for (i = 0; i < o.n; i++)
		free(o.paths[i]);
	free(exe);
	return ret;
}
