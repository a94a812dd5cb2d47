// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* libFuzzer: one line of /proc/PID/maps, whose path column the target chooses. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_mapping m;
	char *line;

	line = malloc(size + 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (proc__parse_maps_line(line, &m)) {
		assert(m.path >= line && m.path < line + size);
		assert(m.path[0] == '/');
		assert(strlen(m.perms) <= 4);
		/* The line ends at its first newline. */
		assert(!strchr(m.path, '\n'));
	}
	free(line);
	return 0;
}
