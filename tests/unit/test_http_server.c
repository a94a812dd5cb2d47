// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "api_snapshot.h"
#include "http_server.h"

static void assert_addr(const char *spec, int family, const char *host, int port)
{
	struct sockaddr_storage ss;
	char buf[INET6_ADDRSTRLEN];
	socklen_t len;

	assert_int_equal(http_server__parse_addr(spec, &ss, &len), 0);
	assert_int_equal(ss.ss_family, family);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		assert_int_equal(len, sizeof(*sin));
		assert_int_equal(ntohs(sin->sin_port), port);
		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		assert_int_equal(len, sizeof(*sin6));
		assert_int_equal(ntohs(sin6->sin6_port), port);
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
	}
	assert_string_equal(buf, host);
}

static void test_http_server_parse_addr(void **state)
{
	(void)state;
	assert_addr("9100", AF_INET, "127.0.0.1", 9100);
	assert_addr("0", AF_INET, "127.0.0.1", 0);
	assert_addr("65535", AF_INET, "127.0.0.1", 65535);
	assert_addr("0.0.0.0:80", AF_INET, "0.0.0.0", 80);
	assert_addr("192.168.1.20:09100", AF_INET, "192.168.1.20", 9100);
	assert_addr("[::1]:9100", AF_INET6, "::1", 9100);
	assert_addr("[::]:0", AF_INET6, "::", 0);
	assert_addr("[fe80::1:2]:1", AF_INET6, "fe80::1:2", 1);
}

static void test_http_server_parse_addr_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		":9100",
		"65536",
		"99999999999999999999",
		"-1",
		"+80",
		" 80",
		"80 ",
		"9100x",
		"localhost:9100",
		"::1:9100",
		"::1",
		"[::1]9100",
		"[::1]:",
		"[::1",
		"::1]:80",
		"[127.0.0.1]:80",
		"1.2.3:80",
		"1.2.3.4:",
		"1.2.3.4:80:80",
		"1.2.3.4.5:80",
		"[fe80::1%lo]:80",
		"[]:80",
	};
	struct sockaddr_storage ss;
	socklen_t len = 7;
	size_t i;

	(void)state;
	memset(&ss, 0xaa, sizeof(ss));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (http_server__parse_addr(bad[i], &ss, &len) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	}
	assert_int_equal(http_server__parse_addr(NULL, &ss, &len), -EINVAL);
	/* Output parameters are untouched on failure. */
	assert_int_equal(len, 7);
	assert_int_equal(((unsigned char *)&ss)[0], 0xaa);
}

