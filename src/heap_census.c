// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "heap_census.h"
#include "proc.h"

/* glibc's chunk header bits and sizes on 64-bit (malloc/malloc.c), the same since 2.26. */
#define PREV_INUSE 0x1ull
#define IS_MMAPPED 0x2ull
#define NON_MAIN_ARENA 0x4ull
#define SIZE_BITS 0x7ull
#define CHUNK_HDR 16ull
#define MIN_CHUNK 32ull
#define ALIGN_MASK 15ull
/* HEAP_MAX_SIZE: 2 * DEFAULT_MMAP_THRESHOLD_MAX; a non-main heap is aligned to it. */
#define ARENA_HEAP_ALIGN (64ull << 20)
/* heap_info is ar_ptr, prev, size, mprotect_size (and more since 2.35). */
#define HEAP_INFO_MIN 32ull
/* A malloc_state holds 254 bin pointers and more: an arena's first chunk lies past them. */
#define MALLOC_STATE_MIN 2032ull
/*
 * How far past its lower bound a heap's first chunk may start (malloc_state is 2200 bytes in
 * 2.36): any later chunk boundary would parse too, a suffix of the chain.
 */
#define FIRST_CHUNK_SEARCH 512ull
#define PAGE 4096ull
/* Anonymous mappings looked at page by page, at most this large (see mmapped()). */
#define ANON_SCAN_MAX (256ull << 20)
#define WINDOW (1u << 20)

/* A forward-moving window over the target's memory: one read per MiB, not per chunk. */
struct window {
	census_read_fn read;
	void *ctx;
	uint64_t limit; /* the region's end: nothing past it is read */
	uint64_t base;
	size_t len;
	uint64_t *bytes_read;
	uint8_t *buf;
};

static int word(struct window *w, uint64_t addr, uint64_t *ret)
{
	size_t n;
	int err;

	if (addr < w->base || addr + 8 > w->base + w->len) {
		if (addr + 8 > w->limit || addr + 8 < addr)
			return -ERANGE;
		n = w->limit - addr < WINDOW ? (size_t)(w->limit - addr) : WINDOW;
		err = w->read(w->ctx, addr, w->buf, n);
		if (err) {
			w->len = 0;
			return err;
		}
		*w->bytes_read += n;
		w->base = addr;
		w->len = n;
	}
	memcpy(ret, w->buf + (addr - w->base), 8);
	return 0;
}

struct walk {
	uint64_t inuse_bytes, inuse_chunks, free_bytes, free_chunks;
};

/*
 * Follows the chunk chain from first: 0 if it ends exactly at end (the top chunk, free) or at
 * a fencepost pair (what glibc leaves at the end of an arena's older heap); -EBADMSG if a size
 * is impossible. A chunk is in use when the next header's PREV_INUSE says so.
 */
static int chain(struct window *win, uint64_t first, uint64_t end, struct walk *wk,
		 census_chunk_fn chunk, void *chunk_ctx, bool dry_run)
{
	uint64_t p = first, raw, size, next_raw;
	int err;

	if ((err = word(win, p + 8, &raw)))
		return err;
	for (;;) {
		size = raw & ~SIZE_BITS;
		if (size == CHUNK_HDR && !(raw & IS_MMAPPED)) {
			/* Fencepost: a 16-byte chunk, then a header of size 0. */
			if (p + CHUNK_HDR + 16 > end || word(win, p + CHUNK_HDR + 8, &next_raw) ||
			    (next_raw & ~SIZE_BITS))
				return -EBADMSG;
			return 0;
		}
		if (size < MIN_CHUNK || (size & ALIGN_MASK) || (raw & IS_MMAPPED) || size > end - p)
			return -EBADMSG;
		if (p + size == end) {
			wk->free_bytes += size; /* the top chunk */
			wk->free_chunks++;
			return 0;
		}
		if (end - (p + size) < CHUNK_HDR)
			return -EBADMSG;
		if ((err = word(win, p + size + 8, &next_raw)))
			return err == -ERANGE ? -EBADMSG : err;
		if (next_raw & PREV_INUSE) {
			wk->inuse_chunks++;
			if (!dry_run && chunk &&
			    (err = chunk(chunk_ctx, p + CHUNK_HDR, size - CHUNK_HDR, false)))
				return err;
		} else {
			wk->free_bytes += size;
			wk->free_chunks++;
		}
		p += size;
		raw = next_raw;
	}
}

