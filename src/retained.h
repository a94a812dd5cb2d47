/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Retained heap per task, from a snapshot: conservative reachability from each task's cell
 * through the heap's in-use chunks (an aligned word pointing into a chunk keeps it alive),
 * bounded in depth and in bytes read. Pure logic over a read callback: tests and the fuzzer
 * drive it on a buffer.
 */
#ifndef MEMSCOPED_RETAINED_H
#define MEMSCOPED_RETAINED_H

#include <stddef.h>
#include <stdint.h>

/*
 * An in-use chunk: its user pointer and the bytes it counts for, from mem. A pointer into
 * [mem, mem + span) keeps it, and that is what is scanned for pointers; span 0 (or above size)
 * means size. Sorted by mem, not overlapping.
 */
struct retained_chunk {
	uint64_t mem, size, span;
};

/*
 * A task: the chunk of its cell (excluded from every figure: it is the future's size) and the
 * part of the cell scanned for pointers, [start, end), less one word to skip (the runtime's
 * scheduler handle, which reaches the whole runtime; 0 for none).
 */
struct retained_root {
	uint64_t start, end, skip;
};

struct retained_limits {
	uint32_t max_depth;	    /* pointer hops from the cell */
	uint64_t max_scan_per_root; /* bytes read for pointers from one root */
	uint64_t max_scan_total;    /* bytes read for pointers in one pass */
	uint64_t max_scan_chunk;    /* bytes of one chunk looked at for pointers */
};

struct retained_figures {
	uint64_t exclusive, inclusive;
	uint32_t truncated; /* a bound stopped its walk: figures are lower bounds */
};

struct retained_result {
	struct retained_figures *roots; /* one per root */
	uint64_t unreached_bytes;	/* in-use chunks reachable from no task (cells excepted) */
	uint64_t unreached_chunks;
	uint64_t scanned_bytes;
	uint64_t roots_truncated;
};

/* Reads len bytes of the target at addr; 0 or -errno (unreadable memory holds no pointer). */
typedef int (*retained_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

/* The index of the chunk whose span holds addr (interior pointers count), or -1. */
long retained__chunk_of(const struct retained_chunk *chunks, size_t n, uint64_t addr);

/*
 * Walks from every root; ret->roots must have nroots entries (zeroed here). Every root's cell,
 * when it is a chunk, is neither counted nor walked through. 0 or -ENOMEM.
 */
int retained__compute(const struct retained_chunk *chunks, size_t nchunks,
		      const struct retained_root *roots, size_t nroots,
		      const struct retained_limits *limits, retained_read_fn read, void *ctx,
		      struct retained_result *ret);

/*
 * Leak candidates: one walk from every range (the process's writable memory outside in-use
 * chunks: globals, stacks, TLS, the allocator's own state), marking in ret_reached (nchunks
 * entries) each chunk it reaches. ret->exclusive: the bytes of the chunks not reached,
 * ret->inclusive: of those reached; ret->truncated if a bound stopped the walk (then more
 * chunks look unreached than are). 0 or -ENOMEM.
 */
int retained__reach(const struct retained_chunk *chunks, size_t nchunks,
		    const struct retained_root *ranges, size_t nranges,
		    const struct retained_limits *limits, retained_read_fn read, void *ctx,
		    uint8_t *ret_reached, struct retained_figures *ret);

#endif
