#!/usr/bin/env python3
"""How long --mode scan --freeze holds a target stopped (`make bench` runs it).

The target is a Python process holding BENCH_FREEZE_MIB (default 1024) MiB of glibc heap in
4 KiB blocks, with 4 threads. One memscoped per configuration (--freeze; --freeze
--leak-candidates; and without --freeze for the unfrozen snapshot time), BENCH_REPS snapshots
each (default 5), asked for with SIGUSR1. Prints per configuration the median freeze (the time
from the first PTRACE_SEIZE to the last PTRACE_DETACH), per GiB of heap in use and per GiB read,
and the lowest and highest.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("BUILD", "build")
REPS = int(os.environ.get("BENCH_REPS", "5"))
MIB = int(os.environ.get("BENCH_FREEZE_MIB", "1024"))
MEMSCOPED = os.path.join(BUILD, "memscoped")
GIB = 1 << 30
TARGET = f"""
import sys, threading, time
blocks = [bytearray(4000) for _ in range({MIB} * 256)]
for _ in range(3):
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
print("ready", flush=True)
time.sleep(3600)
"""
CONFIGS = {"unfrozen": [], "freeze": ["--freeze"],
           "freeze+leaks": ["--freeze", "--leak-candidates"]}


def snapshot(ms, report):
    if os.path.exists(report):
        os.unlink(report)
    os.kill(ms.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 120
    while not os.path.exists(report):
        if time.monotonic() > deadline or ms.poll() is not None:
            raise RuntimeError("no report from memscoped")
        time.sleep(0.01)
    time.sleep(0.05)  # written by rename: complete once there
    with open(report) as f:
        return json.load(f)["processes"][0]


def measure(pid, args, tmp):
    report = os.path.join(tmp, "r.json")
    ms = subprocess.Popen([MEMSCOPED, "-p", str(pid), "--mode", "scan", "--scan-interval",
                           "600", "-r", report, *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    while "no probe attached" not in ms.stderr.readline():
        if ms.poll() is not None:
            raise RuntimeError(f"memscoped exited {ms.returncode}")
    rows = []
    for _ in range(REPS):
        p = snapshot(ms, report)
        fr = p.get("freeze")
        seconds = fr["last_freeze_seconds"] if fr else p["scan"]["last_snapshot_seconds"]
        rows.append((seconds, p["census"]["inuse_bytes"], p["scan"]["last_bytes_read"],
                     fr["frozen_threads"] if fr else 0))
    ms.send_signal(signal.SIGINT)
    ms.communicate(timeout=120)
    return rows


def main():
    if os.geteuid() != 0:
        sys.exit("freeze.py: must run as root")
    target = subprocess.Popen([sys.executable, "-c", TARGET], stdout=subprocess.PIPE, text=True)
    try:
        if target.stdout.readline().strip() != "ready":
            sys.exit("freeze.py: the target did not start")
        print(f"# --freeze: a Python process with {MIB} MiB of heap in 4 KiB blocks, "
              f"{REPS} snapshots each (medians)")
        print(f"{'config':<14} {'ms':>8} {'ms/GiB heap':>12} {'ms/GiB read':>12} "
              f"{'lowest-highest ms':>18} {'threads':>8}")
        with tempfile.TemporaryDirectory(prefix="memscoped-freeze-") as tmp:
            for name, args in CONFIGS.items():
                rows = measure(target.pid, args, tmp)
                ms = [r[0] * 1000 for r in rows]
                heap = statistics.median(r[1] for r in rows) / GIB
                read = statistics.median(r[2] for r in rows) / GIB
                med = statistics.median(ms)
                print(f"{name:<14} {med:>8.1f} {med / heap:>12.1f} {med / read:>12.1f} "
                      f"{min(ms):>8.1f}-{max(ms):<9.1f} {rows[-1][3]:>8}")
    finally:
        target.terminate()
        target.wait()


if __name__ == "__main__":
    main()