static void test_http_server_route(void **state)
{
	static const struct {
		const char *method, *url, *ae;
		int route, status;
		bool gzip;
	} cases[] = {
		{ "GET", "/metrics", NULL, HTTP_ROUTE_METRICS, 200, false },
		{ "HEAD", "/metrics", NULL, HTTP_ROUTE_METRICS, 200, false },
		{ "GET", "/metrics?x=1", "gzip", HTTP_ROUTE_METRICS, 200, true },
		{ "GET", "/metrics", "gzip", HTTP_ROUTE_METRICS, 200, true },
		{ "GET", "/metrics", "GZIP", HTTP_ROUTE_METRICS, 200, true },
		{ "GET", "/metrics", "x-gzip", HTTP_ROUTE_METRICS, 200, true },
		{ "GET", "/metrics", "deflate, gzip;q=1.0, *;q=0.5", HTTP_ROUTE_METRICS, 200,
		  true },
		{ "GET", "/metrics", "br,gzip ; q=0.001", HTTP_ROUTE_METRICS, 200, true },
		{ "GET", "/metrics", "gzip;q=0", HTTP_ROUTE_METRICS, 200, false },
		{ "GET", "/metrics", "gzip; Q=0.000", HTTP_ROUTE_METRICS, 200, false },
		{ "GET", "/metrics", "*", HTTP_ROUTE_METRICS, 200, true },
		{ "GET", "/metrics", "*;q=0", HTTP_ROUTE_METRICS, 200, false },
		{ "GET", "/metrics", "gzip;q=0, *", HTTP_ROUTE_METRICS, 200, false },
		{ "GET", "/metrics", "identity", HTTP_ROUTE_METRICS, 200, false },
		{ "GET", "/metrics", "gzipx, xgzip", HTTP_ROUTE_METRICS, 200, false },
		{ "GET", "/metrics", "", HTTP_ROUTE_METRICS, 200, false },
		{ "GET", "/metrics", ";;,,q=1;", HTTP_ROUTE_METRICS, 200, false },
		{ "GET", "/", "gzip", HTTP_ROUTE_INDEX, 200, false },
		{ "HEAD", "/?a", NULL, HTTP_ROUTE_INDEX, 200, false },
		{ "GET", "/metrics/", NULL, HTTP_ROUTE_NOT_FOUND, 404, false },
		{ "GET", "/metricsx", NULL, HTTP_ROUTE_NOT_FOUND, 404, false },
		{ "GET", "", NULL, HTTP_ROUTE_NOT_FOUND, 404, false },
		{ "GET", "//metrics", NULL, HTTP_ROUTE_NOT_FOUND, 404, false },
		{ "GET", "/api/v1/tasks?pid=1", "gzip", HTTP_ROUTE_API, 200, false },
		{ "HEAD", "/api/v1/processes", NULL, HTTP_ROUTE_API, 200, false },
		{ "GET", "/api/", NULL, HTTP_ROUTE_API, 200, false },
		{ "GET", "/api", NULL, HTTP_ROUTE_NOT_FOUND, 404, false },
		{ "POST", "/api/v1/tasks", NULL, HTTP_ROUTE_BAD_METHOD, 405, false },
		{ "POST", "/metrics", "gzip", HTTP_ROUTE_BAD_METHOD, 405, false },
		{ "get", "/metrics", NULL, HTTP_ROUTE_BAD_METHOD, 405, false },
		{ "DELETE", "/nope", NULL, HTTP_ROUTE_BAD_METHOD, 405, false },
		{ "OPTIONS", "*", NULL, HTTP_ROUTE_BAD_METHOD, 405, false },
	};
	size_t i;
	int status;
	bool gzip;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		status = 0;
		gzip = !cases[i].gzip;
		assert_int_equal(http_server__route(cases[i].method, cases[i].url, cases[i].ae,
						    &status, &gzip),
				 cases[i].route);
		if (status != cases[i].status || gzip != cases[i].gzip)
			fail_msg("%s '%s' ae '%s': %d gzip %d", cases[i].method, cases[i].url,
				 cases[i].ae ? cases[i].ae : "(null)", status, gzip);
	}
	assert_int_equal(http_server__route(NULL, "/", NULL, &status, &gzip), -EINVAL);
	assert_int_equal(http_server__route("GET", NULL, NULL, &status, &gzip), -EINVAL);
}

struct reply {
	int status;
	char *raw;
	char *body;
	size_t body_len;
};

static void reply_free(struct reply *r)
{
	free(r->raw);
}

/* Sends request as is on a new connection and reads until the server closes it. */
static void fetch(int port, const char *request, struct reply *r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	size_t len = 0, cap = 4096;
	ssize_t n;
	char *end;
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(send(fd, request, strlen(request), MSG_NOSIGNAL), strlen(request));

	r->raw = malloc(cap);
	for (;;) {
		if (cap - len < 2048)
			r->raw = realloc(r->raw, cap *= 2);
		n = recv(fd, r->raw + len, cap - len - 1, 0);
		/* A server that refuses a request may reset the connection after answering. */
		if (n < 0 && errno == ECONNRESET)
			break;
		assert_true(n >= 0);
		if (!n)
			break;
		len += n;
	}
	close(fd);
	r->raw[len] = '\0';

	r->status = 0;
	r->body = NULL;
	r->body_len = 0;
	if (sscanf(r->raw, "HTTP/1.1 %d ", &r->status) != 1)
		return;
	end = strstr(r->raw, "\r\n\r\n");
	assert_non_null(end);
	r->body = end + 4;
	r->body_len = r->raw + len - r->body;
	end[2] = '\0'; /* headers end with "\r\n" */
}

