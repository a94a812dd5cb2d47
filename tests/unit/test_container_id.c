// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"
#include "container_id.h"
#include "selector.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void assert_id(const char *cgroup, const char *expected)
{
	char buf[CONTAINER_ID_LEN + 1];

	container_id__parse(cgroup, buf);
	assert_string_equal(buf, expected);
}

static void assert_unit(const char *cgroup, const char *expected)
{
	char buf[256];

	container_id__unit(cgroup, buf, sizeof(buf));
	assert_string_equal(buf, expected);
}

static void test_container_id_docker(void **state)
{
	(void)state;
	assert_id("/system.slice/docker-" ID ".scope", ID);
	assert_id("/docker/" ID, ID);
	assert_unit("/system.slice/docker-" ID ".scope", "docker-" ID ".scope");
}

static void test_container_id_containerd(void **state)
{
	(void)state;
	assert_id("/kubepods.slice/kubepods-burstable.slice/"
		  "kubepods-burstable-pod1f2e3d4c_5b6a_7980_a1b2_c3d4e5f60718.slice/"
		  "cri-containerd-" ID ".scope",
		  ID);
	assert_id("/kubepods/burstable/pod1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718/" ID, ID);
	assert_id("/default/" ID, ID);
}

static void test_container_id_crio(void **state)
{
	(void)state;
	assert_id("/kubepods.slice/kubepods-pod1.slice/crio-" ID ".scope", ID);
	/* conmon's scope is the monitor, not the container. */
	assert_id("/kubepods.slice/kubepods-pod1.slice/crio-conmon-" ID ".scope", "");
}

static void test_container_id_podman(void **state)
{
	(void)state;
	assert_id("/machine.slice/libpod-" ID ".scope/container", ID);
	assert_id("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID ".scope",
		  ID);
	assert_id("/machine.slice/libpod-conmon-" ID ".scope", "");
	assert_unit("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID
		    ".scope/container",
		    "libpod-" ID ".scope");
}

static void test_container_id_none(void **state)
{
	(void)state;
	assert_id("/", "");
	assert_id("", "");
	assert_id("/system.slice/foo.service", "");
	/* 63 digits, upper case, or 65 digits are no id. */
	assert_id("/docker/"
		  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
		  "");
	assert_id("/docker/"
		  "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		  "");
	assert_id("/docker/" ID "0", "");
	assert_unit("/system.slice/foo.service", "foo.service");
	assert_unit("/system.slice/foo.service/worker", "foo.service");
	assert_unit("/user.slice/user-1000.slice", "");
	assert_unit("/", "");
}

static void test_cgroup_contains(void **state)
{
	(void)state;
	assert_true(cgroup__contains("/a", "/a"));
	assert_true(cgroup__contains("/a", "/a/b/c"));
	assert_true(cgroup__contains("/a/", "/a/b"));
	assert_false(cgroup__contains("/a", "/ab"));
	assert_false(cgroup__contains("/a/b", "/a"));
	assert_true(cgroup__contains("/", "/x"));
}

static void test_cgroup_mount_from_mountinfo(void **state)
{
	static const char info[] =
		"22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
		"30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		"31 25 0:27 / /sys/fs/cgroup/unified\\040v2 rw - cgroup2 cgroup2 rw\n";
	char buf[64];
	FILE *f = fmemopen((void *)info, sizeof(info) - 1, "r");

	(void)state;
	assert_int_equal(cgroup__mount_from(f, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/sys/fs/cgroup/unified v2");
	fclose(f);
	f = fmemopen((void *)info, 80, "r");
	assert_int_equal(cgroup__mount_from(f, buf, sizeof(buf)), -ENOENT);
	fclose(f);
}

static void test_cgroup_of_stream(void **state)
{
	static const char cg[] = "12:memory:/x\n0::/system.slice/foo.service\n";
	char buf[64];
	FILE *f = fmemopen((void *)cg, sizeof(cg) - 1, "r");

	(void)state;
	assert_int_equal(cgroup__of_stream(f, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/system.slice/foo.service");
	fclose(f);
}

static void test_selector_match(void **state)
{
	struct selector *s = selector__new();
	struct proc_identity id = { .comm = "nginx", .exe = "/usr/sbin/nginx", .cgroup = "/a/b" };
	char err[128];

	(void)state;
	assert_true(selector__empty(s));
	assert_false(selector__match(s, &id));
	assert_int_equal(selector__add_comm(s, "(", err, sizeof(err)), -EINVAL);
	assert_true(err[0] != '\0');
	assert_int_equal(selector__add_comm(s, "^ngin.$", err, sizeof(err)), 0);
	assert_true(selector__match(s, &id));
	strcpy(id.comm, "xnginx");
	assert_false(selector__match(s, &id));
	assert_int_equal(selector__add_exe(s, "/usr/*/nginx"), 0);
	assert_true(selector__match(s, &id));
	strcpy(id.exe, "/opt/nginx");
	assert_false(selector__match(s, &id));
	assert_int_equal(selector__add_cgroup(s, "/", "relative"), -EINVAL);
	selector__free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_container_id_docker),
		cmocka_unit_test(test_container_id_containerd),
		cmocka_unit_test(test_container_id_crio),
		cmocka_unit_test(test_container_id_podman),
		cmocka_unit_test(test_container_id_none),
		cmocka_unit_test(test_cgroup_contains),
		cmocka_unit_test(test_cgroup_mount_from_mountinfo),
		cmocka_unit_test(test_cgroup_of_stream),
		cmocka_unit_test(test_selector_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
