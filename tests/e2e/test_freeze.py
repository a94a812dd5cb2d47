"""--mode scan --freeze: every thread of the target held in a ptrace stop for a snapshot.

Proved by state: while memscoped freezes, every thread of the target is in a tracing stop with
memscoped its tracer and the target's progress counter does not move; afterwards (and after a
SIGKILL of memscoped mid-freeze) nothing traces it, it runs on, and every signal sent to it
was delivered once."""
import ctypes
import errno
import os
import signal
import subprocess
import tempfile
import time

from harness import (Memscoped, Target, check, check_eq, process_of, run_memscoped,
                     status_once, target_path)
from test_scan import metric, report_now

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.sigqueue.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def thread_status(pid):
    """{tid: (state letter, tracer pid)} for every thread of pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = dict(l.split(":\t", 1) for l in f if ":\t" in l)
        except FileNotFoundError:
            continue
        out[int(tid)] = (st["State"].strip()[0], int(st["TracerPid"]))
    return out


def all_frozen_by(pid, tracer):
    return all(s == ("t", tracer) for s in thread_status(pid).values())


def wait_frozen(pid, tracer, ms, timeout=60):
    deadline = time.monotonic() + timeout
    while not all_frozen_by(pid, tracer):
        check(time.monotonic() < deadline, f"never saw every thread of {pid} stopped by {tracer}")
        check(ms.proc.poll() is None, f"memscoped exited: {ms.stderr()}")
        time.sleep(0.001)


def read_u64(pid, addr):
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(addr)
        return int.from_bytes(f.read(8), "little")


def wait_value(pid, addr, done, what, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        v = read_u64(pid, addr)
        if done(v):
            return v
        check(time.monotonic() < deadline, f"{what}: still {v} after {timeout}s")
        time.sleep(0.01)


def untraced_and_running(pid, truth, what):
    """Nothing traces any thread of pid, none is in a tracing stop, and it makes progress."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        st = status_once(f"{pid}/task/{tid}", lambda s: not s["State"].startswith("t"))
        check(not st["State"].startswith("t"), f"{what}: thread {tid} state {st['State']!r}")
        check_eq(int(st["TracerPid"]), 0, f"{what}: thread {tid} TracerPid")
    before = read_u64(pid, truth["progress"])
    wait_value(pid, truth["progress"], lambda v: v > before, f"{what}: progress")


def freeze_target(mib):
    target = Target([target_path("freeze_target"), str(mib)])
    return target, target.go(timeout=120)


def held_block(truth):
    return truth["held_hidden"] ^ truth["key"]


