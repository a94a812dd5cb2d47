#!/usr/bin/env python3
"""The cost and the limits of memscoped on tokio targets (scripts/bench/run.sh runs it).

Targets: tests/targets/tokio-bench (built by its build.sh into $BUILD/tokio-bench-out).
Four measurements, each against a reference taken in the same run (the 2-core VM is noisy):

1. churn: `tokio-bench churn 200000 1000 256` (2 workers; 200k tasks in batches of 1000, each
   allocates and frees 256 bytes) untraced and under memscoped, interleaved in a rotating
   order, BENCH_REPS times (default 5). Slowdown = median tasks/s untraced / traced; daemon
   CPU per event = memscoped's utime+stime (/proc/PID/stat) from the go signal to its exit
   (it exits by itself once the target did) / events received; lost events must be 0.
2. types: `tokio-bench-types` (1000 distinct future types: 2000 poll copies, one per type and
   scheduler) against `tokio-bench` (7 poll copies), ATTACH_REPS times (default 3): poll
   functions found, memscoped start -> its 'attached' line, the uprobe_multi BPF_LINK_CREATE
   calls (strace -T, a separate run), SIGINT -> exit.
3. heap: `tokio-bench heap 1024 2000` (1 GiB in 1024 non-zero 1 MiB buffers held by 2000
   sleeping tasks), attached ATTACH_REPS times after the set-up: the 'attach scan' line (MiB,
   ms -> ms per GiB) and the sleeping tasks in the JSON report; reference: the scan of the
   churn target (a few MiB).
4. scrape: memscoped --listen attached to `tokio-bench sleepers 100000 64`, then 100k tasks
   that each allocate 64 bytes and sleep forever: 20 timed GETs of /metrics (new connection
   each; bar: max < 100 ms), events lost (bar: 0), memscoped's VmRSS and idle CPU; reference:
   the same spawn untraced.

Prints one summary table at the end. Exits non-zero when a run fails; a missed bar only
prints FAIL.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("BUILD", "build")
REPS = int(os.environ.get("BENCH_REPS", "5"))
ATTACH_REPS = int(os.environ.get("ATTACH_REPS", "3"))
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MEMSCOPED = os.path.join(BUILD, "memscoped")
OUT = os.environ.get("TOKIO_BENCH_OUT", os.path.join(BUILD, "tokio-bench-out"))
BENCH = os.path.join(OUT, "tokio-bench")
TYPES = os.path.join(OUT, "tokio-bench-types")
CHURN = ["churn", "200000", "1000", "256"]
HEAP_MIB, HEAP_SLEEPERS = 1024, 2000
SLEEPERS, SLEEPER_BYTES = 100000, 64
SCRAPES = 20
TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")
STRACE = shutil.which("strace")  # optional: times the BPF link calls

live = []  # every process started here, stopped on exit


class Failure(Exception):
    pass


class Proc:
    """A child whose stdout or stderr lines are collected with their arrival time."""

    def __init__(self, argv, stream="stdout"):
        self.argv = argv
        self.lines = []  # (monotonic seconds, line)
        self.cond = threading.Condition()
        pipe = {stream: subprocess.PIPE}
        other = "stderr" if stream == "stdout" else "stdout"
        pipe[other] = subprocess.DEVNULL
        self.t_start = time.monotonic()
        self.p = subprocess.Popen(argv, text=True, **pipe)
        self.pid = self.p.pid
        live.append(self)
        threading.Thread(target=self._read, args=(getattr(self.p, stream),), daemon=True).start()

    def _read(self, f):
        for line in f:
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.lines.append((time.monotonic(), None))
            self.cond.notify_all()

    def wait_line(self, regex, timeout):
        """(arrival time, match) of the first line matching regex."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines:
                    if line is not None and (m := rx.search(line)):
                        return t, m
                if self.lines and self.lines[-1][1] is None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
        text = "\n".join(l for _, l in self.lines if l is not None)
        raise Failure(f"no '{regex}' from {self.argv[0]} (pid {self.pid}) in {timeout} s:\n{text}")

    def text(self):
        with self.cond:
            return "\n".join(l for _, l in self.lines if l is not None)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal, wait and return (seconds from the signal to the exit, exit status)."""
        t0 = time.monotonic()
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failure(f"{self.argv[0]} (pid {self.pid}) ignored signal {sig} for {timeout} s")
        if self in live:
            live.remove(self)
        return time.monotonic() - t0, rc


def cpu_ticks(pid):
    """utime + stime of the whole process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure(f"no VmRSS for pid {pid}")


