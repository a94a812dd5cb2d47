// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * elf_symbols and probe_plan against build/fixtures/fixture.so (tests/unit/fixture_elf.c).
 * The fixture is argv[1], else $FIXTURE_SO, else build/fixtures/fixture.so from the repo root.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "memscoped/events.h"
#include "elf_symbols.h"
#include "insn_decode.h"
#include "probe_plan.h"

#define MAGIC "MEMSCOPED-FIXTURE-0123456789"
#define DATA "MEMSCOPED-DATA-9876543210"

static const char *fixture_path = "build/fixtures/fixture.so";
static unsigned char *fixture;
static size_t fixture_len;

static int load_fixture(void **state)
{
	FILE *f = fopen(fixture_path, "rb");
	long len;

	(void)state;
	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "cannot read fixture '%s' (run make unit first)\n", fixture_path);
		if (f)
			fclose(f);
		return -1;
	}
	fixture_len = (size_t)len;
	fixture = malloc(fixture_len);
	if (!fixture || fread(fixture, 1, fixture_len, f) != fixture_len) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static int unload_fixture(void **state)
{
	(void)state;
	free(fixture);
	return 0;
}

/* Writes bytes to a new temporary file; path receives its name. */
static void write_temp(const void *data, size_t len, char path[64])
{
	int fd;

	snprintf(path, 64, "/tmp/memscoped-test-elf-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* The file offset of vaddr found from the section headers, independently of elf_symbols. */
static uint64_t section_offset(uint64_t vaddr)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)fixture;
	size_t i;

	assert_true(fixture_len >= sizeof(*eh) && !memcmp(eh->e_ident, ELFMAG, SELFMAG));
	assert_true(eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) <= fixture_len);
	for (i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *sh = (const Elf64_Shdr *)(fixture + eh->e_shoff) + i;

		if (!(sh->sh_flags & SHF_ALLOC) || sh->sh_type == SHT_NOBITS)
			continue;
		if (vaddr >= sh->sh_addr && vaddr < sh->sh_addr + sh->sh_size)
			return sh->sh_offset + (vaddr - sh->sh_addr);
	}
	fail_msg("no section holds 0x%lx", (unsigned long)vaddr);
	return 0;
}

static struct elf_symbols *open_fixture(void)
{
	struct elf_symbols *e = elf_symbols__open(fixture_path);

	assert_non_null(e);
	return e;
}

static void test_elf_symbols_function_offset(void **state)
{
	struct elf_symbols *e = open_fixture();
	struct elf_sym sym;
	uint64_t offset;
	uint8_t code[64];

	(void)state;
	assert_int_equal(elf_symbols__lookup(e, "fixture_fn", &sym), 0);
	assert_string_equal(sym.name, "fixture_fn");
	assert_int_equal(sym.type, STT_FUNC);
	assert_true(sym.size > 0 && sym.size <= sizeof(code));
	assert_int_equal(elf_symbols__offset(e, sym.vaddr, &offset), 0);
	assert_int_equal(offset, section_offset(sym.vaddr));
	assert_int_equal(elf_symbols__read(e, offset, code, sym.size), (ssize_t)sym.size);
	assert_memory_equal(code, fixture + offset, sym.size);
	elf_symbols__close(e);
}

struct find_ctx {
	const char *name;
	struct elf_sym sym;
	int calls;
};

static int find_symbol(const struct elf_sym *sym, void *ctx)
{
	struct find_ctx *f = ctx;

	f->calls++;
	if (strcmp(sym->name, f->name))
		return 0;
	f->sym = *sym;
	return 1;
}

static void assert_data_symbol(struct elf_symbols *e, const char *name, const char *expected)
{
	struct find_ctx f = { .name = name };
	char buf[64] = { 0 };
	uint64_t offset;

	assert_int_equal(elf_symbols__foreach(e, find_symbol, &f), 1);
	assert_int_equal(f.sym.type, STT_OBJECT);
	assert_int_equal(f.sym.size, strlen(expected) + 1);
	assert_int_equal(elf_symbols__offset(e, f.sym.vaddr, &offset), 0);
	assert_int_equal(offset, section_offset(f.sym.vaddr));
	assert_int_equal(elf_symbols__read(e, offset, buf, f.sym.size), (ssize_t)f.sym.size);
	assert_string_equal(buf, expected);
}

static void test_elf_symbols_data_offset(void **state)
{
	struct elf_symbols *e = open_fixture();
	struct elf_sym sym;

	(void)state;
	assert_data_symbol(e, "fixture_magic", MAGIC);
	assert_data_symbol(e, "fixture_data", DATA); /* offset != vaddr in the RW segment */
	/* lookup only returns functions */
	assert_int_equal(elf_symbols__lookup(e, "fixture_magic", &sym), -ENOENT);
	elf_symbols__close(e);
}

