/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A census of a glibc heap read from outside the process (no probe, no stop): every arena's
 * chunks and every mmapped chunk, counted the way mallinfo2() counts them.
 */
#ifndef MEMSCOPED_HEAP_CENSUS_H
#define MEMSCOPED_HEAP_CENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct heap_census {
	/* mallinfo2's uordblks + hblkhd: arena bytes not in a free chunk, plus mmapped chunks. */
	uint64_t inuse_bytes;
	uint64_t inuse_chunks;
	uint64_t free_bytes; /* free chunks and top chunks (fordblks) */
	uint64_t free_chunks;
	uint64_t arena_bytes;	/* the arenas' system memory (arena) */
	uint64_t mmapped_bytes; /* hblkhd */
	uint64_t mmapped_chunks;
	uint32_t arenas;  /* the main arena, and one per other arena seen */
	uint32_t heaps;	  /* the main heap, and every heap of the other arenas */
	uint32_t damaged; /* regions whose chunk chain did not parse (changed while read) */
	uint64_t bytes_read;
};

/* Reads len bytes of the target at addr into buf; 0 or -errno. */
typedef int (*census_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len);
/*
 * Called for each in-use chunk: its user pointer, its size less the header (16), and whether
 * it is mmapped (a mapping of its own, which ends at mem + size). Nonzero stops the census.
 */
typedef int (*census_chunk_fn)(void *ctx, uint64_t mem, uint64_t size, bool mmapped);

enum census_region_kind {
	CENSUS_MAIN_HEAP,  /* the brk heap, [heap] */
	CENSUS_ARENA_HEAP, /* an mmapped heap of another arena, starting with its heap_info */
	CENSUS_ANON,	   /* another anonymous mapping: mmapped chunks, if any */
};

struct census_region {
	uint64_t start, end;
	enum census_region_kind kind;
};

/* What kind of region an anonymous read-write mapping is, from its maps line fields. */
enum census_region_kind heap_census__classify(uint64_t start, const char *name);

/*
 * Walks one region into c (not reset): the chunk chain of a heap, or the mmapped chunks of an
 * anonymous mapping. A heap whose chain does not end where its heap says is read again, up to
 * three times (it changed while read); then it is counted damaged and adds nothing. chunk may
 * then have seen some chunks more than once, or of a damaged heap. chunk may be NULL. Returns 0, or chunk's nonzero return, or -errno of read.
 */
int heap_census__region(const struct census_region *r, census_read_fn read, void *read_ctx,
			census_chunk_fn chunk, void *chunk_ctx, struct heap_census *c);

/* The census of process pid, from its maps and process_vm_readv; 0 or -errno. */
int heap_census__pid(int pid, census_chunk_fn chunk, void *chunk_ctx, struct heap_census *ret);

#endif
