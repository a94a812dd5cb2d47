"""Daemon mode with task runtimes: a process the selectors choose, running at start or started
(exec'd) later, gets its runtimes exactly as a --pid target does: tokio's tasks per instance of
a restarted service, the attach scan of tasks alive before memscoped, ucontext coroutines,
and sampled stacks. The helper attaches; the daemon reads through the descriptors it passes.

Every test selects only processes it started: their comm and paths are unique to the run."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from harness import Memscoped, Target, check, check_eq, target_path, wait_line
from test_coro import THREADS, check_coroutines
from test_coro import check_summary as check_coro_summary
from test_daemon import attached, records, unique
from test_tokio import (TokioTarget, check_all_records, check_summary, check_task,
                        tasks_by_id, tokio_binary)

STUCK_AFTER = 1


class NamedTokio(TokioTarget):
    """tests/targets/tokio run as exe (a copy or a link under a name unique to the test)."""

    def __init__(self, exe, scenario, rt):
        self.dir = tempfile.TemporaryDirectory(prefix="memscoped-tokio-")
        self.go_file = os.path.join(self.dir.name, "go")
        self.proc = subprocess.Popen([exe, scenario, "--rt", rt, "--go-file", self.go_file],
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        wait_line(self.proc.stdout, '{"type":"ready"', 10, self.proc)


def test_daemon_tokio_restarted_service_has_every_instance_tasks_exactly():
    """Selected by --comm at each exec, three times: each instance's tasks, exact."""
    d = tempfile.TemporaryDirectory(prefix="memscoped-daemon-")
    comm = unique("t")
    exe = os.path.join(d.name, comm)
    os.symlink(tokio_binary("release"), exe)
    ms = Memscoped([], "--comm", f"^{comm}$", "--stuck-after", str(STUCK_AFTER))
    truths = {}
    try:
        for i in range(3):
            t = NamedTokio(exe, "all", "multi")
            try:
                attached(ms, t.pid)
                truths[t.pid] = t.go()
                # Past --stuck-after while it runs, so that its sleepers are suspects.
                time.sleep(STUCK_AFTER + 0.3)
            finally:
                t.stop()
        report, _, err = ms.stop()
    finally:
        ms.kill()
    check_eq(report["targets_missed"], 0, "targets missed")
    check_eq(err.count("tokio: 35 poll functions"), 3, f"tokio found in each instance: {err}")
    for pid, (recs, summaries, _) in truths.items():
        procs = records(report, pid)
        check_eq(len(procs), 1, f"records of pid {pid}")
        check_eq(procs[0]["exited"], True, f"pid {pid} exited")
        check_all_records(procs[0], recs)
        check_summary(procs[0], recs, summaries, "multi")
        # Its allocator and its tokio, both from the exec: nothing missed, nothing from before.
        check_eq(procs[0]["complete"], True, f"pid {pid} complete")


def test_daemon_tokio_running_at_start_gets_its_attach_scan():
    """Selected by --exe when memscoped starts: its sleeping tasks are found in memory."""
    d = tempfile.TemporaryDirectory(prefix="memscoped-daemon-")
    name = unique("s")
    exe = os.path.join(d.name, name)
    shutil.copy(tokio_binary("release"), exe)
    t = NamedTokio(exe, "all", "multi")
    try:
        records_, _, _ = t.go()
        ms = Memscoped([], "--exe", f"{d.name}/{name[:6]}*", "--stuck-after", str(STUCK_AFTER))
        try:
            attached(ms, t.pid)
            time.sleep(STUCK_AFTER + 0.3)
            report, _, err = ms.stop()
        finally:
            ms.kill()
    finally:
        t.stop()
    proc = records(report, t.pid)[0]
    tasks = tasks_by_id(proc)
    sleepers = [r for r in records_ if not r["completes"]]
    check(len(sleepers) >= 10, f"only {len(sleepers)} sleepers in the scenario")
    for rec in sleepers:
        task = tasks.get(f"tokio:{rec['id']}")
        check(task is not None, f"sleeper tokio:{rec['id']} ({rec['kind']}) not found")
        check_eq(task["discovered"], "attach_scan", "discovered")
        check_eq(task["future_size_bytes"], rec["cell_size"], f"tokio:{rec['id']} cell")
        check_task(task, rec, spawned_here=False)
    done = {f"tokio:{r['id']}" for r in records_ if r["completes"]}
    check(not any(t_["id"] in done and t_["state"] in ("idle", "running")
                  for t_ in proc["tasks"]), "a finished task was found alive")
    check_eq(proc["tasks_summary"]["blocking_spawned"], 2, "worker launch tasks found")
    check(f"pid {t.pid}: attach scan: {len(sleepers) + 2} tokio tasks" in err,
          f"scan not reported: {err}")


