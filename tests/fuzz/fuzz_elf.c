// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer: the target's ELF objects (its executable, its libc), read for allocator symbols,
 * entry bytes, build-id, relocations and tokio vtables. The input becomes a memfd opened through
 * /proc/self/fd, as the daemon opens /proc/PID/root/... paths.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "elf_symbols.h"
#include "probe_plan.h"
#include "runtime_tokio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_symbol(const struct elf_sym *sym, void *ctx)
{
	(void)ctx;
	/* The name must be a readable string for the daemon's comparisons. */
	assert(sym->name && strlen(sym->name) > 0);
	assert(sym->vaddr);
	return 0;
}

static int on_relative(uint64_t offset, uint64_t addend, void *ctx)
{
	size_t *n = ctx;

	(void)offset;
	(void)addend;
	++*n;
	return 0;
}

static void read_at(struct elf_symbols *e, uint64_t vaddr)
{
	uint8_t code[32];

	elf_symbols__read_vaddr(e, vaddr, code, sizeof(code));
	elf_symbols__read_vaddr(e, vaddr, code, 1);
}

static void check_plan(const struct probe_plan *plan, int err)
{
	size_t i;

	assert(plan->nnotes <= PROBE_PLAN_NOTES);
	for (i = 0; i < plan->nnotes; i++)
		assert(plan->notes[i]);
	for (i = 0; i < plan->nprobes; i++)
		assert(plan->probes[i].symbol && plan->probes[i].prog);
	assert(err == 0 || err == -ENOENT);
}

static void check_tokio(const struct tokio_info *info, int err)
{
	size_t i;

	assert(err == 0 || err == -ENOENT || err == -ENOMEM);
	if (err) {
		assert(!info->polls && !info->vtables && !info->npolls && !info->nvtables);
		return;
	}
	assert(info->npolls && info->nvtables && info->source);
	for (i = 0; i < info->npolls; i++)
		assert(info->polls[i].type_name && runtime_tokio__poll(info, info->polls[i].vaddr));
	for (i = 0; i < info->nvtables; i++) {
		const struct tokio_vtable *vt = &info->vtables[i];

		/* What tokio_scan__buffer relies on. */
		assert(vt->scheduler_offset >= 32 && vt->scheduler_offset <= vt->id_offset &&
		       vt->id_offset < vt->trailer_offset && vt->trailer_offset < 0x10000);
		assert(runtime_tokio__vtable(info, vt->vaddr));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct probe_plan *plan;
	struct tokio_info info;
	struct elf_symbols *e;
	struct elf_sym sym;
	char path[64], id[128], small_id[9];
	size_t n;
	int fd, err;

	fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	e = elf_symbols__open(path);
	if (!e) {
		assert(errno == ENOEXEC);
		close(fd);
		return 0;
	}

	if (!elf_symbols__lookup(e, "malloc", &sym))
		read_at(e, sym.vaddr);
	if (!elf_symbols__lookup(e, "free", &sym))
		read_at(e, sym.vaddr);
	elf_symbols__foreach(e, on_symbol, NULL);
	n = 0;
	elf_symbols__foreach_relative(e, on_relative, &n);
	/* An Elf64_Rela is 24 bytes. */
	assert(n <= size / 24);
	read_at(e, elf_symbols__base_vaddr(e));
	if (!elf_symbols__build_id(e, id, sizeof(id)))
		assert(strlen(id) < sizeof(id) && strlen(id) % 2 == 0);
	if (!elf_symbols__build_id(e, small_id, sizeof(small_id)))
		assert(strlen(small_id) < sizeof(small_id));

	/* struct probe_plan holds two PATH_MAX buffers: keep it off the stack. */
	plan = calloc(1, sizeof(*plan));
	if (plan) {
		err = probe_plan__allocator_from_elf(e, plan);
		check_plan(plan, err);
		probe_plan__clear(plan);
		free(plan);
	}

	err = runtime_tokio__discover(e, NULL, &info);
	check_tokio(&info, err);
	runtime_tokio__clear(&info);

	elf_symbols__close(e);
	close(fd);
	return 0;
}
