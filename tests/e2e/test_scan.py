"""--mode scan: no probe on the target, figures from memory snapshots.

The heap census is checked against glibc's own mallinfo2() printed by a quiescent target, the
tasks against the tokio target's ground truth and against trace mode on the same scenario."""
import os
import re
import signal
import tempfile
import time

from harness import (BUILD, Memscoped, Target, TestFailure, check, check_eq, process_of,
                     target_path)
from test_safety import text_diffs
from test_tokio import TokioTarget, run as run_trace, tasks_by_id

# glibc's chunk overhead for one block: an 8-byte header, and rounding to 16 bytes.
CHUNK_OVERHEAD = 24


def bpf_fds(pid):
    """The BPF programs and links process pid holds a file descriptor to."""
    held = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            kind = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if kind in ("anon_inode:bpf-prog", "anon_inode:bpf_link"):
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                held.append((kind, f.read()))
    return held


def report_now(ms, timeout=10):
    """The report written on SIGUSR1 (after a fresh snapshot), once it is there."""
    try:
        os.unlink(ms.report)
    except FileNotFoundError:
        pass
    os.kill(ms.proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while not os.path.exists(ms.report):
        check(time.monotonic() < deadline, "no report within {timeout}s of SIGUSR1")
        check(ms.proc.poll() is None, f"memscoped exited: {ms.stderr()}")
        time.sleep(0.02)
    import json
    with open(ms.report) as f:
        return json.load(f)


def wait_file(path, timeout=10):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        check(time.monotonic() < deadline, f"no {path} within {timeout}s")
        time.sleep(0.05)


def metric(text, name, pid):
    m = re.search(rf'^{name}{{pid="{pid}"[^}}]*}} (\S+)$', text, re.M)
    check(m, f"{name} for pid {pid} missing from the metrics")
    return float(m.group(1))


def test_scan_attaches_nothing_and_census_matches_mallinfo2():
    target = Target([target_path("scan_census")])
    try:
        truth = target.go()
        ms = Memscoped([target.pid], "--mode", "scan", "--scan-interval", "0.2")
        # Snapshots have run (the first at start, others since): still no probe anywhere.
        first = report_now(ms)
        check_eq(bpf_fds(ms.proc.pid), [], "BPF objects held by memscoped in scan mode")
        check_eq(text_diffs(target.pid), [], "target code differing from its files")
        report, text, err = ms.stop()
        check_eq(text_diffs(target.pid), [], "target code differing from its files after exit")
    finally:
        target.stop()
    check_eq(first["mode"], "scan", "mode")
    check_eq(report["mode"], "scan", "mode")
    proc = process_of(report, target.pid)
    c = proc["census"]
    check_eq(c["supported"], True, "census supported on glibc")
    check(proc["scan"]["snapshots"] >= 2, f"snapshots {proc['scan']['snapshots']}")
    check_eq(proc["scan"]["errors"], 0, "snapshot errors")
    want = truth["uordblks"] + truth["hblkhd"]
    check(abs(c["inuse_bytes"] - want) <= want / 100,
          f"census in use {c['inuse_bytes']} vs mallinfo2 {want}: more than 1% apart")
    # The whole difference: fastbin chunks are free for mallinfo2 (fsmblks) and in use for a
    # walk of the chunks (the next chunk's PREV_INUSE bit stays set for them).
    check_eq(c["inuse_bytes"], want + truth["fsmblks"], "census in use = mallinfo2 + fastbins")
    check_eq(c["free_bytes"], truth["fordblks"] - truth["fsmblks"], "census free bytes")
    check_eq(c["arena_bytes"], truth["arena"], "arena bytes")
    check_eq(c["mmapped_bytes"], truth["hblkhd"], "mmapped bytes")
    check_eq(c["mmapped_chunks"], truth["hblks"], "mmapped chunks")
    check_eq(c["damaged_heaps"], 0, "damaged heaps")
    check(c["arenas"] >= 2, f"arenas {c['arenas']}: threads allocated in their own")
    check("heap census    in use" in text, "census section of the text report")
    check("no probe attached" in err, f"stderr {err!r}")


def test_scan_metrics_carry_the_census():
    target = Target([target_path("scan_census")])
    try:
        truth = target.go()
        tmp = tempfile.TemporaryDirectory(prefix="memscoped-scan-")
        textfile = os.path.join(tmp.name, "metrics.prom")
        ms = Memscoped([target.pid], "--mode", "scan", "--textfile", textfile, "-i", "0.2")
        wait_file(textfile)
        with open(textfile) as f:
            text = f.read()
        report, _, _ = ms.stop()
    finally:
        target.stop()
    c = process_of(report, target.pid)["census"]
    check_eq(metric(text, "memscoped_heap_census_inuse_bytes", target.pid), c["inuse_bytes"],
             "in-use metric")
    check_eq(metric(text, "memscoped_heap_census_free_bytes", target.pid), c["free_bytes"],
             "free metric")
    check_eq(metric(text, "memscoped_probes_attached", target.pid), 0, "probes attached")
    check(truth["uordblks"] > 0, "truth")


def test_scan_other_allocator_has_no_census():
    target = Target([target_path("alloc_family_jemalloc"), "1"])
    try:
        ms = Memscoped([target.pid], "--mode", "scan")
        report, _, err = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    check_eq(proc["census"]["supported"], False, "census on jemalloc")
    check("not glibc's" in proc["census"]["note"], f"note {proc['census']['note']!r}")
    check_eq(proc["retained"]["valid"], False, "retained without a census")
    check("no heap census" in err, f"stderr {err!r}")


def test_scan_bad_options_are_refused():
    from harness import run_memscoped
    for args, msg in ((("--mode", "sample"), "invalid --mode 'sample'"),
                      (("--mode", "scan", "--scan-interval", "0"), "invalid --scan-interval"),
                      (("--mode", "scan", "--user", "nobody"), "--user cannot be used"),
                      (("--leak-candidates",), "--leak-candidates needs --mode scan")):
        code, _, err = run_memscoped("-p", "1", *args)
        check_eq(code, 2, f"exit status of {args}")
        check(err.startswith("memscoped: ") and msg in err, f"stderr {err!r}")


def scan_tokio(scenario, rt, stuck_after="1"):
    """The scenario run to its end, then memscoped in scan mode; (records, process report)."""
    target = TokioTarget("release", scenario, rt)
    try:
        records, _, _ = target.go()
        ms = Memscoped([target.pid], "--mode", "scan", "--stuck-after", stuck_after,
                       "--scan-interval", "0.2")
        check_eq(bpf_fds(ms.proc.pid), [], "BPF objects held by memscoped in scan mode")
        # Past --stuck-after, with snapshots in between.
        time.sleep(float(stuck_after) + 0.5)
        report, _, err = ms.stop()
        check_eq(text_diffs(target.pid), [], "tokio target code differing from its files")
    finally:
        target.stop()
    return records, process_of(report, target.pid)


def test_scan_tokio_tasks_match_ground_truth_and_trace_mode():
    records, scan = scan_tokio("leak", "multi")
    _, trace, _, _ = run_trace("release", "leak", "multi", attach="after")
    tasks = tasks_by_id(scan)
    sleepers = [r for r in records if not r["completes"]]
    check(len(sleepers) >= 4, f"only {len(sleepers)} sleepers")
    for rec in sleepers:
        what = f"tokio:{rec['id']}"
        task = tasks.get(what)
        check(task is not None, f"{what} not found by the snapshots")
        check_eq(task["future_size_bytes"], rec["cell_size"], f"{what} cell")
        check_eq(task["state"], "idle", f"{what} state")
        check_eq(task["suspect"], True, f"{what} suspect (no progress past --stuck-after)")
        check_eq(task["future_changed"], False, f"{what} future bytes changed")
        # It holds one block of live_bytes: that block, and no more than its chunk's overhead.
        ex = task["retained_exclusive_bytes"]
        check(rec["live_bytes"] <= ex <= rec["live_bytes"] + CHUNK_OVERHEAD,
              f"{what} retained exclusive {ex}, holds {rec['live_bytes']}")
        check(task["retained_inclusive_bytes"] >= ex, f"{what} inclusive below exclusive")
    done = {f"tokio:{r['id']}" for r in records if r["completes"]}
    check(not any(t["id"] in done for t in scan["tasks"]), "a finished task found alive")
    for key in ("live", "suspects", "blocking_live"):
        check_eq(scan["tasks_summary"][key], trace["tasks_summary"][key],
                 f"tasks_summary.{key}, scan vs trace")
    check_eq(sorted(t["id"] for t in scan["tasks"]),
             sorted(t["id"] for t in trace["tasks"] if t["state"] in ("idle", "running")),
             "live tasks, scan vs trace")
    by_type = {t["type"]: t for t in scan["retained"]["task_types"]}
    for name, t in by_type.items():
        check_eq(t["retained_exclusive_bytes"],
                 sum(x["retained_exclusive_bytes"] for x in scan["tasks"] if x["type"] == name),
                 f"retained sum of {name}")


def vm_size(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))


