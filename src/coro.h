/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The stackful-coroutine core under ucontext, pcl and fcontext: tasks identified by their
 * stack. An allocation whose stack pointer lies in a live coroutine's stack belongs to that
 * coroutine; switches give resumes, running and suspended time; a return to uc_link, a new
 * coroutine on the same stack or the stack's free() ends one.
 */
#ifndef MEMSCOPED_CORO_H
#define MEMSCOPED_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct task;

/* Task table keys of coroutines: the stack address with this bit, apart from tokio headers. */
#define CORO_KEY_BIT (1ull << 63)
/* The task type of a coroutine made before attach: its entry function is unknown. */
#define CORO_TYPE_UNSEEN "(created before attach)"
/* Switch-target classifications cached per process. */
#define CORO_REGION_CACHE 64

/* A live coroutine's stack: [lo, hi), its task index and the context it returns to. */
struct coro_stack {
	uint64_t lo, hi;
	uint64_t link;
	uint32_t task;
	bool exiting;	/* fcontext: it left by ontop_fcontext, the way boost's fibers exit */
	bool unwinding; /* fcontext: entered by ontop_fcontext, as boost unwinds a fiber */
};

/* Live coroutine stacks, sorted by address, never overlapping. */
struct coro_stacks {
	struct coro_stack *s;
	size_t n, cap;
};

/* The stack containing addr, or NULL. */
struct coro_stack *coro_stacks__find(const struct coro_stacks *cs, uint64_t addr);
/* Index of the first stack whose hi is above addr (n if none). */
size_t coro_stacks__lower(const struct coro_stacks *cs, uint64_t addr);
/* Inserts a stack that overlaps none; 0 or -ENOMEM / -EEXIST. */
int coro_stacks__insert(struct coro_stacks *cs, const struct coro_stack *s);
void coro_stacks__remove_at(struct coro_stacks *cs, size_t i);
void coro_stacks__clear(struct coro_stacks *cs);

/* What a switch target's stack pointer lies in, when it is in no known coroutine stack. */
enum coro_region {
	CORO_REGION_UNKNOWN,   /* no way to tell its stack: counted, not attributed */
	CORO_REGION_THREAD,    /* a thread's own stack: no coroutine runs */
	CORO_REGION_DEDICATED, /* a mapping with a guard page below: a coroutine's stack */
};

/* A mapping of the target, as far as classification needs it. */
struct coro_vma {
	uint64_t start, end;
	bool anon;  /* no file and not [heap]/[vdso]/... */
	bool stack; /* the main thread's [stack] */
	bool writable;
	bool guard_below; /* an adjacent PROT_NONE mapping of at most 1 MiB below it */
};

/*
 * The world outside the event stream, so that unit tests need no process: the mapping that
 * contains addr (0, or -ENOENT), and the name of the function at a runtime address (malloc'd,
 * NULL if unknown).
 */
struct coro_env {
	int (*vma)(void *ctx, uint64_t addr, struct coro_vma *ret);
	char *(*symbolize)(void *ctx, uint64_t addr);
	void *ctx;
};

struct coro_region_entry {
	uint64_t lo, hi;
	enum coro_region kind;
};

struct coro_entry_type {
	uint64_t entry;
	const char *runtime;
	uint32_t type;
};

/* A co_create in progress on a thread: the makecontext inside it makes a pcl coroutine. */
struct coro_pcl_pending {
	uint32_t tid;
	bool active;
	bool internal; /* libpcl's own delete helper, made by co_exit_to: no task */
	uint64_t func;
	uint32_t task;
};

#define CORO_PCL_PENDING 64

struct coro_generation {
	uint64_t lo;
	uint32_t generation;
};

struct real_env;

#define CORO_RUNTIME_UCONTEXT "ucontext"

