// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "memscoped/events.h"
#include "daemon.h"
#include "ended_table.h"
#include "exporter_prometheus.h"
#include "http_server.h"
#include "log.h"
#include "proc.h"
#include "prom_text.h"
#include "report.h"
#include "alloc_watch.h"
#include "api_snapshot.h"
#include "timeseries.h"
#include "runtime.h"
#include "stacks.h"
#include "watcher.h"

/* The ring is drained on this period: events are submitted without wakeups. */
#define DRAIN_PERIOD_NS 10000000L
/* Scan mode has no ring: the loop wakes for snapshots, metrics and liveness only (signals cut
 * the sleep short, so SIGUSR1 and SIGINT are not delayed). */
#define SCAN_LOOP_PERIOD_NS 100000000L
/* Targets are checked for exit this often. */
#define ALIVE_CHECK_NS 100000000L
/*
 * A child's fork window is closed this long after its probes are live: a hit that began
 * before its last link was attached has ended by then (a hit takes microseconds).
 */
#define FORK_WINDOW_SETTLE_NS 100000000ull
/* Scrapes see metrics at most this old: rendering stays off the HTTP thread. */
#define METRICS_PERIOD_NS 1000000000L
/* Heap pages freed by compaction go back to the kernel at most this often. */
#define TRIM_PERIOD_NS 1000000000ull
/* The textfile is rewritten every --interval, or this often without one. */
#define TEXTFILE_PERIOD_S 10

uint64_t daemon__now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t lost_events(const struct daemon *d)
{
	int ncpus = libbpf_num_possible_cpus(), i;
	uint64_t *values, sum = 0;
	uint32_t zero = 0;

	if (ncpus <= 0 || d->lost_fd < 0)
		return 0;
	values = calloc((size_t)ncpus, sizeof(*values));
	if (!values)
		return 0;
	if (!bpf_map_lookup_elem(d->lost_fd, &zero, values))
		for (i = 0; i < ncpus; i++)
			sum += values[i];
	free(values);
	return sum;
}

/*
 * A forked child's calls missed before its probes were live: read while they may grow, then
 * its entry leaves the map once they cannot (probes live and settled, or an exec). A dead
 * child's entry was taken out by BPF on_exit, its final count on the events ring
 * (MS_EV_WINDOW_END, which closes the window). The pid's entry is this record's unless the
 * pid's current record is another child in its window (pid given again): that one's is left.
 */
static void update_fork_window(const struct daemon *d, struct process *p, uint64_t now)
{
	const struct process *q = process_table__find(d->decoder.procs, p->pid);
	uint64_t missed;

	if (!p->fork_window_open)
		return;
	if (d->fork_pending_fd < 0) {
		p->fork_window_open = false;
		p->fork_window_uncounted = true;
		return;
	}
	if (q != p && q && q->fork_window_open) {
		p->fork_window_open = false;
		return;
	}
	if (p->exited)
		return;
	if (!bpf_map_lookup_elem(d->fork_pending_fd, &p->pid, &missed)) {
		p->fork_window_missed = missed & ~MS_WINDOW_UNCOUNTED;
		p->fork_window_uncounted |= (missed & MS_WINDOW_UNCOUNTED) != 0;
	}
	if (p->execed ||
	    (p->fork_window_live_ns && now >= p->fork_window_live_ns + FORK_WINDOW_SETTLE_NS)) {
		bpf_map_delete_elem(d->fork_pending_fd, &p->pid);
		p->fork_window_open = false;
	}
}

size_t daemon__update_alive(struct daemon *d)
{
	struct process_table *procs = d->decoder.procs;
	const char *problem;
	size_t i, j, alive = 0;

	for (i = 0; i < process_table__count(procs); i++) {
		struct process *p = process_table__at(procs, i);

		for (j = 0; j < nruntimes; j++)
			if (runtimes[j]->problem && (problem = runtimes[j]->problem(p)))
				log_err("pid %u: %s", p->pid, problem);
		/* In daemon mode the helper keeps the map: an exec'd target may stay one. */
		if (p->execed && !p->exec_said &&
		    (d->daemon_mode || d->targets_fd < 0 ||
		     !bpf_map_delete_elem(d->targets_fd, &(uint32_t){ p->pid }))) {
			p->exec_said = true;
			log_err("pid %u: exec'd a new program; its report ends at the exec",
				p->pid);
		}
		/* An exec'd image's record ends at the exec, but says when the process exits. */
		if (!p->exited && process_table__find(procs, p->pid) == p &&
		    !proc__alive((int)p->pid)) {
			p->exited = true;
			if (!p->ended_ns)
				p->ended_ns = daemon__now();
			if (d->daemon_mode)
				log_err("pid %u: exited", p->pid);
		}
		update_fork_window(d, p, daemon__now());
		alive += !p->exited && !p->execed;
	}
	return alive;
}

