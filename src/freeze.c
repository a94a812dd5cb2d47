// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "freeze.h"
#include "proc.h"

enum freeze_stop freeze__classify(int status, int *ret_sig)
{
	int sig, event;

	if (WIFEXITED(status) || WIFSIGNALED(status))
		return FREEZE_STOP_GONE;
	if (!WIFSTOPPED(status))
		return FREEZE_STOP_NONE;
	sig = WSTOPSIG(status);
	event = (unsigned int)status >> 16;
	/* Under PTRACE_SEIZE a group-stop is an event stop carrying the stopping signal. */
	if (event == PTRACE_EVENT_STOP) {
		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
			*ret_sig = sig;
			return FREEZE_STOP_GROUP;
		}
		return FREEZE_STOP_EVENT;
	}
	if (event || sig == (SIGTRAP | 0x80))
		return FREEZE_STOP_EVENT;
	*ret_sig = sig;
	return FREEZE_STOP_SIGNAL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool known(const struct freeze *f, int tid)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (f->v[i].tid == tid)
			return true;
	return false;
}

/* Room for one more thread, before it is seized: a seized thread must be remembered. */
static int reserve(struct freeze *f)
{
	struct freeze_thread *v;
	size_t cap;

	if (f->n < f->cap)
		return 0;
	cap = f->cap ? f->cap * 2 : 16;
	v = realloc(f->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	f->v = v;
	f->cap = cap;
	return 0;
}

/* Drops the threads whose tid is 0. */
static void compact(struct freeze *f)
{
	size_t i, n = 0;

	for (i = 0; i < f->n; i++)
		if (f->v[i].tid)
			f->v[n++] = f->v[i];
	f->n = n;
}

static int tracer_of(int pid)
{
	char path[64], line[256];
	int tracer = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fp = fopen(path, "re");
	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "TracerPid: %d", &tracer) == 1)
			break;
	fclose(fp);
	return tracer;
}

/* Seizes and interrupts every thread of /proc/PID/task not seized yet; *ret_new if any. */
static int seize_new(struct freeze *f, bool *ret_new)
{
	char path[64];
	struct dirent *e;
	bool kthread;
	char state;
	DIR *dir;
	int tid, err = 0;

	*ret_new = false;
	snprintf(path, sizeof(path), "/proc/%d/task", f->pid);
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? -ESRCH : -errno;
	while (!err && (e = readdir(dir))) {
		tid = atoi(e->d_name);
		if (tid <= 0 || known(f, tid))
			continue;
		err = reserve(f);
		if (err)
			break;
		if (ptrace(PTRACE_SEIZE, tid, 0, 0)) {
			err = -errno;
			/*
			 * A thread that exited since the listing is no thread to stop, nor is a
			 * leader that exited before its other threads (a zombie: EPERM).
			 */
			if (err == -ESRCH ||
			    (err == -EPERM && !proc__state(tid, &state, &kthread) &&
			     (state == 'Z' || state == 'X'))) {
				err = 0;
				continue;
			}
			if (err == -EPERM)
				f->tracer = tracer_of(tid);
			break;
		}
		f->v[f->n++] = (struct freeze_thread){ .tid = tid, .state = FREEZE_RUNNING };
		/* ESRCH: exiting; waitpid reports its end. */
		ptrace(PTRACE_INTERRUPT, tid, 0, 0);
		*ret_new = true;
	}
	closedir(dir);
	return err;
}

/* Records what waitpid said of thread t; false if it is to be waited for again. */
static bool settle(struct freeze *f, struct freeze_thread *t, int status)
{
	int sig = 0;

	switch (freeze__classify(status, &sig)) {
	case FREEZE_STOP_GONE:
		f->exited++;
		t->tid = 0;
		return true;
	case FREEZE_STOP_GROUP:
		/* Let go without a signal, it goes back into the group-stop. */
		f->group_stopped++;
		t->state = FREEZE_STOPPED;
		return true;
	case FREEZE_STOP_SIGNAL:
		t->sig = sig;
		t->state = FREEZE_STOPPED;
		return true;
	case FREEZE_STOP_EVENT:
		t->state = FREEZE_STOPPED;
		return true;
	default:
		return false;
	}
}

