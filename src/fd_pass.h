/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A message and file descriptors over a Unix socket (SCM_RIGHTS). */
#ifndef MEMSCOPED_FD_PASS_H
#define MEMSCOPED_FD_PASS_H

#include <stddef.h>

#define FD_PASS_MAX 16

/* Sends len bytes of data with nfds (<= FD_PASS_MAX) descriptors; 0 or -errno. */
int fd_pass__send(int sock, const void *data, size_t len, const int *fds, size_t nfds);
/*
 * Receives one message of exactly len bytes and up to FD_PASS_MAX descriptors (close-on-exec)
 * into fds; returns how many, -EAGAIN if none is waiting (non-blocking socket), -EPIPE at end
 * of stream, or -errno. A short message is -EIO (its descriptors are closed).
 */
int fd_pass__recv(int sock, void *data, size_t len, int *fds);

#endif
