/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The JSON API (api_version 1), answered from a snapshot on the HTTP thread:
 *   GET /api/v1/processes[?pid=N]
 *   GET /api/v1/tasks[?pid=N][&sort=FIELD][&order=asc|desc][&limit=N][&suspects=0|1][&type=TEXT]
 * Field names are the JSON report's. Bad parameters get a 400 with {"error": "..."}.
 */
#ifndef MEMSCOPED_API_RENDER_H
#define MEMSCOPED_API_RENDER_H

#include <stddef.h>
#include "api_snapshot.h"

#define API_VERSION 1
#define API_DEFAULT_LIMIT 100
#define API_MAX_LIMIT 1000
/* More query parameters than this is a bad request. */
#define API_MAX_ARGS 16

enum api_endpoint {
	API_PROCESSES,
	API_TASKS,
};

struct api_arg {
	const char *key;
	const char *value; /* NULL for "?key" without '=' */
};

/* The endpoint for a path ("/api/v1/tasks"), or -ENOENT. */
int api_render__endpoint(const char *path);
/*
 * Renders the answer: *ret_status is an HTTP status, *ret_body a malloc'd JSON text (an error
 * object for 4xx) of *ret_len bytes. Returns 0, or -ENOMEM (nothing returned).
 */
int api_render__answer(const struct api_snapshot *s, enum api_endpoint endpoint,
		       const struct api_arg *args, size_t nargs, int *ret_status, char **ret_body,
		       size_t *ret_len);
/* The body of an error answer (e.g. a 503), {"error": msg}; NULL if out of memory. */
char *api_render__error(const char *msg, size_t *ret_len);

#endif
