/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Labels from a cgroup v2 path: the container id and the systemd unit. */
#ifndef MEMSCOPED_CONTAINER_ID_H
#define MEMSCOPED_CONTAINER_ID_H

#include <stddef.h>

#define CONTAINER_ID_LEN 64

/*
 * The container id in a cgroup path of docker, containerd (Kubernetes and nerdctl), cri-o or
 * podman: the innermost component that is 64 hex digits, bare or as "<runtime>-<id>.scope";
 * conmon's scopes are not the container. buf (CONTAINER_ID_LEN + 1) is "" when there is none.
 */
void container_id__parse(const char *cgroup, char buf[CONTAINER_ID_LEN + 1]);
/* The innermost systemd unit (".service" or ".scope") in the path into buf, or "". */
void container_id__unit(const char *cgroup, char *buf, size_t len);

#endif
