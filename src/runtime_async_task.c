// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The async-task runtime (async-std, smol): discovery, attach, lifecycle, attach-time scan. */
#include <errno.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <libiberty/demangle.h>
#include "memscoped/events.h"
#include "array.h"
#include "insn_decode.h"
#include "probe_plan.h"
#include "proc.h"
#include "process_table.h"
#include "runtime.h"
#include "runtime_async_task.h"
#include "runtime_tokio.h"

#define RUNTIME_NAME "async-task"
/* A cell larger than this is not one (a future of 1 MiB is already absurd). */
#define MAX_CELL (1ull << 20)
#define MAX_ALIGN 4096
#define SCAN_CHUNK (1u << 20)
/* Bytes of RawTask::run read to find its state load, and at most to find its helpers. */
#define RUN_CODE 96
#define RUN_MAX_BYTES 16384

struct atask_process {
	struct atask_info info;
	char *object;  /* the object async-task is in, as the target names it */
	uint64_t bias; /* runtime address - ELF vaddr */
	bool invalid;  /* a header failed validation: tasks no longer tracked */
	bool invalid_logged;
	uint64_t unknown_vtables;
};

void atask__clear(struct atask_info *info)
{
	size_t i;

	for (i = 0; i < info->nruns; i++)
		free(info->runs[i].type_name);
	free(info->runs);
	free(info->vtables);
	memset(info, 0, sizeof(*info));
}

/* The second generic argument at p (just past a '<'), malloc'd; NULL if there is none. */
static char *second_argument(const char *p)
{
	char *first = runtime_tokio__first_argument(p);
	size_t n;

	if (!first)
		return NULL;
	n = strlen(first);
	free(first);
	if (p[n] != ',')
		return NULL;
	p += n + 1;
	while (*p == ' ')
		p++;
	return runtime_tokio__first_argument(p);
}

/*
 * The user's future inside the executors' wrappers: async-executor's spawn<T, F> future and
 * async-std's SupportTaskLocals<F> (async-std spawns through async-executor). Takes type.
 */
static char *unwrap_future(char *type)
{
	/* Legacy and v0 spellings. */
	static const char *const second[] = {
		"async_executor::Executor::spawn<",
		"async_executor::LocalExecutor::spawn<",
		"<async_executor::Executor>::spawn<",
		"<async_executor::LocalExecutor>::spawn<",
	};
	static const char locals[] = "async_std::task::builder::SupportTaskLocals<";
	/* Before Rust 1.67 an async block's future is GenFuture<its generator>. */
	static const char generator[] = "core::future::from_generator::GenFuture<";
	char *inner;
	size_t i;
	bool again = true;

	while (type && again) {
		again = false;
		inner = NULL;
		for (i = 0; i < sizeof(second) / sizeof(second[0]) && !inner; i++)
			if (!strncmp(type, second[i], strlen(second[i])))
				inner = second_argument(type + strlen(second[i]));
		if (!inner && !strncmp(type, locals, strlen(locals)))
			inner = runtime_tokio__first_argument(type + strlen(locals));
		if (!inner && !strncmp(type, generator, strlen(generator)))
			inner = runtime_tokio__first_argument(type + strlen(generator));
		if (inner) {
			free(type);
			type = inner;
			again = true;
		}
	}
	return type;
}

/* "<async_task::raw::RawTask<F, T, S>>::run": F, the executors' wrappers off. */
char *atask__type_from_demangled(const char *d)
{
	const char *p = strstr(d, "async_task::raw::RawTask<");
	char *type;

	if (!p)
		return NULL;
	type = runtime_tokio__first_argument(strchr(p, '<') + 1);
	/* Legacy mangling keeps the parameters' names: no type there. */
	if (!type || !strcmp(type, "F")) {
		free(type);
		return NULL;
	}
	return unwrap_future(type);
}

