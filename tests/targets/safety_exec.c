// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target that replaces its image. Usage: safety_exec self|true
 *
 * Prints "ready PID" and waits for SIGUSR1, then keeps three 3333-byte blocks, churns 100
 * malloc/free pairs, prints "exec" and execs: "self" runs this program again as
 * "safety_exec after", which prints "after PID", keeps five 2222-byte blocks, churns 1000
 * pairs, prints "done" and waits for SIGTERM; "true" runs /bin/true, which exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void allocate(int keep, size_t size, int churn)
{
	int i;

	for (i = 0; i < keep; i++)
		if (!malloc(size))
			abort();
	for (i = 0; i < churn; i++)
		free(malloc(16 + (size_t)i));
}

int main(int argc, char **argv)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (argc > 1 && !strcmp(argv[1], "after")) {
		printf("after %d\n", getpid());
		allocate(5, 2222, 1000);
		printf("done\n");
		fflush(stdout);
		for (;;) {
			sigwait(&set, &sig);
			if (sig == SIGTERM)
				return 0;
		}
	}
	if (argc < 2)
		return 2;
	printf("ready %d\n", getpid());
	fflush(stdout);
	sigwait(&set, &sig);
	if (sig == SIGTERM)
		return 0;
	allocate(3, 3333, 100);
	printf("exec\n");
	fflush(stdout);
	/* The signal mask survives exec: the new image waits for its signals the same way. */
	if (!strcmp(argv[1], "self"))
		execl("/proc/self/exe", argv[0], "after", (char *)NULL);
	else
		execl("/bin/true", "true", (char *)NULL);
	perror("exec");
	return 1;
}
