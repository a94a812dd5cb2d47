// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Targets for daemon mode (tests/e2e/test_daemon.py). Each prints "ready PID" and waits for
 * SIGUSR1 before allocating, so a test can wait for memscoped to attach; each then prints its
 * exact heap since that signal as "truth PID {json}" and waits for SIGTERM.
 *
 *   daemon_worker once     keeps 4 blocks of 1111, 2222, 3333, 4444 bytes, churns 50 pairs.
 *   daemon_worker prefork N
 *                          keeps three 5555-byte blocks, forks N workers ("worker PID" each,
 *                          printed by the worker); each worker waits for SIGUSR1, frees one
 *                          of its copies of the parent's blocks, keeps K+1 blocks of
 *                          1000 * (K + 1) bytes (K: its index), churns 100 pairs and prints its
 *                          truth (the parent's two other copies included, as live blocks).
 *   daemon_worker exec     keeps three 3333-byte blocks, churns 100 pairs, prints "exec" and
 *                          execs itself as "daemon_worker after", which prints "after PID",
 *                          waits for SIGUSR1, keeps five 2222-byte blocks and churns 1000 pairs.
 *   daemon_worker window K F
 *                          forks a child that at once (in its fork window) mallocs K blocks of
 *                          100 + i bytes, prints "child PID" (write(2): no allocation), waits
 *                          for SIGUSR1, frees the first F of them, prints "freed PID" and waits
 *                          for SIGTERM: K + F allocator calls in all.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct truth {
	uint64_t live_bytes, live_allocations, allocated_bytes_total, allocations_total,
		frees_total;
};

static void *keep(struct truth *t, size_t size)
{
	void *p = malloc(size);

	if (!p)
		abort();
	memset(p, 0x5a, size);
	t->live_bytes += size;
	t->live_allocations++;
	t->allocated_bytes_total += size;
	t->allocations_total++;
	return p;
}

static void churn(struct truth *t, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		void *p = malloc(16 + (size_t)i);

		if (!p)
			abort();
		free(p);
		t->allocated_bytes_total += 16 + (size_t)i;
		t->allocations_total++;
		t->frees_total++;
	}
}

static void print_truth(const struct truth *t)
{
	printf("truth %d {\"live_bytes\": %llu, \"live_allocations\": %llu, "
	       "\"allocated_bytes_total\": %llu, \"allocations_total\": %llu, "
	       "\"frees_total\": %llu}\n",
	       (int)getpid(), (unsigned long long)t->live_bytes,
	       (unsigned long long)t->live_allocations,
	       (unsigned long long)t->allocated_bytes_total,
	       (unsigned long long)t->allocations_total, (unsigned long long)t->frees_total);
	fflush(stdout);
}

/* Waits for want; SIGTERM ends the process whatever it waits for. */
static void wait_for(int want)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, want);
	sigaddset(&set, SIGTERM);
	do
		sigwait(&set, &sig);
	while (sig != want && sig != SIGTERM);
	if (sig == SIGTERM && want != SIGTERM)
		_exit(0);
}

static void say(const char *what)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%s %d\n", what, (int)getpid());

	if (write(STDOUT_FILENO, line, (size_t)n) != n)
		_exit(1);
}

static void window_child(int k, int f)
{
	void *blocks[4096];
	int i;

	if (k > 4096 || f > k)
		_exit(2);
	for (i = 0; i < k; i++)
		blocks[i] = malloc(100 + (size_t)i);
	say("child");
	wait_for(SIGUSR1);
	for (i = 0; i < f; i++)
		free(blocks[i]);
	say("freed");
	wait_for(SIGTERM);
	_exit(0);
}

static void worker(int k, void **parent_blocks)
{
	struct truth t = { 0 };
	int i;

	printf("worker %d\n", (int)getpid());
	fflush(stdout);
	wait_for(SIGUSR1);
	free(parent_blocks[0]);
	t.frees_total++;
	/* The parent's two other blocks are this process's too since the fork. */
	t.live_bytes = 2 * 5555;
	t.live_allocations = 2;
	for (i = 0; i <= k; i++)
		keep(&t, 1000 * ((size_t)k + 1));
	churn(&t, 100);
	print_truth(&t);
	wait_for(SIGTERM);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct truth t = { 0 };
	void *blocks[3];
	sigset_t set;
	int i, n;

	if (argc < 2)
		return 2;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("%s %d\n", strcmp(argv[1], "after") ? "ready" : "after", (int)getpid());
	fflush(stdout);
	wait_for(SIGUSR1);
	if (!strcmp(argv[1], "once")) {
		for (i = 1; i <= 4; i++)
			keep(&t, 1111 * (size_t)i);
		churn(&t, 50);
	} else if (!strcmp(argv[1], "prefork") && argc > 2) {
		n = atoi(argv[2]);
		for (i = 0; i < 3; i++)
			blocks[i] = keep(&t, 5555);
		for (i = 0; i < n; i++) {
			pid_t pid = fork();

			if (pid < 0)
				return 1;
			if (pid == 0)
				worker(i, blocks);
		}
	} else if (!strcmp(argv[1], "window") && argc > 3) {
		pid_t pid = fork();

		if (pid < 0)
			return 1;
		if (pid == 0)
			window_child(atoi(argv[2]), atoi(argv[3]));
	} else if (!strcmp(argv[1], "exec")) {
		for (i = 0; i < 3; i++)
			keep(&t, 3333);
		churn(&t, 100);
		print_truth(&t);
		printf("exec\n");
		fflush(stdout);
		execl(argv[0], argv[0], "after", (char *)NULL);
		return 1;
	} else if (!strcmp(argv[1], "after")) {
		for (i = 0; i < 5; i++)
			keep(&t, 2222);
		churn(&t, 1000);
	} else {
		return 2;
	}
	print_truth(&t);
	printf("done\n");
	fflush(stdout);
	wait_for(SIGTERM);
	return 0;
}
