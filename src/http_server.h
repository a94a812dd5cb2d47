/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Serves the latest published metrics text at /metrics and the JSON API (libmicrohttpd). */
#ifndef MEMSCOPED_HTTP_SERVER_H
#define MEMSCOPED_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct http_server;

enum http_route {
	HTTP_ROUTE_METRICS,    /* 200, the metrics text */
	HTTP_ROUTE_INDEX,      /* 200, a page linking to /metrics */
	HTTP_ROUTE_NOT_FOUND,  /* 404 */
	HTTP_ROUTE_BAD_METHOD, /* 405, with "Allow: GET, HEAD" */
	HTTP_ROUTE_API,	       /* under /api/: JSON, from the published API snapshot */
};

/*
 * spec is "PORT", "IPV4:PORT" or "[IPV6]:PORT"; "PORT" means 127.0.0.1. No host names. Port 0
 * asks the kernel for a free port. Returns 0 or -EINVAL.
 */
int http_server__parse_addr(const char *spec, struct sockaddr_storage *ret_addr,
			    socklen_t *ret_len);
/*
 * Which answer a request gets: returns an enum http_route, or -EINVAL for a NULL method or url.
 * accept_encoding may be NULL; *ret_gzip tells whether to compress the body.
 */
int http_server__route(const char *method, const char *url, const char *accept_encoding,
		       int *ret_status, bool *ret_gzip);

/*
 * Binds and listens before returning, so that -EINVAL (bad spec), -EADDRINUSE or -EACCES
 * (privileged port) come back here. Serves an empty text until the first publish.
 */
int http_server__start(const char *spec, struct http_server **ret_srv);
void http_server__stop(struct http_server *srv);
/* The bound port, useful after asking for port 0. */
int http_server__port(const struct http_server *srv);
/*
 * Thread-safe: replaces the served text with a copy of text. Scrapes that already started keep
 * their snapshot. Returns 0 or -ENOMEM.
 */
int http_server__publish(struct http_server *srv, const char *text, size_t len);

struct api_snapshot;
/*
 * Thread-safe: the API answers from snap from now on (the server takes the reference; NULL
 * drops the current one). Requests waiting for a fresh snapshot are woken.
 */
void http_server__publish_api(struct http_server *srv, struct api_snapshot *snap);
/*
 * Whether the API was asked for in the last seconds (now_ns: CLOCK_MONOTONIC): copying the
 * tasks is only worth it while someone reads them. A request that finds no recent snapshot
 * waits (on the HTTP thread) up to a few seconds for the next one.
 */
bool http_server__api_wanted(struct http_server *srv, uint64_t now_ns);

#endif /* MEMSCOPED_HTTP_SERVER_H */
