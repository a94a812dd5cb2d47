/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Privileges: what memscoped needs to attach, and giving it all up once attached, so that a
 * bug in the HTTP or report path cannot act as root.
 */
#ifndef MEMSCOPED_PRIVILEGE_H
#define MEMSCOPED_PRIVILEGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct passwd;

/* Names the capabilities memscoped lacks into buf (CAP_SETUID/GID only with switch_user). */
int privilege__missing(bool switch_user, char *buf, size_t len);
/* Becomes user for good: groups, gid, uid. Needs CAP_SETUID and CAP_SETGID; 0 or -errno. */
int privilege__become(const struct passwd *user);
/*
 * Drops every capability not in keep (a mask of 1 << CAP_*) from every set, for good, and
 * becomes user if not NULL (-EPERM if that fails). 0 or -errno.
 */
int privilege__drop(uint64_t keep, const struct passwd *user);
/*
 * 0, or -errno if path cannot be written (as PATH.tmp renamed over it) by user (NULL: us;
 * else checked in a child that becomes user). Creates nothing.
 */
int privilege__writable(const char *path, const struct passwd *user);

#endif
