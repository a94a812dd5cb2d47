/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Symbols of an ELF object and where they live in its file (libelf). */
#ifndef MEMSCOPED_ELF_SYMBOLS_H
#define MEMSCOPED_ELF_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct elf_sym {
	const char *name; /* valid while the object is open */
	uint64_t vaddr;
	uint64_t size;
	int type; /* STT_FUNC, STT_GNU_IFUNC, ... */
};

struct elf_symbols;

/* Returns NULL and sets errno (ENOEXEC: not a usable ELF object). */
struct elf_symbols *elf_symbols__open(const char *path);
/*
 * Opens process pid's file at path as the target sees it (through /proc/PID/root, so its
 * container's view); ret_path (len bytes) gets the path opened. NULL and errno on failure.
 */
struct elf_symbols *elf_symbols__open_target(int pid, const char *path, char *ret_path, size_t len);
void elf_symbols__close(struct elf_symbols *e);

/* A defined function symbol; .symtab first, then .dynsym. "name@VERSION" matches name. */
int elf_symbols__lookup(struct elf_symbols *e, const char *name, struct elf_sym *ret_sym);
/* Virtual address to file offset through the PT_LOAD headers; -ENOENT if not file-backed. */
int elf_symbols__offset(struct elf_symbols *e, uint64_t vaddr, uint64_t *ret_offset);
/* Reads up to len bytes at a file offset; returns the count read or -errno. */
ssize_t elf_symbols__read(struct elf_symbols *e, uint64_t offset, void *buf, size_t len);

/* Calls cb for every defined symbol (.symtab, then .dynsym); a nonzero return stops the walk. */
typedef int (*elf_sym_cb)(const struct elf_sym *sym, void *ctx);
int elf_symbols__foreach(struct elf_symbols *e, elf_sym_cb cb, void *ctx);

/* Calls cb(r_offset, addend) for every R_X86_64_RELATIVE relocation, in file order. */
typedef int (*elf_reloc_cb)(uint64_t offset, uint64_t addend, void *ctx);
int elf_symbols__foreach_relative(struct elf_symbols *e, elf_reloc_cb cb, void *ctx);

/* One R_X86_64_RELATIVE relocation: the word at offset (a vaddr) holds addend. */
struct elf_reloc {
	uint64_t offset, addend;
};

/*
 * Every R_X86_64_RELATIVE relocation, sorted by offset (where task vtables are looked for):
 * *ret_relocs is malloc'd (NULL if there are none). 0 or -ENOMEM.
 */
int elf_symbols__relative_sorted(struct elf_symbols *e, struct elf_reloc **ret_relocs,
				 size_t *ret_n);
/* Calls cb(vaddr, size) for every executable section; a nonzero return stops the walk. */
typedef int (*elf_text_cb)(uint64_t vaddr, uint64_t size, void *ctx);
int elf_symbols__foreach_text(struct elf_symbols *e, elf_text_cb cb, void *ctx);
/* True if vaddr lies in an executable section. */
bool elf_symbols__is_text(struct elf_symbols *e, uint64_t vaddr);
/* Reads len bytes at a virtual address (file-backed part only); 0 or -errno. */
int elf_symbols__read_vaddr(struct elf_symbols *e, uint64_t vaddr, void *buf, size_t len);
/* The GNU build-id as lowercase hex; -ENOENT if none. */
int elf_symbols__build_id(struct elf_symbols *e, char *buf, size_t len);
/* The open file, for readers of other parts of it (libdw); owned by e. */
int elf_symbols__fd(const struct elf_symbols *e);
/* The lowest PT_LOAD virtual address (page-aligned), for the load bias. */
uint64_t elf_symbols__base_vaddr(struct elf_symbols *e);

#endif