/* Waits for every seized thread to stop; -ETIMEDOUT past deadline (zombies do not count). */
static int wait_stopped(struct freeze *f, uint64_t deadline)
{
	struct timespec pause = { 0, 20000 };
	struct freeze_thread *t;
	bool waiting, late;
	char state;
	int status;
	size_t i;
	pid_t r;

	for (;;) {
		waiting = false;
		late = now_ms() > deadline;
		for (i = 0; i < f->n; i++) {
			t = &f->v[i];
			if (t->state != FREEZE_RUNNING)
				continue;
			r = waitpid(t->tid, &status, __WALL | WNOHANG);
			if (r < 0) {
				t->tid = 0; /* not ours to wait for any more */
				continue;
			}
			if (r > 0 && settle(f, t, status))
				continue;
			/* An exited leader whose other threads run never stops: it does not run. */
			if (late && !proc__state(t->tid, &state, &(bool){ false }) &&
			    (state == 'Z' || state == 'X')) {
				t->state = FREEZE_ZOMBIE;
				continue;
			}
			waiting = true;
		}
		compact(f);
		if (!waiting)
			return 0;
		if (late)
			return -ETIMEDOUT;
		nanosleep(&pause, NULL);
	}
}

static int read_regs(struct freeze *f)
{
	uint64_t buf[128], *v;
	struct iovec io;
	size_t i, n, cap;

	f->nregs = 0;
	for (i = 0; i < f->n; i++) {
		if (f->v[i].state != FREEZE_STOPPED)
			continue;
		io = (struct iovec){ buf, sizeof(buf) };
		/* Every word of the general registers: a pointer can be in any of them. */
		if (ptrace(PTRACE_GETREGSET, f->v[i].tid, NT_PRSTATUS, &io))
			continue;
		n = io.iov_len / sizeof(buf[0]);
		if (f->nregs + n > f->regs_cap) {
			cap = (f->nregs + n) * 2;
			v = realloc(f->regs, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			f->regs = v;
			f->regs_cap = cap;
		}
		memcpy(f->regs + f->nregs, buf, n * sizeof(buf[0]));
		f->nregs += n;
	}
	return 0;
}

int freeze__stop(struct freeze *f, int pid, bool regs, unsigned int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	bool fresh = true;
	int err = 0, werr;
	size_t i;

	freeze__tidy(f);
	f->pid = pid;
	f->threads = f->group_stopped = f->exited = 0;
	f->tracer = 0;
	f->nregs = 0;
	/*
	 * Until a listing finds no thread not already stopped: a stopped thread creates none, so
	 * then every thread is stopped.
	 */
	while (!err && fresh) {
		err = seize_new(f, &fresh);
		/* Even after a failure: what was seized must stop before it can be let go. */
		werr = wait_stopped(f, deadline);
		if (!err)
			err = werr;
	}
	if (!err && regs)
		err = read_regs(f);
	for (i = 0; i < f->n; i++)
		f->threads += f->v[i].state != FREEZE_RUNNING;
	if (!err && !f->threads)
		err = -ESRCH;
	if (err)
		freeze__thaw(f);
	return err;
}

void freeze__thaw(struct freeze *f)
{
	struct freeze_thread *t;
	int status;
	size_t i;

	for (i = 0; i < f->n; i++) {
		t = &f->v[i];
		if (t->state != FREEZE_STOPPED)
			continue;
		if (!ptrace(PTRACE_DETACH, t->tid, 0, t->sig)) {
			f->signals_reinjected += t->sig != 0;
			t->tid = 0;
			continue;
		}
		/* Killed while stopped: reaped here, or later by freeze__tidy. */
		t->state = FREEZE_RUNNING;
		if (waitpid(t->tid, &status, __WALL | WNOHANG) != 0)
			t->tid = 0;
	}
	compact(f);
}

void freeze__tidy(struct freeze *f)
{
	struct freeze_thread *t;
	enum freeze_stop stop;
	int status, sig;
	size_t i;
	pid_t r;

	for (i = 0; i < f->n; i++) {
		t = &f->v[i];
		if (t->state == FREEZE_STOPPED)
			continue;
		r = waitpid(t->tid, &status, __WALL | WNOHANG);
		if (r == 0)
			continue;
		sig = 0;
		stop = r > 0 ? freeze__classify(status, &sig) : FREEZE_STOP_GONE;
		if (stop == FREEZE_STOP_NONE)
			continue;
		/* Only a signal-delivery-stop's signal is given back; a group-stop stays. */
		if (stop != FREEZE_STOP_SIGNAL)
			sig = 0;
		if (stop != FREEZE_STOP_GONE && !ptrace(PTRACE_DETACH, t->tid, 0, sig))
			f->signals_reinjected += sig != 0;
		t->tid = 0;
	}
	compact(f);
}

void freeze__clear(struct freeze *f)
{
	freeze__thaw(f);
	freeze__tidy(f);
	free(f->v);
	free(f->regs);
	memset(f, 0, sizeof(*f));
}
