// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Serves the latest published metrics text at /metrics (libmicrohttpd). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

#include "api_render.h"
#include "api_snapshot.h"
#include "http_server.h"

/* Scrapers are a few Prometheus servers and curl: small limits, requests are untrusted. */
#define CONN_LIMIT 16
#define IP_CONN_LIMIT 8
#define CONN_TIMEOUT_S 10
#define CONN_MEMORY_LIMIT (16 * 1024)

static const char metrics_type[] = "text/plain; version=0.0.4; charset=utf-8";
static const char index_html[] =
	"<html><head><title>memscoped</title></head>\n"
	"<body><h1>memscoped</h1><p><a href=\"/metrics\">Metrics</a></p>\n"
	"<p>JSON API: <a href=\"/api/v1/processes\">/api/v1/processes</a>, "
	"<a href=\"/api/v1/tasks\">/api/v1/tasks</a></p></body></html>\n";
static const char json_type[] = "application/json";
/* The main loop copies the tasks for the API while it was asked for within this long. */
#define API_WANTED_NS (10 * 1000000000ull)
/* An API request takes a snapshot at most this old, else waits for the next... */
#define API_FRESH_NS (2500 * 1000000ull)
/* ...this long at most (the main loop publishes every second while the API is wanted). */
#define API_WAIT_NS (3000 * 1000000ull)

/* One published text; lives while the server or a response still uses it. */
struct snapshot {
	unsigned int refs; /* atomic */
	char *text;
	size_t len;
	char *gz; /* gzip of text, made by the first scrape that asks for it */
	size_t gz_len;
	bool gz_failed;
};

struct http_server {
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock; /* guards cur and the gz fields of every snapshot */
	struct snapshot *cur;
	int port;
	bool published;		      /* until the first publish, /metrics answers 503 */
	struct api_snapshot *api;     /* guarded by lock; NULL until the first API publish */
	pthread_cond_t api_published; /* CLOCK_MONOTONIC */
	uint64_t api_requested_ns;    /* atomic */
};

static int parse_port(const char *s, in_port_t *ret_port)
{
	unsigned long port = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		port = port * 10 + (*s - '0');
		if (port > 65535)
			return -EINVAL;
	}
	*ret_port = port;
	return 0;
}

int http_server__parse_addr(const char *spec, struct sockaddr_storage *ret_addr, socklen_t *ret_len)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	char host[INET6_ADDRSTRLEN];
	const char *port, *end;
	in_port_t num;
	socklen_t len;

	if (!spec)
		return -EINVAL;
	if (spec[0] == '[') {
		end = strchr(spec, ']');
		if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec + 1, end - spec - 1);
		host[end - spec - 1] = '\0';
		port = end + 2;
	} else {
		end = strchr(spec, ':');
		if (end) {
			if ((size_t)(end - spec) >= sizeof(host))
				return -EINVAL;
			memcpy(host, spec, end - spec);
			host[end - spec] = '\0';
			port = end + 1;
		} else {
			strcpy(host, "127.0.0.1");
			port = spec;
		}
	}
	if (parse_port(port, &num))
		return -EINVAL;

	if (spec[0] == '[') {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(num);
		len = sizeof(*sin6);
	} else {
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(num);
		len = sizeof(*sin);
	}
	*ret_addr = ss;
	*ret_len = len;
	return 0;
}

static bool q_is_zero(const char *s)
{
	if (*s != '0')
		return false;
	for (s++; *s && !strchr(" \t;,", *s); s++) {
		if (*s != '.' && *s != '0')
			return false;
	}
	return true;
}

/* Accept-Encoding (RFC 9110 12.5.3): "gzip" or "x-gzip", else "*", unless its q is 0. */
static bool accepts_gzip(const char *s)
{
	int gzip = -1, star = -1; /* -1: not listed, 0: refused, 1: accepted */

	if (!s)
		return false;
	while (*s) {
		const char *coding;
		size_t n;
		int q = 1;

		s += strspn(s, " \t,");
		coding = s;
		n = strcspn(s, " \t;,");
		s += n;
		while (*s && *s != ',') {
			s += strspn(s, " \t;");
			if ((s[0] == 'q' || s[0] == 'Q') && s[1] == '=')
				q = !q_is_zero(s + 2);
			s += strcspn(s, ";,");
		}
		if ((n == 4 && !strncasecmp(coding, "gzip", 4)) ||
		    (n == 6 && !strncasecmp(coding, "x-gzip", 6)))
			gzip = q;
		else if (n == 1 && coding[0] == '*')
			star = q;
	}
	return gzip >= 0 ? gzip : star > 0;
}