def start_target(argv, ready=r"^ready", timeout=60):
    t = Proc(argv)
    t.wait_line(ready, timeout)
    return t


def start_memscoped(pid, *args, strace_out=None):
    argv = [MEMSCOPED, "-p", str(pid), *args]
    if strace_out:
        argv = [STRACE, "-f", "-T", "-e", "trace=bpf,close", "-o", strace_out, *argv]
    m = Proc(argv, stream="stderr")
    m.wait_line(rf"^memscoped: pid {pid}: attach scan", 120)
    return m


def memscoped_pid(m):
    """memscoped's own pid: m's, or its child's when m is strace."""
    if m.argv[0] != STRACE:
        return m.pid
    with open(f"/proc/{m.pid}/task/{m.pid}/children") as f:
        return int(f.read().split()[0])


def attach_lines(m, pid):
    """(seconds from start to 'attached', poll functions, scan tasks, scan MiB, scan ms)."""
    t_att, _ = m.wait_line(rf"^memscoped: attached \d+ probes to pid {pid} ", 1)
    _, polls = m.wait_line(rf"^memscoped: pid {pid}: tokio: (\d+) poll functions", 1)
    _, scan = m.wait_line(
        rf"^memscoped: pid {pid}: attach scan: (\d+) tokio tasks in ([\d.]+) MiB in ([\d.]+) ms", 1)
    return (t_att - m.t_start, int(polls[1]), int(scan[1]), float(scan[2]), float(scan[3]))


def stop_memscoped(m):
    """SIGINT memscoped itself (strace -o FILE blocks fatal signals) and wait for it."""
    pid = memscoped_pid(m)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGINT)
    _, rc = m.stop(sig=0)
    if rc != 0:
        raise Failure(f"memscoped exited with {rc}:\n{m.text()}")
    return time.monotonic() - t0


def load_report(path):
    with open(path) as f:
        return json.load(f)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# 1. churn -------------------------------------------------------------------------------------