/* The value of a response header, copied into buf; NULL if absent. */
static const char *header(const struct reply *r, const char *name, char *buf, size_t size)
{
	const char *line = strstr(r->raw, "\r\n");

	for (; line && line[2]; line = strstr(line + 2, "\r\n")) {
		size_t n = strlen(name);

		if (!strncasecmp(line + 2, name, n) && line[2 + n] == ':') {
			const char *v = line + 3 + n + strspn(line + 3 + n, " ");

			snprintf(buf, size, "%.*s", (int)strcspn(v, "\r"), v);
			return buf;
		}
	}
	return NULL;
}

static void assert_header(const struct reply *r, const char *name, const char *value)
{
	char buf[256];
	const char *v = header(r, name, buf, sizeof(buf));

	if (!value) {
		if (v)
			fail_msg("unexpected %s: %s", name, v);
		return;
	}
	if (!v)
		fail_msg("no %s header in:\n%s", name, r->raw);
	assert_string_equal(v, value);
}

static void assert_gunzip(const struct reply *r, const char *expected, size_t expected_len)
{
	z_stream z = { 0 };
	char *out = malloc(expected_len + 1);

	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)r->body;
	z.avail_in = r->body_len;
	z.next_out = (Bytef *)out;
	z.avail_out = expected_len + 1;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.total_out, expected_len);
	assert_memory_equal(out, expected, expected_len);
	inflateEnd(&z);
	free(out);
}

