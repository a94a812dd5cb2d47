"""Safety: the target never pays for memscoped's death, its forks, execs, threads and exits."""
import json
import os
import random
import signal
import statistics
import subprocess
import time

from harness import (Memscoped, Target, TestFailure, check, check_eq, process_of, target_path,
                     thread_of, wait_line)

HEAP_FIELDS = ("live_bytes", "live_allocations", "allocated_bytes_total", "allocations_total")
OUR_PROGS = {"alloc_entry", "alloc_return", "task_poll_enter", "task_poll_return"}
UPROBE_MULTI = (12, "uprobe_multi")  # bpftool before 7.3 prints the link type as a number


def bpftool(*args):
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True,
                         timeout=20).stdout
    return json.loads(out) if out.strip() else []


def bpf_held():
    """Ids of the BPF programs and links some live process holds a file descriptor to."""
    progs, links = set(), set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") not in ("anon_inode:bpf-prog",
                                                               "anon_inode:bpf_link"):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    info = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            if "link_id" in info:
                links.add(int(info["link_id"]))
            if "prog_id" in info:
                progs.add(int(info["prog_id"]))
    return progs, links


def our_bpf_objects():
    """(programs, links) of memscoped's program names: {id: name}, {link id: prog name}."""
    progs = {p["id"]: p.get("name") for p in bpftool("prog", "show")
             if p.get("name") in OUR_PROGS}
    links = {l["id"]: progs[l["prog_id"]] for l in bpftool("link", "show")
             if l.get("prog_id") in progs and l.get("type") in UPROBE_MULTI}
    return progs, links


class BpfBaseline:
    """Programs and links loaded after this point that nobody holds are leaks.

    Other memscoped instances may run on the machine at the same time: theirs are held by a
    live process, ours died with the memscoped we killed."""

    def __init__(self):
        self.prog_floor = max((p["id"] for p in bpftool("prog", "show")), default=0)
        self.link_floor = max((l["id"] for l in bpftool("link", "show")), default=0)

    def orphans(self):
        progs, links = our_bpf_objects()
        held_progs, held_links = bpf_held()
        return ({i: n for i, n in progs.items() if i > self.prog_floor and i not in held_progs},
                {i: n for i, n in links.items() if i > self.link_floor and i not in held_links})

    def check_released(self, what, timeout=2.5):
        # The kernel frees a program when its last reference goes, after an RCU grace period.
        deadline = time.monotonic() + timeout
        while True:
            progs, links = self.orphans()
            if not progs and not links:
                return
            if time.monotonic() > deadline:
                raise TestFailure(f"{what}: {timeout}s after memscoped died, uprobe_multi links "
                                  f"{links} and programs {progs} are still loaded")
            time.sleep(0.1)


def uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def kernel_uprobe_leaks(pid, since):
    """The kernel's warnings since that uptime that it leaked a uprobe of process pid."""
    out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
    leaks = []
    for line in out.splitlines():
        if f":{pid} failed to unregister, leaking uprobe" not in line:
            continue
        try:
            if float(line[1:line.index("]")]) >= since:
                leaks.append(line)
        except ValueError:
            leaks.append(line)
    return leaks