def run_ns(pid):
    """CPU time of every live thread of pid, in ns (schedstat: finer than stat's ticks)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total


def cpu_settled(pid):
    """(ticks, ns) once a drain of the ring buffer (every 10 ms) no longer adds CPU time."""
    ticks, ns = cpu_ticks(pid), run_ns(pid)
    for _ in range(20):
        time.sleep(0.1)
        t2, n2 = cpu_ticks(pid), run_ns(pid)
        settled = n2 - ns < 2e6
        ticks, ns = t2, n2
        if settled:
            break
    return ticks, ns


def churn_run(mode, tmp):
    target = start_target([BENCH, *CHURN])
    m = None
    report = os.path.join(tmp, "churn.json")
    if mode == "memscoped":
        if os.path.exists(report):
            os.unlink(report)
        m = start_memscoped(target.pid, "-r", report)
        time.sleep(0.1)
        ticks0, ns0 = cpu_settled(m.pid)
    os.kill(target.pid, signal.SIGUSR1)
    _, res = target.wait_line(r"^tasks_per_sec (\d+) tasks (\d+)", 300)
    row = {"tasks_per_sec": float(res[1])}
    if m:
        # The target idles until a second SIGUSR1: memscoped's CPU time covers the run and
        # the drain of its events, not its exit (which writes the report).
        ticks1, ns1 = cpu_settled(m.pid)
        row["exit_s"] = stop_memscoped(m)
        r = load_report(report)
        p = r["processes"][0]
        row.update(cpu_ticks=ticks1 - ticks0, cpu_ns=ns1 - ns0, received=r["events"]["received"],
                   lost=r["events"]["lost"], tasks=p["tasks_summary"]["spawned"],
                   report_tasks=len(p["tasks"]), report_mb=os.path.getsize(report) / 1e6)
    os.kill(target.pid, signal.SIGUSR1)
    _, rc = target.stop(sig=0)
    if rc != 0:
        raise Failure(f"tokio-bench churn ({mode}) exited with {rc}")
    print(f"tokio.py: churn {mode:<9} {row['tasks_per_sec']:>10.0f} tasks/s"
          + (f"  cpu {row['cpu_ticks'] * TICK_NS / 1e6:.0f} ms (schedstat "
             f"{row['cpu_ns'] / 1e6:.1f} ms)  events {row['received']}  lost {row['lost']}"
             f"  tasks seen {row['tasks']}  exit {row['exit_s']:.2f} s" if m else ""),
          file=sys.stderr)
    return row


def bench_churn(tmp):
    modes = ["baseline", "memscoped"]
    runs = {m: [] for m in modes}
    for rep in range(REPS):
        for i in range(len(modes)):
            mode = modes[(rep + i) % len(modes)]
            runs[mode].append(churn_run(mode, tmp))
    base = [r["tasks_per_sec"] for r in runs["baseline"]]
    traced = runs["memscoped"]
    # Slowdown per repetition, against the baseline of the same repetition.
    slow = [b / t["tasks_per_sec"] for b, t in zip(base, traced)]
    ns_ev = [t["cpu_ticks"] * TICK_NS / t["received"] for t in traced]
    pooled = sum(t["cpu_ticks"] for t in traced) * TICK_NS / sum(t["received"] for t in traced)
    ns_sched = [t["cpu_ns"] / t["received"] for t in traced]
    tasks = int(CHURN[1])
    return {
        "base": median(base), "traced": median([t["tasks_per_sec"] for t in traced]),
        "slowdown": median(slow), "ns_per_event": median(ns_ev), "ns_per_event_pooled": pooled,
        "ns_per_event_sched": median(ns_sched),
        "exit_s": median([t["exit_s"] for t in traced]),
        "report_tasks": max(t["report_tasks"] for t in traced),
        "report_mb": max(t["report_mb"] for t in traced),
        "events_per_task": median([t["received"] / tasks for t in traced]),
        "lost": sum(t["lost"] for t in traced),
        "seen_all": all(t["tasks"] >= tasks for t in traced),
    }


# 2. types: attach and detach with 2000 poll copies ----------------------------------------------

def strace_calls(path):
    """The lines of an strace -f log, with "<unfinished ...>" and "<... resumed>" halves
    (another process, e.g. memscoped's link-creating child, ran in between) joined."""
    pending = {}
    with open(path) as f:
        for line in f:
            pid, _, rest = line.rstrip("\n").partition(" ")
            rest = rest.lstrip()  # strace pads short pids: "4615  bpf(...)"
            if rest.endswith("<unfinished ...>"):
                pending[pid] = rest[: -len("<unfinished ...>")]
            elif rest.startswith("<... ") and pid in pending:
                yield pending.pop(pid) + rest.split("resumed>", 1)[1]
            else:
                yield rest


def link_times(path):
    """From an strace -f -T log: ({program name: seconds in BPF_LINK_CREATE}, seconds in
    close() after SIGINT, where closing the links dominates)."""
    names, links, closing, after_sigint = {}, {}, 0.0, False
    for call in strace_calls(path):
        if call.startswith("--- SIGINT"):
            after_sigint = True
        elif call.startswith("bpf(BPF_PROG_LOAD"):
            m = re.search(r'prog_name="([^"]*)".*\) = (\d+) <', call)
            if m:
                names[int(m[2])] = m[1]
        elif call.startswith("bpf(BPF_LINK_CREATE"):
            m = re.search(r"prog_fd=(\d+).*\) = -?\d+.* <([\d.]+)>", call)
            if m:
                name = names.get(int(m[1]), f"fd{m[1]}")
                links[name] = links.get(name, 0.0) + float(m[2])
        elif after_sigint and call.startswith("close("):
            m = re.search(r" <([\d.]+)>$", call)
            if m:
                closing += float(m[1])
    return links, closing


def types_run(which, tmp, traced_syscalls=False):
    if which == "types":
        target = start_target([TYPES], ready=r"^ready types")
    else:
        target = start_target([BENCH, *CHURN])
    st = os.path.join(tmp, "strace.txt") if traced_syscalls else None
    m = start_memscoped(target.pid, strace_out=st)
    attach_s, polls, scanned, _, _ = attach_lines(m, target.pid)
    time.sleep(0.2)
    detach_s = stop_memscoped(m)
    target.stop()
    row = {"attach_s": attach_s, "polls": polls, "scanned": scanned, "detach_s": detach_s}
    if st:
        links, row["link_close_s"] = link_times(st)
        # The kernel truncates program names to 15 characters.
        row["poll_link_s"] = sum(v for k, v in links.items() if k.startswith("task_poll"))
        row["all_links_s"] = sum(links.values())
        row["links"] = links
        print(f"tokio.py: {which} link creates (strace -T): "
              + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in sorted(links.items()))
              + f"; close() after SIGINT {row['link_close_s'] * 1e3:.0f} ms",
              file=sys.stderr)
    else:
        print(f"tokio.py: {which:<5} {polls} poll functions, attached in {attach_s * 1e3:.0f} ms,"
              f" scan found {scanned} tasks, detached in {detach_s * 1e3:.0f} ms", file=sys.stderr)
    return row


