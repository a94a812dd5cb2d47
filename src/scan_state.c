// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "process_table.h"
#include "scan_state.h"

/* The key of scan mode's state in a process. */
static const char scan_key;

static void scan_state_free(void *state)
{
	struct scan_process *s = state;

	if (!s)
		return;
	freeze__clear(&s->freeze);
	free(s->tasks);
	free(s);
}

struct scan_process *scan_process__of(const struct process *p)
{
	return process__state(p, &scan_key);
}

struct scan_process *scan_process__get(struct process *p)
{
	struct scan_process *s = scan_process__of(p);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s || process__set_state(p, &scan_key, s, scan_state_free))
		return NULL;
	return s;
}

struct scan_task *scan_process__task(struct scan_process *s, uint32_t index, uint64_t key)
{
	struct scan_task *t;
	size_t n;

	if (index >= s->ntasks) {
		n = s->ntasks ? s->ntasks : 64;
		while (n <= index)
			n *= 2;
		t = realloc(s->tasks, n * sizeof(*t));
		if (!t)
			return NULL;
		memset(t + s->ntasks, 0, (n - s->ntasks) * sizeof(*t));
		s->tasks = t;
		s->ntasks = n;
	}
	t = &s->tasks[index];
	if (t->key != key) {
		memset(t, 0, sizeof(*t));
		t->key = key;
	}
	return t;
}

const struct scan_task *scan_process__find_task(const struct scan_process *s, uint32_t index,
						uint64_t key)
{
	if (!s || index >= s->ntasks || s->tasks[index].key != key || !key)
		return NULL;
	return &s->tasks[index];
}

const char *scan_process__freeze_error(const struct scan_process *s, char *buf, size_t len)
{
	if (s->freeze_error == -EPERM && s->freeze_tracer > 0)
		snprintf(buf, len, "it is already traced by pid %d (a debugger or strace?)",
			 s->freeze_tracer);
	else if (s->freeze_error == -ETIMEDOUT)
		snprintf(buf, len, "a thread did not stop within %d ms", SCAN_FREEZE_TIMEOUT_MS);
	else
		snprintf(buf, len, "cannot stop its threads: %s", strerror(-s->freeze_error));
	return buf;
}
