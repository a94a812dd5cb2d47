"""Allocation tracking against targets with known ground truth."""
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import (Memscoped, Target, check, check_eq, process_of, run_memscoped,
                     status_once, target_path, thread_of)

HEAP_FIELDS = ("live_bytes", "live_allocations", "allocated_bytes_total", "allocations_total")


def sum_truth(truth, field):
    return sum(t[field] for t in truth["threads"])


def check_threads_exact(proc, truth):
    for t in truth["threads"]:
        got = thread_of(proc, t["tid"])
        for f in HEAP_FIELDS:
            check_eq(got[f], t[f], f"tid {t['tid']} {f}")


def test_exact_figures_attached_before_threads_run():
    target = Target([target_path("alloc_pattern"), "3"])
    try:
        ms = Memscoped([target.pid])
        truth = target.go()
        report, text, _ = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    check_threads_exact(proc, truth)
    for f in HEAP_FIELDS + ("frees_total", "frees_untracked_total"):
        check_eq(proc["heap"][f], sum_truth(truth, f), f"process {f}")
    # One failing realloc per thread, nothing else failed.
    check_eq(proc["heap"]["allocation_failures_total"], 3, "allocation failures")
    check_eq(proc["exited"], False, "exited")
    check_eq(proc["complete"], True, "complete")
    check_eq(report["events"]["lost"], 0, "lost events")
    check(report["events"]["received"] > 0, "no events received")
    check(f"process {target.pid} (alloc_pattern)" in text, "text report names the process")


def test_exact_figures_with_one_link_per_probe():
    # The fallback for kernels without uprobe_multi: perf-event links, same figures.
    target = Target([target_path("alloc_pattern"), "2"])
    try:
        ms = Memscoped([target.pid], "--no-uprobe-multi")
        truth = target.go()
        report, _, err = ms.stop()
    finally:
        target.stop()
    check("(one link per probe)" in err, f"stderr does not mention the mode: {err!r}")
    check_threads_exact(process_of(report, target.pid), truth)


def test_exact_figures_for_threads_created_after_attach():
    target = Target([target_path("alloc_pattern"), "2", "late"])
    try:
        ms = Memscoped([target.pid])
        truth = target.go()
        report, _, _ = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    check_threads_exact(proc, truth)
    # pthread_create allocates on the creating thread: everything else is the main thread's.
    main = thread_of(proc, target.pid)
    for f in HEAP_FIELDS:
        check_eq(proc["heap"][f] - main[f], sum_truth(truth, f), f"process {f} minus main thread")


def test_target_exiting_ends_the_run_with_exited_true():
    target = Target([target_path("alloc_pattern"), "2", "exit"])
    ms = Memscoped([target.pid])
    truth = target.go()
    target.proc.wait(10)
    # No --duration, no signal: memscoped ends because its only target is gone.
    report, text, _ = ms.wait(timeout=10)
    proc = process_of(report, target.pid)
    check_eq(proc["exited"], True, "exited")
    check_threads_exact(proc, truth)
    check("[exited]" in text, "text report marks the exit")


def test_two_targets_at_once():
    a = Target([target_path("alloc_pattern"), "1"])
    b = Target([target_path("alloc_pattern"), "2"])
    try:
        ms = Memscoped([a.pid, b.pid])
        ta, tb = a.go(), b.go()
        report, _, _ = ms.stop()
    finally:
        a.stop()
        b.stop()
    for target, truth in ((a, ta), (b, tb)):
        proc = process_of(report, target.pid)
        check_threads_exact(proc, truth)
        check_eq(proc["heap"]["live_bytes"], sum_truth(truth, "live_bytes"), "live bytes")


def mtrace_live(path):
    """Live blocks allocated after the 7777777-byte marker, from glibc's mtrace log."""
    live, started = {}, False
    with open(path) as f:
        for line in f:
            m = re.match(r"@ \S+ ([-+<>!]) (0x[0-9a-f]+)(?: (0x[0-9a-f]+))?", line)
            if not m:
                continue
            op, addr, size = m.group(1), int(m.group(2), 16), m.group(3)
            if not started:
                started = op == "+" and size and int(size, 16) == 7777777
                continue
            if op in "+>":
                live[addr] = int(size, 16)
            elif op in "-<":
                live.pop(addr, None)
    check(started, "marker not found in the mtrace log")
    return live


def test_live_heap_matches_glibc_mtrace():
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "mtrace.log")
        env = dict(os.environ, MALLOC_TRACE=log, LD_PRELOAD="libc_malloc_debug.so.0")
        target = Target([target_path("alloc_pattern"), "2", "mtrace"], env=env)
        try:
            ms = Memscoped([target.pid])
            target.go()
            report, _, _ = ms.stop()
        finally:
            target.stop()
        live = mtrace_live(log)
    proc = process_of(report, target.pid)
    check(len(live) > 40, f"mtrace saw only {len(live)} live blocks")
    check_eq(proc["heap"]["live_allocations"], len(live), "live allocations vs mtrace")
    check_eq(proc["heap"]["live_bytes"], sum(live.values()), "live bytes vs mtrace")


