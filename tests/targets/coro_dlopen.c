// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Loads a coroutine program as a library after memscoped attached: the runtime's library
 * (libpcl) is mapped only then. Usage: coro_dlopen LIB ARGS...
 *
 * Prints "loader PID" and waits for SIGUSR2; then dlopens LIB (libcoro_pcl_app.so: coro_pcl.c
 * built as a shared object, linked with -lpcl) and runs its coro_pcl_main(ARGS), which
 * prints "ready PID" and goes on as coro_pcl does. SIGTERM while waiting ends it.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int (*app_main)(int, char **);
	sigset_t set;
	void *h;
	int sig;

	if (argc < 2)
		return 2;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	printf("loader %d\n", getpid());
	fflush(stdout);
	sigdelset(&set, SIGUSR1);
	if (sigwait(&set, &sig) || sig == SIGTERM)
		return 0;
	h = dlopen(argv[1], RTLD_NOW);
	app_main = h ? (int (*)(int, char **))dlsym(h, "coro_pcl_main") : NULL;
	if (!app_main) {
		fprintf(stderr, "coro_dlopen: %s\n", dlerror());
		return 1;
	}
	return app_main(argc - 1, argv + 1);
}
