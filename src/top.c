// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "top.h"

void top__tell_port(int port)
{
	const char *env = getenv(TOP_PORT_FD_ENV);
	int fd;

	if (!env)
		return;
	fd = atoi(env);
	unsetenv(TOP_PORT_FD_ENV);
	if (fd > 2) {
		dprintf(fd, "%d\n", port);
		close(fd);
	}
}

int top__main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 1;
}
