#!/usr/bin/env python3
"""Daemon mode's costs: exec to probes live, churn, and execs that match no selector.

1. Latency: memscoped --comm '^NAME$'; DAEMON_EXECS (default 100) runs of a copy of
   daemon_worker named NAME, one after the other, each ended once attached. The report's
   attach_latency_seconds (the exec tracepoint's time to the helper's last link) per instance:
   p50, p99, max. Then the same for DAEMON_TOKIO_EXECS (default 20) runs of the tokio target
   (release), whose runtime the helper attaches too.
2. Churn: DAEMON_CHURN_RATE (default 100) matching short-lived processes a second for
   DAEMON_CHURN_SECONDS (default 60) with --forget-after 5, so forgotten targets are compacted
   during the run: memscoped's VmRSS (daemon + helper) every 10 s, its slope from 10 s to the
   end, the bytes per compacted record (the report's forgotten_targets), and how many were
   attached or said missed (exited during attach, --max-targets). Then DAEMON_CHURN_WHOLE_SECONDS
   (default 20) with --forget-after 0 (every record kept whole): bytes per traced process.
3. Non-matching execs: as many /bin/true as a shell loop runs in DAEMON_IDLE_SECONDS (default
   10); memscoped's CPU (daemon + helper) per second of it, and the exec rate reached.
4. Fork window: DAEMON_FORKS (default 50) targets that each fork a child mallocing 1000 blocks
   at once; the children's attach_latency_seconds (fork to probes live): p50, p99, max, and
   their fork_window_calls_missed (of the 1000).
5. The fork window's cost (its sys_enter program): a getppid loop (every system call on the
   machine passes it) and a traced malloc_bench (each allocation returns through the uretprobe
   syscall), in daemon mode with fork following and with --no-follow-forks, interleaved
   DAEMON_COST_REPS (default 3) times: medians.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("BUILD", "build")
MEMSCOPED = os.path.join(BUILD, "memscoped")
WORKER = os.path.join(BUILD, "targets", "daemon_worker")
EXECS = int(os.environ.get("DAEMON_EXECS", "100"))
TOKIO = os.path.join(BUILD, "tokio-out", "tokio-target-release")
TOKIO_EXECS = int(os.environ.get("DAEMON_TOKIO_EXECS", "20"))
RATE = int(os.environ.get("DAEMON_CHURN_RATE", "100"))
CHURN = int(os.environ.get("DAEMON_CHURN_SECONDS", "60"))
CHURN_WHOLE = int(os.environ.get("DAEMON_CHURN_WHOLE_SECONDS", "20"))
IDLE = int(os.environ.get("DAEMON_IDLE_SECONDS", "10"))
FORKS = int(os.environ.get("DAEMON_FORKS", "50"))
COST_REPS = int(os.environ.get("DAEMON_COST_REPS", "3"))
TICK = os.sysconf("SC_CLK_TCK")


def family(pid):
    """pid and its children (the attach helper)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid] + [int(x) for x in out.split()]


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / TICK


def start(name, d, *args):
    err = open(os.path.join(d, "stderr"), "w+")
    report = os.path.join(d, "report.json")
    ms = subprocess.Popen([MEMSCOPED, "--comm", f"^{name}$", "-r", report, *args],
                          stdout=subprocess.DEVNULL, stderr=err)
    time.sleep(1)
    return ms, err, report


def said(err, text):
    err.flush()
    with open(err.name) as f:
        return f.read().count(text)


def latency(d, source=WORKER, args=("once",), execs=EXECS, what="exec -> probes live"):
    name = f"mdlat{os.getpid() % 100000}"
    exe = os.path.join(d, name)
    shutil.copy(source, exe)
    ms, err, report = start(name, d)
    for _ in range(execs):
        t = subprocess.Popen([exe, *args], stdout=subprocess.PIPE, text=True)
        t.stdout.readline()
        deadline = time.monotonic() + 5
        while said(err, f"probes to pid {t.pid} ") == 0 and time.monotonic() < deadline:
            time.sleep(0.002)
        t.kill()
        t.wait()
    ms.send_signal(signal.SIGINT)
    ms.wait()
    with open(report) as f:
        lat = sorted(p["attach_latency_seconds"] * 1e3 for p in json.load(f)["processes"]
                     if "attach_latency_seconds" in p)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"{what}: {len(lat)}/{execs} attached, p50 {statistics.median(lat):.1f} ms,"
          f" p99 {p99:.1f} ms, max {lat[-1]:.1f} ms")


