// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <libiberty/demangle.h>
#include "proc.h"
#include "stack_unwind.h"

/*
 * How to step out of the frame at one pc, from libdw's reading of the CFI, kept: x86-64 code
 * needs only the CFA (rsp or rbp plus an offset), where the return address is, and where rbp
 * is. Anything else (expressions, signal frames, other CFA registers) takes libdwfl's walk.
 */
enum { RULE_NONE, RULE_STEP, RULE_END, RULE_SLOW };
enum { RBP_SAME, RBP_AT, RBP_UNDEFINED };

struct step_rule {
	uint64_t pc;	 /* the lookup address; 0 an empty slot */
	uint8_t kind;	 /* RULE_* */
	uint8_t cfa_reg; /* 6 rbp or 7 rsp */
	uint8_t rbp;	 /* RBP_* */
	int32_t cfa_off; /* CFA = reg + cfa_off */
	int32_t ra_off;	 /* return address at CFA + ra_off */
	int32_t rbp_off; /* RBP_AT: saved at CFA + rbp_off */
};

/* Rules kept per process; past it the cache starts over. */
#define STEP_RULES 65536

struct stack_unwinder {
	int pid;
	struct step_rule *rules;
	size_t nrules;
	Dwfl *dwfl;
	Dwfl_Callbacks callbacks; /* dwfl keeps a pointer to them */
	char *debuginfo_path;
	Elf *self; /* our own ELF: tells libdwfl the architecture */
	int self_fd;
	/* The sample being unwound. */
	const struct ms_sample *sample;
	size_t stack_len;
	uint64_t *pcs;
	size_t npcs, max;
	bool ended; /* a zero return address: the outermost frame */
};

/* Objects by the target's view of the filesystem (containers): /proc/PID/root first. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		    char **file_name, Elf **elfp)
{
	struct stack_unwinder *u = *userdata;
	char path[4096];
	int fd;

	if (u && name[0] == '/' && !proc__root_path(u->pid, name, path, sizeof(path))) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			*file_name = strdup(path);
			return fd;
		}
	}
	return dwfl_linux_proc_find_elf(mod, userdata, name, base, file_name, elfp);
}

/* Granted by the attach helper (proc.h): its maps descriptor, the daemon may not read /proc. */
static int report_maps(Dwfl *dwfl, int pid)
{
	FILE *f;
	int fd, err;

	if (!proc__granted(pid))
		return dwfl_linux_proc_report(dwfl, pid);
	fd = proc__open_maps(pid);
	if (fd < 0)
		return -fd;
	f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return ENOMEM;
	}
	err = dwfl_linux_proc_maps_report(dwfl, f);
	fclose(f);
	return err;
}

static int set_userdata(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start,
			void *arg)
{
	(void)mod;
	(void)name;
	(void)start;
	*userdata = arg;
	return DWARF_CB_OK;
}

static int open_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start,
		       void *arg)
{
	Dwarf_Addr bias;

	(void)userdata;
	(void)name;
	(void)start;
	(void)arg;
	dwfl_module_getelf(mod, &bias);
	return DWARF_CB_OK;
}

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	(void)dwfl;
	(void)arg;
	(void)thread_argp;
	return 0;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	struct stack_unwinder *u = arg;

	(void)dwfl;
	*thread_argp = u;
	return u->sample && (pid_t)u->sample->tid == tid;
}

/* Only the copy: the stack has moved on since the sample. */
static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct stack_unwinder *u = arg;
	const struct ms_sample *s = u->sample;
	uint64_t sp = s->regs[7];
	size_t i;

	(void)dwfl;
	for (i = 0; i < MS_SAMPLE_URETPROBES && s->ret_slot[i]; i++)
		if (s->ret_slot[i] == addr) {
			*result = s->ret_orig[i];
			return true;
		}
	if (addr < sp || addr - sp + sizeof(*result) > u->stack_len)
		return false;
	memcpy(result, s->stack + (addr - sp), sizeof(*result));
	return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct stack_unwinder *u = arg;
	Dwarf_Word regs[MS_SAMPLE_REGS];

	memcpy(regs, u->sample->regs, sizeof(regs));
	if (!dwfl_thread_state_registers(thread, 0, MS_SAMPLE_REGS, regs))
		return false;
	dwfl_thread_state_register_pc(thread, regs[16]);
	return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
	.next_thread = next_thread,
	.get_thread = get_thread,
	.memory_read = memory_read,
	.set_initial_registers = set_initial_registers,
};

