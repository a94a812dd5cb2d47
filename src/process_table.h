/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Traced processes: their live heap, counters and per-thread totals. */
#ifndef MEMSCOPED_PROCESS_TABLE_H
#define MEMSCOPED_PROCESS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heap_table.h"
#include "task_table.h"

#define COMM_LEN 16

/* Fills a thread's name; optional (the daemon reads /proc, unit tests do not). */
typedef void (*thread_namer)(uint32_t pid, uint32_t tid, char comm[COMM_LEN]);

struct heap_stats {
	uint64_t live_bytes;
	uint64_t live_allocations;
	uint64_t allocated_bytes_total;
	uint64_t allocations_total;
	uint64_t frees_total;
	uint64_t frees_untracked_total;
	uint64_t allocation_failures_total;
	uint64_t untasked_live_bytes;
	uint64_t untasked_allocated_bytes_total;
	uint64_t cell_live_bytes; /* task cells (future state) still live */
};

struct thread_stats {
	uint32_t tid;
	char comm[COMM_LEN];
	uint64_t live_bytes;
	uint64_t live_allocations;
	uint64_t allocated_bytes_total;
	uint64_t allocations_total;
	/* A realloc in flight on this thread: its old block, out of the table until it returns. */
	bool realloc_pending;
	bool realloc_tracked;
	struct heap_block realloc_old;
};

#define PROCESS_RUNTIME_SLOTS 8

/* A runtime's state in one process: opaque here, freed by the runtime's own function. */
struct process_runtime_state {
	const void *key; /* the runtime's, NULL for a free slot */
	void *state;
	void (*free)(void *state);
};

struct process {
	uint32_t pid;
	char comm[COMM_LEN];
	char *exe;
	bool exited;
	bool execed;	   /* it exec'd a new program: figures stop at the exec */
	bool exec_said;	   /* the exec was logged */
	uint64_t start_ns; /* attach time, CLOCK_MONOTONIC */
	/* Daemon mode (src/selector.c, src/watcher.c); 0 or NULL where unknown. */
	uint32_t ns_pid;	    /* its pid in its own pid namespace */
	uint32_t parent;	    /* forked from this target */
	char *cgroup;		    /* v2 path as /proc/PID/cgroup shows it */
	char *container_id;	    /* from the cgroup path */
	char *unit;		    /* systemd unit from the cgroup path */
	uint64_t exec_ns;	    /* the exec (or fork) this record begins at; 0: at start */
	uint64_t ended_ns;	    /* exit or exec seen, CLOCK_MONOTONIC */
	uint64_t attach_latency_ns; /* exec (fork) to probes live */
	/* A forked child's calls before its probes were live (bpf/memscoped.bpf.c fork_pending). */
	uint64_t fork_window_missed;
	bool fork_window_uncounted;   /* they could not be counted */
	bool fork_window_open;	      /* the count may still grow */
	uint64_t fork_window_live_ns; /* its probes are live (the helper said), 0 before */
	uint32_t probes_attached;
	bool attach_pending; /* begun by the helper (exec, fork), its word not yet taken */
	/* The allocator that serves malloc (src/alloc_plan.c); family NULL before attach. */
	struct {
		const char *family;   /* static: the family's name */
		char *object;	      /* as the target maps it */
		uint32_t functions;   /* its probed functions, as the attach line says */
		char *probed;	      /* every family and object probed, for messages */
		double cpu_at_attach; /* the target's CPU seconds then */
		bool blind_warned;    /* the zero-event warning was given */
		bool frees_warned;    /* the missed-frees warning was given */
	} allocator;
	struct heap_stats heap;
	struct task_table *tasks;
	struct process_runtime_state runtimes[PROCESS_RUNTIME_SLOTS];
	struct heap_table *blocks;
	struct thread_stats *threads; /* in order of first appearance */
	size_t nthreads;
	size_t threads_cap;
	uint32_t *thread_index; /* open addressing tid -> index + 1 */
	size_t thread_index_mask;
	size_t max_threads;
	thread_namer namer;
	/* Bounds hit and inconsistencies seen; nonzero means the figures are lower bounds. */
	uint64_t blocks_dropped;	/* --max-allocations reached */
	uint64_t thread_events_dropped; /* events of threads past --max-threads */
	uint64_t blocks_replaced;	/* allocation at a live address: a free was lost */
};

struct process_limits {
	size_t max_allocations; /* per process; 0 = unbounded */
	size_t max_threads;	/* per process; 0 = unbounded */
	size_t max_tasks;	/* per process; 0 = unbounded */
	size_t max_task_types;	/* per process; 0 = unbounded */
	size_t max_ended_tasks; /* ended tasks holding nothing kept for the report; 0 = all */
};

struct process_table;

struct process_table *process_table__new(const struct process_limits *limits, thread_namer namer);
void process_table__free(struct process_table *pt);
struct process *process_table__add(struct process_table *pt, uint32_t pid, const char *comm,
				   const char *exe);
/* The newest record of pid (an exec'd process has one per image). */
struct process *process_table__find(struct process_table *pt, uint32_t pid);
/*
 * A record for pid forked from parent: its comm, exe and labels, and a copy of its live blocks
 * (the child's frees of them are then tracked). NULL if out of memory.
 */
struct process *process_table__fork(struct process_table *pt, const struct process *parent,
				    uint32_t pid, uint64_t ts);
/* Sets the labels of p (copies); 0 or -ENOMEM. */
int process__set_labels(struct process *p, const char *cgroup, const char *container_id,
			const char *unit);
/* Takes p out of the table and frees it (its figures kept elsewhere first, if wanted). */
void process_table__remove(struct process_table *pt, struct process *p);
size_t process_table__count(const struct process_table *pt);
struct process *process_table__at(struct process_table *pt, size_t i);

/* The allocator's view of one process; task is a task index (0 = untasked); ts in ns. */
void process__alloc(struct process *p, uint32_t tid, uint64_t addr, uint64_t size, uint32_t task,
		    uint64_t ts);
void process__freed(struct process *p, uint32_t tid, uint64_t addr, uint64_t ts);
void process__realloc_begin(struct process *p, uint32_t tid, uint64_t old_addr);
void process__realloc_end(struct process *p, uint32_t tid, uint64_t old_addr, uint64_t new_addr,
			  uint64_t size, uint32_t task, uint64_t ts);
/* A block resized in place (xallocx, mi_expand): now size bytes, owned by task. */
void process__resize(struct process *p, uint32_t tid, uint64_t addr, uint64_t size, uint32_t task,
		     uint64_t ts);
/* The live block at addr becomes the cell of task index; false if no such block. */
bool process__claim_cell(struct process *p, uint64_t addr, uint32_t task,
			 struct heap_block *ret_block);
void process__alloc_failed(struct process *p);

/* The state a runtime keeps under key, or NULL. */
void *process__state(const struct process *p, const void *key);
/*
 * Sets the state under key (an earlier one is freed first; NULL just frees it); free_fn frees
 * it with the process. 0, or -ENOSPC with every slot taken (state is then freed).
 */
int process__set_state(struct process *p, const void *key, void *state,
		       void (*free_fn)(void *state));

struct thread_stats *process__thread(struct process *p, uint32_t tid);
/*
 * An ended process (exit, or its old image at an exec) forget_after_ns past its end: its series
 * left /metrics and the reports keep its final figures only. Never with forget_after_ns 0.
 */
bool process__forgotten(const struct process *p, uint64_t now_ns, uint64_t forget_after_ns);
/* True when every figure is exact: no bound hit, no inconsistency seen. */
bool process__complete(const struct process *p);

#endif
