// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Prometheus text exposition format 0.0.4 writer and a label cardinality cap. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_text.h"

/* Longest "%.17g" of a double is 24 characters; a uint64_t is 20. */
#define VALUE_MAX 32

struct prom_text {
	char *buf;
	size_t len;
	size_t cap;
	int err; /* sticky within one public call, see begin()/end() */
};

struct prom_text *prom_text__new(void)
{
	struct prom_text *p;

	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->buf = malloc(256);
	if (!p->buf) {
		free(p);
		return NULL;
	}
	p->cap = 256;
	p->buf[0] = '\0';
	return p;
}

void prom_text__free(struct prom_text *p)
{
	if (!p)
		return;
	free(p->buf);
	free(p);
}

void prom_text__reset(struct prom_text *p)
{
	p->len = 0;
	p->buf[0] = '\0';
}

const char *prom_text__data(const struct prom_text *p, size_t *ret_len)
{
	if (ret_len)
		*ret_len = p->len;
	return p->buf;
}

static void put(struct prom_text *p, const char *s, size_t n)
{
	if (p->err)
		return;
	if (n >= p->cap - p->len) {
		size_t cap = p->cap;
		char *buf;

		while (n >= cap - p->len) {
			if (cap > SIZE_MAX / 2) {
				p->err = -ENOMEM;
				return;
			}
			cap *= 2;
		}
		buf = realloc(p->buf, cap);
		if (!buf) {
			p->err = -ENOMEM;
			return;
		}
		p->buf = buf;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void put_str(struct prom_text *p, const char *s)
{
	put(p, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s, 0 if invalid (overlong, surrogate, truncated). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

/*
 * Label values escape '"' too; HELP text only '\' and newline. Invalid UTF-8 becomes U+FFFD:
 * Prometheus rejects the whole scrape otherwise, and a comm cut at 15 bytes can split a
 * character.
 */
static void put_escaped(struct prom_text *p, const char *str, bool quote)
{
	const unsigned char *s = (const unsigned char *)str, *run = s;
	const char *esc;
	size_t n;

	while (*s) {
		n = 1;
		esc = NULL;
		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		else if (*s >= 0x80 && !(n = utf8_len(s)))
			esc = "\xef\xbf\xbd";
		if (esc) {
			put(p, (const char *)run, s - run);
			put_str(p, esc);
			n = 1;
			run = s + 1;
		}
		s += n;
	}
	put(p, (const char *)run, s - run);
}

static void begin(struct prom_text *p)
{
	p->err = 0;
}

/* Drops a partly written line so that the text stays well-formed. */
static int end(struct prom_text *p, size_t mark)
{
	if (p->err) {
		p->len = mark;
		p->buf[mark] = '\0';
	}
	return p->err;
}

static void format_value(char *buf, double v)
{
	int prec;

	if (isnan(v)) {
		strcpy(buf, "NaN");
		return;
	}
	if (isinf(v)) {
		strcpy(buf, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Integral and exactly representable: no exponent, no decimals. */
	if (v > -0x1p53 && v < 0x1p53 && v == (double)(int64_t)v) {
		snprintf(buf, VALUE_MAX, "%" PRId64, (int64_t)v);
		return;
	}
	/* The shortest precision that reads back as the same double. */
	for (prec = 1; prec < 17; prec++) {
		snprintf(buf, VALUE_MAX, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
	snprintf(buf, VALUE_MAX, "%.17g", v);
}

static bool valid_name(const char *s, bool colon)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || (*s == ':' && colon)))
			return false;
	}
	return true;
}

static bool valid_labels(const struct prom_label *labels, size_t nlabels)
{
	size_t i;

	if (nlabels && !labels)
		return false;
	for (i = 0; i < nlabels; i++) {
		if (!valid_name(labels[i].name, false) || !labels[i].value)
			return false;
	}
	return true;
}

/* name suffix{labels,le="le"} value */
static void put_series(struct prom_text *p, const char *name, const char *suffix,
		       const struct prom_label *labels, size_t nlabels, const char *le,
		       const char *value)
{
	size_t i;

	put_str(p, name);
	put_str(p, suffix);
	if (nlabels || le) {
		put(p, "{", 1);
		for (i = 0; i < nlabels; i++) {
			if (i)
				put(p, ",", 1);
			put_str(p, labels[i].name);
			put(p, "=\"", 2);
			put_escaped(p, labels[i].value, true);
			put(p, "\"", 1);
		}
		if (le) {
			if (nlabels)
				put(p, ",", 1);
			put(p, "le=\"", 4);
			put_str(p, le);
			put(p, "\"", 1);
		}
		put(p, "}", 1);
	}
	put(p, " ", 1);
	put_str(p, value);
	put(p, "\n", 1);
}

int prom_text__family(struct prom_text *p, const char *name, const char *type, const char *help)
{
	static const char *const types[] = {
		"counter", "gauge", "histogram", "summary", "untyped",
	};
	size_t mark = p->len, i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (type && !strcmp(type, types[i]))
			break;
	}
	if (i == sizeof(types) / sizeof(types[0]) || !valid_name(name, true) || !help)
		return -EINVAL;

	begin(p);
	put(p, "# HELP ", 7);
	put_str(p, name);
	put(p, " ", 1);
	put_escaped(p, help, false);
	put(p, "\n# TYPE ", 8);
	put_str(p, name);
	put(p, " ", 1);
	put_str(p, type);
	put(p, "\n", 1);
	return end(p, mark);
}

int prom_text__sample(struct prom_text *p, const char *name, const struct prom_label *labels,
		      size_t nlabels, double value)
{
	char val[VALUE_MAX];
	size_t mark = p->len;

	if (!valid_name(name, true) || !valid_labels(labels, nlabels))
		return -EINVAL;

	format_value(val, value);
	begin(p);
	put_series(p, name, "", labels, nlabels, NULL, val);
	return end(p, mark);
}

int prom_text__histogram(struct prom_text *p, const char *name, const struct prom_label *labels,
			 size_t nlabels, const double *bounds, const uint64_t *counts,
			 size_t nbounds, double sum)
{
	char le[VALUE_MAX], val[VALUE_MAX];
	size_t mark = p->len, i;
	uint64_t cum = 0;

	if (!valid_name(name, true) || !valid_labels(labels, nlabels) || !counts ||
	    (nbounds && !bounds))
		return -EINVAL;
	for (i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]) || (i && !(bounds[i - 1] < bounds[i])))
			return -EINVAL;
	}

	begin(p);
	for (i = 0; i <= nbounds; i++) {
		cum += counts[i];
		if (i < nbounds)
			format_value(le, bounds[i]);
		else
			strcpy(le, "+Inf");
		snprintf(val, sizeof(val), "%" PRIu64, cum);
		put_series(p, name, "_bucket", labels, nlabels, le, val);
	}
	format_value(val, sum);
	put_series(p, name, "_sum", labels, nlabels, NULL, val);
	snprintf(val, sizeof(val), "%" PRIu64, cum);
	put_series(p, name, "_count", labels, nlabels, NULL, val);
	return end(p, mark);
}

struct prom_cap {
	char **keys;
	size_t nkeys;
	size_t max;
	uint64_t overflows;
};

struct prom_cap *prom_cap__new(size_t max)
{
	struct prom_cap *c;

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->max = max ? max : PROM_CAP_DEFAULT_MAX;
	c->keys = calloc(c->max, sizeof(*c->keys));
	if (!c->keys) {
		free(c);
		return NULL;
	}
	return c;
}

void prom_cap__free(struct prom_cap *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nkeys; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c);
}

/* A linear scan: max is small (tens) and lookups happen once per series per scrape. */
const char *prom_cap__key(struct prom_cap *c, const char *key)
{
	size_t i;
	char *copy;

	if (key) {
		for (i = 0; i < c->nkeys; i++) {
			if (!strcmp(c->keys[i], key))
				return c->keys[i];
		}
		if (c->nkeys < c->max) {
			copy = strdup(key);
			if (copy) {
				c->keys[c->nkeys++] = copy;
				return copy;
			}
		}
	}
	c->overflows++;
	return PROM_CAP_OTHER;
}

uint64_t prom_cap__overflows(const struct prom_cap *c)
{
	return c->overflows;
}