def test_scan_heap_changing_at_full_speed_gives_sane_figures():
    """A target allocating and freeing nonstop during every snapshot, 1 s apart and on demand:
    memscoped never crashes, and every census adds up and fits in the target's memory."""
    target = Target([target_path("scan_census"), "churn"])
    try:
        target.go()
        ms = Memscoped([target.pid], "--mode", "scan", "--scan-interval", "1")
        seen = set()
        deadline = time.monotonic() + 60
        # On-demand snapshots, and until at least two interval snapshots have run between them.
        for i in range(30):
            report = report_now(ms)
            c = process_of(report, target.pid)["census"]
            n = process_of(report, target.pid)["scan"]["snapshots"]
            seen.add(n)
            check(c["supported"], "census supported")
            for key in ("inuse_bytes", "free_bytes", "arena_bytes", "mmapped_bytes",
                        "inuse_chunks", "free_chunks"):
                check(0 <= c[key] < 1 << 40, f"snapshot {n}: {key} = {c[key]}")
            check_eq(c["inuse_bytes"] + c["free_bytes"], c["arena_bytes"] + c["mmapped_bytes"],
                     f"snapshot {n}: in use + free = arenas + mmapped")
            check(c["inuse_bytes"] <= vm_size(target.pid),
                  f"snapshot {n}: in use {c['inuse_bytes']} above the target's VmSize")
            check(0 <= c["fragmentation"] <= 1, f"fragmentation {c['fragmentation']}")
            check(time.monotonic() < deadline, "30 snapshots took over 60 s")
        report, _, err = ms.stop()
        check(target.proc.poll() is None, "the target died during the snapshots")
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    check(proc["scan"]["snapshots"] >= 31, f"snapshots {proc['scan']['snapshots']}")
    check("AddressSanitizer" not in err and "runtime error" not in err, f"stderr {err!r}")