size_t daemon__compact(struct daemon *d, uint64_t now_ns)
{
	struct process_table *procs = d->decoder.procs;
	uint64_t forget = (uint64_t)(d->opts.forget_after * 1e9);
	struct process_summary sum;
	struct tasks_totals tasks;
	size_t i = 0, n = 0;

	if (!d->ended)
		return 0;
	while (i < process_table__count(procs)) {
		struct process *p = process_table__at(procs, i);

		if (!process__forgotten(p, now_ns, forget)) {
			i++;
			continue;
		}
		/* Out of memory the summary is folded into the dropped totals: still counted. */
		if (process_summary__of(p, (uint64_t)(d->opts.stuck_after * 1e9), &sum, &tasks)) {
			i++;
			continue;
		}
		ended_table__add(d->ended, &sum);
		process_table__remove(procs, p);
		n++;
	}
	/* Series are per pid: a newer record of the same pid keeps its series. */
	if (n)
		timeseries__keep_only(d->series, procs);
	/*
	 * The freed records were scattered through the heap: give their pages back, at most once
	 * a second, so the RSS follows what is held rather than the peak.
	 */
	if (n && now_ns >= d->next_trim_ns) {
		malloc_trim(0);
		d->next_trim_ns = now_ns + TRIM_PERIOD_NS;
	}
	return n;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { 0, ns };

	nanosleep(&ts, NULL);
}

/* Readers never see a partial file: write a temporary one beside it, then rename. */
static int write_atomically(const char *path, int (*write_to)(FILE *f, const void *ctx),
			    const void *ctx)
{
	char tmp[PATH_MAX];
	FILE *f;
	int err;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -(errno = ENAMETOOLONG);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	err = write_to(f, ctx);
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		errno = -err;
	}
	return err;
}

struct text {
	const char *data;
	size_t len;
};

static int write_text(FILE *f, const void *ctx)
{
	const struct text *t = ctx;

	return fwrite(t->data, 1, t->len, f) == t->len ? 0 : -EIO;
}

static int write_report_json(FILE *f, const void *ctx)
{
	return report_json__write(f, ctx);
}

/* Streamed to PATH.tmp: the report is never whole in memory. */
static int write_json_report(const char *path, const struct report_input *in)
{
	int err;

	if (!strcmp(path, "-"))
		return report_json__write(stdout, in);
	err = write_atomically(path, write_report_json, in);
	if (err)
		log_err("cannot write report '%s': %s", path, strerror(-err));
	return err;
}

static int write_report_html(FILE *f, const void *ctx)
{
	return report_html__write(f, ctx);
}

static int write_html_report(const char *path, const struct report_input *in)
{
	int err;

	if (!strcmp(path, "-"))
		return report_html__write(stdout, in);
	err = write_atomically(path, write_report_html, in);
	if (err)
		log_err("cannot write HTML report '%s': %s", path, strerror(-err));
	return err;
}

void daemon__drain(struct daemon *d)
{
	uint64_t start = daemon__now();

	/* Scan mode has no ring. */
	if (!d->rb)
		return;
	ring_buffer__consume(d->rb);
	/* What this drain left behind was submitted after it began (event_decoder.h). */
	event_decoder__time_passed(&d->decoder, start);
}

int daemon__handle_event(void *ctx, void *data, size_t len)
{
	struct daemon *d = ctx;
	struct ms_event full;

	if (len == sizeof(struct ms_heap_event)) {
		event_decoder__widen(&full, data);
		data = &full;
		len = sizeof(full);
	}

	if (stacks__event(d->stacks, d->decoder.procs, data, len))
		return 0;
	if (len >= sizeof(struct ms_event))
		watcher__before_event(d->watcher, &d->links, data);
	event_decoder__handle(&d->decoder, data, len);
	return 0;
}

