// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include "container_id.h"

/* How each engine names a container's scope: "docker-<id>.scope" and the like. */
static const char *const scope_prefixes[] = {
	"docker-", "cri-containerd-", "crio-", "libpod-", "containerd-", "nerdctl-",
};

static bool hex_id(const char *s, size_t n)
{
	size_t i;

	if (n != CONTAINER_ID_LEN)
		return false;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n >= m && !memcmp(s + n - m, suffix, m);
}

/* One path component [s, s + n): its id into buf, or false. */
static bool component_id(const char *s, size_t n, char *buf)
{
	size_t i, p;

	if (ends_with(s, n, ".scope"))
		n -= strlen(".scope");
	for (i = 0; i < sizeof(scope_prefixes) / sizeof(scope_prefixes[0]); i++) {
		p = strlen(scope_prefixes[i]);
		if (n > p && !memcmp(s, scope_prefixes[i], p)) {
			s += p;
			n -= p;
			break;
		}
	}
	if (!hex_id(s, n))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return true;
}

/* Calls found on components from the innermost out until it returns true. */
static void components_inward_out(const char *path,
				  bool (*found)(const char *s, size_t n, void *ctx), void *ctx)
{
	const char *end = path + strlen(path), *start;

	while (end > path) {
		start = end;
		while (start > path && start[-1] != '/')
			start--;
		if (end > start && found(start, (size_t)(end - start), ctx))
			return;
		end = start > path ? start - 1 : path;
	}
}

static bool conmon(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i + 7 <= n; i++)
		if (!memcmp(s + i, "conmon-", 7))
			return true;
	return false;
}

static bool found_id(const char *s, size_t n, void *ctx)
{
	/* conmon's scope (cri-o, podman) holds the monitor, not the container. */
	if (conmon(s, n))
		return false;
	return component_id(s, n, ctx);
}

void container_id__parse(const char *cgroup, char buf[CONTAINER_ID_LEN + 1])
{
	buf[0] = '\0';
	components_inward_out(cgroup, found_id, buf);
}

struct unit_buf {
	char *buf;
	size_t len;
};

static bool found_unit(const char *s, size_t n, void *ctx)
{
	struct unit_buf *u = ctx;

	if (!ends_with(s, n, ".service") && !ends_with(s, n, ".scope"))
		return false;
	if (n >= u->len)
		return true;
	memcpy(u->buf, s, n);
	u->buf[n] = '\0';
	return true;
}

void container_id__unit(const char *cgroup, char *buf, size_t len)
{
	struct unit_buf u = { buf, len };

	if (len)
		buf[0] = '\0';
	components_inward_out(cgroup, found_unit, &u);
}