#define GET_METRICS "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
#define TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void test_http_server_serves_metrics(void **state)
{
	const char *text = "# HELP m M.\n# TYPE m gauge\nm 1\n";
	struct http_server *srv = NULL;
	struct reply r;
	char len[32];
	int port;

	(void)state;
	assert_int_equal(http_server__start("127.0.0.1:0", &srv), 0);
	port = http_server__port(srv);
	assert_true(port > 0);

	/* Before the first publish: 503, never an empty 200 (every series would look gone). */
	fetch(port, GET_METRICS "\r\n", &r);
	assert_int_equal(r.status, 503);
	reply_free(&r);

	assert_int_equal(http_server__publish(srv, text, strlen(text)), 0);
	fetch(port, GET_METRICS "\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", TEXT_TYPE);
	assert_header(&r, "Vary", "Accept-Encoding");
	assert_header(&r, "Content-Encoding", NULL);
	assert_int_equal(r.body_len, strlen(text));
	assert_memory_equal(r.body, text, r.body_len);
	reply_free(&r);

	fetch(port, GET_METRICS "Accept-Encoding: deflate, gzip\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", TEXT_TYPE);
	assert_header(&r, "Content-Encoding", "gzip");
	assert_header(&r, "Vary", "Accept-Encoding");
	assert_gunzip(&r, text, strlen(text));
	reply_free(&r);

	fetch(port, GET_METRICS "Accept-Encoding: gzip;q=0\r\n\r\n", &r);
	assert_header(&r, "Content-Encoding", NULL);
	assert_int_equal(r.body_len, strlen(text));
	reply_free(&r);

	fetch(port, "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", TEXT_TYPE);
	snprintf(len, sizeof(len), "%zu", strlen(text));
	assert_header(&r, "Content-Length", len);
	assert_int_equal(r.body_len, 0);
	reply_free(&r);

	fetch(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", "text/html; charset=utf-8");
	assert_non_null(strstr(r.body, "<a href=\"/metrics\">"));
	reply_free(&r);

	http_server__stop(srv);
	http_server__stop(NULL);
}

static void test_http_server_serves_latest_snapshot(void **state)
{
	struct http_server *srv = NULL;
	size_t big_len = 1 << 20, i;
	char *big = malloc(big_len);
	struct reply r;
	int port;

	(void)state;
	for (i = 0; i < big_len; i++)
		big[i] = "abcdefghij\n"[i % 11] + (i % 7 == 0);
	assert_int_equal(http_server__start("0", &srv), 0);
	port = http_server__port(srv);
	assert_int_equal(http_server__publish(srv, "m 1\n", 4), 0);
	fetch(port, GET_METRICS "Accept-Encoding: gzip\r\n\r\n", &r);
	assert_gunzip(&r, "m 1\n", 4);
	reply_free(&r);

	/* A new snapshot gets a new gzip, never the cached one of the previous. */
	assert_int_equal(http_server__publish(srv, big, big_len), 0);
	fetch(port, GET_METRICS "Accept-Encoding: gzip\r\n\r\n", &r);
	assert_true(r.body_len < big_len);
	assert_gunzip(&r, big, big_len);
	reply_free(&r);
	fetch(port, GET_METRICS "\r\n", &r);
	assert_int_equal(r.body_len, big_len);
	assert_memory_equal(r.body, big, big_len);
	reply_free(&r);

	http_server__stop(srv);
	free(big);
}

static void test_http_server_keeps_connections_alive(void **state)
{
	struct http_server *srv = NULL;
	const char *second;
	struct reply r;

	(void)state;
	assert_int_equal(http_server__start("127.0.0.1:0", &srv), 0);
	assert_int_equal(http_server__publish(srv, "m 1\n", 4), 0);
	/* Two pipelined requests on one connection; Prometheus reuses its connections. */
	fetch(http_server__port(srv),
	      "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
	      "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	      &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Connection", NULL);
	second = strstr(r.body, "HTTP/1.1 200 OK\r\n");
	assert_non_null(second);
	assert_string_equal(strstr(second, "\r\n\r\n"), "\r\n\r\nm 1\n");
	reply_free(&r);
	http_server__stop(srv);
}

struct publisher {
	struct http_server *srv;
	int stop;
};

static void *publish_loop(void *arg)
{
	struct publisher *pub = arg;
	char text[32];
	int i;

	for (i = 0; !__atomic_load_n(&pub->stop, __ATOMIC_RELAXED); i++) {
		snprintf(text, sizeof(text), "m %d\n", i);
		if (http_server__publish(pub->srv, text, strlen(text)))
			break;
	}
	return NULL;
}

static void test_http_server_publish_while_scraping(void **state)
{
	struct publisher pub = { 0 };
	z_stream z = { 0 };
	pthread_t thread;
	char out[32];
	struct reply r;
	int i;

	(void)state;
	assert_int_equal(http_server__start("127.0.0.1:0", &pub.srv), 0);
	/* Scrapes start after a first snapshot, as in the daemon (503 before it). */
	assert_int_equal(http_server__publish(pub.srv, "m -1\n", 5), 0);
	assert_int_equal(pthread_create(&thread, NULL, publish_loop, &pub), 0);
	for (i = 0; i < 200; i++) {
		fetch(http_server__port(pub.srv), GET_METRICS "Accept-Encoding: gzip\r\n\r\n", &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
		z.next_in = (Bytef *)r.body;
		z.avail_in = r.body_len;
		z.next_out = (Bytef *)out;
		z.avail_out = sizeof(out) - 1;
		assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
		out[z.total_out] = '\0';
		inflateEnd(&z);
		/* Every answer is one whole snapshot. */
		if (z.total_out && (strncmp(out, "m ", 2) || out[z.total_out - 1] != '\n'))
			fail_msg("torn snapshot '%s'", out);
		reply_free(&r);
	}
	__atomic_store_n(&pub.stop, 1, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	http_server__stop(pub.srv);
}

static void test_http_server_errors(void **state)
{
	struct http_server *srv = NULL, *srv2 = NULL;
	char spec[32], huge[32 * 1024];
	struct reply r;
	int port;

	(void)state;
	assert_int_equal(http_server__start("127.0.0.1:0", &srv), 0);
	port = http_server__port(srv);

	fetch(port, "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 404);
	reply_free(&r);

	fetch(port,
	      "POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
	      "Content-Length: 5\r\n\r\nhello",
	      &r);
	assert_int_equal(r.status, 405);
	assert_header(&r, "Allow", "GET, HEAD");
	reply_free(&r);

	fetch(port, "DELETE / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	assert_header(&r, "Allow", "GET, HEAD");
	reply_free(&r);

	/* Headers beyond the connection memory limit are refused, and the server lives on. */
	memset(huge, 'a', sizeof(huge));
	memcpy(huge, GET_METRICS "X: ", strlen(GET_METRICS "X: "));
	strcpy(huge + sizeof(huge) - 5, "\r\n\r\n");
	fetch(port, huge, &r);
	assert_int_equal(r.status, 431);
	reply_free(&r);

	/* A GET with a body is not read: the connection is dropped without an answer. */
	fetch(port, GET_METRICS "Content-Length: 5\r\n\r\nhello", &r);
	assert_int_equal(r.status, 0);
	reply_free(&r);

	assert_int_equal(http_server__publish(srv, "x 1\n", 4), 0);
	fetch(port, "garbage\r\n\r\n", &r);
	assert_int_not_equal(r.status, 200);
	reply_free(&r);

	fetch(port, GET_METRICS "\r\n", &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);

	snprintf(spec, sizeof(spec), "127.0.0.1:%d", port);
	assert_int_equal(http_server__start(spec, &srv2), -EADDRINUSE);
	assert_null(srv2);
	assert_int_equal(http_server__start("localhost:80", &srv2), -EINVAL);
	assert_int_equal(http_server__start("192.0.2.1:0", &srv2), -EADDRNOTAVAIL);
	assert_null(srv2);

	http_server__stop(srv);
	/* The port is free again once stopped. */
	assert_int_equal(http_server__start(spec, &srv), 0);
	http_server__stop(srv);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The API: a 503 with Retry-After before any snapshot, then answers from the published one. */
static void test_http_server_serves_the_api(void **state)
{
	struct process_limits limits = { 0 };
	struct process_table *pt = process_table__new(&limits, NULL);
	struct report_input in = { .procs = pt };
	struct http_server *srv = NULL;
	struct api_snapshot *snap;
	struct reply r;
	uint64_t t0;

	(void)state;
	assert_non_null(process_table__add(pt, 42, "svc", "/svc"));
	assert_int_equal(http_server__start("127.0.0.1:0", &srv), 0);
	assert_false(http_server__api_wanted(srv, mono_ns()));
	t0 = mono_ns();
	fetch(http_server__port(srv), "GET /api/v1/processes HTTP/1.0\r\n\r\n", &r);
	/* It waited for a snapshot, up to 3 s, on the HTTP thread. */
	assert_true(mono_ns() - t0 >= 2900000000ull);
	assert_int_equal(r.status, 503);
	assert_header(&r, "Content-Type", "application/json");
	assert_header(&r, "Retry-After", "1");
	assert_string_equal(r.body, "{\"error\":\"no snapshot yet (the daemon is still attaching), "
				    "retry\"}\n");
	reply_free(&r);
	/* Asked for: the main loop copies while the last request is recent. */
	assert_true(http_server__api_wanted(srv, mono_ns()));
	assert_false(http_server__api_wanted(srv, mono_ns() + 11000000000ull));

	in.now_ns = mono_ns();
	snap = api_snapshot__new(&in, API_SNAPSHOT_MAX_TASKS);
	assert_non_null(snap);
	http_server__publish_api(srv, snap);
	fetch(http_server__port(srv), "GET /api/v1/processes?pid=42 HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", "application/json");
	assert_non_null(strstr(r.body, "\"processes\":[{\"pid\":42,\"comm\":\"svc\""));
	reply_free(&r);
	fetch(http_server__port(srv), "GET /api/v1/tasks?limit=0 HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "{\"error\":\"invalid limit '0': expected 1 to 1000\"}\n");
	reply_free(&r);
	fetch(http_server__port(srv), "GET /api/v2/tasks HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 404);
	assert_header(&r, "Content-Type", "application/json");
	reply_free(&r);
	/* Dropping the snapshot (NULL) is allowed; stop frees a published one. */
	http_server__publish_api(srv, NULL);
	http_server__publish_api(srv, api_snapshot__new(&in, 10));
	http_server__stop(srv);
	process_table__free(pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_server_parse_addr),
		cmocka_unit_test(test_http_server_parse_addr_rejects),
		cmocka_unit_test(test_http_server_route),
		cmocka_unit_test(test_http_server_serves_metrics),
		cmocka_unit_test(test_http_server_serves_latest_snapshot),
		cmocka_unit_test(test_http_server_keeps_connections_alive),
		cmocka_unit_test(test_http_server_publish_while_scraping),
		cmocka_unit_test(test_http_server_errors),
		cmocka_unit_test(test_http_server_serves_the_api),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
