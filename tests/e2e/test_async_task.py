"""async-task tasks (async-std 1.12 and smol 1.3) on unmodified release and stripped binaries.

tests/targets/async-task spawns ten tasks, each allocating vec![i; 1000] (8000 bytes); six
then sleep for an hour holding it (leaks: suspects with exactly those bytes), four complete.
Attached before the tasks start every figure is exact and, with symbols (legacy or v0), the
task types are the user's futures; attached after they started, the six
sleepers are found in memory by the attach scan (what they allocated before attach is not
known), and nothing that had ended is reported alive."""
import os
import time

from harness import BUILD, Memscoped, Target, check, check_eq, process_of

EXECUTORS = ("async-std", "smol")
VARIANTS = ("release", "strip", "v0", "debuglink")
STUCK_AFTER = 1


def binary(executor, variant):
    return os.path.join(BUILD, "async-task-out", f"{executor}-target-{variant}")


def run(executor, variant, pre, extra=()):
    argv = [binary(executor, variant)] + (["pre"] if pre else []) + list(extra)
    target = Target(argv)
    try:
        args = ["--runtime", "async-task", "--stuck-after", str(STUCK_AFTER)]
        if variant == "debuglink":
            args += ["--debug-dir", os.path.join(BUILD, "async-task-out", "debug")]
        ms = Memscoped([target.pid], *args)
        truth = target.go()
        # Past --stuck-after, so that the sleepers are suspects.
        time.sleep(STUCK_AFTER + 0.3)
        report, _, err = ms.stop()
    finally:
        target.stop()
    return truth, process_of(report, target.pid), err


def check_discovery(variant, err):
    check("async-task: " in err and "run functions" in err, f"discovery: {err!r}")
    source = {"strip": "(from vtables)", "debuglink": "(from its build-id debug file)"}.get(
        variant, "(from symbols)")
    check(source in err, f"{variant} binary not read {source}: {err!r}")


def attached_before(executor, variant):
    def test():
        truth, proc, err = run(executor, variant, pre=False)
        check_discovery(variant, err)
        check_eq(proc["runtimes"], ["async-task"], "runtimes")
        tasks = [t for t in proc["tasks"] if t["runtime"] == "async-task"]
        sleepers = [t for t in tasks if t["suspect"]]
        done = [t for t in tasks if t["ended"] == "completed"]
        tasks = [t for t in tasks if t["ended"] != "cancelled"]
        check_eq(len(sleepers), truth["sleepers"], f"suspects ({tasks})")
        check_eq(len(done), truth["tasks"] - truth["sleepers"], f"completed ({tasks})")
        check_eq(len(tasks), truth["tasks"], "tasks seen")
        for t in sleepers:
            what = f"sleeper {t['id']} ({t['type']})"
            check_eq(t["live_bytes"], truth["vec_bytes"], f"{what} live bytes")
            check_eq(t["live_allocations"], 1, f"{what} live allocations")
            check_eq(t["allocated_bytes_total"], truth["vec_bytes"], f"{what} allocated")
            check_eq(t["state"], "idle", f"{what} state")
            check_eq(t["discovered"], "spawn", f"{what} discovered")
            check(t["polls"] >= 1, f"{what} polls")
            check(str(t["live_bytes"] + t["future_size_bytes"]) in t["suspect_reason"],
                  f"{what} suspect reason {t['suspect_reason']!r}")
        for t in done:
            what = f"worker {t['id']} ({t['type']})"
            check_eq(t["live_bytes"], 0, f"{what} live bytes")
            check_eq(t["allocated_bytes_total"], truth["vec_bytes"], f"{what} allocated")
            check_eq(t["state"], "completed", f"{what} state")
        # One future type each; its size is the cell the task lives in.
        for group in (sleepers, done):
            sizes = {t["future_size_bytes"] for t in group}
            types = {t["type"] for t in group}
            check_eq(len(sizes), 1, f"future sizes {sizes}")
            check(min(sizes) >= 32, f"future size {sizes} below the 32-byte header")
            check_eq(len(types), 1, f"type names {types}")
        check(sleepers[0]["type"] != done[0]["type"], "sleepers and workers share a type")
        # Named from symbols (legacy: the helpers run calls; v0: run's own generic arguments),
        # the executors' wrappers off: the user's futures.
        if variant != "strip":
            check("common::leaker" in sleepers[0]["type"], f"sleeper type {sleepers[0]['type']!r}")
            check("spawn_all" in done[0]["type"], f"worker type {done[0]['type']!r}")
        s = proc["tasks_summary"]
        check_eq(s["spawned"], truth["tasks"], "spawned")
        check_eq(s["suspects"], truth["sleepers"], "suspects")
        check_eq(s["completed"], truth["tasks"] - truth["sleepers"], "completed")
        check_eq(s["async_live_bytes"], truth["sleepers"] * truth["vec_bytes"], "live bytes")
    return test


def attached_after(executor, variant):
    def test():
        truth, proc, err = run(executor, variant, pre=True)
        check_discovery(variant, err)
        check(f"attach scan: {truth['sleepers']} async-task tasks" in err,
              f"scan not reported: {err!r}")
        tasks = [t for t in proc["tasks"] if t["runtime"] == "async-task"]
        # Nothing that had ended before attach is reported alive: only the sleepers.
        check_eq(len(tasks), truth["sleepers"], f"tasks found ({tasks})")
        for t in tasks:
            what = f"sleeper {t['id']} ({t['type']})"
            check_eq(t["discovered"], "attach_scan", f"{what} discovered")
            check(t["suspect"], f"{what} not a suspect")
            check_eq(t["state"], "idle", f"{what} state")
            check(t["future_size_bytes"] >= 32, f"{what} future size")
        check_eq(len({t["future_size_bytes"] for t in tasks}), 1, "one future size")
        check_eq(proc["tasks_summary"]["suspects"], truth["sleepers"], "suspects")
    return test


def cancelled(executor):
    def test():
        truth, proc, _ = run(executor, "release", pre=False, extra=["cancel"])
        check_eq(truth["cancelled"], 1, "the target cancelled a task")
        tasks = [t for t in proc["tasks"] if t["runtime"] == "async-task"]
        gone = [t for t in tasks if t["ended"] == "cancelled"]
        check_eq(len(gone), 1, f"cancelled tasks ({tasks})")
        t = gone[0]
        # Its future, and the vector it held, dropped. Its cell is freed with the last waker:
        # smol's timer keeps one until the reactor drops the timer, so it may still be there.
        check_eq(t["live_bytes"], 0, "cancelled task's live bytes")
        check_eq(t["allocated_bytes_total"], truth["vec_bytes"], "cancelled task's allocations")
        check(t["state"] in ("cancelled", "deallocated"), f"cancelled task's state {t['state']}")
        check(not t["suspect"], "a cancelled task is no suspect")
        check("common::leaker" in t["type"], f"cancelled task's type {t['type']!r}")
        s = proc["tasks_summary"]
        check_eq(s["cancelled"], 1, "cancelled")
        check_eq(s["suspects"], truth["sleepers"], "suspects")
        check_eq(s["completed"], truth["tasks"] - truth["sleepers"], "completed")
    return test


for _e in EXECUTORS:
    globals()[f"test_async_task_{_e.replace('-', '_')}_cancelled"] = \
        cancelled(_e)

    for _v in VARIANTS:
        _n = _e.replace("-", "_")
        globals()[f"test_async_task_{_n}_{_v}_attached_before"] = attached_before(_e, _v)
        globals()[f"test_async_task_{_n}_{_v}_attached_after"] = attached_after(_e, _v)
