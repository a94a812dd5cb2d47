// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "exporter_prometheus.h"

static struct process_table *pt;
static struct prom_text *out;

static int setup(void **state)
{
	struct process_limits limits = { 0 };

	(void)state;
	pt = process_table__new(&limits, NULL);
	out = prom_text__new();
	return pt && out ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	process_table__free(pt);
	prom_text__free(out);
	return 0;
}

static const char *render(size_t max_types)
{
	struct exporter_input in = {
		.procs = pt,
		.events_received = 12,
		.events_lost = 0,
		.now_ns = 100000000000ull,
		.stuck_after_ns = 30000000000ull,
		.max_task_types = max_types,
	};

	assert_int_equal(exporter_prometheus__render(out, &in), 0);
	return prom_text__data(out, NULL);
}

static void test_exporter_heap_metrics_exact(void **state)
{
	struct process *p = process_table__add(pt, 42, "a\"b\\c", "/x");

	(void)state;
	p->probes_attached = 17;
	p->allocator.family = "jemalloc";
	p->allocator.object = strdup("/usr/lib/libjemalloc.so.2");
	process__alloc(p, 42, 0x1000, 100, 0, 0);
	process__alloc(p, 42, 0x2000, 50, 0, 0);
	process__freed(p, 42, 0x2000, 0);
	assert_string_equal(
		render(50),
		"# HELP memscoped_heap_live_bytes Heap bytes allocated since attach and not freed\n"
		"# TYPE memscoped_heap_live_bytes gauge\n"
		"memscoped_heap_live_bytes{pid=\"42\",comm=\"a\\\"b\\\\c\"} 100\n"
		"# HELP memscoped_heap_live_allocations Heap blocks allocated since attach and not freed\n"
		"# TYPE memscoped_heap_live_allocations gauge\n"
		"memscoped_heap_live_allocations{pid=\"42\",comm=\"a\\\"b\\\\c\"} 1\n"
		"# HELP memscoped_heap_allocated_bytes_total Heap bytes allocated since attach\n"
		"# TYPE memscoped_heap_allocated_bytes_total counter\n"
		"memscoped_heap_allocated_bytes_total{pid=\"42\",comm=\"a\\\"b\\\\c\"} 150\n"
		"# HELP memscoped_heap_allocations_total Heap blocks allocated since attach\n"
		"# TYPE memscoped_heap_allocations_total counter\n"
		"memscoped_heap_allocations_total{pid=\"42\",comm=\"a\\\"b\\\\c\"} 2\n"
		"# HELP memscoped_heap_frees_total Frees of blocks allocated since attach\n"
		"# TYPE memscoped_heap_frees_total counter\n"
		"memscoped_heap_frees_total{pid=\"42\",comm=\"a\\\"b\\\\c\"} 1\n"
		"# HELP memscoped_untasked_live_bytes Live heap bytes allocated outside any task "
		"(runtime, block_on roots, plain threads)\n"
		"# TYPE memscoped_untasked_live_bytes gauge\n"
		"memscoped_untasked_live_bytes{pid=\"42\",comm=\"a\\\"b\\\\c\"} 100\n"
		"# HELP memscoped_probes_attached Uprobes attached to the process\n"
		"# TYPE memscoped_probes_attached gauge\n"
		"memscoped_probes_attached{pid=\"42\",comm=\"a\\\"b\\\\c\"} 17\n"
		"# HELP memscoped_target_up 1 while the traced process runs, 0 once it exited\n"
		"# TYPE memscoped_target_up gauge\n"
		"memscoped_target_up{pid=\"42\",comm=\"a\\\"b\\\\c\"} 1\n"
		"# HELP memscoped_bound_dropped_total What a bound dropped: allocations, thread "
		"events, tasks, task types\n"
		"# TYPE memscoped_bound_dropped_total counter\n"
		"memscoped_bound_dropped_total{pid=\"42\",comm=\"a\\\"b\\\\c\",bound=\"max_allocations\"} 0\n"
		"memscoped_bound_dropped_total{pid=\"42\",comm=\"a\\\"b\\\\c\",bound=\"max_threads\"} 0\n"
		"memscoped_bound_dropped_total{pid=\"42\",comm=\"a\\\"b\\\\c\",bound=\"max_tasks\"} 0\n"
		"memscoped_bound_dropped_total{pid=\"42\",comm=\"a\\\"b\\\\c\",bound=\"task_types\"} 0\n"
		"# HELP memscoped_allocator_info The allocator family serving the process and its "
		"object\n"
		"# TYPE memscoped_allocator_info gauge\n"
		"memscoped_allocator_info{pid=\"42\",comm=\"a\\\"b\\\\c\",family=\"jemalloc\","
		"object=\"/usr/lib/libjemalloc.so.2\"} 1\n"
		"# HELP memscoped_target_info The traced process: executable, cgroup v2 path, "
		"container, unit\n"
		"# TYPE memscoped_target_info gauge\n"
		"memscoped_target_info{pid=\"42\",comm=\"a\\\"b\\\\c\",exe=\"/x\",cgroup=\"\","
		"container_id=\"\",unit=\"\"} 1\n"
		"# HELP memscoped_events_total Events received from the BPF ring buffer\n"
		"# TYPE memscoped_events_total counter\n"
		"memscoped_events_total 12\n"
		"# HELP memscoped_events_lost_total Events dropped because the ring buffer was full\n"
		"# TYPE memscoped_events_lost_total counter\n"
		"memscoped_events_lost_total 0\n");
}