/* Coroutines of one traced process. */
struct coro_process {
	const char *runtime; /* "ucontext" */
	struct coro_env env;
	struct real_env *real; /* fds of the target's maps and root, opened at attach */
	struct coro_stacks stacks;
	struct coro_region_entry regions[CORO_REGION_CACHE];
	size_t nregions, next_region;
	struct coro_entry_type *types; /* entry function -> task type */
	size_t ntypes, types_cap;
	struct coro_generation *gens; /* open addressing on lo */
	size_t gens_mask, ngens;
	bool requested; /* --runtime named it: listed in the report even if unused */
	bool unmap_attached;
	bool ucontext_attached;
	/* libpcl, on top of ucontext: its coroutines are reported once, as pcl. */
	const char *pcl; /* "pcl" when traced, else NULL */
	bool pcl_requested;
	uint64_t pcl_exit_lo, pcl_exit_hi; /* co_exit_to, which makes libpcl's delete helper */
	struct coro_pcl_pending pending[CORO_PCL_PENDING];
	size_t next_pending;
	/* boost.context: fcontext coroutines, ended when their stack is freed. */
	const char *fcontext; /* "fcontext" when traced, else NULL */
	bool fcontext_requested;
	/* Counters: only grow. */
	uint64_t created;    /* makecontext calls seen */
	uint64_t discovered; /* coroutines from before attach, found at a switch */
	uint64_t switches;
	uint64_t unknown_switches; /* into a context never seen created, stack unknown */
	uint64_t bad_creates;	   /* an empty or impossible stack */
	uint64_t ended_returned, ended_freed, ended_unmapped, ended_reused;
	uint64_t pcl_created, pcl_internal, pcl_ended_deleted;
	uint64_t fcontext_created, fcontext_discovered;
};

/* env is copied; NULL uses the real process pid (/proc/PID/maps and its ELF symbols). */
struct coro_process *coro_process__new(const char *runtime, const struct coro_env *env, int pid);
void coro_process__free(struct coro_process *c);

struct process;
struct ms_event;

/* Event hooks; each does nothing without p->coro. */
void coro_process__create(struct process *p, const struct ms_event *e);
void coro_process__switch(struct process *p, const struct ms_event *e);
/* munmap(addr, size): coroutines whose stack lay there are over. */
void coro_process__unmapped(struct process *p, uint64_t addr, uint64_t size, uint64_t ts);
/* libpcl's co_create / co_exit_to / co_delete. */
void coro_process__pcl(struct process *p, const struct ms_event *e);
/* The task index of the coroutine whose stack holds sp (0: none). */
uint32_t coro_process__task_of(struct process *p, uint64_t sp);
/* A block is about to be freed: coroutines whose stack it held are over. */
void coro_process__block_freed(struct process *p, uint64_t addr, uint64_t ts);

/* The core's state in p (NULL before a stackful runtime attached), or made now. */
struct coro_process *coro_process__of(const struct process *p);
struct coro_process *coro_process__attach(struct process *p, const struct coro_env *env);
/* Frees the core's state in p. */
void coro_process__detach(struct process *p);

struct runtime_ctx;
/* munmap of the target's libc, once per process: stacks of their own end when unmapped. */
int coro_process__attach_unmap(const struct runtime_ctx *ctx, struct process *p);

/* Listed in the report's runtimes; the "coroutines" section of the report. */
bool coro__ucontext_listed(const struct coro_process *c);
bool coro__pcl_listed(const struct coro_process *c);
bool coro__fcontext_listed(const struct coro_process *c);
struct runtime_section;
bool coro_process__section(const struct coro_process *c, struct runtime_section *ret);

/* For the runtimes on the core (pcl). */
struct task *coro__task_at(struct process *p, uint32_t index);
/* Ends the coroutine of stack i (its stack is gone or taken) and forgets the stack. */
void coro__end_stack(struct process *p, size_t i, bool cancelled, uint64_t ts);
/* The co_create in progress on thread tid, or with add a new slot for it (oldest reused). */
struct coro_pcl_pending *coro__pcl_pending(struct coro_process *c, uint32_t tid, bool add);

#endif