struct stack_unwinder *stack_unwinder__new(int pid, const char *debug_dir)
{
	struct stack_unwinder *u = calloc(1, sizeof(*u));
	int err = ENOMEM;

	if (!u)
		return NULL;
	u->pid = pid;
	u->self_fd = -1;
	u->rules = calloc(STEP_RULES, sizeof(*u->rules));
	if (!u->rules)
		goto fail;
	if (asprintf(&u->debuginfo_path, "-:.debug:%s", debug_dir ? debug_dir : "/usr/lib/debug") <
	    0) {
		u->debuginfo_path = NULL;
		goto fail;
	}
	u->callbacks.find_elf = find_elf;
	u->callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
	u->callbacks.debuginfo_path = &u->debuginfo_path;
	elf_version(EV_CURRENT);
	u->self_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	u->self = u->self_fd < 0 ? NULL : elf_begin(u->self_fd, ELF_C_READ_MMAP, NULL);
	u->dwfl = dwfl_begin(&u->callbacks);
	err = EINVAL;
	if (!u->self || !u->dwfl)
		goto fail;
	dwfl_report_begin(u->dwfl);
	err = report_maps(u->dwfl, pid);
	if (err || dwfl_report_end(u->dwfl, NULL, NULL)) {
		err = err > 0 ? err : ESRCH;
		goto fail;
	}
	dwfl_getmodules(u->dwfl, set_userdata, u, 0);
	err = EINVAL;
	if (!dwfl_attach_state(u->dwfl, u->self, pid, &thread_callbacks, u))
		goto fail;
	/* Open every object now: later the daemon may no longer read /proc/PID/root. */
	dwfl_getmodules(u->dwfl, open_module, u, 0);
	return u;
fail:
	stack_unwinder__free(u);
	errno = err;
	return NULL;
}

void stack_unwinder__free(struct stack_unwinder *u)
{
	if (!u)
		return;
	if (u->dwfl)
		dwfl_end(u->dwfl);
	if (u->self)
		elf_end(u->self);
	if (u->self_fd >= 0)
		close(u->self_fd);
	free(u->debuginfo_path);
	free(u->rules);
	free(u);
}

/* A CFI register rule: same value, saved at CFA + off, or something else (false). */
static bool simple_register(Dwarf_Frame *frame, int regno, uint8_t *ret_how, int32_t *ret_off)
{
	Dwarf_Op mem[3], *ops;
	size_t nops;

	if (dwarf_frame_register(frame, regno, mem, &ops, &nops))
		return false;
	if (nops == 0) {
		*ret_how = ops ? RBP_UNDEFINED : RBP_SAME;
		return true;
	}
	if (ops[0].atom != DW_OP_call_frame_cfa || nops > 2)
		return false;
	*ret_how = RBP_AT;
	*ret_off = 0;
	if (nops == 2) {
		if (ops[1].atom != DW_OP_plus_uconst)
			return false;
		*ret_off = (int32_t)(int64_t)ops[1].number;
	}
	return true;
}

