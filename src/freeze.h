/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --freeze: every thread of a process held in a ptrace stop for the length of a snapshot
 * (PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH), never SIGSTOP and never the cgroup freezer:
 * if memscoped dies, the kernel detaches its tracees and they run on. A signal that arrived
 * during the freeze is given back at the detach; a group-stop (someone's SIGSTOP) stays.
 */
#ifndef MEMSCOPED_FREEZE_H
#define MEMSCOPED_FREEZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a waitpid status of a seized thread says. */
enum freeze_stop {
	FREEZE_STOP_GONE,   /* exited or killed */
	FREEZE_STOP_EVENT,  /* PTRACE_INTERRUPT's stop, or another ptrace event */
	FREEZE_STOP_GROUP,  /* group-stop: SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU took effect */
	FREEZE_STOP_SIGNAL, /* signal-delivery-stop: the signal must be given back */
	FREEZE_STOP_NONE,   /* not a status of a stop or an end (continued) */
};

enum freeze_thread_state {
	FREEZE_RUNNING, /* seized and interrupted, not stopped yet */
	FREEZE_STOPPED,
	FREEZE_ZOMBIE, /* exited, not reaped (a leader whose other threads run): does not run */
};

struct freeze_thread {
	int tid;
	int sig; /* of its signal-delivery-stop, re-injected at the detach; 0 none */
	enum freeze_thread_state state;
};

/* One process's freeze; kept across snapshots (threads that did not stop in time linger). */
struct freeze {
	int pid;
	struct freeze_thread *v;
	size_t n, cap;
	/* The last freeze. */
	uint32_t threads, group_stopped, exited;
	uint64_t signals_reinjected; /* since the start */
	int tracer;		     /* -EPERM: the pid already tracing it (TracerPid), or 0 */
	/* Stopped threads' registers (every word of NT_PRSTATUS), when asked for. */
	uint64_t *regs;
	size_t nregs, regs_cap;
};

/* What status (from waitpid) of a seized thread means; *ret_sig: the signal, if one. */
enum freeze_stop freeze__classify(int status, int *ret_sig);

/*
 * Stops every thread of pid, threads created meanwhile included, and reads their registers
 * if regs. 0; -EPERM if it is already traced (f->tracer says by whom), -ETIMEDOUT if a thread
 * did not stop within timeout_ms (the others are let go again), -ESRCH, -errno: then nothing
 * is stopped. Thread-bound: the same thread must call freeze__thaw.
 */
int freeze__stop(struct freeze *f, int pid, bool regs, unsigned int timeout_ms);
/* Lets every stopped thread go, with the signal each was stopping for. */
void freeze__thaw(struct freeze *f);
/* Threads that stopped (or exited) after their freeze ended are let go; call now and then. */
void freeze__tidy(struct freeze *f);
/* Lets everything go, frees f's memory (not f). */
void freeze__clear(struct freeze *f);

#endif