static void fill_report(struct daemon *d, struct report_input *r)
{
	uint64_t now = daemon__now();

	r->duration_seconds = (double)(now - d->start) / 1e9;
	r->events_received = d->decoder.stats.received;
	r->events_lost = lost_events(d);
	r->procs = d->decoder.procs;
	r->now_ns = now;
	r->stuck_after_ns = (uint64_t)(d->opts.stuck_after * 1e9);
	r->timeseries = d->series;
	r->stacks = stacks__profile(d->stacks);
	r->mode = d->opts.scan ? "scan" : "trace";
	r->daemon_mode = d->daemon_mode;
	if (d->watcher)
		d->targets_missed = watcher__missed(d->watcher);
	r->targets_missed = d->targets_missed;
	r->ended = d->ended;
	r->forget_after_ns = d->ended ? (uint64_t)(d->opts.forget_after * 1e9) : 0;
}

/* Renders the metrics once for both the HTTP endpoint and the textfile. */
static int render_metrics(struct daemon *d)
{
	struct proc_self_stats self;
	struct report_input r;
	struct exporter_input in = { 0 };

	fill_report(d, &r);
	in.procs = r.procs;
	in.events_received = r.events_received;
	in.events_lost = r.events_lost;
	in.now_ns = r.now_ns;
	in.stuck_after_ns = r.stuck_after_ns;
	in.max_task_types = d->opts.max_task_types;
	in.forget_after_ns = (uint64_t)(d->opts.forget_after * 1e9);
	in.daemon_mode = r.daemon_mode;
	in.targets_missed = r.targets_missed;
	in.self = proc__self_stats(&self) ? NULL : &self;
	return exporter_prometheus__render(d->metrics, &in);
}

void daemon__publish_metrics(struct daemon *d, bool textfile)
{
	const char *text;
	size_t len;

	if (!d->metrics || render_metrics(d))
		return;
	text = prom_text__data(d->metrics, &len);
	if (d->http)
		http_server__publish(d->http, text, len);
	if (textfile && d->opts.textfile &&
	    write_atomically(d->opts.textfile, write_text, &(struct text){ text, len }))
		log_err("cannot write metrics to '%s': %s, ignoring", d->opts.textfile,
			strerror(errno));
}

/* The JSON API's snapshot, copied only while someone reads the API (the tasks can be 100k). */
static void publish_api(struct daemon *d, uint64_t now)
{
	struct api_snapshot *snap;
	struct report_input r;

	if (!d->http)
		return;
	/* Unread for a while: the last copy goes too. */
	if (!http_server__api_wanted(d->http, now)) {
		http_server__publish_api(d->http, NULL);
		return;
	}
	fill_report(d, &r);
	/* The time series is the reports' (a long array per process), not the API's. */
	r.timeseries = NULL;
	snap = api_snapshot__new(&r, API_SNAPSHOT_MAX_TASKS);
	if (snap)
		http_server__publish_api(d->http, snap);
	if (d->opts.verbose >= 2 && snap)
		log_err("api snapshot: %zu tasks in %.1f ms", snap->ntasks,
			(double)snap->build_ns / 1e6);
}

/* --pprof and --folded, from the sampled stacks. */
static int write_stack_files(struct daemon *d)
{
	const char *folded = d->opts.folded, *pprof = d->opts.pprof;
	int err = 0;

	if (!d->stacks)
		return 0;
	if (pprof && write_atomically(pprof, stacks__write_pprof, d->stacks)) {
		log_err("cannot write pprof profile '%s': %s", pprof, strerror(errno));
		err = -EIO;
	}
	if (folded && !strcmp(folded, "-"))
		err = stacks__write_folded(stdout, d->stacks) ? -EIO : err;
	else if (folded && write_atomically(folded, stacks__write_folded, d->stacks)) {
		log_err("cannot write folded stacks '%s': %s", folded, strerror(errno));
		err = -EIO;
	}
	return err;
}

int daemon__write_reports(struct daemon *d)
{
	struct report_input r;

	int err;

	stacks__name_frames(d->stacks);
	if (d->tick)
		d->tick(d, daemon__now(), 1);
	fill_report(d, &r);
	/* The series ends at the report's own figures. */
	timeseries__tick(d->series, r.procs, r.now_ns, true);
	report_text__write(stdout, &r);
	err = d->opts.report ? write_json_report(d->opts.report, &r) : 0;
	if (d->opts.html && write_html_report(d->opts.html, &r))
		err = -EIO;
	if (write_stack_files(d))
		err = -EIO;
	return err;
}

