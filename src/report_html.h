/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The HTML report's bounds: rows per table (the rest summed), for tests to set small. */
#ifndef MEMSCOPED_REPORT_HTML_H
#define MEMSCOPED_REPORT_HTML_H

#include <stddef.h>
#include <stdio.h>
#include "report.h"

/* Rows at most in each table of the page: 100k tasks still make a page of a few hundred kB. */
#define HTML_TOP_ROWS 100

struct report_html_bounds {
	size_t task_types; /* type rows, suspects first, then by bytes held */
	size_t tasks;	   /* suspect task rows, and top task rows by live bytes */
	size_t threads;	   /* thread rows by live bytes */
};

/* report_html__write with other bounds (each at most HTML_TOP_ROWS); 0 or -errno. */
int report_html__write_bounded(FILE *f, const struct report_input *in,
			       const struct report_html_bounds *b);

#endif
