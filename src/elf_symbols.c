// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "array.h"
#include "elf_symbols.h"
#include "proc.h"

struct elf_symbols {
	int fd;
	Elf *elf;
};

struct elf_symbols *elf_symbols__open(const char *path)
{
	struct elf_symbols *e;
	int err;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = ENOSYS;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd < 0) {
		err = errno;
		free(e);
		errno = err;
		return NULL;
	}
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF || gelf_getclass(e->elf) != ELFCLASS64) {
		elf_symbols__close(e);
		errno = ENOEXEC;
		return NULL;
	}
	return e;
}

struct elf_symbols *elf_symbols__open_target(int pid, const char *path, char *ret_path, size_t len)
{
	int err = proc__root_path(pid, path, ret_path, len);

	if (err) {
		errno = -err;
		return NULL;
	}
	return elf_symbols__open(ret_path);
}

void elf_symbols__close(struct elf_symbols *e)
{
	if (!e)
		return;
	elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	free(e);
}

static int walk_section(struct elf_symbols *e, Elf64_Word type, elf_sym_cb cb, void *ctx)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	Elf_Data *data;
	GElf_Sym s;
	struct elf_sym sym;
	size_t i, n;
	int ret;

	while ((scn = elf_nextscn(e->elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || sh.sh_entsize != sizeof(Elf64_Sym))
			continue;
		n = data->d_size / sizeof(Elf64_Sym);
		for (i = 0; i < n; i++) {
			if (!gelf_getsym(data, (int)i, &s) || s.st_shndx == SHN_UNDEF ||
			    !s.st_value)
				continue;
			sym.name = elf_strptr(e->elf, sh.sh_link, s.st_name);
			if (!sym.name || !*sym.name)
				continue;
			sym.vaddr = s.st_value;
			sym.size = s.st_size;
			sym.type = GELF_ST_TYPE(s.st_info);
			ret = cb(&sym, ctx);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int elf_symbols__foreach(struct elf_symbols *e, elf_sym_cb cb, void *ctx)
{
	int ret = walk_section(e, SHT_SYMTAB, cb, ctx);

	return ret ? ret : walk_section(e, SHT_DYNSYM, cb, ctx);
}

struct lookup_ctx {
	const char *name;
	size_t len;
	struct elf_sym found;
};

static int match_function(const struct elf_sym *sym, void *ctx)
{
	struct lookup_ctx *l = ctx;

	if (sym->type != STT_FUNC && sym->type != STT_GNU_IFUNC)
		return 0;
	if (strncmp(sym->name, l->name, l->len) || (sym->name[l->len] && sym->name[l->len] != '@'))
		return 0;
	l->found = *sym;
	return 1;
}

int elf_symbols__lookup(struct elf_symbols *e, const char *name, struct elf_sym *ret_sym)
{
	struct lookup_ctx l = { .name = name, .len = strlen(name) };

	if (elf_symbols__foreach(e, match_function, &l) != 1)
		return -ENOENT;
	*ret_sym = l.found;
	return 0;
}

int elf_symbols__offset(struct elf_symbols *e, uint64_t vaddr, uint64_t *ret_offset)
{
	GElf_Phdr ph;
	size_t i, n;

	if (elf_getphdrnum(e->elf, &n))
		return -ENOEXEC;
	for (i = 0; i < n; i++) {
		if (!gelf_getphdr(e->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz) {
			*ret_offset = vaddr - ph.p_vaddr + ph.p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

ssize_t elf_symbols__read(struct elf_symbols *e, uint64_t offset, void *buf, size_t len)
{
	ssize_t n = pread(e->fd, buf, len, (off_t)offset);

	return n < 0 ? -errno : n;
}

int elf_symbols__foreach_relative(struct elf_symbols *e, elf_reloc_cb cb, void *ctx)
{
	Elf_Scn *scn = NULL;
	Elf_Data *data;
	GElf_Shdr sh;
	GElf_Rela r;
	size_t i, n;
	int ret;

	while ((scn = elf_nextscn(e->elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA ||
		    sh.sh_entsize != sizeof(Elf64_Rela))
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		n = data->d_size / sizeof(Elf64_Rela);
		for (i = 0; i < n; i++) {
			if (!gelf_getrela(data, (int)i, &r) ||
			    GELF_R_TYPE(r.r_info) != R_X86_64_RELATIVE)
				continue;
			ret = cb(r.r_offset, (uint64_t)r.r_addend, ctx);
			if (ret)
				return ret;
		}
	}
	return 0;
}

struct reloc_list {
	struct elf_reloc *r;
	size_t n, cap;
};

static int collect_reloc(uint64_t offset, uint64_t addend, void *ctx)
{
	struct reloc_list *l = ctx;

	if (array__grow((void **)&l->r, &l->cap, l->n, sizeof(*l->r), 1024))
		return -ENOMEM;
	l->r[l->n].offset = offset;
	l->r[l->n++].addend = addend;
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct elf_reloc *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int elf_symbols__relative_sorted(struct elf_symbols *e, struct elf_reloc **ret_relocs,
				 size_t *ret_n)
{
	struct reloc_list l = { 0 };
	int err;

	err = elf_symbols__foreach_relative(e, collect_reloc, &l);
	if (err) {
		free(l.r);
		return err;
	}
	if (l.n > 1)
		qsort(l.r, l.n, sizeof(*l.r), by_offset);
	*ret_relocs = l.r;
	*ret_n = l.n;
	return 0;
}

bool elf_symbols__is_text(struct elf_symbols *e, uint64_t vaddr)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(e->elf, scn)))
		if (gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_EXECINSTR) &&
		    sh.sh_type == SHT_PROGBITS && vaddr >= sh.sh_addr &&
		    vaddr - sh.sh_addr < sh.sh_size)
			return true;
	return false;
}

int elf_symbols__foreach_text(struct elf_symbols *e, elf_text_cb cb, void *ctx)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	int ret = 0;

	while (!ret && (scn = elf_nextscn(e->elf, scn)))
		if (gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_EXECINSTR) &&
		    sh.sh_type == SHT_PROGBITS)
			ret = cb(sh.sh_addr, sh.sh_size, ctx);
	return ret;
}

int elf_symbols__read_vaddr(struct elf_symbols *e, uint64_t vaddr, void *buf, size_t len)
{
	uint64_t offset;
	ssize_t n;
	int err;

	err = elf_symbols__offset(e, vaddr, &offset);
	if (err)
		return err;
	n = elf_symbols__read(e, offset, buf, len);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int elf_symbols__build_id(struct elf_symbols *e, char *buf, size_t len)
{
	Elf_Scn *scn = NULL;
	Elf_Data *data;
	GElf_Shdr sh;
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off, i;
	const uint8_t *desc;

	while ((scn = elf_nextscn(e->elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		data = elf_getdata(scn, NULL);
		for (off = 0; data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off));) {
			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((char *)data->d_buf + name_off, "GNU", 4))
				continue;
			if (nh.n_descsz * 2 + 1 > len || !nh.n_descsz)
				return -ENOSPC;
			desc = (const uint8_t *)data->d_buf + desc_off;
			for (i = 0; i < nh.n_descsz; i++)
				snprintf(buf + 2 * i, 3, "%02x", desc[i]);
			return 0;
		}
	}
	return -ENOENT;
}

uint64_t elf_symbols__base_vaddr(struct elf_symbols *e)
{
	uint64_t base = UINT64_MAX;
	GElf_Phdr ph;
	size_t i, n;

	if (elf_getphdrnum(e->elf, &n))
		return 0;
	for (i = 0; i < n; i++)
		if (gelf_getphdr(e->elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_vaddr < base)
			base = ph.p_vaddr & ~0xfffull;
	return base == UINT64_MAX ? 0 : base;
}

int elf_symbols__fd(const struct elf_symbols *e)
{
	return e->fd;
}
