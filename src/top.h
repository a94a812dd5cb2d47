/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* `memscoped top`: a live task table in the terminal, read from a daemon's JSON API. */
#ifndef MEMSCOPED_TOP_H
#define MEMSCOPED_TOP_H

/* The port a daemon started by `memscoped top -p` tells its parent through this variable's fd. */
#define TOP_PORT_FD_ENV "MEMSCOPED_TOP_PORT_FD"

/* `memscoped top ARGS...` (argv[0] is "top"); returns the exit status. */
int top__main(int argc, char **argv);
/* In a daemon started by top: sends the bound --listen port to top; a no-op otherwise. */
void top__tell_port(int port);

#endif