def churn(d, seconds, forget):
    """RATE matching processes a second for seconds; RSS every 10 s and the report's records."""
    name = f"mdchurn{os.getpid() % 100000}"
    # A short-lived matching process: sleep under another name.
    exe = os.path.join(d, name)
    shutil.copy(shutil.which("sleep"), exe)
    ms, err, report = start(name, d, "--forget-after", str(forget))
    base = rss_kib([ms.pid])
    pids = family(ms.pid)
    # Seconds -> (daemon, helper) VmRSS in KiB.
    samples = {0: (base, rss_kib(pids[1:]))}
    started = 0
    t0 = time.monotonic()
    procs = []
    while time.monotonic() - t0 < seconds:
        procs.append(subprocess.Popen([exe, "0.05"]))
        started += 1
        procs = [p for p in procs if p.poll() is None]
        time.sleep(max(0, t0 + started / RATE - time.monotonic()))
        mark = (len(samples)) * 10
        if time.monotonic() - t0 >= mark and mark <= seconds:
            pids = family(ms.pid)
            samples[mark] = (rss_kib(pids[:1]), rss_kib(pids[1:]))
    for p in procs:
        p.wait()
    time.sleep(2)
    attached = said(err, "probes to pid ")
    missed = said(err, "exited during attach") + said(err, "--max-targets")
    daemon_rss = rss_kib([ms.pid])
    ms.send_signal(signal.SIGINT)
    ms.wait()
    with open(report) as f:
        r = json.load(f)
    return {"started": started, "attached": attached, "missed": missed, "samples": samples,
            "base": base, "daemon_rss": daemon_rss, "records": len(r["processes"]),
            "forgotten": r.get("forgotten_targets", {})}


def churn_bounded(d):
    """--forget-after 5: forgotten targets are compacted during the run; RSS stays flat."""
    c = churn(d, CHURN, 5)
    s = c["samples"]
    at = [t for t in (10, 30, 60) if t in s]
    f = c["forgotten"]
    per = f.get("bytes", 0) / max(f.get("listed", 0), 1)

    def slope(i):
        return (s[at[-1]][i] - s[at[0]][i]) / (at[-1] - at[0]) if len(at) > 1 else float("nan")

    print(f"churn (--forget-after 5): {c['started']} processes in {CHURN} s: {c['attached']}"
          f" attached, {c['missed']} said missed; VmRSS KiB (daemon + helper): "
          + ", ".join(f"{t} s {s[t][0]} + {s[t][1]}" for t in sorted(s))
          + f"; slope {at[0]}-{at[-1]} s: daemon {slope(0):.1f} KiB/s, helper {slope(1):.1f}"
          f" KiB/s; {c['records']} processes in the report, {f.get('listed', 0)} compacted"
          f" ({f.get('bytes', 0)} bytes: {per:.0f} bytes each, strings shared),"
          f" {f.get('dropped', {}).get('processes', 0)} folded")


def churn_unbounded(d):
    """--forget-after 0 (never): every record stays whole; bytes per traced process."""
    c = churn(d, CHURN_WHOLE, 0)
    print(f"churn (--forget-after 0): {c['records']} whole records in {CHURN_WHOLE} s, daemon"
          f" RSS {c['base']} -> {c['daemon_rss']} KiB:"
          f" {1024 * (c['daemon_rss'] - c['base']) / max(c['records'], 1):.0f} bytes per"
          " traced process (live, or ended and not forgotten)")


def idle(d):
    ms, err, _ = start("mdnomatch-never", d)
    pids = family(ms.pid)
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    out = subprocess.run(["sh", "-c", f"n=0; end=$(( $(date +%s) + {IDLE} )); "
                          "while [ $(date +%s) -lt $end ]; do /bin/true; /bin/true; /bin/true; "
                          "/bin/true; /bin/true; n=$((n+5)); done; echo $n"],
                         capture_output=True, text=True).stdout
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(pids) - cpu0
    ms.send_signal(signal.SIGINT)
    ms.wait()
    # Five /bin/true and one date per round.
    n = int(out.split()[-1]) * 6 // 5
    print(f"non-matching execs: {n / elapsed:.0f}/s for "
          f"{elapsed:.0f} s; memscoped CPU {100 * cpu / elapsed:.2f}% of a core")