/* The first start in [lo, lo + span) whose chain parses to end; 0 if none. */
static uint64_t find_first(struct window *win, uint64_t lo, uint64_t span, uint64_t end)
{
	struct walk wk;
	uint64_t p;

	lo = (lo + ALIGN_MASK) & ~ALIGN_MASK;
	for (p = lo; p < lo + span && p + MIN_CHUNK <= end; p += 16) {
		memset(&wk, 0, sizeof(wk));
		if (!chain(win, p, end, &wk, NULL, NULL, true))
			return p;
	}
	return 0;
}

/* A heap changing while it is read (a thread allocating) is read again this many times. */
#define HEAP_ATTEMPTS 3

static int heap(struct window *win, uint64_t start, uint64_t lo, uint64_t span, uint64_t end,
		census_chunk_fn chunk, void *chunk_ctx, struct heap_census *c)
{
	struct walk wk;
	uint64_t first;
	int err = -EBADMSG, attempt;

	/* -EFAULT, -ERANGE: the heap shrank or moved under the read. */
	for (attempt = 0;
	     attempt < HEAP_ATTEMPTS && (err == -EBADMSG || err == -EFAULT || err == -ERANGE);
	     attempt++) {
		/* Read it afresh: the window may hold what changed. */
		win->len = 0;
		memset(&wk, 0, sizeof(wk));
		first = find_first(win, lo, span, end);
		/* A failed pass may have called chunk already: callers see some chunks twice. */
		err = first ? chain(win, first, end, &wk, chunk, chunk_ctx, false) : -EBADMSG;
	}
	if (err == -EBADMSG || err == -EFAULT || err == -ERANGE) { /* changed, every time */
		c->damaged++;
		return 0;
	}
	if (err)
		return err;
	c->heaps++;
	c->arena_bytes += end - start;
	c->free_bytes += wk.free_bytes;
	c->free_chunks += wk.free_chunks;
	/* Headers, fenceposts and padding are in use for mallinfo2: not in a free chunk. */
	c->inuse_bytes += end - start - wk.free_bytes;
	c->inuse_chunks += wk.inuse_chunks;
	return 0;
}

/*
 * Chunks mmapped one each (IS_MMAPPED alone in their size bits, page-sized, prev_size 0), at
 * page starts: the kernel merges adjacent anonymous mappings, so a chunk may start anywhere in
 * one. A mapping up to ANON_SCAN_MAX is looked at page by page; a larger one (a sanitizer's
 * shadow, a runtime's reservation: terabytes, mostly never touched) only as a chain of chunks
 * from its start. A page that merely looks like a header is counted too; glibc keeps no list.
 */
static int mmapped(struct window *win, uint64_t start, uint64_t end, census_chunk_fn chunk,
		   void *chunk_ctx, struct heap_census *c)
{
	uint64_t p = start, prev, raw, size;
	int err;

	while (p + CHUNK_HDR <= end) {
		if ((err = word(win, p, &prev)) || (err = word(win, p + 8, &raw)))
			return err == -ERANGE ? 0 : err;
		size = raw & ~SIZE_BITS;
		if (prev || (raw & SIZE_BITS) != IS_MMAPPED || size < PAGE || (size & (PAGE - 1)) ||
		    size > end - p) {
			if (end - start > ANON_SCAN_MAX)
				return 0;
			p += PAGE;
			continue;
		}
		c->mmapped_bytes += size;
		c->mmapped_chunks++;
		c->inuse_bytes += size;
		c->inuse_chunks++;
		if (chunk && (err = chunk(chunk_ctx, p + CHUNK_HDR, size - CHUNK_HDR, true)))
			return err;
		p += size;
	}
	return 0;
}