def read_lines(proc, timeout):
    """All of a target's remaining stdout as {first word: rest}, once it exits."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TestFailure(f"target {proc.pid} did not finish within {timeout}s")
    return dict((line.split(" ", 1) + [""])[:2] for line in out.splitlines() if line)


def start_checksum(steps):
    """Starts safety_checksum; returns (process, its untraced malloc+free ns) once ready."""
    p = subprocess.Popen([target_path("safety_checksum"), str(steps)], stdout=subprocess.PIPE,
                         text=True)
    before = wait_line(p.stdout, "before_ns ", 30, p)
    wait_line(p.stdout, "ready", 10, p)
    return p, float(before.split()[1])


def finish_checksum(p):
    """Waits for the checksum, then lets the target time its malloc; returns its lines."""
    line = wait_line(p.stdout, "checksum ", 60, p)
    os.kill(p.pid, signal.SIGUSR1)
    out = read_lines(p, 60)
    out["checksum"] = line.split(" ", 1)[1]
    return out


def run_checksum(steps):
    """An untraced run: (checksum, malloc ns)."""
    p, _ = start_checksum(steps)
    os.kill(p.pid, signal.SIGUSR1)
    out = finish_checksum(p)
    check_eq(p.returncode, 0, f"untraced safety_checksum exit status ({out})")
    return out["checksum"], float(out["malloc_ns"])


def test_sigkill_leaves_target_intact_and_no_probes():
    steps, runs = 150000, 20
    seed = int(os.environ.get("SAFETY_SEED", time.time()))
    rng = random.Random(seed)
    base = [run_checksum(steps) for _ in range(2)]
    check_eq(base[1][0], base[0][0], "checksum of two untraced runs")
    checksum, base_ns = base[0][0], statistics.median(b[1] for b in base)
    bpf = BpfBaseline()
    since = uptime() - 1
    slow, leaked = [], []
    for i in range(runs):
        # Odd runs kill while events flow; even runs start the workload with the attach (which
        # then takes 30-450 ms) and kill 10-60 ms later, mostly inside the uprobe_multi links'
        # creation.
        delay = rng.uniform(0, 0.5) if i % 2 else rng.uniform(0.01, 0.06)
        when = "after attach" if i % 2 else "from start"
        what = f"run {i} (SAFETY_SEED={seed}, kill {delay * 1000:.0f} ms {when})"
        target, before_ns = start_checksum(steps)
        try:
            ms = Memscoped([target.pid], wait_attached=bool(i % 2))
            os.kill(target.pid, signal.SIGUSR1)
            time.sleep(delay)
            ms.kill()
            # The kernel releases a dead process's links asynchronously: time the target's
            # malloc only once they are gone.
            bpf.check_released(what)
            # Unregistering can fail in the kernel, which then keeps the uprobe (and may keep its
            # breakpoints in the target) with no link or program left to show for it.
            leaks = kernel_uprobe_leaks(ms.proc.pid, since)
            if leaks:
                leaked.append(f"{what}: {len(leaks)} x '{leaks[0]}'")
            out = finish_checksum(target)
        finally:
            if target.poll() is None:
                target.kill()
                target.wait()
        check_eq(target.returncode, 0, f"{what}: target exit status ({out})")
        check_eq(out.get("checksum"), checksum, f"{what}: checksum")
        # A uprobe left in the target costs a trap per call: 20x and more, not 2x. The
        # same process's figure before the attach absorbs other load on the machine.
        ns = float(out["malloc_ns"])
        if ns > 2 * max(base_ns, before_ns):
            slow.append(f"{what}: {ns:.0f} ns, {before_ns:.0f} ns before the attach")
    check(not slow and not leaked,
          f"malloc+free slower than twice the untraced {base_ns:.0f} ns: {slow}; "
          f"kernel leaked uprobes of a killed memscoped: {leaked}")


def test_sigint_during_event_flood_exits_within_a_second():
    target = Target([target_path("safety_churn")])
    ms = None
    try:
        ms = Memscoped([target.pid])
        time.sleep(1)
        t0 = time.monotonic()
        ms.proc.send_signal(signal.SIGINT)
        try:
            ms.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise TestFailure("memscoped still runs 5 s after SIGINT under an event flood")
        elapsed = time.monotonic() - t0
        report, _, _ = ms.wait()
        check(target.proc.poll() is None, "target died")
    finally:
        if ms:
            ms.kill()
        status = target.stop()
    check(elapsed < 1.0, f"memscoped took {elapsed:.2f} s to exit after SIGINT")
    check_eq(status, 0, "target exit status")
    check(report["events"]["received"] > 10000,
          f"only {report['events']['received']} events: no flood")
    check_eq(process_of(report, target.pid)["exited"], False, "exited")


def test_children_after_fork_are_not_counted():
    target = Target([target_path("safety_fork"), "10"])
    try:
        ms = Memscoped([target.pid])
        truth = target.go()
        report, _, _ = ms.stop()
    finally:
        target.stop()
    check_eq(truth["children_ok"], truth["children"], "children that exited 0")
    proc = process_of(report, target.pid)
    # Children keep a 777777-byte block, churn 1000 pairs and free the parent's blocks.
    check(proc["heap"]["allocated_bytes_total"] < 777777,
          f"parent's allocated_bytes_total {proc['heap']['allocated_bytes_total']} "
          f"includes a child's 777777-byte block")
    for f in HEAP_FIELDS:
        check_eq(proc["heap"][f], truth[f], f"process {f}")
        check_eq(thread_of(proc, truth["tid"])[f], truth[f], f"main thread {f}")
    check_eq(proc["heap"]["frees_total"], 0, "frees_total (children freed their copies)")
    check_eq([t["tid"] for t in proc["threads"]], [truth["tid"]], "threads seen")
    check_eq(proc["complete"], True, "complete")


def test_exec_ends_the_targets_report_at_the_exec():
    # The new image is another program: the old one's blocks, tasks and probes mean nothing
    # there. memscoped ends that target's report at the exec, and, with no other target, ends.
    target = Target([target_path("safety_exec"), "self"])
    ms = None
    try:
        ms = Memscoped([target.pid])
        os.kill(target.pid, signal.SIGUSR1)
        wait_line(target.proc.stdout, "exec", 10, target.proc)
        check_eq(wait_line(target.proc.stdout, "after ", 10, target.proc),
                 f"after {target.pid}", "the new image's pid")
        report, text, err = ms.wait(timeout=5)
        wait_line(target.proc.stdout, "done", 10, target.proc)
        check(target.proc.poll() is None, "target died")
    finally:
        if ms:
            ms.kill()
        status = target.stop()
    check_eq(status, 0, "target exit status")
    check(f"pid {target.pid}: exec'd a new program" in err, f"exec not said: {err!r}")
    check("[exec'd" in text, "text report does not mark the exec")
    proc = process_of(report, target.pid)
    check_eq(proc["exec"], True, "exec")
    check_eq(proc["exited"], False, "exited")
    # Exactly the old image's figures: three 3333-byte blocks kept and 100 pairs churned;
    # none of the new image's five 2222-byte blocks or 1000 pairs.
    check_eq(proc["heap"]["live_bytes"], 3 * 3333, "live bytes at the exec")
    check_eq(proc["heap"]["live_allocations"], 3, "live allocations at the exec")
    check_eq(proc["heap"]["allocations_total"], 103, "allocations before the exec")


def test_exec_of_another_program_that_exits_ends_the_run():
    target = Target([target_path("safety_exec"), "true"])
    ms = Memscoped([target.pid])
    os.kill(target.pid, signal.SIGUSR1)
    try:
        target.proc.wait(10)
    finally:
        target.stop()
    check_eq(target.proc.returncode, 0, "exit status of /bin/true")
    t0 = time.monotonic()
    report, text, _ = ms.wait(timeout=5)
    elapsed = time.monotonic() - t0
    check(elapsed < 1.0, f"memscoped took {elapsed:.2f} s to notice the exit")
    proc = process_of(report, target.pid)
    check_eq(proc["exited"], True, "exited")
    check(proc["heap"]["allocations_total"] >= 103,
          f"allocations_total {proc['heap']['allocations_total']}: the old image was not seen")


def threads_run(*args):
    target = Target([target_path("safety_threads"), "2000"])
    try:
        ms = Memscoped([target.pid], *args)
        truth = target.go(timeout=60)
        report, text, _ = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    # The main thread allocates first, so it is always tracked, even with --max-threads.
    main = thread_of(proc, target.pid)
    for f in HEAP_FIELDS:
        check_eq(proc["heap"][f] - main[f], truth[f], f"process {f} minus the main thread's")
    check(main["live_allocations"] >= 1, "main thread's 4321-byte block")
    return proc, truth, text


def test_two_thousand_threads_are_counted_exactly():
    proc, truth, _ = threads_run()
    workers = [t for t in proc["threads"] if t["tid"] != proc["pid"]]
    check_eq(len(workers), truth["threads"], "threads in the report")
    check_eq(sum(t["live_allocations"] for t in workers), truth["live_allocations"],
             "kept blocks of the threads")
    check_eq(sorted({(t["live_bytes"], t["allocations_total"]) for t in workers}),
             [(64, 2)], "each thread's live bytes and allocations")
    check_eq(proc["limits"]["thread_events_dropped"], 0, "thread_events_dropped")
    check_eq(proc["complete"], True, "complete")


def test_max_threads_drops_thread_figures_not_process_figures():
    proc, truth, text = threads_run("--max-threads", "100")
    check_eq(len(proc["threads"]), 100, "threads in the report")
    check(proc["limits"]["thread_events_dropped"] > 0, "thread_events_dropped is 0")
    check_eq(proc["complete"], False, "complete")
    check("incomplete" in text, "text report says incomplete")


def test_dlopen_dlclose_loop_keeps_figures_exact():
    target = Target([target_path("safety_dlopen"), "100"])
    try:
        ms = Memscoped([target.pid])
        truth = target.go(timeout=60)
        report, _, _ = ms.stop()
    finally:
        status = target.stop()
    check_eq(status, 0, "target exit status")
    check_eq(truth["failures"], 0, "dlopen/dlsym/dlclose failures")
    proc = process_of(report, target.pid)
    allocator = thread_of(proc, truth["tid"])
    for f in HEAP_FIELDS:
        check_eq(allocator[f], truth[f], f"allocating thread {f}")
    # Everything else is dlopen's own bookkeeping on the other threads.
    others = [t for t in proc["threads"] if t["tid"] != truth["tid"]]
    for f in HEAP_FIELDS:
        check_eq(proc["heap"][f] - sum(t[f] for t in others), truth[f],
                 f"process {f} minus the dlopen thread's")
    # dlopen allocates on every load: the probes stayed in libc through 100 unloads of libm.
    dl = thread_of(proc, truth["dl_tid"])
    check(dl["allocations_total"] >= truth["loops"],
          f"dlopen thread: {dl['allocations_total']} allocations in {truth['loops']} loads")
    check_eq(proc["complete"], True, "complete")


def test_target_exiting_mid_allocation_ends_the_run():
    target = Target([target_path("safety_churn"), "300"])
    ms = None
    try:
        ms = Memscoped([target.pid])
        os.kill(target.pid, signal.SIGUSR1)
        wait_line(target.proc.stdout, "exiting", 10, target.proc)
        target.proc.wait(5)
        t0 = time.monotonic()
        try:
            ms.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise TestFailure("memscoped still runs 5 s after its only target exited")
        elapsed = time.monotonic() - t0
        report, text, _ = ms.wait()
    finally:
        if ms:
            ms.kill()
        target.stop()
    check_eq(target.proc.returncode, 0, "target exit status")
    check(elapsed < 1.0, f"memscoped took {elapsed:.2f} s to notice the exit")
    proc = process_of(report, target.pid)
    check_eq(proc["exited"], True, "exited")
    check("[exited]" in text, "text report marks the exit")
    check(proc["heap"]["allocations_total"] > 1000, "no allocations seen")
    for f in HEAP_FIELDS:
        check(0 <= proc["heap"][f] < 1 << 40, f"process {f} is {proc['heap'][f]}")


def test_two_instances_on_one_target():
    target = Target([target_path("alloc_pattern"), "2"])
    first = second = None
    try:
        first = Memscoped([target.pid])
        second = Memscoped([target.pid], wait_attached=False)
        deadline = time.monotonic() + 20
        while "attached " not in second.stderr() and second.proc.poll() is None:
            check(time.monotonic() < deadline, "second memscoped neither attached nor exited")
            time.sleep(0.02)
        if second.proc.poll() is not None:
            # Refusing is allowed: one clear line and a failure status, and the first still works.
            err = second.stderr()
            check(second.proc.returncode != 0, "second memscoped exited 0 without attaching")
            check(err.startswith("memscoped: ") and err.count("\n") == 1,
                  f"second memscoped's refusal is not one line: {err!r}")
            second = None
        truth = target.go()
        reports = [first.stop()[0]] + ([second.stop()[0]] if second else [])
    finally:
        for m in (first, second):
            if m:
                m.kill()
        target.stop()
    for n, report in enumerate(reports):
        proc = process_of(report, target.pid)
        for t in truth["threads"]:
            got = thread_of(proc, t["tid"])
            for f in HEAP_FIELDS:
                check_eq(got[f], t[f], f"instance {n + 1}: tid {t['tid']} {f}")
        for f in HEAP_FIELDS + ("frees_total",):
            check_eq(proc["heap"][f], sum(t[f] for t in truth["threads"]),
                     f"instance {n + 1}: process {f}")
        check_eq(proc["complete"], True, f"instance {n + 1}: complete")


def test_max_allocations_bound_is_reported():
    target = Target([target_path("alloc_pattern"), "2"])
    try:
        ms = Memscoped([target.pid], "--max-allocations", "10")
        truth = target.go()
        report, text, _ = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    check(proc["limits"]["allocations_dropped"] > 0, "allocations_dropped is 0")
    check_eq(proc["complete"], False, "complete")
    check(proc["heap"]["live_allocations"] <= 10,
          f"{proc['heap']['live_allocations']} live allocations over a bound of 10")
    # Totals count every allocation, tracked or not.
    check_eq(proc["heap"]["allocations_total"], sum(t["allocations_total"]
                                                    for t in truth["threads"]),
             "allocations_total")
    check("incomplete" in text, f"text report does not say incomplete: {text!r}")