static void read_rule(struct stack_unwinder *u, uint64_t pc, struct step_rule *r)
{
	Dwarf_Addr bias = 0, start, end;
	Dwarf_Frame *frame = NULL;
	Dwfl_Module *mod;
	Dwarf_CFI *cfi;
	Dwarf_Op *ops;
	size_t nops;
	uint8_t how;
	bool signal;
	int32_t off = 0;

	r->kind = RULE_SLOW;
	mod = dwfl_addrmodule(u->dwfl, pc);
	if (!mod)
		return;
	cfi = dwfl_module_eh_cfi(mod, &bias);
	if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame)) {
		cfi = dwfl_module_dwarf_cfi(mod, &bias);
		if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame))
			return;
	}
	if (dwarf_frame_info(frame, &start, &end, &signal) < 0 || signal)
		goto out;
	if (!simple_register(frame, 16, &how, &off))
		goto out;
	if (how == RBP_UNDEFINED) {
		r->kind = RULE_END;
		goto out;
	}
	if (how != RBP_AT)
		goto out;
	r->ra_off = off;
	if (dwarf_frame_cfa(frame, &ops, &nops) || nops != 1 || ops[0].atom != DW_OP_bregx ||
	    (ops[0].number != 6 && ops[0].number != 7))
		goto out;
	r->cfa_reg = (uint8_t)ops[0].number;
	r->cfa_off = (int32_t)(int64_t)ops[0].number2;
	if (!simple_register(frame, 6, &r->rbp, &r->rbp_off))
		goto out;
	r->kind = RULE_STEP;
out:
	free(frame);
}

static const struct step_rule *rule_at(struct stack_unwinder *u, uint64_t pc)
{
	size_t j = (pc * 0x9e3779b97f4a7c15ull) >> 48;
	struct step_rule *r;

	for (;; j = (j + 1) & (STEP_RULES - 1)) {
		r = &u->rules[j];
		if (r->pc == pc)
			return r;
		if (!r->pc)
			break;
	}
	/* Half full: start over rather than grow (a process has a bounded set of call sites). */
	if (u->nrules >= STEP_RULES / 2) {
		memset(u->rules, 0, STEP_RULES * sizeof(*u->rules));
		u->nrules = 0;
		return rule_at(u, pc);
	}
	*r = (struct step_rule){ .pc = pc };
	read_rule(u, pc, r);
	u->nrules++;
	return r;
}

static bool read_word(struct stack_unwinder *u, uint64_t addr, uint64_t *ret)
{
	return memory_read(u->dwfl, addr, ret, u);
}

/*
 * Walks the copy with cached rules; -1 when a frame needs libdwfl's general walk (the whole
 * stack is then walked by libdwfl, so both never mix).
 */
static long fast_unwind(struct stack_unwinder *u, uint64_t *pcs, size_t max, bool *ret_truncated)
{
	const struct ms_sample *s = u->sample;
	uint64_t pc = s->regs[16], sp = s->regs[7], bp = s->regs[6], cfa, lookup;
	bool bp_known = true;
	size_t n = 0;

	*ret_truncated = false;
	/* The first pc is where the caller resumes (an activation): libdwfl looks it up as is. */
	for (lookup = pc;; lookup = pc - 1) {
		const struct step_rule *r;

		pcs[n++] = pc;
		if (n == max) {
			*ret_truncated = true;
			return (long)n;
		}
		r = rule_at(u, lookup);
		if (r->kind == RULE_END)
			return (long)n;
		if (r->kind != RULE_STEP || (r->cfa_reg == 6 && !bp_known))
			return -1;
		cfa = (r->cfa_reg == 6 ? bp : sp) + (int64_t)r->cfa_off;
		if (!read_word(u, cfa + (int64_t)r->ra_off, &pc)) {
			*ret_truncated = true;
			return (long)n;
		}
		if (r->rbp == RBP_AT)
			bp_known = read_word(u, cfa + (int64_t)r->rbp_off, &bp);
		else if (r->rbp == RBP_UNDEFINED)
			bp_known = false;
		sp = cfa;
		if (pc == 0)
			return (long)n;
	}
}

