// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target whose children allocate. Usage: safety_fork [CHILDREN]
 *
 * Prints "ready PID" and waits for SIGUSR1. The parent then keeps three 5555-byte blocks and
 * forks CHILDREN children (default 10) one after the other. Each child frees the parent's
 * three blocks (its copies), keeps a 777777-byte block, churns 1000 malloc/free pairs and
 * exits 0. The parent waits for each, keeps one 4444-byte block and prints its own heap as
 * "truth {...}" with how many children exited 0, then "done", and waits for SIGTERM.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PARENT_BLOCK 5555
#define PARENT_LAST_BLOCK 4444
#define CHILD_BLOCK 777777

static void child(void **kept)
{
	void *p;
	int i;

	for (i = 0; i < 3; i++)
		free(kept[i]);
	p = malloc(CHILD_BLOCK);
	if (!p)
		_exit(3);
	memset(p, 0x77, CHILD_BLOCK);
	for (i = 0; i < 1000; i++) {
		void *q = malloc(16 + (size_t)i * 7);

		if (!q)
			_exit(3);
		free(q);
	}
	exit(0);
}

int main(int argc, char **argv)
{
	int children = argc > 1 ? atoi(argv[1]) : 10, ok = 0, i, sig, status;
	void *kept[3], *last;
	sigset_t set;
	pid_t pid;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("ready %d\n", getpid());
	fflush(stdout);
	sigwait(&set, &sig);
	if (sig == SIGTERM)
		return 0;

	for (i = 0; i < 3; i++) {
		kept[i] = malloc(PARENT_BLOCK);
		if (!kept[i])
			abort();
		memset(kept[i], 0x55, PARENT_BLOCK);
	}
	for (i = 0; i < children; i++) {
		pid = fork();
		if (pid < 0)
			abort();
		if (!pid)
			child(kept);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status))
			ok++;
	}
	last = malloc(PARENT_LAST_BLOCK);
	if (!last)
		abort();
	printf("truth {\"pid\": %d, \"tid\": %ld, \"live_bytes\": %d, \"live_allocations\": 4, "
	       "\"allocated_bytes_total\": %d, \"allocations_total\": 4, \"children\": %d, "
	       "\"children_ok\": %d}\ndone\n",
	       getpid(), (long)syscall(SYS_gettid), 3 * PARENT_BLOCK + PARENT_LAST_BLOCK,
	       3 * PARENT_BLOCK + PARENT_LAST_BLOCK, children, ok);
	fflush(stdout);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigwait(&set, &sig);
	return 0;
}