def fork_window(d):
    name = f"mdfork{os.getpid() % 100000}"
    exe = os.path.join(d, name)
    shutil.copy(WORKER, exe)
    ms, err, report = start(name, d)
    children, parents = [], []
    for _ in range(FORKS):
        t = subprocess.Popen([exe, "window", "1000", "0"], stdout=subprocess.PIPE, text=True)
        t.stdout.readline()
        deadline = time.monotonic() + 5
        while said(err, f"probes to pid {t.pid} ") == 0 and time.monotonic() < deadline:
            time.sleep(0.002)
        t.send_signal(signal.SIGUSR1)
        line = t.stdout.readline()
        while line and not line.startswith("child "):
            line = t.stdout.readline()
        child = int(line.split()[1])
        children.append(child)
        while said(err, f"probes to pid {child} ") == 0 and time.monotonic() < deadline:
            time.sleep(0.002)
        parents.append(t)
    # Alive until the report: an exit before the helper's message leaves no latency.
    time.sleep(0.5)
    ms.send_signal(signal.SIGINT)
    ms.wait()
    for child in children:
        os.kill(child, signal.SIGKILL)
    for t in parents:
        t.kill()
        t.wait()
    with open(report) as f:
        recs = [p for p in json.load(f)["processes"] if p["pid"] in children]
    lat = sorted(p["attach_latency_seconds"] * 1e3 for p in recs if "attach_latency_seconds" in p)
    missed = sorted(p["fork_window_calls_missed"] for p in recs)
    counted = sum(1 for p in recs if p["fork_window_counted"])
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"fork -> child's probes live: {len(lat)}/{FORKS} children, p50 "
          f"{statistics.median(lat):.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms; calls "
          f"missed of 1000 at once: p50 {statistics.median(missed):.0f}, max {missed[-1]}; "
          f"{counted}/{len(recs)} windows countable")


def run_out(argv, prefix):
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith(prefix):
            return line
    return ""


def fork_window_cost(d):
    name = f"mdcost{os.getpid() % 100000}"
    exe = os.path.join(d, name)
    shutil.copy(os.path.join(BUILD, "bench", "malloc_bench"), exe)
    syscall = os.path.join(BUILD, "bench", "syscall_bench")
    figures = {"follow": ([], []), "no-follow": ([], [])}
    for _ in range(COST_REPS):
        for mode, args in (("follow", []), ("no-follow", ["--no-follow-forks"])):
            ms, err, _ = start(name, d, *args)
            calls = float(run_out([syscall, "3000000"], "ns_per_call").split()[1])
            t = subprocess.Popen([exe, "1", "2000000", "1"], stdout=subprocess.PIPE, text=True)
            pid = int(t.stdout.readline().split()[1])
            deadline = time.monotonic() + 5
            while said(err, f"probes to pid {pid} ") == 0 and time.monotonic() < deadline:
                time.sleep(0.002)
            t.send_signal(signal.SIGUSR1)
            line = t.stdout.readline()
            t.wait()
            pair = float(line.split()[line.split().index("cpu_ns_per_pair") + 1])
            ms.send_signal(signal.SIGINT)
            ms.wait()
            figures[mode][0].append(calls)
            figures[mode][1].append(pair)
    med = {m: (statistics.median(c), statistics.median(p)) for m, (c, p) in figures.items()}
    print(f"fork window cost: getppid {med['no-follow'][0]:.0f} -> {med['follow'][0]:.0f} ns"
          f" per call; traced malloc+free pair {med['no-follow'][1]:.0f} ->"
          f" {med['follow'][1]:.0f} ns (daemon mode, --no-follow-forks -> following forks)")


def main():
    if os.geteuid() != 0:
        sys.exit("daemon.py needs root")
    def latency_tokio(d):
        # The allocator and tokio (35 poll copies) read by the helper, then by the daemon.
        latency(d, TOKIO, ("leak", "--go-file", os.path.join(d, "never")), TOKIO_EXECS,
                "exec -> probes live, tokio target (allocator and runtime)")

    # Arguments pick parts (latency, latency_tokio, fork_window, fork_window_cost, idle, churn,
    # churn_whole); none: all of them.
    parts = {"latency": latency, "latency_tokio": latency_tokio, "fork_window": fork_window,
             "fork_window_cost": fork_window_cost, "idle": idle, "churn": churn_bounded,
             "churn_whole": churn_unbounded}
    for name in sys.argv[1:] or list(parts):
        with tempfile.TemporaryDirectory(prefix="memscoped-bench-") as d:
            parts[name](d)


if __name__ == "__main__":
    main()
