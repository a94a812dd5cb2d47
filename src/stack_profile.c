// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "array.h"
#include "stack_profile.h"

/* A sampled block still live: its series and the estimate it added. */
struct sp_live {
	uint64_t addr; /* 0 empty */
	uint32_t pid;
	uint32_t series; /* index + 1; 0 a tombstone when addr != 0 */
	double bytes, count;
};

void stack_profile__weight(uint64_t size, uint64_t rate, double *ret_bytes, double *ret_count)
{
	double p;

	if (rate <= 1 || size == 0) {
		*ret_bytes = (double)size;
		*ret_count = 1;
		return;
	}
	/* P(sampled) = 1 - e^(-Z/R); expm1 keeps precision when Z << R. */
	p = -expm1(-(double)size / (double)rate);
	*ret_bytes = (double)size / p;
	*ret_count = 1 / p;
}

void stack_profile__gaps(uint32_t *ret, size_t n)
{
	double q[4096], sum = 0;
	size_t i;

	if (n > 4096)
		n = 4096;
	/* The midpoints of n equal-probability slices, scaled to mean exactly 1. */
	for (i = 0; i < n; i++)
		sum += q[i] = -log1p(-((double)i + 0.5) / (double)n);
	for (i = 0; i < n; i++)
		ret[i] = (uint32_t)llround(q[i] / (sum / (double)n) * 65536.0);
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return mix(h);
}

/* Index arrays at most half full: rebuilt at twice the size from the entries' own hashes. */
typedef uint64_t (*entry_hash)(const struct stack_profile *p, size_t i);

static int index_insert(const struct stack_profile *p, uint32_t **index, size_t *mask, size_t n,
			entry_hash hash, size_t i);

static int index_rebuild(const struct stack_profile *p, uint32_t **index, size_t *mask, size_t n,
			 entry_hash hash)
{
	size_t size = *mask ? (*mask + 1) * 2 : 256, j;
	uint32_t *a = calloc(size, sizeof(*a));

	if (!a)
		return -ENOMEM;
	free(*index);
	*index = a;
	*mask = size - 1;
	for (j = 0; j < n; j++)
		index_insert(p, index, mask, n, hash, j);
	return 0;
}

static int index_insert(const struct stack_profile *p, uint32_t **index, size_t *mask, size_t n,
			entry_hash hash, size_t i)
{
	size_t j;

	if (!*index || (n + 1) * 2 > *mask + 1)
		return index_rebuild(p, index, mask, i + 1, hash);
	for (j = hash(p, i) & *mask; (*index)[j]; j = (j + 1) & *mask)
		;
	(*index)[j] = (uint32_t)i + 1;
	return 0;
}

static uint64_t frame_key(uint32_t pid, uint64_t pc)
{
	return mix(pc * 31 + pid);
}

static uint64_t frame_hash(const struct stack_profile *p, size_t i)
{
	return frame_key(p->frames[i].pid, p->frames[i].pc);
}

static uint64_t stack_key(const uint32_t *frames, uint32_t n, bool truncated)
{
	uint64_t h = truncated ? 7 : 3;
	uint32_t i;

	for (i = 0; i < n; i++)
		h = mix(h + frames[i]);
	return h;
}

static uint64_t stack_hash(const struct stack_profile *p, size_t i)
{
	return stack_key(p->stacks[i].frames, p->stacks[i].nframes, p->stacks[i].truncated);
}

static uint64_t series_key(uint32_t stack, uint32_t pid, uint32_t tid, uint32_t task,
			   uint64_t task_id, const char *type)
{
	return hash_str(
		mix(((uint64_t)stack << 32 | pid) ^ mix((uint64_t)tid << 32 | task) ^ mix(task_id)),
		type);
}

static uint64_t series_hash(const struct stack_profile *p, size_t i)
{
	const struct sp_series *s = &p->series[i];

	return series_key(s->stack, s->pid, s->tid, s->task, s->task_id, s->task_type);
}