enum census_region_kind heap_census__classify(uint64_t start, const char *name)
{
	if (!strcmp(name, "[heap]"))
		return CENSUS_MAIN_HEAP;
	return start % ARENA_HEAP_ALIGN ? CENSUS_ANON : CENSUS_ARENA_HEAP;
}

int heap_census__region(const struct census_region *r, census_read_fn read, void *read_ctx,
			census_chunk_fn chunk, void *chunk_ctx, struct heap_census *c)
{
	struct window win = {
		.read = read, .ctx = read_ctx, .limit = r->end, .bytes_read = &c->bytes_read
	};
	uint64_t ar_ptr, size, lo, span;
	int err = 0;

	if (r->end <= r->start)
		return 0;
	/* Not from the heap: a census of its own process must not change what it counts. */
	win.buf = mmap(NULL, WINDOW, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (win.buf == MAP_FAILED)
		return -ENOMEM;
	switch (r->kind) {
	case CENSUS_MAIN_HEAP:
		c->arenas++;
		/* sbrk's start is page-aligned: the first chunk is there. */
		err = heap(&win, r->start, r->start, 16, r->end, chunk, chunk_ctx, c);
		break;
	case CENSUS_ARENA_HEAP:
		if ((err = word(&win, r->start, &ar_ptr)) ||
		    (err = word(&win, r->start + 16, &size)))
			break;
		if (!ar_ptr || (ar_ptr & 7) || size < PAGE || size > r->end - r->start) {
			err = mmapped(&win, r->start, r->end, chunk, chunk_ctx, c);
			break;
		}
		/* An arena's first heap holds the arena itself, right after its heap_info. */
		lo = r->start + HEAP_INFO_MIN;
		span = 64;
		if (ar_ptr > r->start && ar_ptr < r->start + size) {
			c->arenas++;
			lo = ar_ptr + MALLOC_STATE_MIN;
			span = FIRST_CHUNK_SEARCH;
		}
		err = heap(&win, r->start, lo, span, r->start + size, chunk, chunk_ctx, c);
		break;
	case CENSUS_ANON:
		err = mmapped(&win, r->start, r->end, chunk, chunk_ctx, c);
		break;
	}
	munmap(win.buf, WINDOW);
	return err == -ERANGE ? 0 : err;
}

struct pid_read {
	int pid;
};

static int read_pid(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct pid_read *r = ctx;

	return proc__read(r->pid, addr, buf, len);
}

#define MAX_REGIONS 65536

struct maps_walk {
	struct census_region *regions; /* mmapped, MAX_REGIONS */
	size_t n;
};

/* Anonymous read-write mappings and [heap]: where glibc's chunks live. */
static int collect(const char *line, void *ctx)
{
	struct maps_walk *m = ctx;
	unsigned long long start, end;
	char perms[5], name[64] = "";

	if (sscanf(line, "%llx-%llx %4s %*s %*s %*s %63s", &start, &end, perms, name) < 3 ||
	    strcmp(perms, "rw-p") || (name[0] && strcmp(name, "[heap]")))
		return 0;
	if (m->n == MAX_REGIONS)
		return -E2BIG;
	m->regions[m->n++] =
		(struct census_region){ start, end, heap_census__classify(start, name) };
	return 0;
}

int heap_census__pid(int pid, census_chunk_fn chunk, void *chunk_ctx, struct heap_census *ret)
{
	size_t bytes = MAX_REGIONS * sizeof(struct census_region), i;
	struct maps_walk m = { 0 };
	struct pid_read r = { pid };
	struct heap_census c = { 0 };
	int err;

	m.regions = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m.regions == MAP_FAILED)
		return -ENOMEM;
	err = proc__maps_lines(pid, collect, &m);
	for (i = 0; !err && i < m.n; i++) {
		err = heap_census__region(&m.regions[i], read_pid, &r, chunk, chunk_ctx, &c);
		/* A mapping unmapped since the maps were read is gone, not an error. */
		if (err == -EFAULT)
			err = 0;
	}
	munmap(m.regions, bytes);
	if (!err)
		*ret = c;
	return err;
}
