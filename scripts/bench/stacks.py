#!/usr/bin/env python3
"""`make bench`: what sampled stacks cost the target. malloc_bench (1 thread, malloc+free pairs
of 16..4096 bytes, 1 s per run, the thread's CPU time per pair) under memscoped with --sample-bytes 0 (no stacks), the default
(524288) and 1 (every allocation), interleaved in a rotating order, BENCH_REPS repetitions
(default 5). Prints the medians, the default's overhead over no stacks (bar: 5%), the target's
cost per sampled stack (from --sample-bytes 1) and the daemon's CPU per sample to unwind."""
import os
import re
import signal
import statistics
import subprocess
import sys

BUILD = os.environ.get("BUILD", "build")
BENCH = os.path.join(BUILD, "bench", "malloc_bench")
MEMSCOPED = os.path.join(BUILD, "memscoped")
MODES = [("none", ["--sample-bytes", "0"]), ("default", []),
         ("every", ["--sample-bytes", "1", "--ring-size", "268435456"])]


def run(args):
    bench = subprocess.Popen([BENCH, "1", "20000000", "1"], stdout=subprocess.PIPE, text=True)
    if not bench.stdout.readline().startswith("ready"):
        sys.exit("stacks.py: malloc_bench did not start")
    ms = subprocess.Popen([MEMSCOPED, "-p", str(bench.pid), *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    while "attached" not in (line := ms.stderr.readline()):
        if not line:
            sys.exit("stacks.py: memscoped did not attach")
    os.kill(bench.pid, signal.SIGUSR1)
    out = bench.stdout.read()
    bench.wait()
    ms.send_signal(signal.SIGINT)
    err = ms.communicate()[1]
    if ms.returncode:
        sys.exit(f"stacks.py: memscoped exited with {ms.returncode}: {err}")
    m = re.search(r"stacks: (\d+) samples .* ([\d.]+) us of CPU", err)
    # The thread's CPU time per pair (probes included), as run.sh reads it: the daemon's own
    # work on the other core does not count.
    fields = out.split()
    ns = fields[fields.index("cpu_ns_per_pair") + 1] if "cpu_ns_per_pair" in fields else fields[1]
    return float(ns), float(m.group(2)) if m else None


def main():
    reps = int(os.environ.get("BENCH_REPS", "5"))
    ns, cpu = {m: [] for m, _ in MODES}, []
    for rep in range(reps):
        for name, args in MODES[rep % 3:] + MODES[:rep % 3]:
            t, c = run(args)
            ns[name].append(t)
            if name == "every" and c is not None:
                cpu.append(c)
    med = {m: statistics.median(v) for m, v in ns.items()}
    overhead = (med["default"] - med["none"]) / med["none"] * 100
    print(f"ns per malloc+free pair, medians of {reps}: no stacks {med['none']:.0f}, "
          f"default sampling {med['default']:.0f} ({overhead:+.1f}%, bar 5%), "
          f"every allocation {med['every']:.0f}")
    print(f"target's cost per sampled stack: {(med['every'] - med['none']) / 1000:.2f} us; "
          f"daemon CPU per sample to unwind: {statistics.median(cpu):.2f} us")
    print("PASS" if overhead <= 5 else "FAIL: default sampling adds more than 5%")


if __name__ == "__main__":
    main()