def test_freeze_holds_every_thread_still_during_the_snapshot():
    """A snapshot of 128 MiB of heap is slow enough to watch: during it every thread is in a
    tracing stop under memscoped and the churn counter stands still; signals sent then are
    delivered after it; the report counts the target's threads; registers are leak roots."""
    target, truth = freeze_target(128)
    try:
        ms = Memscoped([target.pid], "--mode", "scan", "--freeze", "--leak-candidates",
                       "--scan-interval", "600")
        tids = set(int(t) for t in os.listdir(f"/proc/{target.pid}/task"))
        check_eq(len(tids), truth["threads"], "the target's threads")
        sig0 = read_u64(target.pid, truth["signals"])
        seen = False
        # Only the snapshot SIGUSR1 asks for runs (the interval is 600 s): if every thread is
        # stopped by memscoped before and after the two reads, they are within one freeze.
        for attempt in range(10):
            os.unlink(ms.report) if os.path.exists(ms.report) else None
            os.kill(ms.proc.pid, signal.SIGUSR1)
            wait_frozen(target.pid, ms.proc.pid, ms)
            p1 = read_u64(target.pid, truth["progress"])
            if not seen:
                for _ in range(3):
                    os.kill(target.pid, truth["signal"])
            time.sleep(0.05)
            p2 = read_u64(target.pid, truth["progress"])
            still = all_frozen_by(target.pid, ms.proc.pid)
            seen = True
            wait_for_report(ms)
            if still:
                check_eq(p2, p1, "progress during the freeze")
                break
        else:
            check(False, "no freeze outlasted two reads 50 ms apart in 10 snapshots")
        wait_value(target.pid, truth["signals"], lambda v: v >= sig0 + 3, "signals delivered")
        untraced_and_running(target.pid, truth, "after the freeze")
        report, text, err = ms.stop()
        check_eq(read_u64(target.pid, truth["signals"]), sig0 + 3, "signals delivered once")
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    fr = proc["freeze"]
    check_eq(fr["frozen"], True, "last snapshot frozen")
    check_eq(fr["frozen_threads"], truth["threads"], "frozen threads")
    check_eq(fr["unfrozen_snapshots"], 0, "unfrozen snapshots")
    check_eq(fr["error"], None, "freeze error")
    check(fr["frozen_snapshots"] == proc["scan"]["snapshots"], f"freeze {fr}")
    check(fr["max_freeze_seconds"] >= fr["last_freeze_seconds"] > 0, f"freeze {fr}")
    check_eq(fr["group_stopped_threads"], 0, "group-stopped threads")
    check_eq(proc["census"]["damaged_heaps"], 0, "damaged heaps, frozen")
    check(fr["register_words"] >= truth["threads"] * 27, f"register words {fr['register_words']}")
    leaks = process_of(report, target.pid)["leak_candidates"]
    check(held_block(truth) not in [int(c["address"], 16) for c in leaks["largest"]],
          "the block only r12 points to is a leak candidate with --freeze")
    check(f"frozen {truth['threads']} threads" in err, f"stderr {err!r}")
    check("freeze         " in text, "freeze line of the text report")


