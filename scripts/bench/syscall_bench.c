// SPDX-License-Identifier: GPL-2.0
/*
 * syscall_bench N: N getppid system calls; prints "ns_per_call X" (CPU time of the thread per
 * call). scripts/bench/daemon.py runs it with and without daemon mode's sys_enter program (the
 * fork window's), which every system call on the machine passes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000, i;
	struct timespec a, b;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	printf("ns_per_call %.1f\n",
	       ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n);
	return 0;
}