int http_server__route(const char *method, const char *url, const char *accept_encoding,
		       int *ret_status, bool *ret_gzip)
{
	size_t n;
	int route;

	if (!method || !url)
		return -EINVAL;

	n = strcspn(url, "?");
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		route = HTTP_ROUTE_BAD_METHOD;
	else if (n == strlen("/metrics") && !strncmp(url, "/metrics", n))
		route = HTTP_ROUTE_METRICS;
	else if (n == 1 && url[0] == '/')
		route = HTTP_ROUTE_INDEX;
	else if (n >= strlen("/api/") && !strncmp(url, "/api/", strlen("/api/")))
		route = HTTP_ROUTE_API;
	else
		route = HTTP_ROUTE_NOT_FOUND;

	switch (route) {
	case HTTP_ROUTE_METRICS:
	case HTTP_ROUTE_INDEX:
	case HTTP_ROUTE_API:
		*ret_status = MHD_HTTP_OK;
		break;
	case HTTP_ROUTE_NOT_FOUND:
		*ret_status = MHD_HTTP_NOT_FOUND;
		break;
	default:
		*ret_status = MHD_HTTP_METHOD_NOT_ALLOWED;
		break;
	}
	*ret_gzip = route == HTTP_ROUTE_METRICS && accepts_gzip(accept_encoding);
	return route;
}

static struct snapshot *snapshot__new(const char *text, size_t len)
{
	struct snapshot *s;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->text = malloc(len + 1);
	if (!s->text) {
		free(s);
		return NULL;
	}
	memcpy(s->text, text, len);
	s->text[len] = '\0';
	s->len = len;
	s->refs = 1;
	return s;
}

static void snapshot__put(void *cls)
{
	struct snapshot *s = cls;

	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL))
		return;
	free(s->gz);
	free(s->text);
	free(s);
}

static int gzip_compress(const char *in, size_t len, char **ret_out, size_t *ret_len)
{
	z_stream z = { 0 };
	size_t cap;
	char *out;
	int ret;

	if (len > UINT_MAX)
		return -E2BIG;
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	/* Enough for a single deflate(Z_FINISH), gzip header and trailer included. */
	cap = deflateBound(&z, len);
	out = malloc(cap);
	if (!out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = len;
	z.next_out = (Bytef *)out;
	z.avail_out = cap;
	ret = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (ret != Z_STREAM_END) {
		free(out);
		return -EIO;
	}
	*ret_out = out;
	*ret_len = z.total_out;
	return 0;
}

/* A reference to the current snapshot, its gzip made first if asked for and possible. */
static struct snapshot *snapshot_get(struct http_server *srv, bool gzip)
{
	struct snapshot *s;

	pthread_mutex_lock(&srv->lock);
	s = srv->cur;
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	if (gzip && !s->gz && !s->gz_failed)
		s->gz_failed = gzip_compress(s->text, s->len, &s->gz, &s->gz_len) != 0;
	pthread_mutex_unlock(&srv->lock);
	return s;
}

static struct MHD_Response *metrics_response(struct http_server *srv, bool gzip)
{
	struct MHD_Response *resp;
	struct snapshot *s;
	bool ok;

	s = snapshot_get(srv, gzip);
	/* Without a gzip (out of memory), identity is still an acceptable answer. */
	gzip = gzip && s->gz;
	resp = MHD_create_response_from_buffer_with_free_callback_cls(
		gzip ? s->gz_len : s->len, gzip ? s->gz : s->text, snapshot__put, s);
	if (!resp) {
		snapshot__put(s);
		return NULL;
	}
	ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, metrics_type) &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding") &&
	     (!gzip || MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip"));
	if (!ok) {
		MHD_destroy_response(resp);
		return NULL;
	}
	return resp;
}

static struct MHD_Response *static_response(const char *body, const char *type)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return NULL;
	if (!MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type)) {
		MHD_destroy_response(resp);
		return NULL;
	}
	return resp;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A reference to an API snapshot taken at most API_FRESH_NS ago if one comes in time. */
