// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "retained.h"

/* A chunk's owner: a root index, or one of these. */
#define OWNER_NONE UINT32_MAX
#define OWNER_MANY (UINT32_MAX - 1)
#define OWNER_CELL (UINT32_MAX - 2)
#define READ_BUF 65536

static uint64_t span_of(const struct retained_chunk *c)
{
	return c->span && c->span < c->size ? c->span : c->size;
}

long retained__chunk_of(const struct retained_chunk *chunks, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	/* The last chunk starting at or below addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (chunks[mid].mem <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr - chunks[lo - 1].mem >= span_of(&chunks[lo - 1]))
		return -1;
	return (long)(lo - 1);
}

struct item {
	uint32_t chunk, depth;
};

struct walk {
	const struct retained_chunk *chunks;
	size_t nchunks;
	const struct retained_limits *lim;
	retained_read_fn read;
	void *ctx;
	uint32_t *owner, *stamp;
	struct item *stack;
	size_t top;
	uint64_t *buf;
	uint64_t scanned_total;
	uint64_t scanned_root;
	struct retained_figures *fig;
	uint32_t root;
};

static bool budget_left(const struct walk *w)
{
	return w->scanned_root < w->lim->max_scan_per_root &&
	       w->scanned_total < w->lim->max_scan_total;
}

static void reach(struct walk *w, uint64_t ptr, uint32_t depth)
{
	long i = retained__chunk_of(w->chunks, w->nchunks, ptr);
	uint32_t *owner;

	if (i < 0 || w->owner[i] == OWNER_CELL || w->stamp[i] == w->root + 1)
		return;
	/* The chunk lies depth + 1 hops from the cell. */
	if (depth >= w->lim->max_depth) {
		w->fig->truncated = 1;
		return;
	}
	w->stamp[i] = w->root + 1;
	w->fig->inclusive += w->chunks[i].size;
	owner = &w->owner[i];
	if (*owner == OWNER_NONE)
		*owner = w->root;
	else if (*owner != w->root)
		*owner = OWNER_MANY;
	w->stack[w->top++] = (struct item){ (uint32_t)i, depth + 1 };
}

/* Every aligned word of [start, end) but skip, as a pointer from depth. */
static void scan(struct walk *w, uint64_t start, uint64_t end, uint64_t skip, uint32_t depth)
{
	uint64_t addr, len, k;

	start = (start + 7) & ~7ull;
	for (addr = start; addr + 8 <= end && budget_left(w); addr += len) {
		len = end - addr < READ_BUF ? (end - addr) & ~7ull : READ_BUF;
		if (len > w->lim->max_scan_per_root - w->scanned_root)
			len = (w->lim->max_scan_per_root - w->scanned_root + 7) & ~7ull;
		w->scanned_root += len;
		w->scanned_total += len;
		if (w->read(w->ctx, addr, w->buf, (size_t)len))
			continue;
		for (k = 0; k < len / 8; k++)
			if (addr + k * 8 != skip)
				reach(w, w->buf[k], depth);
	}
	if (addr + 8 <= end)
		w->fig->truncated = 1;
}

/* Walks what the stack holds, and what that reaches, within the bounds. */
static void drain(struct walk *w)
{
	const struct retained_chunk *c;
	struct item it;
	uint64_t len;

	while (w->top) {
		it = w->stack[--w->top];
		c = &w->chunks[it.chunk];
		if (!budget_left(w)) {
			w->fig->truncated = 1;
			break;
		}
		len = span_of(c);
		if (len > w->lim->max_scan_chunk) {
			len = w->lim->max_scan_chunk;
			w->fig->truncated = 1;
		}
		scan(w, c->mem, c->mem + len, 0, it.depth);
	}
}

static void walk_root(struct walk *w, const struct retained_root *r)
{
	w->top = 0;
	w->scanned_root = 0;
	scan(w, r->start, r->end, r->skip, 0);
	drain(w);
}

static int walk_alloc(struct walk *w)
{
	size_t i;

	w->owner = malloc((w->nchunks + 1) * sizeof(*w->owner));
	w->stamp = calloc(w->nchunks + 1, sizeof(*w->stamp));
	/* Each chunk is pushed at most once per root. */
	w->stack = malloc((w->nchunks + 1) * sizeof(*w->stack));
	w->buf = malloc(READ_BUF);
	if (!w->owner || !w->stamp || !w->stack || !w->buf)
		return -ENOMEM;
	for (i = 0; i < w->nchunks; i++)
		w->owner[i] = OWNER_NONE;
	return 0;
}

static void walk_free(struct walk *w)
{
	free(w->owner);
	free(w->stamp);
	free(w->stack);
	free(w->buf);
}

int retained__reach(const struct retained_chunk *chunks, size_t nchunks,
		    const struct retained_root *ranges, size_t nranges,
		    const struct retained_limits *limits, retained_read_fn read, void *ctx,
		    uint8_t *ret_reached, struct retained_figures *ret)
{
	struct walk w = {
		.chunks = chunks, .nchunks = nchunks, .lim = limits, .read = read, .ctx = ctx
	};
	size_t i;
	int err;

	memset(ret, 0, sizeof(*ret));
	err = walk_alloc(&w);
	w.fig = ret;
	/* One walk for every range: a chunk reached once is reached. */
	for (i = 0; !err && i < nranges; i++) {
		scan(&w, ranges[i].start, ranges[i].end, ranges[i].skip, 0);
		drain(&w);
	}
	for (i = 0; !err && i < nchunks; i++) {
		ret_reached[i] = w.stamp[i] != 0;
		if (!ret_reached[i])
			ret->exclusive += chunks[i].size;
	}
	walk_free(&w);
	return err;
}

int retained__compute(const struct retained_chunk *chunks, size_t nchunks,
		      const struct retained_root *roots, size_t nroots,
		      const struct retained_limits *limits, retained_read_fn read, void *ctx,
		      struct retained_result *ret)
{
	struct walk w = {
		.chunks = chunks, .nchunks = nchunks, .lim = limits, .read = read, .ctx = ctx
	};
	size_t i;
	long c;
	int err = 0;

	ret->unreached_bytes = ret->unreached_chunks = ret->scanned_bytes = 0;
	ret->roots_truncated = 0;
	memset(ret->roots, 0, nroots * sizeof(*ret->roots));
	if (nroots >= OWNER_CELL)
		return -E2BIG;
	err = walk_alloc(&w);
	if (err)
		goto out;
	for (i = 0; i < nroots; i++) {
		c = retained__chunk_of(chunks, nchunks, roots[i].start);
		if (c >= 0)
			w.owner[c] = OWNER_CELL;
	}
	for (i = 0; i < nroots; i++) {
		w.root = (uint32_t)i;
		w.fig = &ret->roots[i];
		walk_root(&w, &roots[i]);
		ret->roots_truncated += w.fig->truncated;
	}
	for (i = 0; i < nchunks; i++) {
		if (w.owner[i] < nroots) {
			ret->roots[w.owner[i]].exclusive += chunks[i].size;
		} else if (w.owner[i] == OWNER_NONE) {
			ret->unreached_bytes += chunks[i].size;
			ret->unreached_chunks++;
		}
	}
	ret->scanned_bytes = w.scanned_total;
out:
	walk_free(&w);
	return err;
}