char *atask__type_from_helper(const char *d)
{
	static const char drop[] = "core::ptr::drop_in_place<";
	static const char guard[] = "async_task::raw::RawTask<F,T,S>::run::Guard<";
	static const char generator[] = "core::future::from_generator::GenFuture<";
	static const char *const spawn[] = { "async_executor::Executor::spawn<",
					     "async_executor::LocalExecutor::spawn<" };
	char *inner = NULL, *type = NULL;
	size_t i;

	if (strncmp(d, drop, strlen(drop)))
		return NULL;
	d += strlen(drop);
	/* run's guard, which drops the future if it panics: Guard<F, T, S>. */
	if (!strncmp(d, guard, strlen(guard)))
		return unwrap_future(runtime_tokio__first_argument(d + strlen(guard)));
	/* Before Rust 1.67 the executor's spawn future is itself in a GenFuture. */
	if (!strncmp(d, generator, strlen(generator))) {
		inner = runtime_tokio__first_argument(d + strlen(generator));
		if (!inner)
			return NULL;
		d = inner;
	}
	/* The executor's spawn future, which wraps the user's: spawn<T, F>::{{closure}}. */
	for (i = 0; i < sizeof(spawn) / sizeof(spawn[0]) && !type; i++)
		if (!strncmp(d, spawn[i], strlen(spawn[i])))
			type = unwrap_future(second_argument(d + strlen(spawn[i])));
	free(inner);
	return type;
}

/* Ends in "::run": the name as demangled, or a ".llvm.N" suffix after it. */
static bool ends_in_run(const char *d)
{
	const char *p = strstr(d, ">::run"), *next;

	while (p && (next = strstr(p + 1, ">::run")))
		p = next;
	return p && (p[6] == '\0' || p[6] == '.' || p[6] == ' ');
}

static bool is_run_symbol(const char *name)
{
	char *d;
	bool run;

	/* Legacy: _ZN10async_task3raw<n>RawTask$LT$F$C$T$C$S$GT$3run17h<hash>E; v0: a method of
	 * async_task::raw::RawTask<…> named run (not, say, drop_in_place of run's Guard). */
	if (!strstr(name, "10async_task3raw") || !strstr(name, "RawTask"))
		return false;
	if (!strncmp(name, "_ZN", 3))
		return strstr(name, "RawTask$LT$") && strstr(name, "$GT$3run17h");
	if (strncmp(name, "_R", 2))
		return false;
	d = cplus_demangle(name, DMGL_PARAMS | DMGL_RUST);
	run = d && !strncmp(d, "<async_task::raw::RawTask<", 26) && ends_in_run(d);
	free(d);
	return run;
}

static char *name_for_run(const char *symbol, uint64_t vaddr, bool *ret_named)
{
	char *demangled = cplus_demangle(symbol, DMGL_PARAMS | DMGL_RUST), *type = NULL, *s;
	const char *hash;

	*ret_named = false;
	if (demangled) {
		type = strstr(demangled, "::run") ? atask__type_from_demangled(demangled) : NULL;
		free(demangled);
		*ret_named = type != NULL;
		if (type)
			return type;
	}
	hash = strstr(symbol, "17h");
	if (hash && asprintf(&s, "async_task::raw::RawTask::run::h%.16s", hash + 3) >= 0)
		return s;
	return asprintf(&s, "run@0x%llx", (unsigned long long)vaddr) >= 0 ? s : NULL;
}

