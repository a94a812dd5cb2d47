"""tokio tasks on unmodified release binaries, against the target's own ground truth.

tests/targets/tokio prints one JSON record per task it spawned (tokio id, parent, cell size,
every allocation and whether it is still live) after its runtime returns; memscoped's report
must agree exactly, on every build variant and both runtimes."""
import json
import os
import subprocess
import tempfile
import time

from harness import BUILD, Memscoped, check, check_eq, process_of, wait_line

VARIANTS = ("release", "strip", "lto", "v0", "debuglink", "shared")


def tokio_binary(variant):
    return os.path.join(BUILD, "tokio-out", f"tokio-target-{variant}")


class TokioTarget:
    def __init__(self, variant, scenario, rt="current", *extra):
        self.dir = tempfile.TemporaryDirectory(prefix="memscoped-tokio-")
        self.go_file = os.path.join(self.dir.name, "go")
        argv = [tokio_binary(variant), scenario, "--rt", rt, "--go-file", self.go_file, *extra]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        wait_line(self.proc.stdout, '{"type":"ready"', 10, self.proc)

    def go(self, timeout=60):
        """Starts the scenario; returns (task records, summaries, root record)."""
        open(self.go_file, "w").close()
        records, summaries, root = [], {}, None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            check(line, "tokio target ended before printing its ground truth")
            rec = json.loads(line)
            if rec["type"] == "task":
                records.append(rec)
            elif rec["type"] == "summary":
                summaries[rec["scenario"]] = rec
            elif rec["type"] == "root":
                root = rec
            elif rec["type"] == "done":
                return records, summaries, root
        raise AssertionError("no 'done' from the tokio target")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()


def tasks_by_id(proc):
    return {t["id"]: t for t in proc["tasks"]}


def run(variant, scenario, rt="current", attach="before", stuck_after="1", extra=()):
    """Runs a scenario under memscoped; attach 'before' the go signal or 'after' done."""
    target = TokioTarget(variant, scenario, rt)
    # The churn's burst (10000 tasks) outruns an ASan daemon on a busy machine with the default
    # 8 MiB ring: 64 MiB keeps the figures exact, which is what these tests are about.
    ring = () if "--ring-size" in extra else ("--ring-size", str(64 << 20))
    args = ["--stuck-after", stuck_after, "--runtime", "tokio", *ring, *extra]
    if variant == "debuglink":
        args += ["--debug-dir", os.path.join(BUILD, "tokio-out", "debug")]
    try:
        if attach == "before":
            ms = Memscoped([target.pid], *args)
            truth = target.go()
        else:
            truth = target.go()
            ms = Memscoped([target.pid], *args)
        # Past --stuck-after, so that sleepers are suspects.
        time.sleep(float(stuck_after) + 0.3)
        report, text, err = ms.stop()
    finally:
        target.stop()
    check_eq(report["events"]["lost"], 0, "lost events (exact figures need every event)")
    return truth, process_of(report, target.pid), text, err


def check_task(task, rec, spawned_here=True):
    what = f"task tokio:{rec['id']} ({rec['kind']})"
    check_eq(task["runtime"], "tokio", f"{what} runtime")
    check_eq(task["kind"], "async", f"{what} kind")
    if spawned_here:
        check_eq(task["future_size_bytes"], rec["cell_size"], f"{what} cell size")
        check(task["future_size_bytes"] >= rec["future_size"], f"{what} cell below future size")
        # A parent's total includes the cells of the tasks it spawned (it allocated them).
        check_eq(task["allocated_bytes_total"], rec["alloc_bytes"] + rec["spawned_cell_bytes"],
                 f"{what} allocated bytes")
        check_eq(task["allocations_total"], rec["alloc_count"] + rec["spawned_cells"],
                 f"{what} allocations")
        check_eq(task["live_bytes"], rec["live_bytes"], f"{what} live bytes")
        parent = f"tokio:{rec['parent_id']}" if rec["parent_id"] is not None else None
        check_eq(task["parent"], parent, f"{what} parent")
        check_eq(task["discovered"], "spawn", f"{what} discovered")
    if rec["cancelled"]:
        check_eq(task["ended"], "cancelled", f"{what} end")
    elif rec["completes"]:
        check_eq(task["ended"], "completed", f"{what} end")
        check_eq(task["suspect"], False, f"{what} suspect")
    else:
        check(task["state"] in ("idle", "running"), f"{what} state {task['state']}")
        check_eq(task["suspect"], True, f"{what} suspect (never completes)")
        check(str(task["live_bytes"] + task["future_size_bytes"]) in task["suspect_reason"],
              f"{what} reason {task['suspect_reason']!r} lacks the bytes held")
    if rec["polls"] is not None and spawned_here:
        check_eq(task["polls"], rec["polls"], f"{what} polls")


