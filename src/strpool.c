// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "strpool.h"

struct entry {
	struct entry *next;
	uint32_t hash;
	uint32_t uses;
	char s[]; /* the string handed out */
};

struct strpool {
	struct entry **buckets;
	size_t mask; /* buckets - 1, a power of two minus one */
	size_t count;
	size_t bytes; /* of the entries */
};

#define FIRST_BUCKETS 64

static uint32_t hash_of(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct strpool *strpool__new(void)
{
	struct strpool *sp = calloc(1, sizeof(*sp));

	if (!sp)
		return NULL;
	sp->buckets = calloc(FIRST_BUCKETS, sizeof(*sp->buckets));
	if (!sp->buckets) {
		free(sp);
		return NULL;
	}
	sp->mask = FIRST_BUCKETS - 1;
	return sp;
}

void strpool__free(struct strpool *sp)
{
	struct entry *e, *next;
	size_t i;

	if (!sp)
		return;
	for (i = 0; i <= sp->mask; i++)
		for (e = sp->buckets[i]; e; e = next) {
			next = e->next;
			free(e);
		}
	free(sp->buckets);
	free(sp);
}

/* Twice the buckets once there are more strings than buckets; best effort. */
static void grow(struct strpool *sp)
{
	size_t n = (sp->mask + 1) * 2, i;
	struct entry **b = calloc(n, sizeof(*b)), *e, *next;

	if (!b)
		return;
	for (i = 0; i <= sp->mask; i++)
		for (e = sp->buckets[i]; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	free(sp->buckets);
	sp->buckets = b;
	sp->mask = n - 1;
}

const char *strpool__get(struct strpool *sp, const char *s)
{
	uint32_t h = hash_of(s);
	size_t len = strlen(s);
	struct entry *e;

	for (e = sp->buckets[h & sp->mask]; e; e = e->next)
		if (e->hash == h && !strcmp(e->s, s)) {
			e->uses++;
			return e->s;
		}
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	e->hash = h;
	e->uses = 1;
	memcpy(e->s, s, len + 1);
	e->next = sp->buckets[h & sp->mask];
	sp->buckets[h & sp->mask] = e;
	sp->count++;
	sp->bytes += sizeof(*e) + len + 1;
	if (sp->count > sp->mask + 1)
		grow(sp);
	return e->s;
}

void strpool__put(struct strpool *sp, const char *s)
{
	struct entry **link, *e;

	if (!s)
		return;
	for (link = &sp->buckets[hash_of(s) & sp->mask]; (e = *link); link = &e->next) {
		if (e->s != s)
			continue;
		if (--e->uses)
			return;
		*link = e->next;
		sp->count--;
		sp->bytes -= sizeof(*e) + strlen(e->s) + 1;
		free(e);
		return;
	}
}

size_t strpool__bytes(const struct strpool *sp)
{
	return sp->bytes + (sp->mask + 1) * sizeof(*sp->buckets) + sizeof(*sp);
}