static void test_exporter_task_types_capped_into_other(void **state)
{
	struct process *p = process_table__add(pt, 7, "svc", "/svc");
	const char *names[] = { "a", "b", "c", "d" };
	struct task *t;
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		uint32_t ty = task_table__type(p->tasks, "tokio", names[i]);

		t = task_table__spawn(p->tasks, 0x100 * (i + 1), ty, TASK_ASYNC, TASK_FOUND_SPAWN,
				      1);
		task_table__poll_begin(p->tasks, t, 1);
		task_table__poll_end(p->tasks, t, 2, i == 3 ? TASK_COMPLETED : TASK_IDLE);
	}
	render(2);
	/* The first two names keep their label; c and d are summed into "other". */
	assert_non_null(
		strstr(prom_text__data(out, NULL),
		       "memscoped_tasks_spawned_total{pid=\"7\",comm=\"svc\",runtime=\"tokio\","
		       "task_type=\"a\"} 1\n"));
	assert_non_null(
		strstr(prom_text__data(out, NULL),
		       "memscoped_tasks_spawned_total{pid=\"7\",comm=\"svc\",runtime=\"tokio\","
		       "task_type=\"other\"} 2\n"));
	assert_non_null(strstr(prom_text__data(out, NULL),
			       "memscoped_tasks_live{pid=\"7\",comm=\"svc\",runtime=\"tokio\","
			       "task_type=\"other\"} 1\n"));
	assert_null(strstr(prom_text__data(out, NULL), "task_type=\"c\""));
	/* The poll histogram: 4 polls of 1 ns, all in the first bucket, +Inf equal to count. */
	assert_non_null(strstr(prom_text__data(out, NULL),
			       "memscoped_task_poll_duration_seconds_bucket{pid=\"7\",comm=\"svc\","
			       "runtime=\"tokio\",le=\"1e-05\"} 4\n"));
	assert_non_null(strstr(prom_text__data(out, NULL),
			       "memscoped_task_poll_duration_seconds_bucket{pid=\"7\",comm=\"svc\","
			       "runtime=\"tokio\",le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(prom_text__data(out, NULL),
			       "memscoped_task_poll_duration_seconds_count{pid=\"7\",comm=\"svc\","
			       "runtime=\"tokio\"} 4\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exporter_heap_metrics_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exporter_task_types_capped_into_other, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
