/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The task runtimes memscoped knows, one row each on bpftool's cmds[] model: a runtime is one
 * file (runtime_<name>.c) that plans and attaches its probes, handles its events, says which
 * task is current, adds to the reports, and owns its state in each process.
 */
#ifndef MEMSCOPED_RUNTIME_H
#define MEMSCOPED_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct attachment;
struct bpf_object;
struct ms_event;
struct process;

struct probe_plan;

/*
 * What attaching needs from the daemon; runtimes log through it, never to stderr directly, and
 * attach through it, so that the runtime code needs no BPF (the fuzzers and tests link it).
 */
struct runtime_ctx {
	struct bpf_object *obj;
	struct attachment *links;
	/* attach__plan on obj and links: 0, -EOPNOTSUPP without uprobe_multi, or -errno. */
	int (*attach_plan)(const struct runtime_ctx *ctx, int pid, const struct probe_plan *plan,
			   char *err, size_t errlen);
	bool multi; /* uprobe_multi links */
	int verbose;
	const char *debug_dir; /* --debug-dir, or NULL */
	void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
};

/* How --runtime asks for a runtime. */
enum runtime_want {
	RUNTIME_AUTO,	/* auto: attached if the target has it */
	RUNTIME_NEEDED, /* the requested runtime runs on it: the target must have it */
	RUNTIME_NAMED,	/* named by --runtime */
};

#define RUNTIME_FIELDS 16

/* What a runtime adds to the JSON report: an object of counters (and a note). */
struct runtime_section {
	const char *name;
	struct {
		const char *key;
		uint64_t value;
	} fields[RUNTIME_FIELDS];
	size_t n;
	const char *note;
};

struct runtime {
	const char *name;    /* --runtime NAME */
	const char *needs;   /* the runtime it runs on (pcl: ucontext), or NULL */
	const char *library; /* prefix of its library's file name, watched for a late dlopen */
	/*
	 * Plans and attaches its probes to p and sets up its state. 0; -ENOENT when p has no
	 * such runtime (msg says what was searched); -EOPNOTSUPP without uprobe_multi; -errno
	 * (msg says what failed, "" if logged already).
	 */
	int (*attach)(const struct runtime_ctx *ctx, struct process *p, enum runtime_want want,
		      char *msg, size_t len);
	bool (*attached)(const struct process *p);
	/* Event types it handles, as 1 << type, and the handler. */
	uint32_t events;
	void (*event)(struct process *p, const struct ms_event *e);
	/* The event comes from one of its probes (the watcher's links may arrive later). */
	bool (*owns)(const struct ms_event *e);
	/* The task an allocation event belongs to: a task index, 0 if none of its tasks. */
	uint32_t (*task_of)(struct process *p, const struct ms_event *e);
	/* A heap block is about to be freed (or realloc'd). */
	void (*block_freed)(struct process *p, uint64_t addr, uint64_t ts);
	/* Tasks alive at attach, found in memory; msg is the line to log. */
	int (*scan)(struct process *p, uint64_t now_ns, char *msg, size_t len);
	/* A problem to report once, or NULL. */
	const char *(*problem)(struct process *p);
	/* Listed in the report's "runtimes"; its report section, if any. */
	bool (*listed)(const struct process *p);
	bool (*section)(const struct process *p, struct runtime_section *ret);
	/* Where the attach found it, for the "attached" line ("tokio in '/bin/x'"); 0 or -ENOENT. */
	int (*describe)(const struct process *p, char *buf, size_t len);
	/*
	 * Attached by the watcher for a late library: what its copy of p learnt, and the daemon
	 * taking it. (A process the helper attaches whole is read again by the daemon instead,
	 * through the helper's descriptors: runtime__attach_some with a ctx that attaches nothing.)
	 */
	void (*late_export)(const struct process *p, uint64_t data[2]);
	void (*late_import)(struct process *p, const uint64_t data[2]);
};

/* The table: task_of asks the rows in this order, the first answer wins. */
extern const struct runtime *const runtimes[];
extern const size_t nruntimes;

/* The row named name, or NULL. */
const struct runtime *runtime__find(const char *name);
/* "auto", "none" and every row's name, separated by sep (for help and errors). */
void runtime__names(char *buf, size_t len, const char *sep);

/*
 * Attaches the runtimes --runtime asks for ("auto": each the target has, "none": none) to p.
 * Returns 0, -EOPNOTSUPP without uprobe_multi, or -errno after logging what failed.
 */
int runtime__attach_all(const struct runtime_ctx *ctx, struct process *p, const char *requested);
/* The same for the rows of mask only (bit i: runtimes[i]). */
int runtime__attach_some(const struct runtime_ctx *ctx, struct process *p, const char *requested,
			 uint32_t mask);

/*
 * Attaches a runtime's plan to p (for the rows); on failure msg says what failed, or that p
 * exited during attach.
 */
int runtime__attach_plan(const struct runtime_ctx *ctx, struct process *p,
			 const struct probe_plan *plan, char *msg, size_t len);

struct probe_fn;
/*
 * Plans fns in the first of the executable and the objects named prefix* that pid maps and
 * that has them all: 0, -ENOENT, or -errno. *ret_exe (malloc'd) names the executable.
 */
int runtime__plan_library(int pid, const char *prefix, const struct probe_fn *fns, size_t n,
			  struct probe_plan *plan, char **ret_exe);

/* Event dispatch (the event decoder's only view of runtimes). */
uint32_t runtime__task_of(struct process *p, const struct ms_event *e);
void runtime__block_freed(struct process *p, uint64_t addr, uint64_t ts);
/* false if no runtime handles events of this type. */
bool runtime__event(struct process *p, const struct ms_event *e);

#endif
