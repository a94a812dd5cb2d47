// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "task_row.h"

static const char *const key_names[TASK_ROW_NKEYS] = {
	[TASK_ROW_ID] = "id",
	[TASK_ROW_KIND] = "kind",
	[TASK_ROW_STATE] = "state",
	[TASK_ROW_POLLS] = "polls",
	[TASK_ROW_BUSY] = "busy_seconds",
	[TASK_ROW_IDLE] = "idle_seconds",
	[TASK_ROW_FUTURE_SIZE] = "future_size_bytes",
	[TASK_ROW_LIVE_BYTES] = "live_bytes",
	[TASK_ROW_TYPE] = "type",
	[TASK_ROW_AGE] = "age_seconds",
	[TASK_ROW_LIVE_ALLOCATIONS] = "live_allocations",
	[TASK_ROW_ALLOCATED_BYTES_TOTAL] = "allocated_bytes_total",
	[TASK_ROW_ALLOCATIONS_TOTAL] = "allocations_total",
	[TASK_ROW_PID] = "pid",
};

const char *task_row_key__name(enum task_row_key key)
{
	return (unsigned int)key < TASK_ROW_NKEYS ? key_names[key] : NULL;
}

int task_row_key__parse(const char *name, enum task_row_key *ret_key)
{
	int i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < TASK_ROW_NKEYS; i++)
		if (!strcmp(name, key_names[i])) {
			*ret_key = (enum task_row_key)i;
			return 0;
		}
	return -EINVAL;
}

bool task_row_key__descending_by_default(enum task_row_key key)
{
	return key != TASK_ROW_ID && key != TASK_ROW_KIND && key != TASK_ROW_STATE &&
	       key != TASK_ROW_TYPE && key != TASK_ROW_PID;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_double(double a, double b)
{
	return a < b ? -1 : a > b;
}

static int cmp_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int cmp_key(const struct task_row *a, const struct task_row *b, enum task_row_key key)
{
	switch (key) {
	case TASK_ROW_ID:
		/* "tokio:9" before "tokio:10". */
		return strverscmp(a->id, b->id);
	case TASK_ROW_KIND:
		return cmp_str(a->kind, b->kind);
	case TASK_ROW_STATE:
		return cmp_str(a->state, b->state);
	case TASK_ROW_POLLS:
		return cmp_u64(a->polls, b->polls);
	case TASK_ROW_BUSY:
		return cmp_double(a->busy_seconds, b->busy_seconds);
	case TASK_ROW_IDLE:
		return cmp_double(a->idle_seconds, b->idle_seconds);
	case TASK_ROW_FUTURE_SIZE:
		return cmp_u64(a->future_size_bytes, b->future_size_bytes);
	case TASK_ROW_LIVE_BYTES:
		return cmp_u64(a->live_bytes, b->live_bytes);
	case TASK_ROW_TYPE:
		return cmp_str(a->type, b->type);
	case TASK_ROW_AGE:
		/* Unknown ages (made before attach) are the oldest. */
		if (a->age_known != b->age_known)
			return a->age_known ? -1 : 1;
		return cmp_double(a->age_seconds, b->age_seconds);
	case TASK_ROW_LIVE_ALLOCATIONS:
		return cmp_u64(a->live_allocations, b->live_allocations);
	case TASK_ROW_ALLOCATED_BYTES_TOTAL:
		return cmp_u64(a->allocated_bytes_total, b->allocated_bytes_total);
	case TASK_ROW_ALLOCATIONS_TOTAL:
		return cmp_u64(a->allocations_total, b->allocations_total);
	case TASK_ROW_PID:
	default:
		return cmp_u64(a->pid, b->pid);
	}
}

int task_row__compare(const struct task_row *a, const struct task_row *b,
		      const struct task_row_order *order)
{
	int c;

	if (order->suspects_first && a->suspect != b->suspect)
		return a->suspect ? -1 : 1;
	c = cmp_key(a, b, order->key);
	if (c)
		return order->descending ? -c : c;
	c = cmp_u64(a->pid, b->pid);
	return c ? c : cmp_u64(a->seq, b->seq);
}

/* qsort has no context argument: merge sort, stable and bounded by n log n. */
static void merge_sort(const struct task_row **rows, const struct task_row **tmp, size_t n,
		       const struct task_row_order *order)
{
	size_t mid = n / 2, i = 0, j = mid, k = 0;

	if (n < 2)
		return;
	merge_sort(rows, tmp, mid, order);
	merge_sort(rows + mid, tmp, n - mid, order);
	while (i < mid && j < n)
		tmp[k++] = task_row__compare(rows[j], rows[i], order) < 0 ? rows[j++] : rows[i++];
	while (i < mid)
		tmp[k++] = rows[i++];
	while (j < n)
		tmp[k++] = rows[j++];
	memcpy(rows, tmp, n * sizeof(*rows));
}

void task_row__sort(const struct task_row **rows, size_t n, const struct task_row_order *order)
{
	const struct task_row **tmp;
	size_t i, j;

	if (n < 2)
		return;
	tmp = malloc(n * sizeof(*tmp));
	if (tmp) {
		merge_sort(rows, tmp, n, order);
		free(tmp);
		return;
	}
	/* Out of memory: insertion sort, slow but in place. */
	for (i = 1; i < n; i++)
		for (j = i; j && task_row__compare(rows[j], rows[j - 1], order) < 0; j--) {
			const struct task_row *t = rows[j];

			rows[j] = rows[j - 1];
			rows[j - 1] = t;
		}
}

bool task_row__type_matches(const struct task_row *row, const char *text)
{
	return !text || !*text || (row->type && strcasestr(row->type, text));
}