def check_all_records(proc, records):
    tasks = tasks_by_id(proc)
    for rec in records:
        task = tasks.get(f"tokio:{rec['id']}")
        check(task is not None, f"task tokio:{rec['id']} ({rec['kind']}) missing from the report")
        check_task(task, rec)


def check_summary(proc, records, summaries, rt):
    s = proc["tasks_summary"]
    check_eq(proc["runtimes"], ["tokio"], "runtimes")
    check_eq(s["spawned"], sum(x["tasks"] for x in summaries.values()), "async tasks spawned")
    check_eq(s["completed"], sum(r["completes"] and not r["cancelled"] for r in records) +
             summaries.get("churn", {}).get("tasks", 0), "completed")
    check_eq(s["cancelled"], sum(r["cancelled"] for r in records), "cancelled")
    check_eq(s["live"], sum(not r["completes"] for r in records), "live")
    check_eq(s["suspects"], s["live"], "every live task of these scenarios is a suspect")
    # Multi-thread workers each run inside a blocking launch task for the runtime's life.
    check_eq(s["blocking_spawned"], 2 if rt == "multi" else 0, "blocking tasks")
    check_eq(s["async_live_bytes"], sum(r["live_bytes"] for r in records), "async live bytes")
    check(s["untasked_live_bytes"] >= 99999, "the block_on root's buffer is untasked")


def check_type_names(variant, proc, records):
    """Each task's type is its future's type (std::any::type_name, printed by the target), or
    honestly less: "A | B | …" (identical code; T is one of them), "spawned in F" (a function
    on the task's spawn path), or the poll copy's hash."""
    tasks = tasks_by_id(proc)
    by_rec = {r["rec"]: r for r in records}
    exact = set()
    for rec in records:
        got = tasks[f"tokio:{rec['id']}"]["type"]
        true = rec["future"]
        # v0 demangling spells an async fn's future {closure#0}, DWARF {async_fn_env#0}.
        got = got.replace("{closure#0}", "{{closure}}").replace("{async_fn_env#0}", "{{closure}}")
        if got == true:
            exact.add(true)
        elif got.startswith("spawned in "):
            # Inlining decides which function on the spawn path holds the spawn: any of them.
            parent = by_rec.get(rec["parent_rec"])
            path = {"tokio_target::spawn_rec_at", "tokio_target::spawn_rec",
                    "tokio_target::root::{{closure}}",
                    f"tokio_target::scen_{rec['scenario']}::{{{{closure}}}}",
                    parent["future"] if parent else None}
            sites = got[len("spawned in "):].split(" | ")
            check(all(s in path for s in sites), f"{true} named {got!r}; spawn path {path}")
        elif " | " in got:
            alts = got.split(" | ")
            check(true in alts or alts[-1] == "…", f"{true} named {got!r}")
        else:
            check(variant == "strip" and got.startswith("poll@0x") or
                  got.startswith("tokio::runtime::task::raw::poll::h"),
                  f"{true} named {got!r}")
    # v0 symbols and DWARF (the debug file) name every future; from legacy symbols, at least
    # the five whose code is unlike any other's (t_parent, t_child_pending, t_grow, t_channel,
    # t_return); stripped: none.
    every = len({r["future"] for r in records})
    want = {"v0": every, "debuglink": every, "strip": 0}.get(variant, 5)
    check(len(exact) >= want, f"{len(exact)} future types named exactly, want {want}: {exact}")


def scenario_test(variant, rt):
    def test():
        records, summaries, root = None, None, None
        (records, summaries, root), proc, _, err = run(variant, "all", rt)
        # 17 future types (16 of "all" and hold's) on 2 schedulers, and the launch task.
        check(f"tokio: 35 poll functions" in err, f"discovery: {err!r}")
        check_all_records(proc, records)
        check_summary(proc, records, summaries, rt)
        check_type_names(variant, proc, records)
        if variant == "debuglink":
            check("debug file" in err, f"symbols not taken from the debug file: {err!r}")
        if variant == "shared":
            check("task vtables in '" in err and "libtokio_target.so' (from symbols)" in err,
                  f"tokio not found in the shared object: {err!r}")
        if variant == "strip":
            check("(from vtables)" in err, f"stripped binary not read from vtables: {err!r}")
    return test


for _v in VARIANTS:
    for _rt in ("current", "multi"):
        globals()[f"test_tokio_{_v}_{_rt}_attached_before"] = scenario_test(_v, _rt)


