#!/usr/bin/env python3
"""Kills memscoped hundreds of times at random moments of its attach and of tracing, with and
without background CPU load, through the e2e tests test_safety.test_sigkill_* (which prove after
every kill that the target's code equals its files and no probe is left): RUNS kills of a C
target, RUNS/4 during tokio attaches, RUNS/8 around the library watcher's attach. For the C
target's kills it prints, per phase of the daemon at the kill, how many kills landed there and
the target's own figures: its longest stall, probes seen after the kill, how long the daemon's
helpers and its reaping took, and its malloc+free time after the kill.

Usage: sudo scripts/safety_hammer.py [RUNS_PER_LOAD] (default 200); BUILD as for the tests."""
import collections
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def burn(stop):
    while not stop.is_set():
        sum(range(10000))


def hammer(runs, log, load):
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=burn, args=(stop,)) for _ in range(load)]
    for b in burners:
        b.start()
    try:
        env = dict(os.environ, SAFETY_RUNS=str(runs), SAFETY_LOG=log,
                   SAFETY_TOKIO_RUNS=str(runs // 4), SAFETY_DYNAMIC_RUNS=str(runs // 8))
        return subprocess.run([sys.executable, os.path.join(ROOT, "tests/e2e/run.py"),
                               "test_sigkill"], env=env).returncode
    finally:
        stop.set()
        for b in burners:
            b.join()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    failed = 0
    for load in (0, os.cpu_count() or 2):
        log = tempfile.mktemp(prefix="memscoped-hammer-", suffix=".jsonl")
        rc = hammer(runs, log, load)
        failed += rc != 0
        with open(log) as f:
            rows = [json.loads(line) for line in f]
        os.unlink(log)
        print(f"\n{len(rows)} kills with {load} busy processes beside (exit {rc})")
        base = [r["untraced_max_gap_us"] for r in rows]
        print(f"untraced runs' longest stall: median {statistics.median(base):.0f} us, "
              f"max {max(base):.0f} us")
        print(f"{'phase at the kill':42} {'kills':>5} {'gap p50':>8} {'gap p99':>8} "
              f"{'gap max':>8} {'malloc ns max':>13} {'before ns max':>13} {'int3 after kill':>15} "
              f"{'helper ms max':>13} {'reap ms p50':>11} {'reap ms max':>11} {'detach stall max':>16}")
        by = collections.defaultdict(list)
        for r in rows:
            by[r["phase"]].append(r)
        for phase, rs in sorted(by.items()):
            gaps = [r["max_gap_us"] for r in rs]
            print(f"{phase:42} {len(rs):5} {statistics.median(gaps):7.0f}u {pct(gaps, .99):7.0f}u "
                  f"{max(gaps):7.0f}u {max(r['malloc_ns'] for r in rs):13.1f} "
                  f"{max(r['before_ns'] for r in rs):13.1f} "
                  f"{sum(r['int3_after_kill'] for r in rs):15} "
                  f"{max(r['helper_ms'] for r in rs):13.1f} "
                  f"{statistics.median(r['reap_ms'] for r in rs):11.1f} "
                  f"{max(r['reap_ms'] for r in rs):11.1f} "
                  f"{max(r['detach_stall_us'] for r in rs):15.0f}u")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
