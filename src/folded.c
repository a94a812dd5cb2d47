// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "folded.h"

struct line {
	char *text;
	double bytes;
};

static int by_text(const void *a, const void *b)
{
	return strcmp(((const struct line *)a)->text, ((const struct line *)b)->text);
}

/* flamegraph.pl splits on ';' and on the last space: neither may be in a frame's name. */
static void put_frame(FILE *m, const char *name)
{
	for (; *name; name++)
		fputc(*name == ';' ? ':' : *name == '\n' ? ' ' : *name, m);
}

static char *render(const struct stack_profile *p, const struct sp_series *s)
{
	const struct sp_stack *st = &p->stacks[s->stack];
	char name[1024], *text = NULL;
	size_t size = 0;
	bool first = true;
	FILE *m;
	uint32_t i;

	m = open_memstream(&text, &size);
	if (!m)
		return NULL;
	if (s->task_type) {
		put_frame(m, s->task_type);
		first = false;
	}
	for (i = st->nframes; i-- > 0;) {
		stack_profile__frame_name(p, st->frames[i], name, sizeof(name));
		if (!first)
			fputc(';', m);
		put_frame(m, name);
		first = false;
	}
	if (first)
		fputs("[unknown]", m);
	if (fclose(m)) {
		free(text);
		return NULL;
	}
	return text;
}

int folded__write(FILE *f, const struct stack_profile *p)
{
	struct line *lines = calloc(p->nseries + 1, sizeof(*lines));
	size_t i, j, n = 0;
	int err = 0;

	if (!lines)
		return -ENOMEM;
	for (i = 0; i < p->nseries; i++) {
		if (p->series[i].inuse_space < 0.5)
			continue;
		lines[n].text = render(p, &p->series[i]);
		if (!lines[n].text) {
			err = -ENOMEM;
			goto out;
		}
		lines[n++].bytes = p->series[i].inuse_space;
	}
	qsort(lines, n, sizeof(*lines), by_text);
	for (i = 0; i < n; i = j) {
		double bytes = lines[i].bytes;

		for (j = i + 1; j < n && !strcmp(lines[i].text, lines[j].text); j++)
			bytes += lines[j].bytes;
		if (fprintf(f, "%s %lld\n", lines[i].text, llround(bytes)) < 0)
			err = -EIO;
	}
out:
	for (i = 0; i < n; i++)
		free(lines[i].text);
	free(lines);
	return err;
}