static void test_elf_symbols_missing(void **state)
{
	struct elf_symbols *e = open_fixture();
	struct find_ctx f = { .name = "fixture_bss" };
	struct elf_sym sym = { .name = "untouched" };
	uint64_t offset = 7;

	(void)state;
	assert_int_equal(elf_symbols__lookup(e, "realloc", &sym), -ENOENT);
	assert_int_equal(elf_symbols__lookup(e, "mall", &sym), -ENOENT);
	assert_int_equal(elf_symbols__lookup(e, "fixture_fn2", &sym), -ENOENT);
	assert_string_equal(sym.name, "untouched");
	assert_int_equal(elf_symbols__lookup(e, "malloc", &sym), 0);

	assert_int_equal(elf_symbols__foreach(e, find_symbol, &f), 1);
	assert_int_equal(elf_symbols__offset(e, f.sym.vaddr, &offset), -ENOENT);
	assert_int_equal(elf_symbols__offset(e, 0xffffffff00000000ull, &offset), -ENOENT);
	assert_int_equal(offset, 7);
	elf_symbols__close(e);
}

static int stop_at_first(const struct elf_sym *sym, void *ctx)
{
	(void)sym;
	(*(int *)ctx)++;
	return 42;
}

static void test_elf_symbols_foreach_stops(void **state)
{
	struct elf_symbols *e = open_fixture();
	int calls = 0;

	(void)state;
	assert_int_equal(elf_symbols__foreach(e, stop_at_first, &calls), 42);
	assert_int_equal(calls, 1);
	elf_symbols__close(e);
}

static void test_elf_symbols_not_elf(void **state)
{
	static const char junk[] = "this is not an ELF object\n";
	char path[64];

	(void)state;
	write_temp(junk, sizeof(junk), path);
	errno = 0;
	assert_null(elf_symbols__open(path));
	assert_int_equal(errno, ENOEXEC);
	unlink(path);

	write_temp("", 0, path);
	errno = 0;
	assert_null(elf_symbols__open(path));
	assert_int_equal(errno, ENOEXEC);
	unlink(path);

	errno = 0;
	assert_null(elf_symbols__open("/nonexistent/memscoped/fixture.so"));
	assert_int_equal(errno, ENOENT);
}

/* A cut-off object either fails to open with ENOEXEC or answers every query cleanly. */
static void test_elf_symbols_truncated(void **state)
{
	const size_t cuts[] = { 4,   16,   sizeof(Elf64_Ehdr) - 1, sizeof(Elf64_Ehdr),
				512, 4096, fixture_len / 2,	   fixture_len - 1 };
	struct elf_symbols *e;
	struct elf_sym sym;
	uint64_t offset;
	char path[64];
	size_t i;
	int err;

	(void)state;
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		write_temp(fixture, cuts[i], path);
		errno = 0;
		e = elf_symbols__open(path);
		unlink(path);
		if (!e) {
			assert_int_equal(errno, ENOEXEC);
			continue;
		}
		assert_true(cuts[i] >= sizeof(Elf64_Ehdr));
		err = elf_symbols__lookup(e, "fixture_fn", &sym);
		assert_true(err == 0 || err == -ENOENT);
		err = elf_symbols__offset(e, 0x1000, &offset);
		assert_true(err == 0 || err == -ENOENT || err == -ENOEXEC);
		elf_symbols__close(e);
	}
}

static const struct probe_spec *find_probe(const struct probe_plan *plan, const char *symbol,
					   bool retprobe)
{
	size_t i;

	for (i = 0; i < plan->nprobes; i++)
		if (!strcmp(plan->probes[i].symbol, symbol) && plan->probes[i].retprobe == retprobe)
			return &plan->probes[i];
	return NULL;
}

static bool has_note(const struct probe_plan *plan, const char *text)
{
	size_t i;

	for (i = 0; i < plan->nnotes; i++)
		if (strstr(plan->notes[i], text))
			return true;
	return false;
}

/*
 * Where the probe for symbol belongs: its file offset plus insn_decode's placement, which only
 * free may take when it skips NULL calls (malloc(0) is a real allocation).
 */
static uint64_t expected_probe_offset(struct elf_symbols *e, const char *symbol)
{
	struct probe_placement place;
	struct elf_sym sym;
	uint64_t offset;
	uint8_t code[32];
	size_t len;

	assert_int_equal(elf_symbols__lookup(e, symbol, &sym), 0);
	offset = section_offset(sym.vaddr);
	len = sym.size < sizeof(code) ? sym.size : sizeof(code);
	memcpy(code, fixture + offset, len);
	assert_int_equal(insn_decode__placement(code, len, &place), 0);
	assert_true(place.offset < sym.size);
	if (place.null_arg >= 0 && strcmp(symbol, "free"))
		return offset;
	return offset + place.offset;
}

