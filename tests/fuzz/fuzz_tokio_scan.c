// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer: the attach-time tokio scan over memory the target wrote. Input:
 *   byte 0           vtable count - 1 (low 3 bits)
 *   8 bytes          bias
 *   4 bytes          first vtable vaddr / 8
 *   per vtable: 2 bytes gap to the next / 8, 2 bytes trailer, 2 scheduler, 2 id offsets
 *   8 bytes          the runtime address of the memory that follows
 *   2 + 2 bytes      the window of that memory scanned as buf (start, length);
 *                    reads outside it are served from the rest of the memory
 *   the rest         the memory
 * Offsets are folded into what runtime_tokio__find_vtables() accepts:
 * 32 <= scheduler <= id < trailer < 0x10000.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "runtime_tokio.h"

#define MAX_VTABLES 8

struct memory {
	uint64_t addr;
	const uint8_t *bytes;
	size_t len;
	const struct tokio_process *t;
	size_t found;
};

struct input {
	const uint8_t *p;
	size_t left;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t take(struct input *in, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n && in->left; i++, in->p++, in->left--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

/* Target memory outside the scanned window: -EFAULT where the process has none. */
static int read_memory(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct memory *m = ctx;
	uint64_t off = addr - m->addr;

	if (off > m->len || len > m->len - off)
		return -EFAULT;
	memcpy(buf, m->bytes + off, len);
	return 0;
}

static void on_found(void *ctx, const struct tokio_found *f)
{
	struct memory *m = ctx;
	const struct tokio_process *t = m->t;

	assert(f->vt >= t->info.vtables && f->vt < t->info.vtables + t->info.nvtables);
	/* Task cells are 16-byte aligned allocations. */
	assert(!(f->header & 15));
	assert(f->cell_size >= f->vt->trailer_offset + 32);
	assert(f->id != 0);
	m->found++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tokio_vtable vtables[MAX_VTABLES];
	uint32_t vt_types[MAX_VTABLES] = { 0 };
	struct tokio_process t = { 0 };
	struct input in = { data, size };
	struct memory m = { 0 };
	uint64_t vaddr, trailer, sched, id;
	size_t i, nvt, start, len, n;
	uint8_t *buf;

	nvt = (take(&in, 1) & 7) + 1;
	t.bias = take(&in, 8);
	vaddr = take(&in, 4) * 8;
	for (i = 0; i < nvt; i++) {
		vaddr += take(&in, 2) * 8 + 8;
		trailer = take(&in, 2);
		sched = take(&in, 2);
		id = take(&in, 2);
		if (trailer < 34)
			trailer = 34;
		sched = 32 + sched % (trailer - 33);
		id = sched + id % (trailer - sched);
		vtables[i] = (struct tokio_vtable){ .vaddr = vaddr, .poll = 0x1000 + i,
						    .trailer_offset = trailer,
						    .scheduler_offset = sched, .id_offset = id };
		assert(sched >= 32 && sched <= id && id < trailer && trailer < 0x10000);
	}
	t.info.vtables = vtables;
	t.info.nvtables = nvt;
	t.info.source = "vtables";
	t.vt_types = vt_types;

	m.addr = take(&in, 8);
	start = take(&in, 2);
	len = take(&in, 2);
	m.bytes = in.p;
	m.len = in.left;
	m.t = &t;
	if (start > m.len)
		start = m.len;
	if (len > m.len - start)
		len = m.len - start;

	/* The scanned window in an exact-sized copy, as tokio_process__scan's chunk. */
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, m.bytes + start, len);
	n = tokio_scan__buffer(&t, m.addr + start, buf, len, read_memory, on_found, &m);
	assert(n == m.found);
	assert(n <= len / 16 + 1);

	/* Without a reader, only headers wholly inside buf count. */
	m.found = 0;
	n = tokio_scan__buffer(&t, m.addr + start, buf, len, NULL, on_found, &m);
	assert(n == m.found);
	free(buf);
	return 0;
}
