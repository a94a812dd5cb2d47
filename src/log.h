/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The daemon's log: stderr, one line, prefixed "memscoped: ". Library code never logs. */
#ifndef MEMSCOPED_LOG_H
#define MEMSCOPED_LOG_H

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
