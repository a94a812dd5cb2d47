#!/usr/bin/env python3
"""Daemon mode's costs: exec to probes live, churn, and execs that match no selector.

1. Latency: memscoped --comm '^NAME$'; DAEMON_EXECS (default 100) runs of a copy of
   daemon_worker named NAME, one after the other, each ended once attached. The report's
   attach_latency_seconds (the exec tracepoint's time to the helper's last link) per instance:
   p50, p99, max. Then the same for DAEMON_TOKIO_EXECS (default 20) runs of the tokio target
   (release), whose runtime the helper attaches too.
2. Churn: DAEMON_CHURN_RATE (default 100) matching short-lived processes a second for
   DAEMON_CHURN_SECONDS (default 60); memscoped's VmRSS (daemon + helper) every 10 s, and how
   many were attached or said missed (exited during attach, --max-targets).
3. Non-matching execs: as many /bin/true as a shell loop runs in DAEMON_IDLE_SECONDS (default
   10); memscoped's CPU (daemon + helper) per second of it, and the exec rate reached.
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
IDLE = int(os.environ.get("DAEMON_IDLE_SECONDS", "10"))
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


def churn(d):
    name = f"mdchurn{os.getpid() % 100000}"
    # A short-lived matching process: sleep under another name.
    exe = os.path.join(d, name)
    shutil.copy(shutil.which("sleep"), exe)
    ms, err, report = start(name, d, "--forget-after", "5")
    pids = family(ms.pid)
    samples = [rss_kib(pids)]
    base = rss_kib([ms.pid])
    started = 0
    t0 = time.monotonic()
    procs = []
    while time.monotonic() - t0 < CHURN:
        procs.append(subprocess.Popen([exe, "0.05"]))
        started += 1
        procs = [p for p in procs if p.poll() is None]
        time.sleep(max(0, t0 + started / RATE - time.monotonic()))
        if started % (RATE * 10) == 0:
            samples.append(rss_kib(family(ms.pid)))
    for p in procs:
        p.wait()
    time.sleep(2)
    attached = said(err, "probes to pid ")
    missed = said(err, "exited during attach") + said(err, "--max-targets")
    daemon_rss = rss_kib([ms.pid])
    ms.send_signal(signal.SIGINT)
    ms.wait()
    with open(report) as f:
        records = len(json.load(f)["processes"])
    print(f"churn: {started} processes in {CHURN} s: {attached} attached, {missed} said missed;"
          f" RSS (daemon + helper) every 10 s, KiB: {samples}; {records} records in the report,"
          f" daemon {daemon_rss} KiB at the end: {(daemon_rss - base) / max(records, 1):.1f} KiB"
          f" per record over its {base} KiB at start")


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


def main():
    if os.geteuid() != 0:
        sys.exit("daemon.py needs root")
    with tempfile.TemporaryDirectory(prefix="memscoped-bench-") as d:
        latency(d)
    with tempfile.TemporaryDirectory(prefix="memscoped-bench-") as d:
        # The allocator and tokio (35 poll copies) read by the helper, then by the daemon.
        latency(d, TOKIO, ("leak", "--go-file", os.path.join(d, "never")), TOKIO_EXECS,
                "exec -> probes live, tokio target (allocator and runtime)")
    with tempfile.TemporaryDirectory(prefix="memscoped-bench-") as d:
        idle(d)
    with tempfile.TemporaryDirectory(prefix="memscoped-bench-") as d:
        churn(d)


if __name__ == "__main__":
    main()