static int on_frame(Dwfl_Frame *state, void *arg)
{
	struct stack_unwinder *u = arg;
	Dwarf_Addr pc;

	if (!dwfl_frame_pc(state, &pc, NULL))
		return DWARF_CB_ABORT;
	/* The end of the chain: some start routines leave a zero return address. */
	if (pc == 0) {
		u->ended = true;
		return DWARF_CB_ABORT;
	}
	u->pcs[u->npcs++] = pc;
	return u->npcs < u->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

size_t stack_unwinder__unwind(struct stack_unwinder *u, const struct ms_sample *s, size_t len,
			      uint64_t *ret_pcs, size_t max, bool *ret_truncated)
{
	long n;
	int err;

	*ret_truncated = false;
	if (len < MS_SAMPLE_HEADER_SIZE || max == 0)
		return 0;
	u->sample = s;
	u->stack_len = len - MS_SAMPLE_HEADER_SIZE;
	if (u->stack_len > s->stack_len)
		u->stack_len = s->stack_len;
	u->pcs = ret_pcs;
	u->npcs = 0;
	u->max = max;
	u->ended = false;
	n = fast_unwind(u, ret_pcs, max, ret_truncated);
	if (n > 0) {
		u->sample = NULL;
		return (size_t)n;
	}
	/* 0: the outermost frame reached; -1: no CFI, or the copy ended; else max reached. */
	err = dwfl_getthread_frames(u->dwfl, (pid_t)s->tid, on_frame, u);
	*ret_truncated = err != 0 && !u->ended;
	if (u->npcs == 0) {
		/* Not even the first frame: still the caller's address. */
		ret_pcs[0] = s->regs[16];
		u->npcs = 1;
		*ret_truncated = true;
	}
	u->sample = NULL;
	return u->npcs;
}

static char *build_id_hex(Dwfl_Module *mod)
{
	const unsigned char *bits;
	GElf_Addr vaddr;
	char *hex;
	int n, i;

	n = dwfl_module_build_id(mod, &bits, &vaddr);
	if (n <= 0)
		return NULL;
	hex = malloc((size_t)n * 2 + 1);
	if (!hex)
		return NULL;
	for (i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02x", bits[i]);
	return hex;
}

void stack_unwinder__symbolize(struct stack_unwinder *u, struct stack_profile *p, uint32_t frame)
{
	struct sp_frame *f = &p->frames[frame];
	/* A return address: its call is the byte before. */
	Dwarf_Addr addr = f->pc - 1, start, end, bias, line_addr;
	const char *name, *file, *mainfile;
	Dwfl_Module *mod;
	GElf_Sym sym;
	GElf_Off off;
	Dwfl_Line *line;
	char *build_id, *plain;
	long m;
	int lineno;

	mod = dwfl_addrmodule(u->dwfl, addr);
	if (!mod)
		return;
	name = dwfl_module_info(mod, NULL, &start, &end, NULL, NULL, &mainfile, NULL);
	if (dwfl_module_getelf(mod, &bias))
		f->offset = addr + 1 - bias;
	build_id = build_id_hex(mod);
	m = stack_profile__mapping(p, f->pid, name ? name : "?", start, end, 0, build_id);
	free(build_id);
	f = &p->frames[frame];
	f->mapping = m < 0 ? 0 : (uint32_t)m + 1;
	name = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
	if (name) {
		/* A symbol version (__libc_start_main@@GLIBC_2.34) is not part of the name; AUTO: Rust
		 * (legacy, v0) first, then C++. */
		plain = strndup(name, strcspn(name, "@"));
		f->function = plain ? cplus_demangle(plain, DMGL_PARAMS | DMGL_AUTO) : NULL;
		if (!f->function)
			f->function = plain;
		else
			free(plain);
	}
	line = dwfl_module_getsrc(mod, addr);
	file = line ? dwfl_lineinfo(line, &line_addr, &lineno, NULL, NULL, NULL) : NULL;
	if (file) {
		f->file = strdup(file);
		f->line = lineno > 0 ? (uint32_t)lineno : 0;
	}
}