static void assert_probe(const struct probe_plan *plan, const char *symbol, bool retprobe,
			 const char *prog, uint32_t cookie, uint64_t offset)
{
	const struct probe_spec *p = find_probe(plan, symbol, retprobe);

	assert_non_null(p);
	assert_string_equal(p->prog, prog);
	assert_int_equal(MS_AC_FUNC(p->cookie), cookie);
	assert_int_equal(p->offset, offset);
}

static void test_probe_plan_fixture_allocator(void **state)
{
	static const char *const missing[] = { "realloc",	"reallocarray", "posix_memalign",
					       "aligned_alloc", "memalign",	"valloc",
					       "pvalloc" };
	struct probe_plan *plan = calloc(1, sizeof(*plan));
	struct elf_symbols *e = open_fixture();
	uint64_t malloc_at = expected_probe_offset(e, "malloc");
	uint64_t calloc_at = expected_probe_offset(e, "calloc");
	char text[64];
	size_t i;

	(void)state;
	assert_non_null(plan);
	assert_int_equal(probe_plan__allocator_from_elf(e, plan), 0);
	assert_int_equal(plan->nprobes, 5);
	assert_probe(plan, "malloc", false, "alloc_entry", MS_FN_MALLOC, malloc_at);
	assert_probe(plan, "malloc", true, "alloc_return", MS_FN_MALLOC, malloc_at);
	assert_probe(plan, "calloc", false, "alloc_entry", MS_FN_CALLOC, calloc_at);
	assert_probe(plan, "calloc", true, "alloc_return", MS_FN_CALLOC, calloc_at);
	assert_probe(plan, "free", false, "alloc_entry", MS_FN_FREE,
		     expected_probe_offset(e, "free"));
	assert_null(find_probe(plan, "free", true));
	for (i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		snprintf(text, sizeof(text), "'%s' not found", missing[i]);
		assert_true(has_note(plan, text));
		assert_null(find_probe(plan, missing[i], false));
	}
	assert_int_equal(plan->nnotes, 10);

	probe_plan__clear(plan);
	assert_int_equal(plan->nprobes, 0);
	assert_int_equal(plan->nnotes, 0);
	free(plan);
	elf_symbols__close(e);
}

/* A copy of the fixture whose symbol `name` is renamed in every string table. */
static void plan_without(const char *name, const char *renamed)
{
	struct probe_plan *plan = calloc(1, sizeof(*plan));
	unsigned char *copy = malloc(fixture_len);
	size_t len = strlen(name) + 2, i, renames = 0;
	char from[32], to[32], path[64];
	struct elf_symbols *e;

	assert_non_null(plan);
	assert_non_null(copy);
	assert_true(strlen(renamed) == len - 2 && len <= sizeof(from));
	from[0] = to[0] = 0;
	from[len - 1] = to[len - 1] = 0;
	memcpy(from + 1, name, len - 2);
	memcpy(to + 1, renamed, len - 2);
	memcpy(copy, fixture, fixture_len);
	for (i = 0; i + len <= fixture_len; i++) {
		if (!memcmp(copy + i, from, len)) {
			memcpy(copy + i, to, len);
			renames++;
		}
	}
	assert_true(renames >= 2); /* .dynstr and .strtab */
	write_temp(copy, fixture_len, path);
	e = elf_symbols__open(path);
	unlink(path);
	assert_non_null(e);

	assert_int_equal(probe_plan__allocator_from_elf(e, plan), -ENOENT);
	snprintf(from, sizeof(from), "'%s' not found", name);
	assert_true(has_note(plan, from));
	probe_plan__clear(plan);
	elf_symbols__close(e);
	free(copy);
	free(plan);
}

static void test_probe_plan_without_malloc(void **state)
{
	(void)state;
	plan_without("malloc", "mallox");
}

static void test_probe_plan_without_free(void **state)
{
	(void)state;
	plan_without("free", "frex");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf_symbols_function_offset),
		cmocka_unit_test(test_elf_symbols_data_offset),
		cmocka_unit_test(test_elf_symbols_missing),
		cmocka_unit_test(test_elf_symbols_foreach_stops),
		cmocka_unit_test(test_elf_symbols_not_elf),
		cmocka_unit_test(test_elf_symbols_truncated),
		cmocka_unit_test(test_probe_plan_fixture_allocator),
		cmocka_unit_test(test_probe_plan_without_malloc),
		cmocka_unit_test(test_probe_plan_without_free),
	};

	if (argc > 1)
		fixture_path = argv[1];
	else if (getenv("FIXTURE_SO"))
		fixture_path = getenv("FIXTURE_SO");
	return cmocka_run_group_tests(tests, load_fixture, unload_fixture);
}