def test_daemon_ucontext_coroutines_of_a_process_selected_at_exec():
    d = tempfile.TemporaryDirectory(prefix="memscoped-daemon-")
    comm = unique("c")
    exe = os.path.join(d.name, comm)
    os.symlink(target_path("coro_ucontext"), exe)
    ms = Memscoped([], "--comm", f"^{comm}$", "--stuck-after", str(STUCK_AFTER))
    target = None
    try:
        target = Target([exe, str(THREADS)])
        attached(ms, target.pid)
        truth = target.go()
        time.sleep(STUCK_AFTER + 0.3)
        report, _, _ = ms.stop()
    finally:
        ms.kill()
        if target:
            target.stop()
    proc = records(report, target.pid)[0]
    check_coroutines(truth, proc)
    check_coro_summary(truth, proc)


def test_daemon_exec_of_a_target_into_tokio_is_planned_again_with_its_runtime():
    """A selected shell that execs the tokio target: the new image gets tokio, its tasks exact."""
    d = tempfile.TemporaryDirectory(prefix="memscoped-daemon-")
    comm = unique("x")[:13]
    shell, tokio = os.path.join(d.name, comm + "a"), os.path.join(d.name, comm + "b")
    os.symlink("/bin/sh", shell)
    os.symlink(tokio_binary("release"), tokio)
    t = NamedTokio.__new__(NamedTokio)
    t.dir = tempfile.TemporaryDirectory(prefix="memscoped-tokio-")
    t.go_file = os.path.join(t.dir.name, "go")
    ms = Memscoped([], "--comm", f"^{comm}", "--stuck-after", str(STUCK_AFTER))
    try:
        t.proc = subprocess.Popen([shell, "-c", 'read x; exec "$1" all --rt current '
                                   '--go-file "$2"', "sh", tokio, t.go_file],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        t.pid = t.proc.pid
        try:
            attached(ms, t.pid)
            t.proc.stdin.write("go\n")
            t.proc.stdin.flush()
            wait_line(t.proc.stdout, '{"type":"ready"', 10, t.proc)
            attached(ms, t.pid, count=2)
            recs, summaries, _ = t.go()
            time.sleep(STUCK_AFTER + 0.3)
            report, _, err = ms.stop()
        finally:
            t.stop()
    finally:
        ms.kill()
    procs = records(report, t.pid)
    check_eq([(p["exe"], p["exec"]) for p in procs],
             [("/usr/bin/dash", True), (os.path.realpath(tokio_binary("release")), False)], "the two images")
    check_eq(procs[0]["runtimes"], [], "the shell's runtimes")
    check_all_records(procs[1], recs)
    check_summary(procs[1], recs, summaries, "current")


def test_daemon_stacks_of_a_process_selected_at_exec_exact():
    """--sample-bytes 1: every allocation's stack of a process the helper attached, exact,
    its objects opened by the daemon through the helper's descriptors."""
    from test_stacks import PATHS, START
    d = tempfile.TemporaryDirectory(prefix="memscoped-daemon-")
    comm = unique("k")
    exe = os.path.join(d.name, comm)
    os.symlink(target_path("stacks_c"), exe)
    ms = Memscoped([], "--comm", f"^{comm}$", "--sample-bytes", "1")
    target = None
    try:
        target = Target([exe, "exact"])
        attached(ms, target.pid)
        truth = target.go()
        report, _, _ = ms.stop(timeout=60)
    finally:
        ms.kill()
        if target:
            target.stop()
    check_eq(report["events"]["lost"], 0, "lost events")
    top = records(report, target.pid)[0]["stacks"]["top"]
    check_eq([(t["frames"], t["live_bytes"], t["allocations"]) for t in top[:3]],
             [(START + PATHS[n], truth[n]["live_bytes"], truth[n]["live_count"])
              for n in ("gamma", "beta", "alpha")], "JSON stacks.top")