static struct api_snapshot *api_get(struct http_server *srv)
{
	uint64_t now = monotonic_ns(), deadline = now + API_WAIT_NS;
	struct api_snapshot *s;
	struct timespec ts;

	__atomic_store_n(&srv->api_requested_ns, now, __ATOMIC_RELAXED);
	pthread_mutex_lock(&srv->lock);
	while ((!srv->api || srv->api->taken_ns + API_FRESH_NS < now) && now < deadline) {
		ts.tv_sec = (time_t)(deadline / 1000000000ull);
		ts.tv_nsec = (long)(deadline % 1000000000ull);
		pthread_cond_timedwait(&srv->api_published, &srv->lock, &ts);
		now = monotonic_ns();
	}
	/* A stale one (the daemon is stopping) is better than none. */
	s = srv->api ? api_snapshot__get(srv->api) : NULL;
	pthread_mutex_unlock(&srv->lock);
	return s;
}

struct api_args {
	struct api_arg args[API_MAX_ARGS + 1];
	size_t n;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct api_args *a = cls;

	(void)kind;
	if (a->n <= API_MAX_ARGS)
		a->args[a->n] = (struct api_arg){ key, value };
	a->n++;
	return MHD_YES;
}

static void free_body(void *body)
{
	free(body);
}

static struct MHD_Response *api_response(struct http_server *srv, struct MHD_Connection *conn,
					 const char *url, int *ret_status)
{
	struct api_args args = { .n = 0 };
	struct MHD_Response *resp;
	struct api_snapshot *s;
	char path[64], *body;
	int endpoint, status;
	size_t len;

	snprintf(path, sizeof(path), "%.*s", (int)strcspn(url, "?"), url);
	endpoint = api_render__endpoint(path);
	if (endpoint < 0) {
		status = MHD_HTTP_NOT_FOUND;
		body = api_render__error(
			"no such API path (api_version 1 has /api/v1/processes and "
			"/api/v1/tasks)",
			&len);
	} else if (!(s = api_get(srv))) {
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
		body = api_render__error("no snapshot yet (the daemon is still attaching), retry",
					 &len);
	} else {
		MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
		if (api_render__answer(s, (enum api_endpoint)endpoint, args.args, args.n, &status,
				       &body, &len))
			body = NULL;
		api_snapshot__put(s);
	}
	if (!body)
		return NULL;
	resp = MHD_create_response_from_buffer_with_free_callback(len, body, free_body);
	if (!resp) {
		free(body);
		return NULL;
	}
	if (!MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, json_type) ||
	    (status == MHD_HTTP_SERVICE_UNAVAILABLE &&
	     !MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1"))) {
		MHD_destroy_response(resp);
		return NULL;
	}
	*ret_status = status;
	return resp;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	static int seen;
	struct http_server *srv = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	const char *ae;
	int route, status;
	bool gzip;

	(void)version;
	(void)upload_data;

	ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	route = http_server__route(method, url, ae, &status, &gzip);
	/*
	 * A response queued on the first call, before MHD has read the whole request, makes MHD
	 * discard the body and close the connection: right for a 405, not for a scrape, which
	 * would lose keep-alive. So a GET or HEAD is answered on the second call.
	 */
	if (!*con_cls && route != HTTP_ROUTE_BAD_METHOD) {
		*con_cls = &seen;
		return MHD_YES;
	}
	/* A GET or HEAD with a body: not worth reading, drop the connection. */
	if (*upload_data_size)
		return MHD_NO;

	switch (route) {
	case HTTP_ROUTE_METRICS:
		/* Not an empty 200: Prometheus would take that as every series gone. */
		pthread_mutex_lock(&srv->lock);
		if (!srv->published)
			status = MHD_HTTP_SERVICE_UNAVAILABLE;
		pthread_mutex_unlock(&srv->lock);
		if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
			resp = static_response("metrics not rendered yet\n",
					       "text/plain; charset=utf-8");
		else
			resp = metrics_response(srv, gzip);
		break;
	case HTTP_ROUTE_INDEX:
		resp = static_response(index_html, "text/html; charset=utf-8");
		break;
	case HTTP_ROUTE_API:
		resp = api_response(srv, conn, url, &status);
		break;
	case HTTP_ROUTE_NOT_FOUND:
		resp = static_response("not found\n", "text/plain; charset=utf-8");
		break;
	default:
		resp = static_response("method not allowed\n", "text/plain; charset=utf-8");
		if (resp && !MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD")) {
			MHD_destroy_response(resp);
			resp = NULL;
		}
		break;
	}
	if (!resp)
		return MHD_NO;
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Returns the listening socket or -errno. */
static int listen_on(const struct sockaddr_storage *addr, socklen_t len, int *ret_port)
{
	int fd, port, err, one = 1;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)addr, len) || listen(fd, CONN_LIMIT)) {
		err = -errno;
		close(fd);
		return err;
	}
	port = bound_port(fd);
	if (port < 0) {
		close(fd);
		return port;
	}
	*ret_port = port;
	return fd;
}