def test_scan_task_holding_a_vec_retains_it():
    """tokio tasks that each hold vec![i; 1000] of i32 (4,000 bytes) and sleep: each retains at
    least those 4,000 bytes exclusively, and no more than their chunk's overhead beyond; the
    per-type sum and its metric agree, and trace mode sees the same live tasks."""
    target = TokioTarget("release", "hold", "multi")
    tmp = tempfile.TemporaryDirectory(prefix="memscoped-scan-")
    textfile = os.path.join(tmp.name, "metrics.prom")
    try:
        records, _, _ = target.go()
        ms = Memscoped([target.pid], "--mode", "scan", "--scan-interval", "0.2",
                       "--textfile", textfile, "-i", "0.2")
        wait_file(textfile)
        with open(textfile) as f:
            metrics = f.read()
        report, text, _ = ms.stop()
    finally:
        target.stop()
    scan = process_of(report, target.pid)
    tasks = tasks_by_id(scan)
    check_eq(len(records), 4, "hold tasks in the ground truth")
    total = 0
    for rec in records:
        what = f"tokio:{rec['id']}"
        task = tasks.get(what)
        check(task is not None, f"{what} not found")
        check_eq(rec["live_bytes"], 4000, f"{what} holds")
        ex = task["retained_exclusive_bytes"]
        check(4000 <= ex <= 4000 + CHUNK_OVERHEAD, f"{what} retained exclusive {ex}")
        check_eq(task["retained_truncated"], False, f"{what} walk truncated")
        total += ex
    types = [t for t in scan["retained"]["task_types"] if "t_hold" in t["type"]]
    check_eq(len(types), 1, "one task type for t_hold")
    check_eq(types[0]["retained_exclusive_bytes"], total, "per-type sum")
    m = re.search(r'^memscoped_tasks_retained_bytes\{[^}]*task_type="([^"]*t_hold[^"]*)"\} (\S+)$',
                  metrics, re.M)
    check(m, "memscoped_tasks_retained_bytes for t_hold missing")
    check_eq(float(m.group(2)), total, "retained metric")
    _, trace, _, _ = run_trace("release", "hold", "multi", attach="after")
    check_eq(sorted(t["id"] for t in scan["tasks"]),
             sorted(t["id"] for t in trace["tasks"] if t["state"] in ("idle", "running")),
             "live tasks, scan vs trace")


