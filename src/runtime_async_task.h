/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * async-task 4.x (async-std 1.12, smol 1.3): tasks through its RawTask. One heap cell per
 * task, its header first: { state, awaiter, vtable } in an order rustc picks (the state's
 * offset is read from RawTask::run's code), the vtable { schedule, drop_future, get_output,
 * drop_ref, destroy, run, clone_waker, layout_info }, layout_info pointing at the cell's
 * Layout and the offsets of its schedule function and future.
 */
#ifndef MEMSCOPED_RUNTIME_ASYNC_TASK_H
#define MEMSCOPED_RUNTIME_ASYNC_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "elf_symbols.h"

#define ATASK_VT_RUN_SLOT 5
#define ATASK_VT_WORDS 8
#define ATASK_HEADER_BYTES 32
/* State bits (async-task src/state.rs). */
#define ATASK_SCHEDULED 0x01
#define ATASK_RUNNING 0x02
#define ATASK_COMPLETED 0x04
#define ATASK_CLOSED 0x08
#define ATASK_TASK 0x10
#define ATASK_REFERENCE 0x100

/* One TaskVTable: one future type. */
struct atask_vtable {
	uint64_t vaddr;
	uint64_t run;  /* slot 5: RawTask<F, T, S>::run */
	uint64_t size; /* the cell: header, schedule function, future or output */
	uint64_t future_offset;
	uint32_t type; /* task type index in the process (0 before) */
};

/* One copy of RawTask::run: the probe points. */
struct atask_run {
	uint64_t vaddr;
	uint64_t offset; /* in the file */
	char *type_name;
	bool named; /* type_name is the future type */
};

struct atask_info {
	struct atask_vtable *vtables; /* sorted by vaddr */
	size_t nvtables;
	struct atask_run *runs;
	size_t nruns;
	unsigned int state_word, vtable_word; /* header words, from run's code */
	const char *source;		      /* "symbols" or "vtables" */
};

/*
 * Looks for async-task in an object: RawTask::run copies from its symbols (or syms', a debug
 * file's, when not NULL) and task vtables from its relative relocations (stripped objects have
 * only those). 0, -ENOENT if there is none, -ENOMEM.
 */
int atask__discover(struct elf_symbols *e, struct elf_symbols *syms, struct atask_info *ret);
void atask__clear(struct atask_info *info);
/* Vtables from relocations only (exposed for tests). */
int atask__find_vtables(struct elf_symbols *e, struct atask_info *info);
/*
 * The header word RawTask::run loads the state from (its first 64-bit load from its argument),
 * from its first bytes; -ENOENT if not found.
 */
int atask__state_word(const uint8_t *code, size_t len, unsigned int *ret_word);
/*
 * The future type (malloc'd) of a demangled run copy "<async_task::raw::RawTask<F, T, S>>::run",
 * or NULL; the executors' wrappers (async-executor's spawn future, async-std's task locals)
 * are taken off.
 */
char *atask__type_from_demangled(const char *demangled);
/*
 * The same from a demangled legacy helper that run calls: drop_in_place of run's Guard<F, T, S>
 * or of async-executor's spawn<T, F> future. NULL if it names none.
 */
char *atask__type_from_helper(const char *demangled);

struct process;
struct atask_process;
/*
 * Takes ownership of info (vtables sorted by vaddr); registers each future type in p's task
 * table and becomes p's async-task state (p frees it). NULL on failure.
 */
struct atask_process *atask_process__new(struct process *p, struct atask_info *info, uint64_t bias,
					 const char *object);
/* async-task's state in p, or NULL. */
struct atask_process *atask_process__of(const struct process *p);
/*
 * Finds async-task in p's executable or the objects it maps and sets p's async-task state
 * (nothing attached). 0, -ENOENT (msg says what was searched), or -errno.
 */
int atask_process__setup(struct process *p, const char *debug_dir, char *msg, size_t len);

/* A live task cell found in memory. */
struct atask_found {
	uint64_t header, state;
	const struct atask_vtable *vt;
};
typedef void (*atask_found_fn)(void *ctx, const struct atask_found *f);
/*
 * Scans pid's heap and anonymous writable memory for a's live task cells, calling found for
 * each; *ret_bytes: memory read. 0 or -errno.
 */
int atask_scan__pid(const struct atask_process *a, int pid, atask_found_fn found, void *ctx,
		    uint64_t *ret_bytes);

#endif