static uint64_t period_ns(double seconds)
{
	return (uint64_t)(seconds * 1e9);
}

/* Never silently blind: a busy target whose allocator probes stay silent is said, once. */
static void warn_blind(struct daemon *d, uint64_t now)
{
	size_t i, n = process_table__count(d->decoder.procs);
	double cpu, elapsed;
	char msg[1536];

	for (i = 0; i < n; i++) {
		struct process *p = process_table__at(d->decoder.procs, i);

		elapsed = now > p->start_ns ? (double)(now - p->start_ns) / 1e9 : 0;
		if (alloc_watch__frees_missed(p, elapsed, d->opts.stuck_after))
			log_err("warning: pid %u: %" PRIu64
				" allocations reused addresses still live: "
				"frees were not seen; probed %s",
				p->pid, p->blocks_replaced,
				p->allocator.probed ? p->allocator.probed : p->allocator.family);
		if (elapsed < d->opts.stuck_after || proc__cpu_seconds((int)p->pid, &cpu))
			continue;
		if (!alloc_watch__blind(p, elapsed, cpu, d->opts.stuck_after))
			continue;
		alloc_watch__message(p, elapsed, cpu, msg, sizeof(msg));
		log_err("warning: %s", msg);
	}
}

void daemon__run(struct daemon *d, volatile sig_atomic_t *exiting,
		 volatile sig_atomic_t *report_requested)
{
	const struct cli_options *o = &d->opts;
	uint64_t now, next_alive, next_metrics, next_textfile, next_summary = 0, deadline = 0;
	struct report_input r;

	next_alive = d->start + ALIVE_CHECK_NS;
	next_metrics = d->start;
	next_textfile = d->start + period_ns(o->interval > 0 ? o->interval : TEXTFILE_PERIOD_S);
	if (o->duration > 0)
		deadline = d->start + period_ns(o->duration);
	if (o->interval > 0)
		next_summary = d->start + period_ns(o->interval);

	while (!*exiting) {
		watcher__receive(d->watcher, &d->links);
		daemon__drain(d);
		now = daemon__now();
		if (d->tick)
			d->tick(d, now, 0);
		if (deadline && now >= deadline)
			break;
		if (now >= next_alive) {
			next_alive = now + ALIVE_CHECK_NS;
			/* Drain first: a target's last events precede its exit. */
			daemon__drain(d);
			if (!daemon__update_alive(d) && !d->daemon_mode)
				break;
			daemon__compact(d, now);
			if (d->rb)
				warn_blind(d, now);
		}
		timeseries__tick(d->series, d->decoder.procs, now, false);
		if (*report_requested) {
			*report_requested = 0;
			daemon__write_reports(d);
		}
		if (now >= next_metrics) {
			next_metrics = now + METRICS_PERIOD_NS;
			daemon__publish_metrics(d, now >= next_textfile);
			publish_api(d, now);
			if (now >= next_textfile)
				next_textfile =
					now + period_ns(o->interval > 0 ? o->interval :
									  TEXTFILE_PERIOD_S);
		}
		if (next_summary && now >= next_summary) {
			next_summary = now + period_ns(o->interval);
			fill_report(d, &r);
			report_text__summary(stderr, &r);
		}
		sleep_ns(d->rb ? DRAIN_PERIOD_NS : SCAN_LOOP_PERIOD_NS);
	}
}

void daemon__scan_process(struct process *p)
{
	char msg[256];
	size_t j;
	int err;

	for (j = 0; j < nruntimes; j++) {
		if (!runtimes[j]->scan || !runtimes[j]->attached(p))
			continue;
		err = runtimes[j]->scan(p, daemon__now(), msg, sizeof(msg));
		if (err)
			log_err("pid %u: attach scan failed: %s, ignoring", p->pid, strerror(-err));
		else
			log_err("pid %u: %s", p->pid, msg);
	}
}

void daemon__scan(struct daemon *d)
{
	size_t i;

	for (i = 0; i < process_table__count(d->decoder.procs); i++)
		daemon__scan_process(process_table__at(d->decoder.procs, i));
}