static int add_run(struct atask_info *info, struct elf_symbols *e, uint64_t vaddr,
		   const char *symbol)
{
	struct atask_run *r;
	uint64_t offset;
	size_t i;

	for (i = 0; i < info->nruns; i++)
		if (info->runs[i].vaddr == vaddr) {
			/* A merged copy: a v0 name wins over a hash. */
			if (symbol && !info->runs[i].named) {
				bool named;
				char *name = name_for_run(symbol, vaddr, &named);

				if (name && named) {
					free(info->runs[i].type_name);
					info->runs[i].type_name = name;
					info->runs[i].named = true;
				} else {
					free(name);
				}
			}
			return 0;
		}
	if (elf_symbols__offset(e, vaddr, &offset))
		return 0;
	r = realloc(info->runs, (info->nruns + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	info->runs = r;
	r += info->nruns;
	r->vaddr = vaddr;
	r->offset = offset;
	r->type_name = name_for_run(symbol ? symbol : "", vaddr, &r->named);
	if (!r->type_name)
		return -ENOMEM;
	info->nruns++;
	return 0;
}

struct sym_ctx {
	struct atask_info *info;
	struct elf_symbols *e;
};

static int on_symbol(const struct elf_sym *sym, void *ctx)
{
	struct sym_ctx *s = ctx;

	if (sym->type != STT_FUNC || !is_run_symbol(sym->name))
		return 0;
	return add_run(s->info, s->e, sym->vaddr, sym->name);
}

static bool power_of_two(uint64_t x)
{
	return x && !(x & (x - 1));
}

/*
 * layout_info: Some(TaskLayout { layout: Layout { size, align } (either order), offset_s,
 * offset_f, offset_r }), the future and its output sharing one union: offset_f == offset_r.
 */
static bool plausible_layout(const uint64_t w[5], uint64_t *ret_size, uint64_t *ret_future)
{
	uint64_t size, align;

	if (power_of_two(w[0]) && w[0] <= MAX_ALIGN && w[1] >= ATASK_HEADER_BYTES) {
		align = w[0];
		size = w[1];
	} else if (power_of_two(w[1]) && w[1] <= MAX_ALIGN && w[0] >= ATASK_HEADER_BYTES) {
		size = w[0];
		align = w[1];
	} else {
		return false;
	}
	if (w[3] != w[4] || w[2] < ATASK_HEADER_BYTES || w[3] < w[2] || w[3] > size ||
	    size > MAX_CELL || size % align)
		return false;
	*ret_size = size;
	*ret_future = w[3];
	return true;
}

/*
 * A TaskVTable in a PIE: 7 consecutive R_X86_64_RELATIVE slots pointing into code, then an
 * 8th pointing at a plausible TaskLayout outside code.
 */
int atask__find_vtables(struct elf_symbols *e, struct atask_info *info)
{
	struct elf_reloc *r = NULL;
	size_t n = 0;
	struct atask_vtable *vt;
	uint64_t words[5], size, future;
	size_t i, k;
	int err;

	err = elf_symbols__relative_sorted(e, &r, &n);
	if (err)
		goto out;
	for (i = 0; i + ATASK_VT_WORDS <= n; i++) {
		for (k = 0; k < ATASK_VT_WORDS - 1; k++)
			if (r[i + k].offset != r[i].offset + 8 * k ||
			    !elf_symbols__is_text(e, r[i + k].addend))
				break;
		if (k < ATASK_VT_WORDS - 1 || r[i + k].offset != r[i].offset + 8 * k ||
		    elf_symbols__is_text(e, r[i + k].addend))
			continue;
		if (elf_symbols__read_vaddr(e, r[i + k].addend, words, sizeof(words)) ||
		    !plausible_layout(words, &size, &future))
			continue;
		vt = realloc(info->vtables, (info->nvtables + 1) * sizeof(*vt));
		if (!vt) {
			err = -ENOMEM;
			goto out;
		}
		info->vtables = vt;
		vt += info->nvtables++;
		vt->vaddr = r[i].offset;
		vt->run = r[i + ATASK_VT_RUN_SLOT].addend;
		vt->size = size;
		vt->future_offset = future;
		vt->type = 0;
		i += ATASK_VT_WORDS - 1;
	}
out:
	free(r);
	return err;
}

int atask__state_word(const uint8_t *code, size_t len, unsigned int *ret_word)
{
	size_t off = 0, n;

	/* mov disp(%rdi),%r64 — REX.W 8b, ModRM mod 00/01 with rm 111 — before any branch. */
	while (off < len) {
		const uint8_t *c = code + off;

		if (len - off >= 3 && (c[0] == 0x48 || c[0] == 0x4c) && c[1] == 0x8b &&
		    (c[2] & 7) == 7) {
			if ((c[2] >> 6) == 0) {
				*ret_word = 0;
				return 0;
			}
			if ((c[2] >> 6) == 1 && len - off >= 4 && c[3] < 0x20 && !(c[3] & 7)) {
				*ret_word = c[3] / 8;
				return 0;
			}
		}
		n = insn_decode__length(c, len - off);
		if (!n || c[0] == 0xe8 || c[0] == 0xe9 || c[0] == 0xc3 || (c[0] & 0xf0) == 0x70)
			break;
		off += n;
	}
	return -ENOENT;
}

static int by_vaddr(const void *a, const void *b)
{
	const struct atask_vtable *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static bool referenced(const struct atask_info *info, uint64_t run)
{
	size_t i;

	for (i = 0; i < info->nvtables; i++)
		if (info->vtables[i].run == run)
			return true;
	return false;
}

int atask__discover(struct elf_symbols *e, struct elf_symbols *syms, struct atask_info *ret)
{
	struct atask_info info = { 0 };
	struct sym_ctx s = { &info, e };
	size_t votes[4] = { 0 };
	unsigned int word;
	uint8_t code[RUN_CODE];
	uint64_t offset;
	ssize_t n;
	size_t i;
	int err;

	err = elf_symbols__foreach(syms ? syms : e, on_symbol, &s);
	info.source = info.nruns ? "symbols" : "vtables";
	if (!err)
		err = atask__find_vtables(e, &info);
	/* Every vtable's run is a probe point, named or not. */
	for (i = 0; !err && i < info.nvtables; i++)
		err = add_run(&info, e, info.vtables[i].run, NULL);
	if (!err && (!info.nruns || !info.nvtables))
		err = -ENOENT;
	/* A copy no vtable holds never runs as a task's run: probing it could only mislead. */
	for (i = 0; !err && i < info.nruns;) {
		if (referenced(&info, info.runs[i].vaddr)) {
			i++;
			continue;
		}
		free(info.runs[i].type_name);
		info.runs[i] = info.runs[--info.nruns];
	}
	if (!err) {
		qsort(info.vtables, info.nvtables, sizeof(*info.vtables), by_vaddr);
		/* Every copy of run loads the state first: the copies vote (one may be odd). */
		for (i = 0; i < info.nruns; i++)
			if (!elf_symbols__offset(e, info.runs[i].vaddr, &offset) &&
			    (n = elf_symbols__read(e, offset, code, sizeof(code))) > 0 &&
			    !atask__state_word(code, (size_t)n, &word) && word < 4)
				votes[word]++;
		for (word = 0, err = -ENOENT; word < 4; word++)
			if (votes[word] && (err || votes[word] > votes[info.state_word])) {
				info.state_word = word;
				err = 0;
			}
		/* The vtable is the other word outside the 16-byte awaiter. */
		info.vtable_word = info.state_word == 0 ? 3 : 0;
	}
	if (err) {
		atask__clear(&info);
		return err;
	}
	*ret = info;
	return 0;
}

struct func {
	uint64_t vaddr, size;
	const char *name;
};

struct funcs {
	struct func *f;
	size_t n, cap;
};

static int collect_func(const struct elf_sym *sym, void *ctx)
{
	struct funcs *fs = ctx;

	if (sym->type != STT_FUNC)
		return 0;
	if (array__grow((void **)&fs->f, &fs->cap, fs->n, sizeof(*fs->f), 4096))
		return -ENOMEM;
	fs->f[fs->n++] = (struct func){ sym->vaddr, sym->size, sym->name };
	return 0;
}

static int func_by_vaddr(const void *a, const void *b)
{
	const struct func *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* The function starting at vaddr, unless several names share it (merged: ambiguous). */
static const struct func *only_func_at(const struct funcs *fs, uint64_t vaddr)
{
	struct func key = { .vaddr = vaddr };
	const struct func *f = bsearch(&key, fs->f, fs->n, sizeof(key), func_by_vaddr);
	size_t i;

	if (!f)
		return NULL;
	for (i = (size_t)(f - fs->f); i > 0 && fs->f[i - 1].vaddr == vaddr; i--)
		;
	for (; i < fs->n && fs->f[i].vaddr == vaddr; i++)
		if (strcmp(fs->f[i].name, f->name))
			return NULL;
	return f;
}

/*
 * The future type from the helpers run calls directly (legacy symbols spell their types): every
 * helper that names one must name the same, or the copy stays unnamed.
 */
static char *name_from_calls(struct elf_symbols *code, const struct funcs *fs,
			     const struct atask_run *r)
{
	struct func key = { .vaddr = r->vaddr }, *f;
	const struct func *callee;
	char *d, *t, *type = NULL;
	bool conflict = false;
	uint8_t *buf;
	int32_t rel;
	size_t len, i;
	ssize_t n;

	f = bsearch(&key, fs->f, fs->n, sizeof(key), func_by_vaddr);
	len = f && f->size && f->size < RUN_MAX_BYTES ? f->size : RUN_MAX_BYTES;
	buf = malloc(len);
	if (!buf)
		return NULL;
	n = elf_symbols__read(code, r->offset, buf, len);
	/* Any e8 whose target starts a function naming the type: a false call names nothing. */
	for (i = 0; n > 5 && i + 5 <= (size_t)n && !conflict; i++) {
		if (buf[i] != 0xe8)
			continue;
		memcpy(&rel, buf + i + 1, sizeof(rel));
		callee = only_func_at(fs, r->vaddr + i + 5 + (uint64_t)(int64_t)rel);
		if (!callee || strncmp(callee->name, "_ZN4core3ptr", 12))
			continue;
		d = cplus_demangle(callee->name, DMGL_PARAMS | DMGL_RUST);
		t = d ? atask__type_from_helper(d) : NULL;
		free(d);
		if (t && type && strcmp(t, type))
			conflict = true;
		if (t && !type)
			type = t;
		else
			free(t);
	}
	free(buf);
	if (conflict) {
		free(type);
		return NULL;
	}
	return type;
}

/* The type names legacy mangling leaves out: from DWARF if there is some, else run's calls. */
static void name_runs(struct elf_symbols *code, struct elf_symbols *syms, struct atask_info *info)
{
	struct funcs fs = { 0 };
	char *type;
	size_t i;

	if (elf_symbols__foreach(syms ? syms : code, collect_func, &fs) || !fs.n)
		goto out;
	qsort(fs.f, fs.n, sizeof(*fs.f), func_by_vaddr);
	for (i = 0; i < info->nruns; i++) {
		if (info->runs[i].named)
			continue;
		type = name_from_calls(code, &fs, &info->runs[i]);
		if (!type)
			continue;
		free(info->runs[i].type_name);
		info->runs[i].type_name = type;
		info->runs[i].named = true;
	}
out:
	free(fs.f);
}

/* State in a process. */

static const char atask_key;

static void atask_process_free(void *state)
{
	struct atask_process *a = state;

	if (!a)
		return;
	atask__clear(&a->info);
	free(a->object);
	free(a);
}

struct atask_process *atask_process__of(const struct process *p)
{
	return process__state(p, &atask_key);
}

static const struct atask_run *run_at(const struct atask_info *info, uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < info->nruns; i++)
		if (info->runs[i].vaddr == vaddr)
			return &info->runs[i];
	return NULL;
}

struct atask_process *atask_process__new(struct process *p, struct atask_info *info, uint64_t bias,
					 const char *object)
{
	struct atask_process *a = calloc(1, sizeof(*a));
	const struct atask_run *run;
	size_t i;

	if (!a)
		return NULL;
	a->info = *info;
	memset(info, 0, sizeof(*info));
	a->bias = bias;
	a->object = strdup(object);
	for (i = 0; i < a->info.nvtables; i++) {
		run = run_at(&a->info, a->info.vtables[i].run);
		a->info.vtables[i].type =
			task_table__type(p->tasks, RUNTIME_NAME, run ? run->type_name : "unknown");
	}
	if (!a->object || process__set_state(p, &atask_key, a, atask_process_free))
		return NULL;
	return a;
}

static const struct atask_vtable *find_vtable(const struct atask_process *a, uint64_t rt_addr)
{
	struct atask_vtable key = { .vaddr = rt_addr - a->bias };

	return bsearch(&key, a->info.vtables, a->info.nvtables, sizeof(key), by_vaddr);
}

/* Discovery in the target: the executable, else the first object it maps with async-task. */

struct objects {
	char **paths;
	size_t n;
};

static int add_object(const struct proc_mapping *m, void *ctx)
{
	struct objects *o = ctx;
	char **paths;
	size_t i;

	if (m->perms[2] != 'x' || m->path[0] != '/')
		return 0;
	for (i = 0; i < o->n; i++)
		if (!strcmp(o->paths[i], m->path))
			return 0;
	paths = realloc(o->paths, (o->n + 1) * sizeof(*paths));
	if (!paths)
		return -ENOMEM;
	o->paths = paths;
	o->paths[o->n] = strdup(m->path);
	return o->paths[o->n++] ? 0 : -ENOMEM;
}

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

static int setup_object(struct process *p, const char *object, const char *debug_dir)
{
	struct elf_symbols *e, *debug;
	struct atask_info info;
	char path[PATH_MAX];
	uint64_t start;
	int ret;

	e = elf_symbols__open_target((int)p->pid, object, path, sizeof(path));
	if (!e)
		return -errno;
	debug = open_debug_file((int)p->pid, debug_dir, e);
	ret = atask__discover(e, debug, &info);
	if (!ret) {
		if (debug && !strcmp(info.source, "symbols"))
			info.source = "its build-id debug file";
		name_runs(e, debug, &info);
		if (proc__load_start((int)p->pid, object, &start))
			ret = -ESRCH;
		else if (!atask_process__new(p, &info, start - elf_symbols__base_vaddr(e), object))
			ret = -ENOMEM;
		atask__clear(&info);
	}
	elf_symbols__close(debug);
	elf_symbols__close(e);
	return ret;
}

int atask_process__setup(struct process *p, const char *debug_dir, char *msg, size_t len)
{
	struct objects o = { 0 };
	size_t i;
	int ret = -ENOENT;

	if (p->exe)
		add_object(&(struct proc_mapping){ .perms = "r-xp", .path = p->exe }, &o);
	if (proc__mappings((int)p->pid, add_object, &o) < 0)
		ret = -ESRCH;
	for (i = 0; ret == -ENOENT && i < o.n; i++) {
		ret = setup_object(p, o.paths[i], debug_dir);
		/* An object that cannot be read is not async-task's. */
		if (ret && ret != -ENOMEM && ret != -ESRCH)
			ret = -ENOENT;
	}
	if (ret == -ENOENT)
		snprintf(msg, len,
			 "no async-task in '%s' nor in the %zu objects it maps: no "
			 "async_task::raw::RawTask::run symbols and no task vtables in their "
			 "relocations",
			 p->exe ? p->exe : "?", o.n ? o.n - 1 : 0);
	for (i = 0; i < o.n; i++)
		free(o.paths[i]);
	free(o.paths);
	return ret;
}

/* Attach: every run copy, entry and return, the cookie saying where the header keeps things. */
static int atask_attach(const struct runtime_ctx *ctx, struct process *p, enum runtime_want want,
			char *msg, size_t len)
{
	struct atask_process *a;
	struct probe_plan *plan;
	const struct atask_run *r;
	size_t i;
	int err, pass;

	(void)want;
	process__set_state(p, &atask_key, NULL, NULL);
	err = atask_process__setup(p, ctx->debug_dir, msg, len);
	if (err)
		return err;
	a = atask_process__of(p);
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	snprintf(plan->object, sizeof(plan->object), "%s", a->object);
	err = proc__root_path((int)p->pid, a->object, plan->open_path, sizeof(plan->open_path));
	for (pass = 0; !err && pass < 2; pass++)
		for (i = 0; !err && i < a->info.nruns; i++) {
			r = &a->info.runs[i];
			err = probe_plan__add(
				plan, &(struct probe_spec){
					      .symbol = r->type_name,
					      .prog = pass ? "task_poll_enter" : "task_poll_return",
					      .cookie = MS_TASK_COOKIE(
						      r->vaddr + a->bias, a->info.vtable_word,
						      ATASK_VT_RUN_SLOT, a->info.state_word,
						      MS_TASK_ASYNC_TASK, false),
					      .retprobe = !pass,
					      .offset = r->offset });
		}
	if (!err)
		err = runtime__attach_plan(ctx, p, plan, msg, len);
	probe_plan__clear(plan);
	free(plan);
	if (!err)
		ctx->log("pid %u: async-task: %zu run functions and %zu task vtables in '%s' (from "
			 "%s)",
			 p->pid, a->info.nruns, a->info.nvtables, a->object, a->info.source);
	return err;
}

static bool atask_attached(const struct process *p)
{
	return atask_process__of(p) != NULL;
}

/* Events. */

static void adopt_cell(struct process *p, struct task *task, const struct heap_block *cell)
{
	struct task *parent =
		cell->task & TASK_CELL_BIT ? NULL : task_table__at(p->tasks, cell->task);

	task->parent_id = parent ? parent->runtime_id : 0;
	task_table__cell(p->tasks, task, cell->size);
	process__claim_cell(p, cell->addr, task_table__index(p->tasks, task), NULL);
}

static void run_enter(struct process *p, struct atask_process *a, const struct ms_event *e)
{
	const struct atask_vtable *vt = find_vtable(a, e->poll.vtable);
	struct heap_block cell;
	struct task *task;
	bool have_cell;

	if (!vt) {
		a->unknown_vtables++;
		return;
	}
	have_cell = heap_table__lookup(p->blocks, e->addr, &cell);
	task = task_table__find(p->tasks, e->addr);
	/* A lifetime whose cell was freed and reused unseen is over. */
	if (task && have_cell && cell.task != (task_table__index(p->tasks, task) | TASK_CELL_BIT) &&
	    task->discovered == TASK_FOUND_SPAWN && task->spawn_ns)
		task = NULL;
	/* Found by the scan, yet allocated after attach: spawned while the scan ran. */
	if (task && task->discovered == TASK_FOUND_ATTACH_SCAN && have_cell &&
	    !(cell.task & TASK_CELL_BIT)) {
		task->discovered = TASK_FOUND_SPAWN;
		task->spawn_ns = p->start_ns + cell.time_cs * 10000000ull;
		task->last_poll_end_ns = 0;
		adopt_cell(p, task, &cell);
	}
	if (!task) {
		/* The first run of an unseen header: spawned since attach (or before). */
		task = task_table__spawn(p->tasks, e->addr, vt->type, TASK_ASYNC, TASK_FOUND_SPAWN,
					 have_cell ? p->start_ns + cell.time_cs * 10000000ull : 0);
		if (!task)
			return;
		task->runtime_id = task_table__index(p->tasks, task);
		if (have_cell) {
			adopt_cell(p, task, &cell);
		} else {
			task->discovered = TASK_FOUND_FIRST_POLL;
			task_table__cell(p->tasks, task, vt->size);
		}
	}
	task->detached = !(e->poll.state & ATASK_TASK);
	task->cancel_seen |= (e->poll.state & (ATASK_CLOSED | ATASK_COMPLETED)) == ATASK_CLOSED;
	task_table__poll_begin(p->tasks, task, e->ts);
}

static void run_exit(struct process *p, const struct ms_event *e)
{
	enum task_state ended = TASK_IDLE;
	struct task *task;

	/* Gone already: the cell was freed inside run (destroy), which ended the task. */
	task = task_table__find(p->tasks, e->addr);
	if (!task)
		return;
	if (e->poll.state & ATASK_COMPLETED)
		ended = TASK_COMPLETED;
	else if (e->poll.state & ATASK_CLOSED)
		ended = TASK_CANCELLED;
	task->detached = !(e->poll.state & ATASK_TASK);
	task_table__poll_end(p->tasks, task, e->ts, ended);
}

static void atask_event(struct process *p, const struct ms_event *e)
{
	struct atask_process *a = atask_process__of(p);

	if (!a || e->func != MS_TASK_ASYNC_TASK)
		return;
	if (e->type == MS_EV_TASK_INVALID)
		a->invalid = true;
	if (a->invalid)
		return;
	if (e->type == MS_EV_TASK_ENTER)
		run_enter(p, a, e);
	else if (e->type == MS_EV_TASK_EXIT)
		run_exit(p, e);
}

static uint32_t atask_task_of(struct process *p, const struct ms_event *e)
{
	struct task *task;

	if (!e->task || !atask_process__of(p))
		return 0;
	task = task_table__find(p->tasks, e->task);
	return task ? task_table__index(p->tasks, task) : 0;
}

/* The attach-time scan: live cells in the target's writable memory. */

struct scan {
	const struct atask_process *a;
	uint64_t *vt_rt; /* run-time vtable addresses, sorted */
	uint64_t bytes;
	uint8_t *buf;
	atask_found_fn found;
	void *ctx;
};

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static void found(struct scan *s, uint64_t hdr, uint64_t state, uint64_t chunk,
		  const struct atask_vtable *vt)
{
	/* A live task: not completed nor closed, referenced, its cell the vtable's size. */
	if (state & (ATASK_COMPLETED | ATASK_CLOSED) || state / ATASK_REFERENCE == 0 ||
	    state / ATASK_REFERENCE > (1u << 20) || (chunk & ~7ull) < vt->size ||
	    (chunk & ~7ull) > vt->size + 64 + MAX_ALIGN)
		return;
	s->found(s->ctx, &(struct atask_found){ .header = hdr, .state = state, .vt = vt });
}

static void scan_buffer(struct scan *s, uint64_t addr, size_t len)
{
	const struct atask_info *info = &s->a->info;
	size_t i, vw = info->vtable_word * 8, sw = info->state_word * 8;
	uint64_t word, hdr, state, chunk;
	const struct atask_vtable *vt;

	/* A cell starts 16-aligned (malloc) with its glibc size word just below. */
	for (i = 16; i + ATASK_HEADER_BYTES <= len; i += 16) {
		memcpy(&word, s->buf + i + vw, sizeof(word));
		if (!bsearch(&word, s->vt_rt, s->a->info.nvtables, sizeof(word), cmp_u64))
			continue;
		vt = find_vtable(s->a, word);
		if (!vt)
			continue;
		hdr = addr + i;
		memcpy(&state, s->buf + i + sw, sizeof(state));
		memcpy(&chunk, s->buf + i - 8, sizeof(chunk));
		found(s, hdr, state, chunk, vt);
	}
}

static int scan_range(struct scan *s, int pid, uint64_t start, uint64_t end)
{
	uint64_t addr;
	size_t len;

	for (addr = start; addr < end; addr += len) {
		len = end - addr < SCAN_CHUNK ? (size_t)(end - addr) : SCAN_CHUNK;
		/* Pages can vanish under us (munmap): skip what cannot be read. */
		if (!proc__read(pid, addr, s->buf, len)) {
			s->bytes += len;
			scan_buffer(s, addr, len);
		}
		/* Overlap chunks by a header and its size word, so none is cut. */
		if (addr + len < end)
			len -= ATASK_HEADER_BYTES + 16;
	}
	return 0;
}

struct ranges {
	uint64_t (*r)[2];
	size_t n;
};

static int collect_anon(const char *line, void *ctx)
{
	struct ranges *rs = ctx;
	unsigned long long start, end;
	char perms[5], path[16] = "";
	uint64_t(*r)[2];

	if (sscanf(line, "%llx-%llx %4s %*s %*s %*s %15s", &start, &end, perms, path) < 3)
		return 0;
	if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' ||
	    (path[0] && strcmp(path, "[heap]")))
		return 0;
	r = realloc(rs->r, (rs->n + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	rs->r = r;
	r[rs->n][0] = start;
	r[rs->n++][1] = end;
	return 0;
}

int atask_scan__pid(const struct atask_process *a, int pid, atask_found_fn fn, void *ctx,
		    uint64_t *ret_bytes)
{
	struct scan s = { .a = a, .found = fn, .ctx = ctx };
	struct ranges rs = { 0 };
	size_t i;
	int err;

	s.vt_rt = calloc(a->info.nvtables + 1, sizeof(*s.vt_rt));
	s.buf = malloc(SCAN_CHUNK);
	err = s.vt_rt && s.buf ? proc__maps_lines(pid, collect_anon, &rs) : -ENOMEM;
	for (i = 0; !err && i < a->info.nvtables; i++)
		s.vt_rt[i] = a->info.vtables[i].vaddr + a->bias;
	if (!err)
		qsort(s.vt_rt, a->info.nvtables, sizeof(*s.vt_rt), cmp_u64);
	for (i = 0; !err && i < rs.n; i++)
		err = scan_range(&s, pid, rs.r[i][0], rs.r[i][1]);
	free(rs.r);
	free(s.buf);
	free(s.vt_rt);
	*ret_bytes = s.bytes;
	return err;
}

struct attach_scan {
	struct process *p;
	uint64_t now_ns, found;
};

static void add_found(void *ctx, const struct atask_found *f)
{
	struct attach_scan *s = ctx;
	struct task *task;

	if (task_table__find(s->p->tasks, f->header))
		return;
	task = task_table__spawn(s->p->tasks, f->header, f->vt->type, TASK_ASYNC,
				 TASK_FOUND_ATTACH_SCAN, 0);
	if (!task)
		return;
	task->runtime_id = task_table__index(s->p->tasks, task);
	task_table__cell(s->p->tasks, task, f->vt->size);
	task->detached = !(f->state & ATASK_TASK);
	/* Idle at least since attach: that is when it was last known not to run. */
	task->last_poll_end_ns = s->p->start_ns ? s->p->start_ns : s->now_ns;
	if (f->state & ATASK_RUNNING) {
		task->running = true;
		task->state = TASK_RUNNING;
		task->poll_start_ns = task->last_poll_end_ns;
	}
	s->found++;
}

static int atask_scan(struct process *p, uint64_t now_ns, char *msg, size_t len)
{
	struct attach_scan s = { .p = p, .now_ns = now_ns };
	const struct atask_process *a = atask_process__of(p);
	struct timespec t0, t1;
	uint64_t bytes;
	int err;

	if (!a)
		return -ENOENT;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = atask_scan__pid(a, (int)p->pid, add_found, &s, &bytes);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!err)
		snprintf(msg, len,
			 "attach scan: %" PRIu64 " async-task tasks in %.1f MiB in %.1f ms",
			 s.found, (double)bytes / (1 << 20),
			 (double)((t1.tv_sec - t0.tv_sec) * 1000000000ll +
				  (t1.tv_nsec - t0.tv_nsec)) /
				 1e6);
	return err;
}

static const char *atask_problem(struct process *p)
{
	struct atask_process *a = atask_process__of(p);

	if (!a || !a->invalid || a->invalid_logged)
		return NULL;
	a->invalid_logged = true;
	return "an async-task header failed validation against its vtable (unsupported "
	       "async-task layout?); tasks are no longer tracked, the heap is";
}

static int atask_describe(const struct process *p, char *buf, size_t len)
{
	const struct atask_process *a = atask_process__of(p);

	if (!a)
		return -ENOENT;
	snprintf(buf, len, "async-task in '%s'", a->object);
	return 0;
}

const struct runtime runtime_async_task = {
	.name = RUNTIME_NAME,
	.attach = atask_attach,
	.attached = atask_attached,
	.events = 1u << MS_EV_TASK_ENTER | 1u << MS_EV_TASK_EXIT | 1u << MS_EV_TASK_INVALID,
	.event = atask_event,
	.task_of = atask_task_of,
	.scan = atask_scan,
	.problem = atask_problem,
	.listed = atask_attached,
	.describe = atask_describe,
};