def bench_types(tmp):
    runs = {"ref": [], "types": [], "strace": [], "strace_ref": []}
    for rep in range(ATTACH_REPS):
        order = ["ref", "types"] if rep % 2 == 0 else ["types", "ref"]
        for which in order:
            runs[which].append(types_run(which, tmp))
        if STRACE:
            runs["strace"].append(types_run("types", tmp, traced_syscalls=True))
            runs["strace_ref"].append(types_run("ref", tmp, traced_syscalls=True))
    out = {}
    for k in ("ref", "types"):
        out[k] = {f: median([r[f] for r in runs[k]]) for f in ("attach_s", "detach_s")}
        out[k]["polls"] = min(r["polls"] for r in runs[k])
        out[k]["scanned"] = min(r["scanned"] for r in runs[k])
    for k, src in (("types", "strace"), ("ref", "strace_ref")):
        for f in ("poll_link_s", "all_links_s", "link_close_s"):
            out[k][f] = median([r[f] for r in runs[src]])
    return out


# 3. attach scan of a 1 GiB heap -----------------------------------------------------------------

def bench_heap(tmp):
    ref = start_target([BENCH, *CHURN])
    target = start_target([BENCH, "heap", str(HEAP_MIB), str(HEAP_SLEEPERS)],
                          ready=r"^ready tasks", timeout=120)
    rss = vm_rss_kib(target.pid)
    rows, refs = [], []
    report = os.path.join(tmp, "heap.json")
    try:
        for rep in range(ATTACH_REPS):
            for which in (["heap", "ref"] if rep % 2 == 0 else ["ref", "heap"]):
                t = target if which == "heap" else ref
                m = start_memscoped(t.pid, "-r", report)
                _, _, found, mib, ms = attach_lines(m, t.pid)
                stop_memscoped(m)
                if which == "ref":
                    refs.append((mib, ms))
                    continue
                p = load_report(report)["processes"][0]
                sleeping = sum(1 for x in p["tasks"] if x["kind"] == "async"
                               and x["discovered"] == "attach_scan" and x["state"] == "idle")
                rows.append({"found": found, "mib": mib, "ms": ms, "sleeping": sleeping})
                print(f"tokio.py: heap  scan {found} tasks in {mib:.1f} MiB in {ms:.1f} ms;"
                      f" report: {sleeping} idle async tasks from the scan", file=sys.stderr)
    finally:
        target.stop()
        ref.stop()
    return {
        "target_rss_mib": rss / 1024, "mib": median([r["mib"] for r in rows]),
        "ms": median([r["ms"] for r in rows]),
        "ms_per_gib": median([r["ms"] / (r["mib"] / 1024) for r in rows]),
        "sleeping": min(r["sleeping"] for r in rows),
        "ref_mib": median([r[0] for r in refs]), "ref_ms": median([r[1] for r in refs]),
    }


# 4. scrape with 100k live tasks -----------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    """(seconds, body) of one GET /metrics on a new connection."""
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read()
    c.close()
    dt = time.perf_counter() - t0
    if r.status != 200:
        raise Failure(f"GET /metrics: HTTP {r.status}")
    return dt, body.decode()


