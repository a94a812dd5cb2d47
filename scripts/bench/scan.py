#!/usr/bin/env python3
"""The target's cost of --mode scan (scripts/bench/run.sh runs it).

`tokio-bench churn 6000000 1000 256` (2 workers, 6M tasks in batches of 1000, each allocating
and freeing 256 bytes: a few seconds) untraced, under memscoped --mode scan with the default
interval (60 s) and with --scan-interval 1, interleaved in a rotating order, BENCH_REPS times
(default 5). Throughput = median tasks/s; ratio = scan / untraced of the same repetition
(medians). Goals (issue 14): >= 0.98 at the default interval, >= 0.95 at 1 s. Also prints the
snapshots taken and memscoped's CPU time per run. A missed goal only prints FAIL.
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("BUILD", "build")
REPS = int(os.environ.get("BENCH_REPS", "5"))
MEMSCOPED = os.path.join(BUILD, "memscoped")
BENCH = os.path.join(os.environ.get("TOKIO_BENCH_OUT", os.path.join(BUILD, "tokio-bench-out")),
                     "tokio-bench")
CHURN = ["churn", "6000000", "1000", "256"]
MODES = {"untraced": None, "scan-60s": [], "scan-1s": ["--scan-interval", "1"]}
TICK = os.sysconf("SC_CLK_TCK")


def wait_line(p, regex, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        m = re.search(regex, line)
        if m:
            return m
    raise RuntimeError(f"no {regex!r} from {p.args[0]}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run(mode, tmp):
    target = subprocess.Popen([BENCH, *CHURN], stdout=subprocess.PIPE, text=True)
    wait_line(target, r"^ready", 60)
    m, row = None, {}
    report = os.path.join(tmp, "scan.json")
    if MODES[mode] is not None:
        m = subprocess.Popen([MEMSCOPED, "-p", str(target.pid), "--mode", "scan", "-r", report,
                              *MODES[mode]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        while "no probe attached" not in m.stderr.readline():
            if m.poll() is not None:
                raise RuntimeError(f"memscoped exited {m.returncode}")
    os.kill(target.pid, signal.SIGUSR1)
    row["tasks_per_sec"] = float(wait_line(target, r"^tasks_per_sec (\d+)", 600)[1])
    if m:
        row["cpu_s"] = cpu_seconds(m.pid)
        m.send_signal(signal.SIGINT)
        m.communicate(timeout=60)
        with open(report) as f:
            row["snapshots"] = json.load(f)["processes"][0]["scan"]["snapshots"]
    os.kill(target.pid, signal.SIGUSR1)
    target.wait(60)
    print(f"scan.py: {mode:<9} {row['tasks_per_sec']:>10.0f} tasks/s"
          + (f"  snapshots {row['snapshots']}  memscoped cpu {row['cpu_s']:.2f} s" if m else ""),
          file=sys.stderr)
    return row


def main():
    if os.geteuid() != 0:
        sys.exit("scan.py: must run as root")
    runs = {mode: [] for mode in MODES}
    modes = list(MODES)
    with tempfile.TemporaryDirectory(prefix="memscoped-scan-bench-") as tmp:
        for rep in range(REPS):
            for i in range(len(modes)):
                mode = modes[(rep + i) % len(modes)]
                runs[mode].append(run(mode, tmp))
    base = [r["tasks_per_sec"] for r in runs["untraced"]]
    ok = True
    print(f"{'mode':<10} {'tasks/s':>10} {'ratio':>6}  goal")
    print(f"{'untraced':<10} {statistics.median(base):>10.0f}")
    for mode, goal in (("scan-60s", 0.98), ("scan-1s", 0.95)):
        tps = [r["tasks_per_sec"] for r in runs[mode]]
        ratio = statistics.median(t / b for t, b in zip(tps, base))
        ok = ok and ratio >= goal
        print(f"{mode:<10} {statistics.median(tps):>10.0f} {ratio:>6.3f}  >= {goal}: "
              f"{'PASS' if ratio >= goal else 'FAIL'}")
    print(f"tokio-bench {' '.join(CHURN)}, medians of {REPS} repetitions; "
          f"{'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
