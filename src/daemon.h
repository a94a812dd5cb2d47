/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The running daemon: drain events, watch the targets, publish metrics, write the reports. */
#ifndef MEMSCOPED_DAEMON_H
#define MEMSCOPED_DAEMON_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "attach.h"
#include "cli.h"
#include "event_decoder.h"

struct ended_table;
struct http_server;
struct prom_text;
struct stacks;
struct ring_buffer;
struct timeseries;
struct watcher;

/* Everything the main loop owns. */
struct daemon {
	struct cli_options opts;
	struct ring_buffer *rb;
	struct attachment links;
	struct event_decoder decoder;
	struct http_server *http;
	struct prom_text *metrics;
	struct watcher *watcher;   /* libraries loaded later, or NULL */
	struct timeseries *series; /* live heap over time, for the JSON and HTML reports */
	struct stacks *stacks;	   /* sampled allocation stacks, or NULL (--sample-bytes 0) */
	int lost_fd;		   /* BPF maps: failed ring reserves, per CPU */
	int targets_fd;		   /* and the traced pids; -1 before load */
	int fork_pending_fd;	   /* and the forked children's calls missed, or -1 */
	uint64_t start;		   /* CLOCK_MONOTONIC */
	/* --mode scan: called every turn of the loop, and fresh before each report. */
	void (*tick)(struct daemon *d, uint64_t now_ns, int fresh);
	uint64_t next_scan_ns;
	bool daemon_mode;	   /* selectors: targets come and go, the run goes on */
	struct ended_table *ended; /* daemon mode: forgotten targets, compacted */
	uint64_t next_trim_ns;	   /* the next malloc_trim after a compaction */
	uint64_t targets_missed;   /* the helper's count, kept once it stopped */
};

uint64_t daemon__now(void);
/* Hands every event in the ring to the decoder. */
void daemon__drain(struct daemon *d);
/* The ring buffer's callback (ctx: the daemon). */
int daemon__handle_event(void *ctx, void *data, size_t len);
/* Marks targets that are gone and says once what a runtime or an exec broke; how many live. */
size_t daemon__update_alive(struct daemon *d);
/*
 * Daemon mode: every ended target --forget-after past its end leaves the process table (and
 * the time series) for its summary in d->ended. How many went.
 */
size_t daemon__compact(struct daemon *d, uint64_t now_ns);
/* Tasks alive before attach that may never run again: found in memory, once. */
void daemon__scan(struct daemon *d);
/* The same for one process (one the helper attached later). */
struct process;
void daemon__scan_process(struct process *p);
/* Renders the metrics for the HTTP endpoint (and the textfile if asked). */
void daemon__publish_metrics(struct daemon *d, bool textfile);
/* The text report to stdout, the JSON report to --report, the HTML report to --html. */
int daemon__write_reports(struct daemon *d);
/* Until a signal, --duration, or every target gone. */
void daemon__run(struct daemon *d, volatile sig_atomic_t *exiting,
		 volatile sig_atomic_t *report_requested);

#endif
