// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * proc__use_grant: a process read through descriptors (proc.h), as the daemon reads one the
 * attach helper attached. Our own /proc/self files stand in for the target's, under a pid
 * that exists nowhere, so that every read provably goes through the descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

#define NO_PID 0x3ffffffe /* above pid_max: /proc has no such directory */

static const char marker[] = "memscoped grant marker";

struct fixture {
	struct proc_grant g;
	char *paths[1];
	int fds[1];
	char *self;
};

static int grant_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || proc__exe(getpid(), &f->self))
		return -1;
	f->g.pid = NO_PID;
	f->g.maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	f->g.mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	f->g.root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	f->g.exe = f->self;
	f->paths[0] = f->self;
	f->fds[0] = open(f->self, O_RDONLY | O_CLOEXEC);
	f->g.paths = f->paths;
	f->g.fds = f->fds;
	f->g.nobjects = 1;
	if (f->g.maps_fd < 0 || f->g.mem_fd < 0 || f->g.root_fd < 0 || f->fds[0] < 0)
		return -1;
	proc__use_grant(&f->g);
	*state = f;
	return 0;
}

static int grant_teardown(void **state)
{
	struct fixture *f = *state;

	proc__use_grant(NULL);
	close(f->g.maps_fd);
	close(f->g.mem_fd);
	close(f->g.root_fd);
	close(f->fds[0]);
	free(f->self);
	free(f);
	return 0;
}

static int count_line(const char *line, void *ctx)
{
	(void)line;
	(*(int *)ctx)++;
	return 0;
}

static int find_self(const struct proc_mapping *m, void *ctx)
{
	return !strcmp(m->path, ctx);
}

static void test_proc_grant_maps_read_again_each_time(void **state)
{
	struct fixture *f = *state;
	int first = 0, second = 0;
	uint64_t start;

	/* The descriptor is shared: each walk starts from its beginning. */
	assert_int_equal(proc__maps_lines(NO_PID, count_line, &first), 0);
	assert_int_equal(proc__maps_lines(NO_PID, count_line, &second), 0);
	assert_true(first > 3);
	assert_true(second >= first - 2 && second <= first + 2);
	assert_int_equal(proc__mappings(NO_PID, find_self, f->self), 1);
	assert_int_equal(proc__load_start(NO_PID, f->self, &start), 0);
	assert_true(start != 0);
	assert_true(proc__granted(NO_PID));
	assert_false(proc__granted(getpid()));
}

static void test_proc_grant_memory_through_mem(void **state)
{
	char buf[sizeof(marker)];

	(void)state;
	assert_int_equal(proc__read(NO_PID, (uint64_t)(uintptr_t)marker, buf, sizeof(buf)), 0);
	assert_string_equal(buf, marker);
	assert_int_equal(proc__read(NO_PID, 8, buf, sizeof(buf)), -EFAULT);
}

static void test_proc_grant_objects_and_root(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX], want[64];
	char *exe = NULL;
	int fd;

	/* A mapped object: the descriptor the helper opened. */
	assert_int_equal(proc__root_path(NO_PID, f->self, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "/proc/self/fd/%d", f->fds[0]);
	assert_string_equal(path, want);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
	/* Anything else: under the root it opened. */
	assert_int_equal(proc__root_path(NO_PID, "/etc/hostname", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "/proc/self/fd/%d/etc/hostname", f->g.root_fd);
	assert_string_equal(path, want);
	assert_int_equal(proc__exe(NO_PID, &exe), 0);
	assert_string_equal(exe, f->self);
	free(exe);
	fd = proc__open_root(NO_PID);
	assert_true(fd >= 0);
	close(fd);
}

static void test_proc_grant_ends(void **state)
{
	struct fixture *f = *state;
	int n = 0;

	proc__use_grant(NULL);
	assert_true(proc__maps_lines(NO_PID, count_line, &n) < 0);
	assert_false(proc__granted(NO_PID));
	proc__use_grant(&f->g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_grant_maps_read_again_each_time),
		cmocka_unit_test(test_proc_grant_memory_through_mem),
		cmocka_unit_test(test_proc_grant_objects_and_root),
		cmocka_unit_test(test_proc_grant_ends),
	};

	return cmocka_run_group_tests(tests, grant_setup, grant_teardown);
}
