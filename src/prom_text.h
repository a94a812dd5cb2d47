/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Prometheus text exposition format 0.0.4 writer and a label cardinality cap. */
#ifndef MEMSCOPED_PROM_TEXT_H
#define MEMSCOPED_PROM_TEXT_H

#include <stddef.h>
#include <stdint.h>

struct prom_text;

struct prom_label {
	const char *name;
	const char *value;
};

struct prom_text *prom_text__new(void);
void prom_text__free(struct prom_text *p);
void prom_text__reset(struct prom_text *p);

/*
 * The writers below append whole lines and return 0, -EINVAL or -ENOMEM; on
 * failure nothing is appended.
 */

/* "# HELP" and "# TYPE" lines; type is "counter", "gauge", "histogram", "summary" or "untyped". */
int prom_text__family(struct prom_text *p, const char *name, const char *type, const char *help);
/* name{l1="v1",...} value; no braces when nlabels is 0. */
int prom_text__sample(struct prom_text *p, const char *name, const struct prom_label *labels,
		      size_t nlabels, double value);
/*
 * name_bucket{...,le="b"} with cumulative counts for each bound, then le="+Inf", name_sum and
 * name_count. bounds are finite and strictly ascending; counts has nbounds + 1 entries, not
 * cumulative, the last one counting observations above the highest bound.
 */
int prom_text__histogram(struct prom_text *p, const char *name, const struct prom_label *labels,
			 size_t nlabels, const double *bounds, const uint64_t *counts,
			 size_t nbounds, double sum);
/* NUL-terminated text written so far, valid until the next write, reset or free. */
const char *prom_text__data(const struct prom_text *p, size_t *ret_len);

#define PROM_CAP_DEFAULT_MAX 50
#define PROM_CAP_OTHER "other"

struct prom_cap;

/* Remembers at most max distinct keys (0 means PROM_CAP_DEFAULT_MAX). */
struct prom_cap *prom_cap__new(size_t max);
void prom_cap__free(struct prom_cap *c);
/*
 * The label value to use for key: key itself (a stored copy) while fewer than max keys have been
 * seen, else PROM_CAP_OTHER. A NULL key or a failed copy also gives PROM_CAP_OTHER.
 */
const char *prom_cap__key(struct prom_cap *c, const char *key);
/* How many times prom_cap__key() answered PROM_CAP_OTHER for a key it did not keep. */
uint64_t prom_cap__overflows(const struct prom_cap *c);

#endif /* MEMSCOPED_PROM_TEXT_H */