def wait_for_report(ms, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(ms.report):
        check(time.monotonic() < deadline, "no report after SIGUSR1")
        check(ms.proc.poll() is None, f"memscoped exited: {ms.stderr()}")
        time.sleep(0.01)


def test_freeze_registers_are_the_only_root_of_a_held_block():
    """Without --freeze the block only a register points to is the largest leak candidate;
    with it, it is not one: registers are roots only when they can be read."""
    target, truth = freeze_target(0)
    try:
        ms = Memscoped([target.pid], "--mode", "scan", "--leak-candidates")
        unfrozen, _, _ = ms.stop()
        ms = Memscoped([target.pid], "--mode", "scan", "--leak-candidates", "--freeze")
        frozen, _, _ = ms.stop()
    finally:
        target.stop()
    held = held_block(truth)
    top = process_of(unfrozen, target.pid)["leak_candidates"]["largest"][0]
    check_eq(int(top["address"], 16), held, "the largest candidate, unfrozen")
    check(truth["held_size"] <= top["size"] <= truth["held_size"] + 24, f"held size {top}")
    check("freeze" not in process_of(unfrozen, target.pid), "freeze object without --freeze")
    listed = [int(c["address"], 16)
              for c in process_of(frozen, target.pid)["leak_candidates"]["largest"]]
    check(held not in listed, "the held block listed with --freeze")


def test_freeze_census_of_a_heap_changing_at_full_speed():
    """Three threads allocate and free nonstop: every frozen snapshot stops every thread, adds
    up, and parses every heap. A heap caught mid-update by a thread stopped inside malloc
    (about 1 snapshot in 100) is read again after a refreeze, up to 4 times: at that rate all
    five attempts fail about once in 10^10 snapshots."""
    target, truth = freeze_target(0)
    tmp = tempfile.TemporaryDirectory(prefix="memscoped-freeze-")
    textfile = os.path.join(tmp.name, "metrics.prom")
    try:
        ms = Memscoped([target.pid], "--mode", "scan", "--freeze", "--scan-interval", "600",
                       "--textfile", textfile)
        for i in range(15):
            proc = process_of(report_now(ms), target.pid)
            c, fr = proc["census"], proc["freeze"]
            what = f"snapshot {proc['scan']['snapshots']}"
            check_eq(fr["frozen"], True, f"{what} frozen")
            check_eq(fr["frozen_threads"], truth["threads"], f"{what} frozen threads")
            check_eq(c["damaged_heaps"], 0, f"{what} damaged heaps")
            check_eq(c["inuse_bytes"] + c["free_bytes"], c["arena_bytes"] + c["mmapped_bytes"],
                     f"{what}: in use + free = arenas + mmapped")
        # It froze 16 times holding one capability: CAP_SYS_PTRACE (19), nothing else.
        caps = status_once(ms.proc.pid, lambda s: True)
        for name in ("CapEff", "CapPrm", "CapBnd"):
            check_eq(int(caps[name], 16), 1 << 19, f"memscoped's {name}")
        report, _, _ = ms.stop()
        untraced_and_running(target.pid, truth, "after 16 freezes")
    finally:
        target.stop()
    # The textfile is written at exit before the report's own snapshot: it holds an earlier
    # freeze, so at most the maximum (which the report rounds to 4 decimals).
    with open(textfile) as f:
        last = metric(f.read(), "memscoped_scan_freeze_seconds", target.pid)
    fr = process_of(report, target.pid)["freeze"]
    check(0 < last <= fr["max_freeze_seconds"] + 0.00005, f"metric {last} vs {fr}")


def test_freeze_sigkill_of_memscoped_mid_freeze_leaves_the_target_running():
    target, truth = freeze_target(128)
    try:
        for round in range(3):
            ms = Memscoped([target.pid], "--mode", "scan", "--freeze", "--leak-candidates",
                           "--scan-interval", "600")
            sig0 = read_u64(target.pid, truth["signals"])
            os.kill(ms.proc.pid, signal.SIGUSR1)
            wait_frozen(target.pid, ms.proc.pid, ms)
            for _ in range(3):
                os.kill(target.pid, truth["signal"])
            check(all_frozen_by(target.pid, ms.proc.pid), "the freeze ended before the kill")
            ms.kill()
            check_eq(ms.proc.returncode, -signal.SIGKILL, "memscoped killed")
            untraced_and_running(target.pid, truth, f"after SIGKILL {round}")
            wait_value(target.pid, truth["signals"], lambda v: v >= sig0 + 3,
                       "signals sent during the freeze")
            check_eq(read_u64(target.pid, truth["signals"]), sig0 + 3, "signals delivered once")
        check(target.proc.poll() is None, "the target died")
    finally:
        target.stop()


def test_freeze_loses_no_signal_sent_during_snapshots():
    """A storm of queued real-time signals while memscoped freezes every 0.1 s: the target's
    handler counts exactly as many as were sent."""
    target, truth = freeze_target(8)
    try:
        ms = Memscoped([target.pid], "--mode", "scan", "--freeze", "--scan-interval", "0.1")
        sig0 = read_u64(target.pid, truth["signals"])
        sent = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            # sigqueue, not kill: past the pending-signal limit a kill() of a real-time signal
            # still succeeds but merges with the one pending, sigqueue fails with EAGAIN.
            if LIBC.sigqueue(target.pid, truth["signal"], None) == 0:
                sent += 1
            elif ctypes.get_errno() == errno.EAGAIN:  # the queue is full: not sent
                time.sleep(0.001)
            else:
                raise OSError(ctypes.get_errno(), "sigqueue")
        report, _, _ = ms.stop()
        got = wait_value(target.pid, truth["signals"], lambda v: v >= sig0 + sent,
                         "signals delivered")
        check_eq(got - sig0, sent, "signals delivered")
        untraced_and_running(target.pid, truth, "after the storm")
    finally:
        target.stop()
    fr = process_of(report, target.pid)["freeze"]
    check(fr["frozen_snapshots"] >= 3, f"freeze {fr}")
    check_eq(fr["unfrozen_snapshots"], 0, "unfrozen snapshots")
    print(f"# {sent} signals, {fr['frozen_snapshots']} freezes, "
          f"{fr['signals_reinjected']} given back from a signal-delivery-stop")


def test_freeze_keeps_a_group_stop():
    """A target stopped by SIGSTOP stays stopped after a frozen snapshot, and SIGCONT resumes
    it."""
    target, truth = freeze_target(0)
    try:
        os.kill(target.pid, signal.SIGSTOP)
        for tid in os.listdir(f"/proc/{target.pid}/task"):
            status_once(f"{target.pid}/task/{tid}", lambda s: s["State"].startswith("T"))
        p0 = read_u64(target.pid, truth["progress"])
        ms = Memscoped([target.pid], "--mode", "scan", "--freeze")
        report, _, _ = ms.stop()
        for tid, (state, tracer) in thread_status(target.pid).items():
            check_eq((state, tracer), ("T", 0), f"thread {tid} after the snapshot")
        check_eq(read_u64(target.pid, truth["progress"]), p0, "progress while stopped")
        os.kill(target.pid, signal.SIGCONT)
        untraced_and_running(target.pid, truth, "after SIGCONT")
    finally:
        target.stop()
    fr = process_of(report, target.pid)["freeze"]
    check_eq(fr["frozen"], True, "frozen")
    check_eq(fr["group_stopped_threads"], truth["threads"], "group-stopped threads")
    check_eq(fr["frozen_threads"], truth["threads"], "frozen threads")


def strace(pid):
    """strace following every thread of pid, tracing nothing; returns once it traces them."""
    st = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=none", "-p", str(pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not all(t == st.pid for _, t in thread_status(pid).values()):
        check(time.monotonic() < deadline, "strace did not attach")
        time.sleep(0.01)
    return st


def test_freeze_bad_input():
    code, _, err = run_memscoped("-p", "1", "--freeze")
    check_eq(code, 2, "exit status of --freeze without --mode scan")
    check(err.startswith("memscoped: ") and "--freeze needs --mode scan" in err, f"{err!r}")
    target, truth = freeze_target(0)
    try:
        st = strace(target.pid)
        try:
            code, _, err = run_memscoped("-p", str(target.pid), "--mode", "scan", "--freeze")
            after = thread_status(target.pid)
        finally:
            st.terminate()
            st.wait()
        check_eq(code, 1, f"exit status on a traced target (stderr {err!r})")
        want = f"pid {target.pid}: --freeze: it is already traced by pid {st.pid}"
        check(want in err, f"stderr {err!r}")
        check(all(t == st.pid for _, t in after.values()), f"tracers after: {after}")
        untraced_and_running(target.pid, truth, "after strace left")
    finally:
        target.stop()


def test_freeze_a_tracer_arriving_later_gives_unfrozen_snapshots():
    target, truth = freeze_target(0)
    try:
        ms = Memscoped([target.pid], "--mode", "scan", "--freeze", "--scan-interval", "600")
        st = strace(target.pid)
        try:
            traced = process_of(report_now(ms), target.pid)
        finally:
            st.terminate()
            st.wait()
        again = process_of(report_now(ms), target.pid)
        report, _, err = ms.stop()
        untraced_and_running(target.pid, truth, "after the snapshots")
    finally:
        target.stop()
    fr = traced["freeze"]
    check_eq(fr["frozen"], False, "frozen while strace traces it")
    check_eq(fr["unfrozen_snapshots"], 1, "unfrozen snapshots")
    check(f"already traced by pid {st.pid}" in fr["error"], f"error {fr['error']!r}")
    check_eq(traced["census"]["supported"], True, "census taken unfrozen")
    check_eq(again["freeze"]["frozen"], True, "frozen once strace left")
    check_eq(again["freeze"]["error"], None, "error once strace left")
    check("snapshots are taken unfrozen" in err and "frozen again" in err, f"stderr {err!r}")


def test_freeze_tokio_tasks_and_retained_heap_as_unfrozen():
    """A multi-thread tokio runtime (workers parked in epoll_wait and futex waits) freezes whole,
    and the frozen snapshot finds the same tasks and retained bytes as the unfrozen one."""
    from test_tokio import TokioTarget, tasks_by_id
    target = TokioTarget("release", "hold", "multi")
    try:
        records, _, _ = target.go()
        threads = len(os.listdir(f"/proc/{target.pid}/task"))
        ms = Memscoped([target.pid], "--mode", "scan", "--freeze")
        frozen, _, _ = ms.stop()
        ms = Memscoped([target.pid], "--mode", "scan")
        unfrozen, _, _ = ms.stop()
        for tid, (state, tracer) in thread_status(target.pid).items():
            check(state != "t" and tracer == 0, f"thread {tid} after: {state} {tracer}")
    finally:
        target.stop()
    fr = process_of(frozen, target.pid)["freeze"]
    check_eq(fr["frozen"], True, "frozen")
    check_eq(fr["frozen_threads"], threads, "frozen threads: the runtime's")
    a, b = tasks_by_id(process_of(frozen, target.pid)), tasks_by_id(process_of(unfrozen, target.pid))
    check_eq(sorted(a), sorted(b), "tasks, frozen vs unfrozen")
    check_eq(len(records), 4, "hold tasks")
    for rec in records:
        what = f"tokio:{rec['id']}"
        check_eq(a[what]["retained_exclusive_bytes"], b[what]["retained_exclusive_bytes"],
                 f"{what} retained, frozen vs unfrozen")
        check(4000 <= a[what]["retained_exclusive_bytes"] <= 4024, f"{what} {a[what]}")


def blocked_in(pid, tid, nrs):
    """The syscall number thread tid of pid is blocked in, once it is one of nrs."""
    deadline = time.monotonic() + 10
    while True:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            nr = f.read().split()[0]
        if nr in nrs:
            return nr
        check(time.monotonic() < deadline, f"thread {tid} not blocked in {nrs}: {nr}")
        time.sleep(0.001)


def test_freeze_makes_epoll_wait_return_eintr():
    """PTRACE_INTERRUPT wakes a thread blocked in epoll_wait, and epoll_wait is one of the
    calls a stop does not restart (signal(7)): each freeze makes it return -1/EINTR, as the
    README, the man page and the warning at start say. read on a pipe is restarted: it never
    returns. A kernel that changes either is noticed here."""
    target = Target([target_path("freeze_eintr")])
    truth = target.go()
    pid, rounds = target.pid, 4
    epoll_nrs, read_nrs = ("232", "281", "441"), ("0",)  # epoll_wait, epoll_pwait(2); read
    try:
        blocked_in(pid, truth["epoll_tid"], epoll_nrs)
        blocked_in(pid, truth["read_tid"], read_nrs)
        ms = Memscoped([pid], "--mode", "scan", "--freeze", "--scan-interval", "600")
        # Each snapshot (the first, one per SIGUSR1, the last at exit) finds both blocked.
        for n in range(1, rounds + 1):
            wait_value(pid, truth["epoll_returns"], lambda v: v >= n, f"epoll_wait returns {n}")
            blocked_in(pid, truth["epoll_tid"], epoll_nrs)
            blocked_in(pid, truth["read_tid"], read_nrs)
            if n < rounds:
                os.unlink(ms.report) if os.path.exists(ms.report) else None
                os.kill(ms.proc.pid, signal.SIGUSR1)
                wait_for_report(ms)
        report, _, err = ms.stop()
        fr = process_of(report, pid)["freeze"]
        check_eq(fr["unfrozen_snapshots"], 0, "unfrozen snapshots")
        check_eq(fr["refreezes"], 0, "refreezes (no heap churns)")
        check_eq(fr["frozen_snapshots"], rounds + 1, "frozen snapshots")
        returns = wait_value(pid, truth["epoll_returns"], lambda v: v >= rounds + 1,
                             "epoll_wait returns")
        check_eq(returns, fr["frozen_snapshots"], "epoll_wait returns, one per freeze")
        check_eq(read_u64(pid, truth["epoll_eintr"]), returns, "epoll_wait returns with EINTR")
        check_eq(read_u64(pid, truth["read_returns"]), 0, "read returns")
        check_eq(err.count("may return EINTR from it; services must retry"), 1,
                 f"the warning, once: {err!r}")
    finally:
        target.stop()