def test_lost_events_are_counted_and_mark_figures_incomplete():
    target = Target([target_path("alloc_pattern"), "4"])
    try:
        # A 4 KiB ring holds 64 events; the churn sends thousands within one drain period.
        ms = Memscoped([target.pid], "--ring-size", "4096")
        target.go()
        report, text, _ = ms.stop()
    finally:
        target.stop()
    check(report["events"]["lost"] > 0, "no events lost with a 4 KiB ring")
    check_eq(process_of(report, target.pid)["complete"], False, "complete")
    check("lost" in text and "lower bounds" in text, "text report says figures are lower bounds")


def test_duration_stops_the_run():
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        t0 = time.monotonic()
        ms = Memscoped([target.pid], "-d", "1")
        report, _, _ = ms.wait(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        target.stop()
    check(elapsed < 5, f"a 1 s run took {elapsed:.1f} s")
    check(0.9 <= report["duration_seconds"] < 3, f"duration {report['duration_seconds']}")


def test_sigterm_detaches_within_a_second():
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        ms = Memscoped([target.pid])
        t0 = time.monotonic()
        ms.stop(signal.SIGTERM)
        check(time.monotonic() - t0 < 1.0, "SIGTERM took over a second")
        # The target is unharmed and still runs its pattern to the end.
        truth = target.go()
        check(truth["threads"][0]["live_allocations"] > 0, "target did not run")
    finally:
        status = target.stop()
    check_eq(status, 0, "target exit status")


def test_report_to_stdout():
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        code, out, err = run_memscoped("-p", str(target.pid), "-d", "0.3", "-r", "-")
    finally:
        target.stop()
    check_eq(code, 0, f"exit status ({err})")
    check('"report_version":1' in out, "JSON report on stdout")


def test_threads_busy_in_the_allocator_during_attach_stay_tracked():
    # demo_alloc's threads call malloc and free nonstop, so attaching races their calls;
    # a call caught half-probed must not hide that thread's later calls.
    target = subprocess.Popen([target_path("demo_alloc")])
    try:
        time.sleep(0.2)
        ms = Memscoped([target.pid], "-d", "1.5")
        report, _, _ = ms.wait(timeout=10)
    finally:
        target.kill()
        target.wait()
    proc = process_of(report, target.pid)
    workers = [t for t in proc["threads"] if t["tid"] != target.pid]
    check_eq(len(workers), 2, "worker threads seen")
    for t in workers:
        check(t["allocations_total"] > 100, f"tid {t['tid']}: {t['allocations_total']} allocations")
    # One request buffer per thread may be in flight; one block per 10 requests is cached.
    allocs = proc["heap"]["allocations_total"]
    check(proc["heap"]["live_allocations"] <= allocs // 10 + 4,
          f"{proc['heap']['live_allocations']} live of {allocs}: frees were missed")


def test_capabilities_are_dropped_once_attached():
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        ms = Memscoped([target.pid], "-v")
        # The drop follows the attach scan, just after the 'attached' line.
        caps = status_once(ms.proc.pid, lambda s: int(s["CapEff"], 16) == 0)
        # Still working without them: the run completes and reports exactly.
        truth = target.go()
        report, _, err = ms.stop()
    finally:
        target.stop()
    for name in ("CapEff", "CapPrm", "CapBnd"):
        check_eq(int(caps[name], 16), 0, name)
    check("dropped all capabilities" in err, "not said with -v")
    check_threads_exact(process_of(report, target.pid), truth)


def test_libc_deleted_since_the_target_loaded_it():
    """A package upgrade replaces libc.so.6 under running services: their maps say
    '(deleted)'. memscoped reads and probes the old file through /proc/PID/map_files."""
    with tempfile.TemporaryDirectory() as d:
        shutil.copy("/lib/x86_64-linux-gnu/libc.so.6", d)
        target = Target([target_path("alloc_pattern"), "2"],
                        env=dict(os.environ, LD_LIBRARY_PATH=d))
        os.unlink(os.path.join(d, "libc.so.6"))
    try:
        check(f"{d}/libc.so.6 (deleted)" in open(f"/proc/{target.pid}/maps").read(),
              "scenario: the target's libc is not deleted")
        ms = Memscoped([target.pid])
        truth = target.go()
        report, _, err = ms.stop()
    finally:
        target.stop()
    check(f"allocator in '{d}/libc.so.6 (deleted)'" in err, f"stderr {err!r}")
    check_threads_exact(process_of(report, target.pid), truth)


def test_user_switches_to_an_unprivileged_user_once_attached():
    nobody = pwd.getpwnam("nobody")
    target = Target([target_path("alloc_pattern"), "2"])
    try:
        ms = Memscoped([target.pid], "--user", "nobody", "-v")
        status = status_once(ms.proc.pid, lambda s: s["Uid"].split()[0] == str(nobody.pw_uid))
        truth = target.go()
        report, _, err = ms.stop()
    finally:
        target.stop()
    check_eq(status["Uid"].split(), [str(nobody.pw_uid)] * 4, "uids")
    check_eq(status["Gid"].split(), [str(nobody.pw_gid)] * 4, "gids")
    check_eq(status["Groups"].split(), [str(nobody.pw_gid)], "groups")
    check_eq(int(status["CapEff"], 16) | int(status["CapPrm"], 16), 0, "capabilities")
    check("now user nobody" in err, f"not said with -v: {err!r}")
    # Still working as nobody: every figure exact, the report written.
    check_threads_exact(process_of(report, target.pid), truth)