struct stack_profile *stack_profile__new(uint64_t sample_bytes, size_t max_series)
{
	struct stack_profile *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->sample_bytes = sample_bytes;
	p->max_series = max_series;
	return p;
}

void stack_profile__free(struct stack_profile *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nmappings; i++) {
		free(p->mappings[i].file);
		free(p->mappings[i].build_id);
	}
	for (i = 0; i < p->nframes; i++) {
		free(p->frames[i].function);
		free(p->frames[i].file);
	}
	for (i = 0; i < p->nstacks; i++)
		free(p->stacks[i].frames);
	for (i = 0; i < p->nseries; i++)
		free(p->series[i].task_type);
	free(p->mappings);
	free(p->frames);
	free(p->stacks);
	free(p->series);
	free(p->frame_index);
	free(p->stack_index);
	free(p->series_index);
	free(p->live);
	free(p);
}

long stack_profile__mapping(struct stack_profile *p, uint32_t pid, const char *file, uint64_t start,
			    uint64_t limit, uint64_t file_offset, const char *build_id)
{
	struct sp_mapping *m;
	size_t i;

	/* Few objects per process: a walk is enough. */
	for (i = 0; i < p->nmappings; i++)
		if (p->mappings[i].pid == pid && p->mappings[i].start == start &&
		    !strcmp(p->mappings[i].file, file))
			return (long)i;
	if (array__grow((void **)&p->mappings, &p->mappings_cap, p->nmappings, sizeof(*m), 64))
		return -1;
	m = &p->mappings[p->nmappings];
	*m = (struct sp_mapping){ .pid = pid,
				  .start = start,
				  .limit = limit,
				  .file_offset = file_offset,
				  .file = strdup(file),
				  .build_id = build_id ? strdup(build_id) : NULL };
	if (!m->file || (build_id && !m->build_id)) {
		free(m->file);
		free(m->build_id);
		return -1;
	}
	return (long)p->nmappings++;
}

long stack_profile__frame(struct stack_profile *p, uint32_t pid, uint64_t pc, bool *ret_new)
{
	size_t j;
	uint32_t k;

	*ret_new = false;
	if (p->frame_index)
		for (j = frame_key(pid, pc) & p->frame_mask; (k = p->frame_index[j]);
		     j = (j + 1) & p->frame_mask)
			if (p->frames[k - 1].pid == pid && p->frames[k - 1].pc == pc)
				return k - 1;
	/* Frames are bounded with the series: each new stack adds at most its depth. */
	if (p->nframes >= p->max_series * 8 ||
	    array__grow((void **)&p->frames, &p->frames_cap, p->nframes, sizeof(*p->frames), 64))
		return -1;
	p->frames[p->nframes] = (struct sp_frame){ .pid = pid, .pc = pc };
	if (index_insert(p, &p->frame_index, &p->frame_mask, p->nframes + 1, frame_hash,
			 p->nframes))
		return -1;
	*ret_new = true;
	return (long)p->nframes++;
}

static long intern_stack(struct stack_profile *p, const uint32_t *frames, uint32_t n,
			 bool truncated)
{
	struct sp_stack *s;
	size_t j;
	uint32_t k;

	if (p->stack_index)
		for (j = stack_key(frames, n, truncated) & p->stack_mask; (k = p->stack_index[j]);
		     j = (j + 1) & p->stack_mask) {
			s = &p->stacks[k - 1];
			if (s->nframes == n && s->truncated == truncated &&
			    !memcmp(s->frames, frames, n * sizeof(*frames)))
				return k - 1;
		}
	if (p->nstacks >= p->max_series ||
	    array__grow((void **)&p->stacks, &p->stacks_cap, p->nstacks, sizeof(*s), 64))
		return -1;
	s = &p->stacks[p->nstacks];
	s->frames = malloc((n ? n : 1) * sizeof(*frames));
	if (!s->frames)
		return -1;
	memcpy(s->frames, frames, n * sizeof(*frames));
	s->nframes = n;
	s->truncated = truncated;
	if (index_insert(p, &p->stack_index, &p->stack_mask, p->nstacks + 1, stack_hash,
			 p->nstacks)) {
		free(s->frames);
		return -1;
	}
	return (long)p->nstacks++;
}

