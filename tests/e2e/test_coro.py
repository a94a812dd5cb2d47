"""Stackful coroutines on glibc ucontext, against the target's own ground truth.

tests/targets/coro_ucontext.c runs a small scheduler per thread and prints, per coroutine,
its stack, generation, entry function, resumes, bytes and end; memscoped's report must agree
exactly, attached before the coroutines start and after (then the ones made before attach are
found at their first switch, or counted as unknown when their stack cannot be told)."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from harness import (ROOT, Memscoped, Target, check, check_eq, process_of, run_memscoped,
                     status_once, target_path, wait_line)

THREADS = 3


def run(pre, exe=None, runtime="ucontext", stuck_after="1", extra=()):
    argv = [exe or target_path("coro_ucontext"), str(THREADS)] + (["pre"] if pre else [])
    target = Target(argv)
    try:
        ms = Memscoped([target.pid], "--runtime", runtime, "--stuck-after", stuck_after,
                       *extra)
        truth = target.go()
        # Past --stuck-after, so that parked coroutines are suspects.
        time.sleep(float(stuck_after) + 0.3)
        report, text, err = ms.stop()
    finally:
        target.stop()
    return truth, process_of(report, target.pid), text, err


def coro_id(c):
    return f"ucontext:{c['stack']}/{c['generation']}"


def check_coroutines(truth, proc, type_names=True):
    tasks = {t["id"]: t for t in proc["tasks"]}
    tracked = [c for c in truth["coroutines"] if c["tracked"]]
    for c in tracked:
        what = f"coroutine {coro_id(c)} ({c['type']})"
        t = tasks.get(coro_id(c))
        check(t is not None, f"{what} missing; tasks: {sorted(tasks)}")
        check_eq(t["runtime"], "ucontext", f"{what} runtime")
        if type_names:
            check_eq(t["type"], "(created before attach)" if c["discovered"] else c["type"],
                     f"{what} type")
        check_eq(t["discovered"], "first_poll" if c["discovered"] else "spawn",
                 f"{what} discovered")
        check_eq(t["address"], c["stack"], f"{what} address")
        check_eq(t["stack_bytes"], c["stack_bytes"], f"{what} stack bytes")
        check_eq(t["generation"], c["generation"], f"{what} generation")
        check_eq(t["resumes"], c["resumes"], f"{what} resumes")
        check_eq(t["allocated_bytes_total"], c["alloc_bytes"], f"{what} allocated bytes")
        check_eq(t["allocations_total"], c["alloc_count"], f"{what} allocations")
        check_eq(t["live_bytes"], c["live_bytes"], f"{what} live bytes")
        check_eq(t["last_tid"], c["tid"], f"{what} last thread")
        check_eq(t["ended"], c["end"], f"{what} end")
        check_eq(t["suspect"], c["parked"], f"{what} suspect")
        if c["parked"]:
            check_eq(t["state"], "idle", f"{what} state")
            reason = t["suspect_reason"]
            check(f"holding {c['live_bytes']} bytes" in reason and "not resumed" in reason,
                  f"{what} reason {reason!r}")
        else:
            check_eq(t["state"], "deallocated", f"{what} state")
    # Nothing else: untracked coroutines and the scheduler are no task.
    check_eq(len(proc["tasks"]), len(tracked), "coroutine tasks")
    for c in truth["coroutines"]:
        if not c["tracked"]:
            check(not any(t["address"] == c["stack"] for t in proc["tasks"]),
                  f"unknown coroutine on {c['stack']} reported as a task")


def check_summary(truth, proc, type_names=True):
    tracked = [c for c in truth["coroutines"] if c["tracked"]]
    s = proc["tasks_summary"]
    check_eq(proc["runtimes"], ["ucontext"], "runtimes")
    check_eq(s["spawned"], len(tracked), "spawned")
    check_eq(s["live"], sum(c["parked"] for c in tracked), "live")
    check_eq(s["completed"], sum(c["end"] == "completed" for c in tracked), "completed")
    check_eq(s["cancelled"], sum(c["end"] == "cancelled" for c in tracked), "cancelled")
    check_eq(s["suspects"], s["live"], "every parked coroutine is a suspect")
    check_eq(s["async_live_bytes"], sum(c["live_bytes"] for c in tracked), "coroutine live bytes")
    check_eq(s["async_allocated_bytes_total"], sum(c["alloc_bytes"] for c in tracked),
             "coroutine allocated bytes")
    # The scheduler's buffers and what unknown coroutines allocate belong to no task.
    untasked = sum(t["untasked_live_bytes"] for t in truth["threads"]) + \
        sum(c["live_bytes"] for c in truth["coroutines"] if not c["tracked"])
    check(s["untasked_live_bytes"] >= untasked,
          f"untasked live {s['untasked_live_bytes']} < scheduler's {untasked}")
    co = proc["coroutines"]
    check_eq(co["unknown_switches"], sum(t["unknown_switches"] for t in truth["threads"]),
             "unknown switches")
    check_eq(co["discovered"], sum(c["discovered"] for c in truth["coroutines"]), "discovered")
    check_eq(co["ended_stack_freed"] + co["ended_stack_unmapped"],
             sum(c["end"] == "cancelled" for c in tracked), "stacks freed or unmapped")
    check_eq(co["ended_stack_unmapped"], THREADS, "stacks unmapped")
    check("before attach" in co["note"], "the report says earlier coroutines may be missing")
    types = {t["name"]: t for t in proc["task_types"]}
    for name in {c["type"] for c in tracked if not c["discovered"]} if type_names else ():
        check_eq(types[name]["spawned"],
                 sum(c["type"] == name and not c["discovered"] for c in tracked),
                 f"type {name} spawned")
        check_eq(types[name]["runtime"], "ucontext", f"type {name} runtime")


def test_coro_ucontext_attached_before_start():
    truth, proc, text, _ = run(pre=False)
    check_coroutines(truth, proc)
    check_summary(truth, proc)
    check(all(not c["discovered"] for c in truth["coroutines"]), "scenario: all made after")
    # The text report names coroutines the same way.
    parked = next(c for c in truth["coroutines"] if c["parked"])
    check(coro_id(parked) in text, f"{coro_id(parked)} not in the text report")


def test_coro_ucontext_max_tasks_bounds_the_stack_table():
    """Coroutine stacks are tracked only for tracked coroutines: --max-tasks bounds them."""
    truth, proc, text, _ = run(pre=False, extra=("--max-tasks", "2"))
    parked = [c for c in truth["coroutines"] if c["parked"]]
    check(len(parked) > 2, "scenario: more parked coroutines than the bound")
    live = [t for t in proc["tasks"] if t["state"] in ("idle", "running")]
    check(len(live) <= 2, f"{len(live)} live coroutines tracked past --max-tasks 2")
    check(proc["coroutines"]["live_stacks"] <= 2,
          f"{proc['coroutines']['live_stacks']} stack ranges kept past --max-tasks 2")
    dropped = proc["limits"]["tasks_dropped"]
    check(dropped >= len(parked) - 2, f"tasks_dropped {dropped}")
    check_eq(proc["complete"], False, "complete")
    check(f"{dropped} tasks over --max-tasks" in text, "text report does not say so")
    # What the dropped ones allocate is charged to no other coroutine.
    truth_by_id = {coro_id(c): c for c in truth["coroutines"]}
    for t in proc["tasks"]:
        c = truth_by_id.get(t["id"])
        check(c is not None, f"{t['id']} is no coroutine of the target")
        check_eq(t["live_bytes"], c["live_bytes"], f"{t['id']} live bytes")
        check_eq(t["allocated_bytes_total"], c["alloc_bytes"], f"{t['id']} allocated bytes")


def test_coro_ucontext_attached_after_start_discovers_at_first_switch():
    truth, proc, _, _ = run(pre=True)
    check(sum(c["discovered"] for c in truth["coroutines"]) == 2 * THREADS, "scenario")
    check(sum(not c["tracked"] for c in truth["coroutines"]) == THREADS, "scenario")
    check_coroutines(truth, proc)
    check_summary(truth, proc)


def test_coro_ucontext_stripped_executable():
    with tempfile.TemporaryDirectory(prefix="memscoped-coro-") as d:
        exe = os.path.join(d, "coro_ucontext_stripped")
        subprocess.run(["strip", "-o", exe, target_path("coro_ucontext")], check=True)
        out = subprocess.run(["readelf", "-S", exe], capture_output=True, text=True).stdout
        check(".symtab" not in out, "the copy still has a symbol table")
        truth, proc, _, err = run(pre=False, exe=exe)
    check("libc.so" in err, f"ucontext not found in libc's dynamic symbols: {err!r}")
    check_coroutines(truth, proc, type_names=False)
    check_summary(truth, proc, type_names=False)
    # No symbols: each entry function is named by its place, one type per function.
    types = {t["type"] for t in proc["tasks"]}
    check_eq(len(types), len({c["type"] for c in truth["coroutines"]}), f"types {types}")
    check(all(re.fullmatch(r"coro_ucontext_stripped\+0x[0-9a-f]+", t) for t in types),
          f"types {types}")


def test_coro_ucontext_one_link_per_probe():
    truth, proc, _, err = run(pre=True, extra=("--no-uprobe-multi",))
    check("one link per probe" in err, f"stderr {err!r}")
    check_coroutines(truth, proc)
    check_summary(truth, proc)


def test_coro_ucontext_auto_runtime_finds_coroutines():
    truth, proc, _, _ = run(pre=False, runtime="auto")
    check_coroutines(truth, proc)
    check_summary(truth, proc)


def test_coro_ucontext_runtime_none_tracks_heap_only():
    truth, proc, _, _ = run(pre=False, runtime="none")
    check_eq(proc["tasks"], [], "tasks with --runtime none")
    check_eq(proc["runtimes"], [], "runtimes with --runtime none")
    check("coroutines" not in proc, "coroutine section with --runtime none")
    live = sum(c["live_bytes"] for c in truth["coroutines"])
    check(proc["heap"]["live_bytes"] >= live, "heap figures")


def test_coro_ucontext_not_listed_for_programs_without_coroutines():
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        ms = Memscoped([target.pid])
        target.go()
        report, _, _ = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    check_eq(proc["runtimes"], [], "runtimes of a program without coroutines")
    check_eq(proc["tasks"], [], "tasks")


def test_coro_ucontext_required_but_absent_is_an_error():
    with tempfile.TemporaryDirectory(prefix="memscoped-coro-") as d:
        # A static program without coroutines: no makecontext anywhere in the process.
        exe = os.path.join(d, "static_alloc")
        subprocess.run(["cc", "-O1", "-fno-builtin", "-static", "-pthread", "-o", exe,
                        os.path.join(ROOT, "tests", "targets", "alloc_pattern.c")], check=True)
        target = Target([exe, "1"])
        try:
            code, _, err = run_memscoped("-p", str(target.pid), "--runtime", "ucontext",
                                         "-d", "1")
        finally:
            target.stop()
    check_eq(code, 1, f"exit status ({err!r})")
    check("no ucontext in" in err and "makecontext, swapcontext and setcontext" in err,
          f"stderr {err!r}")


# libpcl: switches through ucontext underneath; each coroutine is reported once, as pcl.

def run_pcl(pre, runtime="pcl", stuck_after="1"):
    return run(pre, target_path("coro_pcl"), runtime, stuck_after)


def check_pcl(truth, proc):
    tasks = {t["id"]: t for t in proc["tasks"]}
    tracked = [c for c in truth["coroutines"] if c["tracked"]]
    for c in tracked:
        cid = f"pcl:{c['handle']}/{c['generation']}"
        what = f"coroutine {cid} ({c['type']})"
        t = tasks.get(cid)
        check(t is not None, f"{what} missing; tasks: {sorted(tasks)}")
        check_eq(t["runtime"], "pcl", f"{what} runtime")
        check_eq(t["type"], c["type"], f"{what} type (the function given to co_create)")
        check_eq(t["discovered"], "spawn", f"{what} discovered")
        check_eq(t["resumes"], c["resumes"], f"{what} resumes")
        check_eq(t["allocated_bytes_total"], c["alloc_bytes"], f"{what} allocated bytes")
        check_eq(t["allocations_total"], c["alloc_count"], f"{what} allocations")
        check_eq(t["live_bytes"], c["live_bytes"], f"{what} live bytes")
        check_eq(t["last_tid"], c["tid"], f"{what} last thread")
        check_eq(t["ended"], c["end"], f"{what} end")
        check_eq(t["suspect"], c["parked"], f"{what} suspect")
        if c["parked"]:
            check(f"holding {c['live_bytes']} bytes" in t["suspect_reason"],
                  f"{what} reason {t['suspect_reason']!r}")
    # Once each: no ucontext twin, and libpcl's own delete helper is no task.
    check_eq(len(proc["tasks"]), len(tracked), "pcl tasks")
    check_eq(proc["runtimes"], ["pcl"], "runtimes")
    s = proc["tasks_summary"]
    check_eq(s["spawned"], len(tracked), "spawned")
    check_eq(s["live"], sum(c["parked"] for c in tracked), "live")
    check_eq(s["suspects"], s["live"], "suspects")
    check_eq(s["completed"], sum(c["end"] == "completed" for c in tracked), "completed")
    check_eq(s["cancelled"], sum(c["end"] == "cancelled" for c in tracked), "cancelled")
    check_eq(s["async_live_bytes"], sum(c["live_bytes"] for c in tracked), "live bytes")
    untasked = sum(t["untasked_live_bytes"] for t in truth["threads"]) + \
        sum(c["live_bytes"] for c in truth["coroutines"] if not c["tracked"])
    check(s["untasked_live_bytes"] >= untasked, "scheduler bytes are untasked")
    check_eq(proc["coroutines"]["unknown_switches"],
             sum(t["unknown_switches"] for t in truth["threads"]), "unknown switches")


def test_coro_pcl_attached_before_start():
    truth, proc, _, err = run_pcl(pre=False)
    check("pcl: co_create" in err, f"libpcl not found: {err!r}")
    check_pcl(truth, proc)


def test_coro_pcl_attached_after_start():
    truth, proc, _, _ = run_pcl(pre=True)
    check(sum(not c["tracked"] for c in truth["coroutines"]) == THREADS, "scenario")
    check_pcl(truth, proc)


def test_coro_pcl_auto_runtime():
    truth, proc, _, _ = run_pcl(pre=False, runtime="auto")
    check_pcl(truth, proc)


def test_coro_pcl_required_but_absent_is_an_error():
    target = Target([target_path("coro_ucontext"), "1"])
    try:
        code, _, err = run_memscoped("-p", str(target.pid), "--runtime", "pcl", "-d", "1")
    finally:
        target.stop()
    check_eq(code, 1, f"exit status ({err!r})")
    check("no pcl in" in err and "co_create, co_exit_to and co_delete" in err,
          f"stderr {err!r}")


# boost.context: raw fcontext and boost::context::fiber, from libboost_context.so (C++).

def run_fcontext(pre, runtime="fcontext", stuck_after="1"):
    return run(pre, target_path("coro_fcontext"), runtime, stuck_after)


def check_fcontext(truth, proc):
    tasks = {t["id"]: t for t in proc["tasks"]}
    tracked = [c for c in truth["coroutines"] if c["tracked"]]
    for c in tracked:
        cid = f"fcontext:{c['stack']}/{c['generation']}"
        what = f"coroutine {cid} ({c['type']})"
        t = tasks.get(cid)
        check(t is not None, f"{what} missing; tasks: {sorted(tasks)}")
        check_eq(t["runtime"], "fcontext", f"{what} runtime")
        if c["discovered"]:
            check_eq(t["type"], "(created before attach)", f"{what} type")
        elif c["type"] in ("fiber", "coroutine2"):
            # A fiber runs boost's fiber_entry<record<fiber, stack, lambda>>: demangled C++.
            check(t["type"].startswith("void boost::context::detail::fiber_entry<"),
                  f"{what} type {t['type']!r}")
            check(("coroutines2" in t["type"]) == (c["type"] == "coroutine2"),
                  f"{what} type {t['type']!r}")
        else:
            check_eq(t["type"], c["type"], f"{what} type (demangled entry function)")
        check_eq(t["discovered"], "first_poll" if c["discovered"] else "spawn",
                 f"{what} discovered")
        check_eq(t["resumes"], c["resumes"], f"{what} resumes")
        if c["type"] in ("fiber", "coroutine2") and c["end"] == "cancelled":
            # Unwinding throws boost's forced_unwind: the exception object is its allocation.
            check(t["allocated_bytes_total"] > c["alloc_bytes"], f"{what} allocated bytes")
        else:
            check_eq(t["allocated_bytes_total"], c["alloc_bytes"], f"{what} allocated bytes")
            check_eq(t["allocations_total"], c["alloc_count"], f"{what} allocations")
        check_eq(t["live_bytes"], c["live_bytes"], f"{what} live bytes")
        check_eq(t["last_tid"], c["tid"], f"{what} last thread")
        check_eq(t["ended"], c["end"], f"{what} end")
        check_eq(t["suspect"], c["parked"], f"{what} suspect")
    check_eq(len(proc["tasks"]), len(tracked), "fcontext tasks")
    s = proc["tasks_summary"]
    check_eq(s["spawned"], len(tracked), "spawned")
    check_eq(s["live"], sum(c["parked"] for c in tracked), "live")
    check_eq(s["suspects"], s["live"], "suspects")
    check_eq(s["completed"], sum(c["end"] == "completed" for c in tracked), "completed")
    check_eq(s["cancelled"], sum(c["end"] == "cancelled" for c in tracked), "cancelled")
    check_eq(s["async_live_bytes"], sum(c["live_bytes"] for c in tracked), "live bytes")
    check(s["untasked_live_bytes"] >= sum(t["untasked_live_bytes"] for t in truth["threads"]),
          "scheduler bytes are untasked")
    check_eq(proc["coroutines"]["unknown_switches"], 0, "unknown switches")
    check_eq(proc["coroutines"]["discovered"], sum(c["discovered"] for c in tracked),
             "discovered")


def test_coro_fcontext_attached_before_start():
    truth, proc, _, err = run_fcontext(pre=False)
    check("fcontext: make_fcontext" in err and "libboost_context" in err, f"stderr {err!r}")
    check_fcontext(truth, proc)
    check_eq(proc["runtimes"], ["fcontext"], "runtimes")


def test_coro_fcontext_attached_after_start_discovers_at_first_switch():
    truth, proc, _, _ = run_fcontext(pre=True)
    check(sum(c["discovered"] for c in truth["coroutines"]) == THREADS, "scenario")
    check_fcontext(truth, proc)
    check_eq(proc["runtimes"], ["fcontext"], "runtimes")


def test_coro_fcontext_auto_runtime():
    truth, proc, _, _ = run_fcontext(pre=False, runtime="auto")
    check_fcontext(truth, proc)


def test_coro_fcontext_required_but_absent_is_an_error():
    target = Target([target_path("coro_ucontext"), "1"])
    try:
        code, _, err = run_memscoped("-p", str(target.pid), "--runtime", "fcontext", "-d", "1")
    finally:
        target.stop()
    check_eq(code, 1, f"exit status ({err!r})")
    check("no fcontext in" in err and "make_fcontext, jump_fcontext and ontop_fcontext" in err,
          f"stderr {err!r}")


def test_coro_pcl_loaded_after_attach():
    """libpcl dlopened after memscoped attached (--runtime auto): the library watcher, a child
    that keeps only the capabilities attaching needs, attaches to it within a second."""
    host = subprocess.Popen([target_path("coro_dlopen"), target_path("libcoro_pcl_app.so"),
                             str(THREADS)], stdout=subprocess.PIPE, text=True)
    try:
        wait_line(host.stdout, "loader", 10, host)
        ms = Memscoped([host.pid], "--runtime", "auto", "--stuck-after", "1")
        check("pcl:" not in ms.stderr(), "scenario: libpcl is mapped before the dlopen")
        # The watcher is forked after the attach scan, just after the 'attached' line.
        deadline = time.monotonic() + 5
        while True:
            with open(f"/proc/{ms.proc.pid}/task/{ms.proc.pid}/children") as f:
                watcher = [int(c) for c in f.read().split()]
            if watcher or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        check_eq(len(watcher), 1, "one library watcher")
        # CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF,
        # CAP_CHECKPOINT_RESTORE: nothing else (no CAP_SETUID, CAP_DAC_OVERRIDE, CAP_KILL...).
        allowed = (1 << 2) | (1 << 19) | (1 << 21) | (1 << 38) | (1 << 39) | (1 << 40)
        # It drops the rest first thing after the fork.
        caps = status_once(watcher[0], lambda st: int(st["CapBnd"], 16) & ~allowed == 0)
        for name in ("CapEff", "CapPrm", "CapBnd"):
            check_eq(int(caps[name], 16) & ~allowed, 0, f"watcher {name} {caps[name].strip()}")
        os.kill(host.pid, signal.SIGUSR2)
        wait_line(host.stdout, "ready", 10, host)
        deadline = time.monotonic() + 5
        while "loaded after attach" not in ms.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        check("pcl: its library was loaded after attach" in ms.stderr(),
              f"libpcl not attached after dlopen: {ms.stderr()!r}")
        os.kill(host.pid, signal.SIGUSR1)
        truth = json.loads(wait_line(host.stdout, "truth ", 30, host)[len("truth "):])
        wait_line(host.stdout, "done", 30, host)
        time.sleep(1.3)
        report, _, _ = ms.stop()
    finally:
        host.terminate()
        host.wait()
    check_pcl(truth, process_of(report, host.pid))
    check(not os.path.exists(f"/proc/{watcher[0]}"), "the watcher outlived memscoped")