def scan_async_task(executor):
    def test():
        from test_async_task import binary, run as run_trace_atask
        target = Target([binary(executor, "release"), "pre"])
        try:
            truth = target.go()
            ms = Memscoped([target.pid], "--mode", "scan", "--stuck-after", "1",
                           "--scan-interval", "0.2")
            time.sleep(1.5)
            report, _, _ = ms.stop()
            check_eq(text_diffs(target.pid), [], "target code differing from its files")
        finally:
            target.stop()
        scan = process_of(report, target.pid)
        tasks = [t for t in scan["tasks"] if t["runtime"] == "async-task"]
        check_eq(len(tasks), truth["sleepers"], "sleepers found by the snapshots")
        for t in tasks:
            what = f"sleeper {t['id']}"
            check_eq(t["state"], "idle", f"{what} state")
            check(t["suspect"], f"{what} not a suspect")
            # Each holds vec![i as u64; 1000]: that block, and its chunk's overhead at most.
            ex = t["retained_exclusive_bytes"]
            check(truth["vec_bytes"] <= ex <= truth["vec_bytes"] + CHUNK_OVERHEAD,
                  f"{what} retained exclusive {ex}")
        _, trace, _ = run_trace_atask(executor, "release", pre=True)
        live = [t for t in trace["tasks"] if t["runtime"] == "async-task"
                and t["state"] in ("idle", "running")]
        check_eq(len(tasks), len(live), "live async-task tasks, scan vs trace")
        check_eq(sorted(t["future_size_bytes"] for t in tasks),
                 sorted(t["future_size_bytes"] for t in live), "future sizes, scan vs trace")
        check_eq(scan["tasks_summary"]["suspects"], trace["tasks_summary"]["suspects"],
                 "suspects, scan vs trace")
    return test


test_scan_async_task_smol = scan_async_task("smol")
test_scan_async_task_async_std = scan_async_task("async-std")


def test_scan_target_exiting_leaves_the_last_snapshot():
    target = Target([target_path("scan_census")])
    try:
        truth = target.go()
        ms = Memscoped([target.pid], "--mode", "scan", "--scan-interval", "0.2")
    finally:
        target.stop()
    # memscoped ends by itself once its only target is gone.
    report, _, _ = ms.wait(30)
    proc = process_of(report, target.pid)
    check_eq(proc["exited"], True, "exited")
    want = truth["uordblks"] + truth["hblkhd"] + truth["fsmblks"]
    check_eq(proc["census"]["inuse_bytes"], want, "the last snapshot's census")


def test_scan_leak_candidates_are_the_blocks_nothing_points_to():
    """Five blocks the target lost every pointer to are the largest leak candidates; a block a
    global still points to is not one. Nor does a global holding the address right after a lost
    mmapped block (the next mapping's) keep that block off the list."""
    target = Target([target_path("scan_census"), "leak"])
    try:
        truth = target.go()
        ms = Memscoped([target.pid], "--mode", "scan", "--leak-candidates")
        report, text, _ = ms.stop()
    finally:
        target.stop()
    leaks = process_of(report, target.pid)["leak_candidates"]
    check_eq(leaks["truncated"], False, "leak walk truncated")
    listed = {int(c["address"], 16): c["size"] for c in leaks["largest"]}
    lost = truth["lost_mmapped"]
    check_eq(truth["after_lost"], lost - 16 + truth["lost_mmapped_size"], "the block's end")
    top = sorted(leaks["largest"], key=lambda c: -c["size"])[:len(truth["leaked"]) + 1]
    check_eq(sorted(int(c["address"], 16) for c in top), sorted(truth["leaked"] + [lost]),
             "the largest leak candidates are the leaked blocks")
    check_eq(listed[lost], truth["lost_mmapped_size"], "the lost mmapped block's size")
    for addr in truth["leaked"]:
        check(listed[addr] >= 100000, f"leaked block {addr:#x} size {listed[addr]}")
    check(truth["kept"] not in listed, "a block a global points to listed as a leak")
    check(leaks["bytes"] >= sum(listed[a] for a in truth["leaked"]), "leak bytes")
    check("leak candidates" in text, "text report")
