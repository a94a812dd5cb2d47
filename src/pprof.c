// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "pprof.h"

struct pb {
	uint8_t *data;
	size_t len, cap;
	int err;
};

static void put(struct pb *b, const void *data, size_t len)
{
	size_t cap;
	uint8_t *d;

	if (b->err)
		return;
	if (b->len + len > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d) {
			b->err = -ENOMEM;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static void varint(struct pb *b, uint64_t v)
{
	uint8_t buf[10];
	size_t n = 0;

	do {
		buf[n] = v & 0x7f;
		v >>= 7;
		if (v)
			buf[n] |= 0x80;
		n++;
	} while (v);
	put(b, buf, n);
}

/* Proto3 scalars: zero is the default and is left out. */
static void field_u64(struct pb *b, uint32_t field, uint64_t v)
{
	if (!v)
		return;
	varint(b, (uint64_t)field << 3);
	varint(b, v);
}

static void field_bytes(struct pb *b, uint32_t field, const void *data, size_t len)
{
	varint(b, (uint64_t)field << 3 | 2);
	varint(b, len);
	put(b, data, len);
}

static void field_msg(struct pb *b, uint32_t field, struct pb *m)
{
	if (m->err)
		b->err = m->err;
	else
		field_bytes(b, field, m->data, m->len);
	m->len = 0;
}

/* The string table: index by linear search over a hash of slots. */
struct strings {
	char **s;
	size_t n, cap;
	uint32_t *slots;
	size_t mask;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static int64_t intern(struct strings *t, const char *s, int *err)
{
	size_t j, size;
	uint32_t *slots;
	char **a;

	if (!s || *err)
		return 0;
	if (t->slots)
		for (j = str_hash(s) & t->mask; t->slots[j]; j = (j + 1) & t->mask)
			if (!strcmp(t->s[t->slots[j] - 1], s))
				return t->slots[j] - 1;
	if (t->n + 1 >= t->cap || !t->slots) {
		size = t->cap ? t->cap * 2 : 256;
		a = realloc(t->s, size * sizeof(*a));
		slots = calloc(size * 2, sizeof(*slots));
		if (!a || !slots) {
			if (a)
				t->s = a;
			free(slots);
			*err = -ENOMEM;
			return 0;
		}
		t->s = a;
		t->cap = size;
		free(t->slots);
		t->slots = slots;
		t->mask = size * 2 - 1;
		for (size_t i = 0; i < t->n; i++) {
			for (j = str_hash(t->s[i]) & t->mask; t->slots[j]; j = (j + 1) & t->mask)
				;
			t->slots[j] = (uint32_t)i + 1;
		}
	}
	t->s[t->n] = strdup(s);
	if (!t->s[t->n]) {
		*err = -ENOMEM;
		return 0;
	}
	for (j = str_hash(s) & t->mask; t->slots[j]; j = (j + 1) & t->mask)
		;
	t->slots[j] = (uint32_t)t->n + 1;
	return (int64_t)t->n++;
}

static void value_type(struct pb *b, struct pb *m, uint32_t field, struct strings *st,
		       const char *type, const char *unit)
{
	field_u64(m, 1, (uint64_t)intern(st, type, &b->err));
	field_u64(m, 2, (uint64_t)intern(st, unit, &b->err));
	field_msg(b, field, m);
}

static void label(struct pb *b, struct pb *m, struct strings *st, const char *key,
		  const char *value)
{
	field_u64(m, 1, (uint64_t)intern(st, key, &b->err));
	field_u64(m, 2, (uint64_t)intern(st, value, &b->err));
	field_msg(b, 3, m);
}

static void samples(struct pb *b, struct pb *m, struct pb *inner, struct strings *st,
		    const struct stack_profile *p)
{
	char num[32];
	size_t i;
	uint32_t k;

	for (i = 0; i < p->nseries; i++) {
		const struct sp_series *s = &p->series[i];
		const struct sp_stack *stack = &p->stacks[s->stack];
		double v[4] = { s->alloc_objects, s->alloc_space, s->inuse_objects,
				s->inuse_space };

		/* Packed: location ids, leaf first, then the four values. */
		for (k = 0; k < stack->nframes; k++)
			varint(inner, stack->frames[k] + 1ull);
		field_msg(m, 1, inner);
		for (k = 0; k < 4; k++)
			varint(inner, (uint64_t)llround(v[k]));
		field_msg(m, 2, inner);
		if (s->task_type) {
			label(m, inner, st, "task_type", s->task_type);
			snprintf(num, sizeof(num), "%llu", (unsigned long long)s->task_id);
			label(m, inner, st, "task", num);
		}
		snprintf(num, sizeof(num), "%u", s->tid);
		label(m, inner, st, "thread", num);
		if (m->err)
			b->err = m->err;
		field_msg(b, 2, m);
	}
}

int pprof__encode(const struct stack_profile *p, uint64_t time_ns, uint64_t duration_ns,
		  uint8_t **ret, size_t *ret_len)
{
	struct pb b = { 0 }, m = { 0 }, inner = { 0 };
	struct strings st = { 0 };
	size_t i;
	int err = 0;

	intern(&st, "", &err); /* string_table[0] must be "" */
	value_type(&b, &m, 1, &st, "alloc_objects", "count");
	value_type(&b, &m, 1, &st, "alloc_space", "bytes");
	value_type(&b, &m, 1, &st, "inuse_objects", "count");
	value_type(&b, &m, 1, &st, "inuse_space", "bytes");
	samples(&b, &m, &inner, &st, p);
	for (i = 0; i < p->nmappings; i++) {
		const struct sp_mapping *mp = &p->mappings[i];

		field_u64(&m, 1, i + 1);
		field_u64(&m, 2, mp->start);
		field_u64(&m, 3, mp->limit);
		field_u64(&m, 4, mp->file_offset);
		field_u64(&m, 5, (uint64_t)intern(&st, mp->file, &err));
		field_u64(&m, 6, (uint64_t)intern(&st, mp->build_id, &err));
		field_u64(&m, 7, 1);
		field_msg(&b, 3, &m);
	}
	for (i = 0; i < p->nframes; i++) {
		const struct sp_frame *f = &p->frames[i];

		field_u64(&m, 1, i + 1);
		field_u64(&m, 2, f->mapping);
		field_u64(&m, 3, f->pc);
		if (f->function) {
			field_u64(&inner, 1, i + 1);
			field_u64(&inner, 2, f->line);
			field_msg(&m, 4, &inner);
		}
		field_msg(&b, 4, &m);
	}
	for (i = 0; i < p->nframes; i++) {
		const struct sp_frame *f = &p->frames[i];

		if (!f->function)
			continue;
		field_u64(&m, 1, i + 1);
		field_u64(&m, 2, (uint64_t)intern(&st, f->function, &err));
		field_u64(&m, 3, (uint64_t)intern(&st, f->function, &err));
		field_u64(&m, 4, (uint64_t)intern(&st, f->file, &err));
		field_msg(&b, 5, &m);
	}
	field_u64(&b, 9, time_ns);
	field_u64(&b, 10, duration_ns);
	value_type(&b, &m, 11, &st, "space", "bytes");
	field_u64(&b, 12, p->sample_bytes);
	/* The string table last: every index above is taken by now. */
	for (i = 0; i < st.n; i++)
		field_bytes(&b, 6, st.s[i], strlen(st.s[i]));
	if (!err)
		err = b.err ? b.err : m.err ? m.err : inner.err;
	for (i = 0; i < st.n; i++)
		free(st.s[i]);
	free(st.s);
	free(st.slots);
	free(m.data);
	free(inner.data);
	if (err) {
		free(b.data);
		return err;
	}
	*ret = b.data;
	*ret_len = b.len;
	return 0;
}

int pprof__write(FILE *f, const struct stack_profile *p, uint64_t time_ns, uint64_t duration_ns)
{
	uint8_t *raw = NULL, out[16384];
	z_stream z = { 0 };
	size_t len;
	int err, zerr;

	err = pprof__encode(p, time_ns, duration_ns, &raw, &len);
	if (err)
		return err;
	/* 15 + 16: a gzip header and trailer, as pprof readers expect. */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		free(raw);
		return -ENOMEM;
	}
	z.next_in = raw;
	z.avail_in = (uInt)len;
	do {
		z.next_out = out;
		z.avail_out = sizeof(out);
		zerr = deflate(&z, Z_FINISH);
		if (zerr == Z_STREAM_ERROR) {
			err = -EIO;
			break;
		}
		if (fwrite(out, 1, sizeof(out) - z.avail_out, f) != sizeof(out) - z.avail_out) {
			err = -EIO;
			break;
		}
	} while (zerr != Z_STREAM_END);
	deflateEnd(&z);
	free(raw);
	return err;
}
