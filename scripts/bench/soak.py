#!/usr/bin/env python3
"""Daemon memory over a long churn: memscoped on `tokio-bench churn` for MINUTES (default 10),
VmRSS and VmHWM read from /proc every minute, then the peak while it writes the final JSON
report. Run as root after `make bench` (which builds build/tokio-bench-out).

usage: scripts/bench/soak.py [MINUTES]"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("BUILD", "build")
minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 10


def mem(pid):
    with open(f"/proc/{pid}/status") as f:
        s = dict(line.split(":\t", 1) for line in f if ":\t" in line)
    return s["VmRSS"].strip(), s["VmHWM"].strip()


target = subprocess.Popen([os.path.join(BUILD, "tokio-bench-out", "tokio-bench"), "churn",
                           "1000000000", "64", "256"], stdout=subprocess.PIPE, text=True)
target.stdout.readline()  # ready
with tempfile.TemporaryDirectory() as d:
    report = os.path.join(d, "report.json")
    ms = subprocess.Popen([os.path.join(BUILD, "memscoped"), "-p", str(target.pid), "-r", report],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while "attached" not in ms.stderr.readline():
        pass
    os.kill(target.pid, signal.SIGUSR1)  # go
    t0 = time.monotonic()
    for i in range(int(minutes)):
        time.sleep(60)
        rss, hwm = mem(ms.pid)
        print(f"minute {i + 1:3d}: VmRSS {rss}, VmHWM {hwm}", flush=True)
    ms.send_signal(signal.SIGINT)
    last = None
    while ms.poll() is None:
        try:
            last = mem(ms.pid)
        except (FileNotFoundError, KeyError):
            break
        time.sleep(0.05)
    target.kill()
    with open(report) as f:
        r = json.load(f)
    print(f"while writing the report ({os.path.getsize(report) / 1e6:.0f} MB): VmHWM {last[1]}")
    print(f"tasks {r['processes'][0]['tasks_summary']['spawned']}, "
          f"events {r['events']['received']}, lost {r['events']['lost']}")
