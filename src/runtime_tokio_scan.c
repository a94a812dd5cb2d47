// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The attach-time scan: tasks that never run again are still found (a leaked sleeper). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "memscoped/events.h"
#include "proc.h"
#include "process_table.h"
#include "runtime_tokio.h"

#define SCAN_CHUNK (1u << 20)
/* Largest header span read: id_offset is below this (runtime_tokio.c bounds vtables). */
#define MAX_HEADER_SPAN 0x10000

static uint64_t word_at(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

static const struct tokio_vtable *vtable_at(const struct tokio_process *t, uint64_t rt)
{
	size_t lo = 0, hi = t->info.nvtables;
	uint64_t v = rt - t->bias;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (t->info.vtables[mid].vaddr == v)
			return &t->info.vtables[mid];
		if (t->info.vtables[mid].vaddr < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * The cell's requested size: the trailer's offset + its 32 bytes, rounded up to the future's
 * alignment. glibc's chunk tells which rounding: a malloc chunk's usable size exceeds the
 * request by less than 24 bytes, a posix_memalign one's by less than 56 (a remainder under
 * MINSIZE is not split off), an mmapped one's by less than a page. Smallest fit wins.
 */
static uint64_t cell_size(const struct tokio_vtable *vt, uint64_t chunk_word)
{
	static const uint64_t heap_slack[] = { 24, 56 };
	uint64_t chunk = chunk_word & ~7ull, size = vt->trailer_offset + 32, align, usable, s;
	size_t pass;

	usable = chunk - (chunk_word & 2 ? 16 : 8);
	for (pass = 0; pass < 2; pass++)
		for (align = 8; align <= 4096; align *= 2) {
			s = (size + align - 1) & ~(align - 1);
			if (s <= usable && usable - s < (chunk_word & 2 ? 4096 : heap_slack[pass]))
				return s;
		}
	return size;
}

/*
 * A live task: a few references (count from bit 6), neither complete nor cancelled, small
 * sequential ids. A freed cell fails here: glibc writes its free-list pointer over the state.
 */
static bool plausible(uint64_t state, uint64_t owner_id, uint64_t id)
{
	return (state >> 6) != 0 && state < (1ull << 16) &&
	       !(state & (TOKIO_STATE_COMPLETE | TOKIO_STATE_CANCELLED)) && id != 0 &&
	       id < (1ull << 48) && owner_id < (1ull << 48);
}

size_t tokio_scan__buffer(const struct tokio_process *t, uint64_t addr, const uint8_t *buf,
			  size_t len, tokio_read_fn read, tokio_found_fn found, void *ctx)
{
	uint64_t lo, hi, w, hdr, chunk_word, hdr_buf[3];
	const struct tokio_vtable *vt;
	struct tokio_found f;
	size_t off, n = 0;

	if (!t->info.nvtables || len < 8)
		return 0;
	lo = t->info.vtables[0].vaddr + t->bias;
	hi = t->info.vtables[t->info.nvtables - 1].vaddr + t->bias;
	/* Headers start allocations: 16-byte aligned, their vtable word at +0x10. */
	for (off = (16 - (addr & 15) + TOKIO_HDR_VTABLE) & 15; off + 8 <= len; off += 16) {
		w = word_at(buf + off);
		if (w < lo || w > hi)
			continue;
		vt = vtable_at(t, w);
		if (!vt || off < TOKIO_HDR_VTABLE)
			continue;
		hdr = addr + off - TOKIO_HDR_VTABLE;
		if (vt->id_offset + 8 > MAX_HEADER_SPAN)
			continue;
		if (off >= TOKIO_HDR_VTABLE + 8 &&
		    off - TOKIO_HDR_VTABLE + vt->id_offset + 8 <= len) {
			chunk_word = word_at(buf + off - TOKIO_HDR_VTABLE - 8);
			f.state = word_at(buf + off - TOKIO_HDR_VTABLE);
			f.owner_id = word_at(buf + off - TOKIO_HDR_VTABLE + TOKIO_HDR_OWNER_ID);
			f.id = word_at(buf + off - TOKIO_HDR_VTABLE + vt->id_offset);
		} else {
			if (!read || read(ctx, hdr - 8, hdr_buf, sizeof(hdr_buf)) ||
			    read(ctx, hdr + vt->id_offset, &f.id, sizeof(f.id)))
				continue;
			chunk_word = hdr_buf[0];
			f.state = hdr_buf[1];
			if (read(ctx, hdr + TOKIO_HDR_OWNER_ID, &f.owner_id, sizeof(f.owner_id)))
				continue;
		}
		if (!plausible(f.state, f.owner_id, f.id) ||
		    (chunk_word & ~7ull) < vt->trailer_offset + 40)
			continue;
		f.header = hdr;
		f.vt = vt;
		f.cell_size = cell_size(vt, chunk_word);
		found(ctx, &f);
		n++;
	}
	return n;
}

/* One walk over a pid's memory: reads go to pid, finds to the caller's callback. */
struct pid_walk {
	const struct tokio_process *t;
	int pid;
	tokio_found_fn found;
	void *ctx;
	uint64_t bytes;
	uint8_t *buf;
};

static int read_target(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct pid_walk *s = ctx;

	return proc__read(s->pid, addr, buf, len);
}

static void walk_found(void *ctx, const struct tokio_found *f)
{
	struct pid_walk *s = ctx;

	s->found(s->ctx, f);
}

static int scan_mapping(struct pid_walk *s, uint64_t start, uint64_t end)
{
	uint64_t addr;
	size_t len;

	for (addr = start; addr < end; addr += len) {
		len = end - addr < SCAN_CHUNK ? (size_t)(end - addr) : SCAN_CHUNK;
		/* Pages can vanish under us (munmap): skip what cannot be read. */
		if (!read_target(s, addr, s->buf, len)) {
			s->bytes += len;
			tokio_scan__buffer(s->t, addr, s->buf, len, read_target, walk_found, s);
		}
		/* Overlap chunks by one header's reach so a header at a boundary is seen. */
		if (addr + len < end)
			len -= TOKIO_HDR_VTABLE;
	}
	return 0;
}

struct range {
	uint64_t start, end;
};

struct ranges {
	struct range *r;
	size_t n;
};

/* The heap and anonymous writable mappings: where glibc puts task cells. */
static int collect_anon(const char *line, void *ctx)
{
	struct ranges *rs = ctx;
	unsigned long long start, end;
	char perms[5], path[16] = "";
	struct range *r;

	if (sscanf(line, "%llx-%llx %4s %*s %*s %*s %15s", &start, &end, perms, path) < 3)
		return 0;
	if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p')
		return 0;
	if (path[0] && strcmp(path, "[heap]"))
		return 0;
	r = realloc(rs->r, (rs->n + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	rs->r = r;
	r[rs->n].start = start;
	r[rs->n++].end = end;
	return 0;
}

int tokio_scan__pid(const struct tokio_process *t, int pid, tokio_found_fn found, void *ctx,
		    uint64_t *ret_bytes)
{
	struct pid_walk s = { .t = t, .pid = pid, .found = found, .ctx = ctx };
	struct ranges rs = { 0 };
	size_t i;
	int err;

	err = proc__maps_lines(pid, collect_anon, &rs);
	s.buf = malloc(SCAN_CHUNK);
	if (!s.buf)
		err = -ENOMEM;
	for (i = 0; !err && i < rs.n; i++)
		err = scan_mapping(&s, rs.r[i].start, rs.r[i].end);
	free(s.buf);
	free(rs.r);
	*ret_bytes = s.bytes;
	return err;
}

struct scan_ctx {
	struct process *p;
	uint64_t now_ns;
	uint64_t found;
};

static void add_found(void *ctx, const struct tokio_found *f)
{
	struct scan_ctx *s = ctx;
	struct tokio_process *t = tokio_process__of(s->p);
	struct task *task;

	/* Already known (seen polling since attach): nothing to add. */
	if (task_table__find(s->p->tasks, f->header))
		return;
	task = task_table__spawn(s->p->tasks, f->header, t->vt_types[f->vt - t->info.vtables],
				 f->owner_id ? TASK_ASYNC : TASK_BLOCKING, TASK_FOUND_ATTACH_SCAN,
				 0);
	if (!task)
		return;
	task->runtime_id = f->id;
	task_table__cell(s->p->tasks, task, f->cell_size);
	task->detached = !(f->state & TOKIO_STATE_JOIN_INTEREST);
	/* Idle at least since attach: that is when it was last known not to run. */
	task->last_poll_end_ns = s->p->start_ns ? s->p->start_ns : s->now_ns;
	if (f->state & TOKIO_STATE_RUNNING) {
		task->running = true;
		task->state = TASK_RUNNING;
		task->poll_start_ns = task->last_poll_end_ns;
	}
	s->found++;
}

int tokio_process__scan(struct process *p, int pid, uint64_t now_ns, struct tokio_scan_stats *ret)
{
	struct scan_ctx s = { .p = p, .now_ns = now_ns };
	struct timespec t0, t1;
	int err;

	if (!tokio_process__of(p))
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = tokio_scan__pid(tokio_process__of(p), pid, add_found, &s, &ret->bytes);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ret->found = s.found;
	ret->elapsed_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull +
			  (uint64_t)(t1.tv_nsec - t0.tv_nsec);
	return err;
}