def late_test(variant):
    def test():
        (records, _, _), proc, _, err = run(variant, "all", "multi", attach="after")
        tasks = tasks_by_id(proc)
        sleepers = [r for r in records if not r["completes"]]
        check(len(sleepers) >= 10, f"only {len(sleepers)} sleepers in the scenario")
        for rec in sleepers:
            task = tasks.get(f"tokio:{rec['id']}")
            check(task is not None, f"sleeper tokio:{rec['id']} ({rec['kind']}) not found")
            check_eq(task["discovered"], "attach_scan", "discovered")
            # Found in memory: the cell size comes from the vtable and glibc's chunk.
            check_eq(task["future_size_bytes"], rec["cell_size"], f"tokio:{rec['id']} cell")
            check_task(task, rec, spawned_here=False)
        # Nothing that had ended before attach is reported as alive.
        done = {f"tokio:{r['id']}" for r in records if r["completes"]}
        check(not any(t["id"] in done and t["state"] in ("idle", "running")
                      for t in proc["tasks"]), "a finished task was found alive")
        check_eq(proc["tasks_summary"]["blocking_spawned"], 2, "worker launch tasks found")
        check("attach scan: " in err, "scan not reported")
    return test


for _v in VARIANTS:
    globals()[f"test_tokio_{_v}_attached_after_tasks_sleep"] = late_test(_v)


def test_tokio_runtime_none_tracks_heap_only():
    (records, _, _), proc, _, err = run("release", "leak", extra=("--runtime", "none"))
    check_eq(proc["tasks"], [], "tasks with --runtime none")
    check("tokio:" not in err, "tokio probed with --runtime none")
    check(proc["heap"]["live_bytes"] >= sum(r["live_bytes"] for r in records), "heap figures")


def test_tokio_required_but_absent_is_an_error():
    from harness import Target, run_memscoped, target_path
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        code, _, err = run_memscoped("-p", str(target.pid), "--runtime", "tokio", "-d", "1")
    finally:
        target.stop()
    check_eq(code, 1, f"exit status ({err!r})")
    check("no tokio in" in err and "raw::poll" in err, f"stderr {err!r}")


def test_tokio_target_exiting_mid_run_leaves_a_final_report():
    target = TokioTarget("release", "churn", "multi", "--exit")
    ms = Memscoped([target.pid], "--runtime", "tokio")
    target.go()
    target.proc.wait(30)
    report, _, _ = ms.wait(timeout=15)
    target.stop()
    proc = process_of(report, target.pid)
    check_eq(proc["exited"], True, "exited")
    check(proc["tasks_summary"]["spawned"] >= 10000, "churn tasks counted")


def test_tokio_max_tasks_bound_is_counted_in_every_output():
    with tempfile.TemporaryDirectory() as d:
        prom = os.path.join(d, "metrics.prom")
        (records, _, _), proc, text, _ = run("release", "leak",
                                             extra=("--max-tasks", "3", "--textfile", prom))
        with open(prom) as f:
            metrics = f.read()
    dropped = proc["limits"]["tasks_dropped"]
    check(dropped >= len(records) - 3, f"tasks_dropped {dropped} with {len(records)} tasks")
    check(len(proc["tasks"]) <= 3, f"{len(proc['tasks'])} tasks kept past --max-tasks 3")
    check_eq(proc["complete"], False, "complete")
    check(f"{dropped} tasks over --max-tasks" in text, "text report does not say so")
    check(f'bound="max_tasks"}} {dropped}' in metrics, "metrics do not say so")


def test_tokio_max_types_bound_is_counted_in_every_output():
    """16 future types (plus the workers' launch task) against --max-types 3."""
    with tempfile.TemporaryDirectory() as d:
        prom = os.path.join(d, "metrics.prom")
        (records, summaries, _), proc, text, _ = run("v0", "all", "multi",
                                                     extra=("--max-types", "3", "--textfile", prom))
        with open(prom) as f:
            metrics = f.read()
    futures = {r["future"] for r in records}
    dropped = proc["limits"]["task_types_dropped"]
    # 17 types (16 futures and the launch task) of the 35 poll copies (one per scheduler; the
    # "hold" scenario's future has the other two): each copy past the bound counts once.
    check(len(futures) + 1 - 3 <= dropped <= 35 - 3, f"task_types_dropped {dropped}")
    names = {t["name"] for t in proc["task_types"]}
    others = {"other", "other (blocking)"}
    check_eq(len(names - others), 3, f"types kept past --max-types 3: {names}")
    check("other" in names, "no 'other' type")
    # Every task is still counted, under its type or "other", async apart from blocking.
    s = proc["tasks_summary"]
    check_eq(sum(t["spawned"] for t in proc["task_types"]),
             s["spawned"] + s["blocking_spawned"], "tasks by type")
    check_eq(s["spawned"], sum(x["tasks"] for x in summaries.values()), "async tasks spawned")
    check_eq(s["blocking_spawned"], 2, "blocking tasks (the workers' launch tasks)")
    check_eq(proc["complete"], False, "complete")
    check(f"{dropped} task types over --max-types" in text, "text report does not say so")
    check(f'bound="task_types"}} {dropped}' in metrics, "metrics do not say so")
