// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer: what a scraper sends. Input: method NUL url NUL accept-encoding [NUL listen spec];
 * a missing accept-encoding is NULL (no header), a missing spec reuses the url.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include "http_server.h"

static const int expected_status[] = {
	[HTTP_ROUTE_METRICS] = 200,
	[HTTP_ROUTE_INDEX] = 200,
	[HTTP_ROUTE_NOT_FOUND] = 404,
	[HTTP_ROUTE_BAD_METHOD] = 405,
	[HTTP_ROUTE_API] = 200,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addr(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;

	if (http_server__parse_addr(spec, &ss, &len))
		return;
	assert((ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
	       (ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *part[4] = { NULL };
	size_t nparts = 0, i = 0;
	bool gzip = false;
	int route, status = 0;
	char *buf;

	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	while (nparts < 4 && i <= size) {
		part[nparts++] = buf + i;
		i += strlen(buf + i) + 1;
	}

	route = http_server__route(part[0], part[1], part[2], &status, &gzip);
	if (!part[1]) {
		assert(route == -EINVAL);
	} else {
		assert(route >= HTTP_ROUTE_METRICS && route <= HTTP_ROUTE_API);
		assert(status == expected_status[route]);
		assert(!gzip || route == HTTP_ROUTE_METRICS);
	}

	check_addr(part[3] ? part[3] : part[1] ? part[1] : part[0]);
	free(buf);
	return 0;
}