static bool same_type(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static long intern_series(struct stack_profile *p, uint32_t stack, const struct sp_sample *x)
{
	struct sp_series *s;
	size_t j;
	uint32_t k;

	if (p->series_index)
		for (j = series_key(stack, x->pid, x->tid, x->task, x->task_id, x->task_type) &
			 p->series_mask;
		     (k = p->series_index[j]); j = (j + 1) & p->series_mask) {
			s = &p->series[k - 1];
			if (s->stack == stack && s->pid == x->pid && s->tid == x->tid &&
			    s->task == x->task && s->task_id == x->task_id &&
			    same_type(s->task_type, x->task_type))
				return k - 1;
		}
	if (p->nseries >= p->max_series ||
	    array__grow((void **)&p->series, &p->series_cap, p->nseries, sizeof(*s), 64))
		return -1;
	s = &p->series[p->nseries];
	*s = (struct sp_series){
		.stack = stack, .pid = x->pid, .tid = x->tid, .task = x->task, .task_id = x->task_id
	};
	if (x->task_type && !(s->task_type = strdup(x->task_type)))
		return -1;
	if (index_insert(p, &p->series_index, &p->series_mask, p->nseries + 1, series_hash,
			 p->nseries)) {
		free(s->task_type);
		return -1;
	}
	return (long)p->nseries++;
}

static uint64_t live_key(uint32_t pid, uint64_t addr)
{
	return mix(addr ^ ((uint64_t)pid << 48));
}

static int live_rehash(struct stack_profile *p)
{
	size_t size = p->live_mask ? (p->live_mask + 1) * 2 : 1024, i, j;
	struct sp_live *a = calloc(size, sizeof(*a)), *old = p->live;

	if (!a)
		return -ENOMEM;
	/* Tombstones only: rebuild at the same size. */
	if (p->live && p->live_count * 4 < p->live_mask + 1)
		size = p->live_mask + 1;
	for (i = 0; old && i <= p->live_mask; i++) {
		if (!old[i].addr || !old[i].series)
			continue;
		for (j = live_key(old[i].pid, old[i].addr) & (size - 1); a[j].addr;
		     j = (j + 1) & (size - 1))
			;
		a[j] = old[i];
	}
	free(old);
	p->live = a;
	p->live_mask = size - 1;
	p->live_tombs = 0;
	return 0;
}

static struct sp_live *live_find(const struct stack_profile *p, uint32_t pid, uint64_t addr)
{
	size_t j;

	if (!p->live)
		return NULL;
	for (j = live_key(pid, addr) & p->live_mask; p->live[j].addr; j = (j + 1) & p->live_mask)
		if (p->live[j].series && p->live[j].addr == addr && p->live[j].pid == pid)
			return &p->live[j];
	return NULL;
}

static void live_remove(struct stack_profile *p, struct sp_live *l)
{
	struct sp_series *s = &p->series[l->series - 1];

	s->inuse_space -= l->bytes;
	s->inuse_objects -= l->count;
	/* Float sums of the same terms: what was added comes back to zero. */
	if (s->inuse_objects < 0.5) {
		s->inuse_space = 0;
		s->inuse_objects = 0;
	}
	l->series = 0;
	p->live_count--;
	p->live_tombs++;
}

int stack_profile__add(struct stack_profile *p, const struct sp_sample *x)
{
	long stack, series;
	struct sp_live *l;
	double bytes, count;
	size_t j;

	p->samples++;
	if (x->truncated)
		p->stacks_truncated++;
	/* An address sampled again: its earlier block was freed unseen. */
	l = live_find(p, x->pid, x->addr);
	if (l)
		live_remove(p, l);
	stack = intern_stack(p, x->frames, x->nframes, x->truncated);
	series = stack < 0 ? -1 : intern_series(p, (uint32_t)stack, x);
	if (series < 0 ||
	    ((p->live_count + p->live_tombs + 1) * 2 > p->live_mask + 1 && live_rehash(p))) {
		p->samples_dropped++;
		return -ENOSPC;
	}
	stack_profile__weight(x->size, p->sample_bytes, &bytes, &count);
	p->series[series].alloc_space += bytes;
	p->series[series].alloc_objects += count;
	p->series[series].inuse_space += bytes;
	p->series[series].inuse_objects += count;
	for (j = live_key(x->pid, x->addr) & p->live_mask; p->live[j].addr;
	     j = (j + 1) & p->live_mask)
		;
	p->live[j] = (struct sp_live){ .addr = x->addr,
				       .pid = x->pid,
				       .series = (uint32_t)series + 1,
				       .bytes = bytes,
				       .count = count };
	p->live_count++;
	return 0;
}

void stack_profile__freed(struct stack_profile *p, uint32_t pid, uint64_t addr)
{
	struct sp_live *l = live_find(p, pid, addr);

	if (l)
		live_remove(p, l);
}

long stack_profile__live_stack(const struct stack_profile *p, uint32_t pid, uint64_t addr)
{
	const struct sp_live *l = live_find(p, pid, addr);

	return l ? (long)p->series[l->series - 1].stack : -1;
}

struct ranked {
	uint32_t index;
	double bytes;
};

static int by_bytes(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return x->index < y->index ? -1 : x->index > y->index;
}

size_t stack_profile__top(const struct stack_profile *p, sp_filter filter, const void *arg,
			  uint32_t *ret_series, size_t max)
{
	struct ranked *r = malloc((p->nseries + 1) * sizeof(*r));
	size_t i, n = 0;

	if (!r)
		return 0;
	for (i = 0; i < p->nseries; i++)
		if (p->series[i].inuse_space > 0 && (!filter || filter(&p->series[i], arg)))
			r[n++] = (struct ranked){ (uint32_t)i, p->series[i].inuse_space };
	qsort(r, n, sizeof(*r), by_bytes);
	if (n > max)
		n = max;
	for (i = 0; i < n; i++)
		ret_series[i] = r[i].index;
	free(r);
	return n;
}

size_t stack_profile__top_stacks(const struct stack_profile *p, sp_filter filter, const void *arg,
				 uint32_t *ret_stacks, double *ret_bytes, size_t max)
{
	struct ranked *r = calloc(p->nstacks + 1, sizeof(*r));
	size_t i, n = 0;

	if (!r)
		return 0;
	for (i = 0; i < p->nstacks; i++)
		r[i].index = (uint32_t)i;
	for (i = 0; i < p->nseries; i++)
		if (!filter || filter(&p->series[i], arg))
			r[p->series[i].stack].bytes += p->series[i].inuse_space;
	qsort(r, p->nstacks, sizeof(*r), by_bytes);
	for (i = 0; i < p->nstacks && n < max && r[i].bytes > 0; i++, n++) {
		ret_stacks[n] = r[i].index;
		ret_bytes[n] = r[i].bytes;
	}
	free(r);
	return n;
}

int stack_profile__frame_name(const struct stack_profile *p, uint32_t frame, char *buf, size_t len)
{
	const struct sp_frame *f = &p->frames[frame];
	const struct sp_mapping *m = f->mapping ? &p->mappings[f->mapping - 1] : NULL;
	const char *base;

	if (f->function)
		return snprintf(buf, len, "%s", f->function);
	if (m) {
		base = strrchr(m->file, '/');
		return snprintf(buf, len, "%s+0x%llx", base ? base + 1 : m->file,
				(unsigned long long)f->offset);
	}
	return snprintf(buf, len, "0x%llx", (unsigned long long)f->pc);
}
