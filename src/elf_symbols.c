// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elf_symbols.h"

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
			if (!gelf_getsym(data, (int)i, &s) || s.st_shndx == SHN_UNDEF || !s.st_value)
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
