/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The sampled stacks' part of the text and JSON reports (in->stacks). */
#ifndef MEMSCOPED_REPORT_STACKS_H
#define MEMSCOPED_REPORT_STACKS_H

#include <stdio.h>
#include "report.h"

/* Stacks listed per process and per task type in the JSON report. */
#define REPORT_STACKS_TOP 10
/* Stacks listed per suspect and for the untasked heap in the text report. */
#define REPORT_STACKS_TEXT_TOP 5

struct json_object;
/* The process's "stacks" object, or NULL without stacks. */
struct json_object *report_stacks__json(const struct process *p, const struct report_input *in);
/* The top stacks of the untasked live heap and of each suspect's live bytes. */
void report_stacks__text(FILE *f, const struct process *p, const struct report_input *in);

#endif
