/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Tasks of one process, whatever runtime made them: lifecycle, counters, attributed bytes. */
#ifndef MEMSCOPED_TASK_TABLE_H
#define MEMSCOPED_TASK_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum task_kind { TASK_ASYNC, TASK_BLOCKING };
enum task_state { TASK_RUNNING, TASK_IDLE, TASK_COMPLETED, TASK_CANCELLED, TASK_DEALLOCATED };
/* Spawned since attach; found in memory at attach; first seen polling (made before attach). */
enum task_discovery { TASK_FOUND_SPAWN, TASK_FOUND_ATTACH_SCAN, TASK_FOUND_FIRST_POLL };

/* A heap block's task field: 0 untasked, else task index, with this bit for a task's cell. */
#define TASK_CELL_BIT 0x80000000u

struct task {
	uint64_t key;	     /* runtime identity: tokio header address */
	uint64_t runtime_id; /* tokio task Id (0 unknown) */
	uint32_t type;	     /* task_types index */
	uint64_t parent_id;  /* the parent's runtime_id, 0 none (indices are recycled) */
	enum task_kind kind;
	enum task_state state;
	enum task_state end_state; /* TASK_COMPLETED or TASK_CANCELLED once ended */
	enum task_discovery discovered;
	bool running;	   /* inside a poll now */
	bool detached;	   /* JoinHandle dropped */
	bool cancel_seen;  /* its state had CANCELLED: an end without a poll exit is a cancel */
	bool retired;	   /* queued for recycling: ended, deallocated, holding nothing */
	bool unused;	   /* a recycled slot: not a task (skip it when walking the table) */
	uint64_t spawn_ns; /* 0 unknown (found by the attach scan) */
	uint64_t first_poll_ns, poll_start_ns, last_poll_end_ns;
	uint64_t end_ns; /* completed or cancelled */
	uint64_t dealloc_ns;
	uint64_t polls;
	uint64_t busy_ns;
	uint64_t future_size; /* task cell bytes */
	uint64_t live_bytes, live_allocations, allocated_bytes_total, allocations_total;
	/* Stackful coroutines (stack_size 0 for tokio): polls count resumes. */
	uint64_t stack_base, stack_size;
	uint32_t generation; /* lifetimes seen on this stack, from 1 */
	uint32_t last_tid;   /* the thread it last ran on */
};

struct task_type {
	char *name;
	const char *runtime;
	uint64_t future_size; /* of the last task seen */
	uint32_t rank;	      /* 1 + how many types had a task before this one's first; 0 none */
	enum task_kind kind;  /* of its first task */
	/* Counters: only grow. */
	uint64_t spawned, completed, cancelled, polls, allocated_bytes_total, allocations_total;
	uint64_t outlived_live_bytes; /* bytes of ended tasks still live */
};

#define POLL_BUCKETS 12
/* Upper bounds of the poll duration histogram, seconds. */
extern const double task_poll_bounds[POLL_BUCKETS];

struct task_table {
	struct task *tasks; /* index 0 unused */
	size_t ntasks, cap;
	size_t max_tasks;
	struct task_type *types;
	size_t ntypes, types_cap;
	size_t max_types;
	uint32_t *by_key; /* open addressing key -> index of the live lifetime */
	size_t by_key_mask, by_key_count;
	uint64_t tasks_dropped, types_dropped;
	uint32_t types_ranked; /* types that had at least one task */
	uint64_t poll_counts[POLL_BUCKETS + 1];
	double poll_sum_seconds;
	/* Task cells seen, for the average and largest future size. */
	uint64_t cells_seen, cells_bytes, largest_cell;
	/*
	 * Ended tokio tasks that hold nothing are kept for the report, the oldest recycled past
	 * max_retired: memory stays flat under a churn of short tasks.
	 */
	uint32_t *retired; /* ring of task indices */
	size_t max_retired, retired_head, retired_count;
	uint32_t *free_slots; /* recycled indices */
	size_t nfree, free_cap;
	uint64_t tasks_recycled;
};

struct task_table *task_table__new(size_t max_tasks, size_t max_types);
/* Keep at most n ended tasks that hold nothing (the oldest are recycled); 0 keeps all. */
int task_table__set_max_retired(struct task_table *t, size_t n);
/* Records a task's cell size (its future's state) and the running size statistics. */
void task_table__cell(struct task_table *t, struct task *task, uint64_t size);
void task_table__free(struct task_table *t);

/* The index of a type by name, added if new; past the bound the "other" type. */
uint32_t task_table__type(struct task_table *t, const char *runtime, const char *name);

/* A new lifetime for key (any earlier one with that key is ended first); NULL at the bound. */
struct task *task_table__spawn(struct task_table *t, uint64_t key, uint32_t type,
			       enum task_kind kind, enum task_discovery how, uint64_t spawn_ns);
/* A task found before its first poll turned out to be of type (counted there instead). */
void task_table__retype(struct task_table *t, struct task *task, uint32_t type);
/* The live lifetime for key, or NULL. */
struct task *task_table__find(struct task_table *t, uint64_t key);
static inline uint32_t task_table__index(const struct task_table *t, const struct task *task)
{
	return (uint32_t)(task - t->tasks);
}
static inline struct task *task_table__at(struct task_table *t, uint32_t index)
{
	return index && index < t->ntasks ? &t->tasks[index] : NULL;
}

void task_table__poll_begin(struct task_table *t, struct task *task, uint64_t ts);
/* ended: TASK_COMPLETED or TASK_CANCELLED if the poll ended the task, else TASK_IDLE. */
void task_table__poll_end(struct task_table *t, struct task *task, uint64_t ts,
			  enum task_state ended);
/* The task's cell was freed: its lifetime is over and its key may be reused. */
void task_table__dealloc(struct task_table *t, struct task *task, uint64_t ts);

/* Heap attribution: task index allocated size bytes (totals only). */
void task_table__alloc(struct task_table *t, uint32_t index, uint64_t size);
/* A block attributed to task index became live (live true) or was freed. */
void task_table__live(struct task_table *t, uint32_t index, uint64_t size, bool live);

bool task__ended(const struct task *task);
/* Idle (or busy) for longer than stuck_after_ns while alive; reason filled if so. */
bool task__suspect(const struct task *task, uint64_t now_ns, uint64_t stuck_after_ns, char *reason,
		   size_t len);
const char *task_state__name(enum task_state s);

#endif
