// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A target for what a --freeze does to blocked system calls: one thread in epoll_wait with a
 * one-hour timeout on an eventfd nobody writes, one in read on a pipe nobody writes. Neither
 * call can return but by an interruption.
 * Usage: freeze_eintr
 *
 * Prints "ready PID", waits for SIGUSR1, starts both threads, then prints "truth {...}" (the
 * two threads' tids and the addresses of the counts: epoll_wait's returns, those with EINTR,
 * read's returns) and "done", and runs until SIGTERM.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile uint64_t epoll_returns, epoll_eintr, read_returns;
static volatile int epoll_tid, read_tid;
static volatile sig_atomic_t go;
static int epfd, pipefd[2];

static void on_go(int sig)
{
	(void)sig;
	go = 1;
}

static void *epoller(void *arg)
{
	struct epoll_event ev;

	(void)arg;
	epoll_tid = (int)syscall(SYS_gettid);
	for (;;) {
		int r = epoll_wait(epfd, &ev, 1, 3600 * 1000);

		epoll_eintr += r < 0 && errno == EINTR;
		epoll_returns++;
	}
	return NULL;
}

static void *reader(void *arg)
{
	char c;

	(void)arg;
	read_tid = (int)syscall(SYS_gettid);
	for (;;) {
		if (read(pipefd[0], &c, 1))
			read_returns++;
	}
	return NULL;
}

int main(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int efd = eventfd(0, 0);
	pthread_t t;

	signal(SIGUSR1, on_go);
	epfd = epoll_create1(0);
	if (efd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) || pipe(pipefd))
		return 1;
	printf("ready %d\n", getpid());
	fflush(stdout);
	while (!go)
		pause();
	pthread_create(&t, NULL, epoller, NULL);
	pthread_create(&t, NULL, reader, NULL);
	while (!epoll_tid || !read_tid)
		usleep(1000);
	printf("truth {\"epoll_tid\": %d, \"read_tid\": %d, \"epoll_returns\": %lu, "
	       "\"epoll_eintr\": %lu, \"read_returns\": %lu}\n",
	       epoll_tid, read_tid, (unsigned long)(uintptr_t)&epoll_returns,
	       (unsigned long)(uintptr_t)&epoll_eintr, (unsigned long)(uintptr_t)&read_returns);
	printf("done\n");
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}