static int init_cond(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int err;

	err = pthread_condattr_init(&attr);
	if (err)
		return -err;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return -err;
}

int http_server__start(const char *spec, struct http_server **ret_srv)
{
	/* An array rather than varargs: each value gets the C type MHD expects. */
	struct MHD_OptionItem options[] = {
		{ MHD_OPTION_LISTEN_SOCKET, -1, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, CONN_LIMIT, NULL },
		{ MHD_OPTION_PER_IP_CONNECTION_LIMIT, IP_CONN_LIMIT, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT_S, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONN_MEMORY_LIMIT, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD;
	struct sockaddr_storage addr;
	struct http_server *srv;
	socklen_t len;
	int err, fd;

	err = http_server__parse_addr(spec, &addr, &len);
	if (err)
		return err;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	err = pthread_mutex_init(&srv->lock, NULL);
	if (err) {
		err = -err;
		goto err_free;
	}
	err = init_cond(&srv->api_published);
	if (err)
		goto err_destroy_lock;
	srv->cur = snapshot__new("", 0);
	if (!srv->cur) {
		err = -ENOMEM;
		goto err_destroy_cond;
	}

	fd = listen_on(&addr, len, &srv->port);
	if (fd < 0) {
		err = fd;
		goto err_put_snapshot;
	}
	options[0].value = fd;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	/*
	 * MHD owns fd from here, even when it fails: 0.9.75 closes it on most failure paths but
	 * not all (not when epoll_create fails). Closing it again could close a descriptor another
	 * thread just got; a rare leak at startup is the lesser evil.
	 */
	errno = 0;
	srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle_request, srv, MHD_OPTION_ARRAY,
				    options, MHD_OPTION_END);
	if (!srv->mhd) {
		err = errno ? -errno : -EIO;
		goto err_put_snapshot;
	}
	*ret_srv = srv;
	return 0;

err_put_snapshot:
	snapshot__put(srv->cur);
err_destroy_cond:
	pthread_cond_destroy(&srv->api_published);
err_destroy_lock:
	pthread_mutex_destroy(&srv->lock);
err_free:
	free(srv);
	return err;
}

void http_server__stop(struct http_server *srv)
{
	if (!srv)
		return;
	/* Joins the polling thread and destroys every response, dropping their references. */
	MHD_stop_daemon(srv->mhd);
	snapshot__put(srv->cur);
	api_snapshot__put(srv->api);
	pthread_cond_destroy(&srv->api_published);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

int http_server__port(const struct http_server *srv)
{
	return srv->port;
}

int http_server__publish(struct http_server *srv, const char *text, size_t len)
{
	struct snapshot *s, *old;

	/* Copied outside the lock: a scrape waits at most for a pointer swap. */
	s = snapshot__new(text, len);
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&srv->lock);
	old = srv->cur;
	srv->cur = s;
	srv->published = true;
	pthread_mutex_unlock(&srv->lock);
	snapshot__put(old);
	return 0;
}

void http_server__publish_api(struct http_server *srv, struct api_snapshot *snap)
{
	struct api_snapshot *old;

	pthread_mutex_lock(&srv->lock);
	old = srv->api;
	srv->api = snap;
	pthread_cond_broadcast(&srv->api_published);
	pthread_mutex_unlock(&srv->lock);
	api_snapshot__put(old);
}

bool http_server__api_wanted(struct http_server *srv, uint64_t now_ns)
{
	uint64_t at = __atomic_load_n(&srv->api_requested_ns, __ATOMIC_RELAXED);

	return at && now_ns - at < API_WANTED_NS;
}