def metric_sum(text, name):
    total = None
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def sleepers_spawn(traced, tmp):
    argv = [BENCH, "sleepers", str(SLEEPERS), str(SLEEPER_BYTES)]
    target = start_target(argv)
    if not traced:
        os.kill(target.pid, signal.SIGUSR1)
        _, res = target.wait_line(r"^spawned \d+ seconds ([\d.]+)", 300)
        target.stop()
        return {"spawn_s": float(res[1])}

    port = free_port()
    report = os.path.join(tmp, "scrape.json")
    m = start_memscoped(target.pid, "--listen", f"127.0.0.1:{port}", "-r", report)
    try:
        os.kill(target.pid, signal.SIGUSR1)
        _, res = target.wait_line(r"^spawned \d+ seconds ([\d.]+)", 300)
        # Metrics are rendered once a second: wait until they show every task.
        deadline = time.monotonic() + 30
        while True:
            _, text = scrape(port)
            tasks = metric_sum(text, "memscoped_tasks_live") or 0
            if tasks >= SLEEPERS or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        times = []
        for _ in range(SCRAPES):
            dt, text = scrape(port)
            times.append(dt)
        lost_metric = metric_sum(text, "memscoped_events_lost_total")
        rss = vm_rss_kib(m.pid)
        c0, t0 = cpu_ticks(m.pid), time.monotonic()
        time.sleep(3)
        idle_cpu = (cpu_ticks(m.pid) - c0) * TICK_NS / 1e6 / (time.monotonic() - t0)
    finally:
        stop_memscoped(m)
        target.stop()
    r = load_report(report)
    row = {"spawn_s": float(res[1]), "tasks_live": tasks, "scrape_ms": [t * 1e3 for t in times],
           "bytes": len(text), "lost_metric": lost_metric, "lost": r["events"]["lost"],
           "received": r["events"]["received"], "rss_mib": rss / 1024,
           "idle_cpu_ms_per_s": idle_cpu,
           "report_live": r["processes"][0]["tasks_summary"]["live"]}
    print(f"tokio.py: scrape with {tasks:.0f} live tasks: median "
          f"{median(row['scrape_ms']):.2f} ms, max {max(row['scrape_ms']):.2f} ms, "
          f"{row['bytes']} bytes; memscoped RSS {row['rss_mib']:.1f} MiB, lost {row['lost']}",
          file=sys.stderr)
    return row


def bench_scrape(tmp):
    base = sleepers_spawn(False, tmp)
    row = sleepers_spawn(True, tmp)
    row["spawn_base_s"] = base["spawn_s"]
    return row


# ------------------------------------------------------------------------------------------------

def ensure_built():
    if os.access(BENCH, os.X_OK) and os.access(TYPES, os.X_OK):
        return
    print(f"tokio.py: {BENCH} missing, building it (tests/targets/tokio-bench/build.sh)",
          file=sys.stderr)
    subprocess.run([os.path.join(REPO, "tests/targets/tokio-bench/build.sh"), OUT], check=True,
                   env=dict(os.environ, CARGO_TARGET_DIR=os.path.abspath(
                       os.path.join(BUILD, "tokio-bench"))))


def strace_ms(t, field, digits):
    if not STRACE:
        return "n/a (strace is not installed)"
    return f"{t['types'][field] * 1e3:.{digits}f} / {t['ref'][field] * 1e3:.{digits}f} ms"


