/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Finding tokio in an ELF object: its per-future poll functions and task vtables. */
#ifndef MEMSCOPED_RUNTIME_TOKIO_H
#define MEMSCOPED_RUNTIME_TOKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "elf_symbols.h"

/* A task vtable: 7 function pointers then trailer, scheduler and id offsets. */
struct tokio_vtable {
	uint64_t vaddr;
	uint64_t poll; /* slot 0: raw::poll<T, S> of this future type */
	uint64_t trailer_offset, scheduler_offset, id_offset;
};

/* One copy of tokio::runtime::task::raw::poll<T, S>: one future type. */
struct tokio_poll {
	uint64_t vaddr;
	uint64_t offset; /* in the file, for the probe */
	char *type_name; /* the future type (v0 symbols), or a name for the copy */
	bool named;	 /* type_name is the future type */
};

struct tokio_info {
	struct tokio_poll *polls;
	size_t npolls;
	struct tokio_vtable *vtables;
	size_t nvtables;
	const char *source; /* "symbols" or "vtables" (stripped) */
};

/*
 * Looks for tokio in an object: poll copies from its symbols (or from syms, a separate debug
 * file's symbols, when not NULL) and task vtables from its dynamic relocations. A stripped
 * object is covered by the vtables alone. Returns 0, -ENOENT if there is no tokio, -ENOMEM.
 */
int runtime_tokio__discover(struct elf_symbols *e, struct elf_symbols *syms,
			    struct tokio_info *ret);
void runtime_tokio__clear(struct tokio_info *info);

/* Scans vtables from relocations only (exposed for tests and the fuzzer). */
int runtime_tokio__find_vtables(struct elf_symbols *e, struct tokio_info *info);
/*
 * Names the future types of the copies whose symbols do not (legacy mangling) from the symbols
 * of the helpers their code calls; code: the object, syms: its symbols (or its debug file's).
 */
int runtime_tokio__name_types(struct elf_symbols *code, struct elf_symbols *syms,
			      struct tokio_info *info);
/* Names every copy from DWARF in debug (its subprograms' names); -ENOENT if none named. */
int runtime_tokio__name_types_dwarf(struct elf_symbols *debug, struct tokio_info *info);
/* "T,S" of a demangled "core::ptr::drop_in_place<…tokio…::Cell<T,S>…>" (malloc'd), or NULL. */
char *runtime_tokio__cell_from_helper(const char *demangled);
/* A function outside tokio, std, core and alloc (by its demangled path). */
bool runtime_tokio__is_user_function(const char *demangled);
/* The first generic argument at p (just past a '<'), malloc'd; NULL if unbalanced. */
char *runtime_tokio__first_argument(const char *p);
/* The future type of a demangled poll copy: "tokio::...::poll::<T, S>" gives T (malloc'd). */
char *runtime_tokio__type_from_demangled(const char *demangled);

const struct tokio_vtable *runtime_tokio__vtable(const struct tokio_info *info, uint64_t vaddr);
const struct tokio_poll *runtime_tokio__poll(const struct tokio_info *info, uint64_t vaddr);

struct process;
struct ms_event;

/* tokio in one traced process: where its vtables are loaded and what each one's type is. */
struct tokio_process {
	struct tokio_info info;	  /* vtables sorted by vaddr */
	char *object;		  /* the object tokio is in, as the target names it */
	uint64_t bias;		  /* runtime address - ELF vaddr */
	uint32_t *vt_types;	  /* task type of each vtable */
	bool invalid;		  /* a header failed validation: tasks no longer tracked */
	bool invalid_logged;	  /* the daemon said so */
	uint64_t unknown_vtables; /* polls whose vtable is not one of ours */
};

/* tokio's state in p, or NULL. */
struct tokio_process *tokio_process__of(const struct process *p);
/*
 * Takes ownership of info; registers each future type in the process's task table and
 * becomes p's tokio state (p frees it).
 */
struct tokio_process *tokio_process__new(struct process *p, struct tokio_info *info, uint64_t bias);
void tokio_process__free(struct tokio_process *t);

/*
 * Finds tokio in process pid: in its executable, else in the first object it maps that has it
 * (each with its build-id debug file under debug_dir/.build-id, or the target's /usr/lib/debug
 * when NULL), and sets p's tokio state. Returns 0, -ENOENT when there is no tokio (err says what was
 * searched), or -errno.
 */
int tokio_process__setup(struct process *p, int pid, const char *debug_dir, char *err,
			 size_t errlen);

/* Lifecycle events from the poll probes. */
void tokio_process__poll_enter(struct process *p, const struct ms_event *e);
void tokio_process__poll_exit(struct process *p, const struct ms_event *e);
/* The task index for an allocation made while header task was current (0: none known). */
uint32_t tokio_process__task_of(struct process *p, uint64_t header);

/* A task header found in memory, validated against the vtables. */
struct tokio_found {
	uint64_t header;
	uint64_t state, owner_id, id;
	uint64_t cell_size; /* from the vtable and the allocator's chunk header */
	const struct tokio_vtable *vt;
};

/*
 * Scans buf, a copy of the target's memory at addr, for task headers pointing at one of t's
 * vtables; calls found for each valid one. read(ctx, addr, buf, len) fetches more target
 * memory when a header's fields cross the end of buf (0 or -errno). Pure: the fuzzer runs it.
 */
typedef int (*tokio_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len);
typedef void (*tokio_found_fn)(void *ctx, const struct tokio_found *f);
size_t tokio_scan__buffer(const struct tokio_process *t, uint64_t addr, const uint8_t *buf,
			  size_t len, tokio_read_fn read, tokio_found_fn found, void *ctx);

/*
 * Scans pid's heap and anonymous writable memory for t's task headers, calling found for each
 * valid one; *ret_bytes: memory read. 0 or -errno.
 */
int tokio_scan__pid(const struct tokio_process *t, int pid, tokio_found_fn found, void *ctx,
		    uint64_t *ret_bytes);

struct tokio_scan_stats {
	uint64_t bytes; /* memory read */
	uint64_t found; /* tasks added */
	uint64_t elapsed_ns;
};

/* Finds the tasks alive at attach time in pid's writable memory and adds them to p. */
int tokio_process__scan(struct process *p, int pid, uint64_t now_ns, struct tokio_scan_stats *ret);

#endif
