/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Sampled allocation stacks: frames, stacks and per-(stack, task, thread) estimates, unbiased
 * from the sampling rate; live samples by address so frees take them out of the in-use
 * figures. Plain data: the unwinder fills it, the pprof and folded writers and the reports
 * read it.
 */
#ifndef MEMSCOPED_STACK_PROFILE_H
#define MEMSCOPED_STACK_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An object mapped by a target. */
struct sp_mapping {
	uint32_t pid;
	uint64_t start, limit, file_offset;
	char *file;
	char *build_id; /* hex, or NULL */
};

/* One code address of one process, symbolized once. */
struct sp_frame {
	uint32_t pid;
	uint64_t pc;	  /* as the target sees it (a return address for all but none) */
	char *function;	  /* demangled, or NULL: then the object+offset names it */
	char *file;	  /* from DWARF, or NULL */
	uint32_t line;	  /* 0 unknown */
	uint32_t mapping; /* index + 1 into mappings, 0 none */
	uint64_t offset;  /* pc's offset in its object's file */
};

/* A call stack, leaf first (the allocator's caller). */
struct sp_stack {
	uint32_t *frames;
	uint32_t nframes;
	bool truncated; /* the unwind stopped before the outermost frame */
};

/* What one stack allocated for one task on one thread: estimates, already unbiased. */
struct sp_series {
	uint32_t stack;
	uint32_t pid, tid;
	uint32_t task;	  /* the process's task table index, 0 untasked */
	uint64_t task_id; /* the runtime's task id (tokio Id), or the index */
	char *task_type;  /* NULL untasked */
	double alloc_objects, alloc_space, inuse_objects, inuse_space;
};

struct stack_profile {
	uint64_t sample_bytes; /* R: mean bytes between samples; 1 every allocation */
	struct sp_mapping *mappings;
	size_t nmappings, mappings_cap;
	struct sp_frame *frames;
	size_t nframes, frames_cap;
	struct sp_stack *stacks;
	size_t nstacks, stacks_cap;
	struct sp_series *series;
	size_t nseries, series_cap;
	size_t max_series; /* bound on series (and stacks); past it samples are dropped */
	/* Hash indices (open addressing, index + 1) and the live samples by address. */
	uint32_t *frame_index, *stack_index, *series_index;
	size_t frame_mask, stack_mask, series_mask;
	struct sp_live *live;
	size_t live_count, live_mask, live_tombs;
	/* Counters for the reports. */
	uint64_t samples, samples_dropped, stacks_truncated, samples_unmatched;
};

/* A sample of size bytes at mean rate rate stands for these many bytes and allocations. */
void stack_profile__weight(uint64_t size, uint64_t rate, double *ret_bytes, double *ret_count);

/* n quantiles of the unit exponential distribution in Q16, mean 1: the BPF countdown's gaps. */
void stack_profile__gaps(uint32_t *ret, size_t n);

struct stack_profile *stack_profile__new(uint64_t sample_bytes, size_t max_series);
void stack_profile__free(struct stack_profile *p);

/* The index of the mapping of file in pid, added if new; -1 out of memory. */
long stack_profile__mapping(struct stack_profile *p, uint32_t pid, const char *file, uint64_t start,
			    uint64_t limit, uint64_t file_offset, const char *build_id);
/* The index of pid's frame at pc; *ret_new is set when it was added (to be filled). */
long stack_profile__frame(struct stack_profile *p, uint32_t pid, uint64_t pc, bool *ret_new);

/* The labels of one sampled allocation. */
struct sp_sample {
	uint32_t pid, tid;
	uint64_t addr, size;
	uint32_t task;
	uint64_t task_id;
	const char *task_type;	/* NULL untasked */
	const uint32_t *frames; /* frame indices, leaf first */
	uint32_t nframes;
	bool truncated;
};

/* Records a sampled allocation (live until stack_profile__freed); 0 or -ENOSPC/-ENOMEM. */
int stack_profile__add(struct stack_profile *p, const struct sp_sample *s);
/* A block was freed: if it was sampled, its estimate leaves the in-use figures. */
void stack_profile__freed(struct stack_profile *p, uint32_t pid, uint64_t addr);

/* The stack of the live sampled block at addr of pid, or -1. */
long stack_profile__live_stack(const struct stack_profile *p, uint32_t pid, uint64_t addr);

/* Series of pid (0: all) matching the filter, by in-use bytes, largest first; returns count. */
typedef bool (*sp_filter)(const struct sp_series *s, const void *arg);
size_t stack_profile__top(const struct stack_profile *p, sp_filter filter, const void *arg,
			  uint32_t *ret_series, size_t max);
/* Stacks (not series) by summed in-use bytes of the matching series; ret_bytes per stack. */
size_t stack_profile__top_stacks(const struct stack_profile *p, sp_filter filter, const void *arg,
				 uint32_t *ret_stacks, double *ret_bytes, size_t max);

/* A frame's name for folded stacks and reports: function, or object+0xoffset, or 0xpc. */
int stack_profile__frame_name(const struct stack_profile *p, uint32_t frame, char *buf, size_t len);

#endif