def summary(c, t, h, s):
    scr = s["scrape_ms"]
    bars = {
        "churn: lost events == 0": c["lost"] == 0,
        "churn: every task seen": c["seen_all"],
        "types: >= 1000 poll functions found": t["types"]["polls"] >= 1000,
        "types: attach scan found the 1000 tasks": t["types"]["scanned"] >= 1000,
        f"heap: the {HEAP_SLEEPERS} sleeping tasks found": h["sleeping"] >= HEAP_SLEEPERS,
        "scrape: max < 100 ms": max(scr) < 100,
        "scrape: lost events == 0": s["lost"] == 0 and (s["lost_metric"] or 0) == 0,
        f"scrape: {SLEEPERS} live tasks seen": s["report_live"] >= SLEEPERS,
    }
    rows = [
        ("1 churn", f"tasks/s untraced / traced ({CHURN[1]} tasks, {CHURN[3]} B each, "
                    "2 workers)", f"{c['base']:.0f} / {c['traced']:.0f}"),
        ("", "slowdown (median of per-rep ratios)", f"{c['slowdown']:.2f}x"),
        ("", "events per task", f"{c['events_per_task']:.2f}"),
        ("", "memscoped CPU per event, /proc stat (median; pooled over reps)",
         f"{c['ns_per_event']:.0f} ns; {c['ns_per_event_pooled']:.0f} ns"),
        ("", "memscoped CPU per event, schedstat (median)", f"{c['ns_per_event_sched']:.0f} ns"),
        ("", "memscoped SIGINT -> exit after the run (incl. JSON report)",
         f"{c['exit_s']:.2f} s ({c['report_tasks']} tasks, {c['report_mb']:.0f} MB)"),
        ("", "lost events (all reps)", f"{c['lost']}"),
        ("2 types", "poll functions found (1000 types / tokio-bench)",
         f"{t['types']['polls']} / {t['ref']['polls']}"),
        ("", "start -> 'attached' (1000 types / ref)",
         f"{t['types']['attach_s'] * 1e3:.0f} / {t['ref']['attach_s'] * 1e3:.0f} ms"),
        ("", "task_poll uprobe_multi link creates, strace -T (1000 types / ref)",
         strace_ms(t, "poll_link_s", 2)),
        ("", "all link creates, strace -T (1000 types / ref)",
         strace_ms(t, "all_links_s", 2)),
        ("", "SIGINT -> exit (1000 types / ref)",
         f"{t['types']['detach_s'] * 1e3:.0f} / {t['ref']['detach_s'] * 1e3:.0f} ms"),
        ("", "  of which close() (the uprobe_multi links), strace -T (1000 types / ref)",
         strace_ms(t, "link_close_s", 0)),
        ("", "attach scan: tasks found (1000 types)", f"{t['types']['scanned']}"),
        ("3 heap", f"attach scan, {HEAP_MIB} x 1 MiB + {HEAP_SLEEPERS} sleepers "
                   f"(target RSS {h['target_rss_mib']:.0f} MiB)",
         f"{h['mib']:.1f} MiB in {h['ms']:.1f} ms"),
        ("", "attach scan per GiB", f"{h['ms_per_gib']:.0f} ms/GiB"),
        ("", "reference: scan of the churn target",
         f"{h['ref_mib']:.1f} MiB in {h['ref_ms']:.1f} ms"),
        ("", "sleeping tasks in the JSON report", f"{h['sleeping']} of {HEAP_SLEEPERS}"),
        ("4 scrape", f"GET /metrics with {s['tasks_live']:.0f} live tasks, {SCRAPES} scrapes",
         f"median {median(scr):.2f} ms, max {max(scr):.2f} ms ({s['bytes']} B)"),
        ("", "lost events (report / metric)", f"{s['lost']} / {s['lost_metric']:.0f}"),
        ("", "memscoped VmRSS with 100k tasks", f"{s['rss_mib']:.1f} MiB"),
        ("", "memscoped CPU while idle with 100k tasks", f"{s['idle_cpu_ms_per_s']:.1f} ms/s"),
        ("", "spawn of 100k sleepers untraced / traced",
         f"{s['spawn_base_s']:.2f} / {s['spawn_s']:.2f} s"),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print()
    print(f"tokio: medians of {REPS} (churn) / {ATTACH_REPS} (types, heap) repetitions")
    for a, b, v in rows:
        print(f"{a:<{w0}}  {b:<{w1}}  {v}")
    for name, ok in bars.items():
        print(f"bar {name}: {'PASS' if ok else 'FAIL'}")


def main():
    if os.geteuid() != 0:
        sys.exit("tokio.py: must run as root")
    if not os.access(MEMSCOPED, os.X_OK):
        sys.exit(f"tokio.py: build first: make {MEMSCOPED}")
    ensure_built()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="memscoped-tokio-bench.") as tmp:
        try:
            c = bench_churn(tmp)
            t = bench_types(tmp)
            h = bench_heap(tmp)
            s = bench_scrape(tmp)
        except Failure as e:
            sys.exit(f"tokio.py: {e}")
        finally:
            for p in list(live):
                try:
                    # strace would leave its memscoped running: stop memscoped itself.
                    if p.p.poll() is None:
                        os.kill(memscoped_pid(p) if p.argv[0] == STRACE else p.pid,
                                signal.SIGINT if "memscoped" in " ".join(p.argv) else
                                signal.SIGTERM)
                    p.stop(sig=0, timeout=10)
                except Exception:
                    pass
    summary(c, t, h, s)
    print(f"tokio total time: {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
