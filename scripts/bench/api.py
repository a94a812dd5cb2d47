#!/usr/bin/env python3
"""The cost of the JSON API's snapshot with many live tasks.

memscoped -vv --listen attached to `tokio-bench sleepers N 64` (N tasks that each allocate 64
bytes and sleep forever; N = API_SLEEPERS, default 100000). Once every task shows in the API:
- the main loop's copy of the snapshot ("api snapshot: N tasks in X ms" lines, -vv), while a
  client asks for /api/v1/tasks once a second for API_SECONDS (default 15);
- the time of GET /api/v1/tasks?limit=1000 (filter, sort and render on the HTTP thread), and
  of GET /metrics while the API is read;
- memscoped's VmRSS and CPU per second while the API is read, and once it stopped being read
  (the copies stop 10 s after the last request).
"""
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

BUILD = os.environ.get("BUILD", "build")
MEMSCOPED = os.path.join(BUILD, "memscoped")
BENCH = os.path.join(BUILD, "tokio-bench-out", "tokio-bench")
N = int(os.environ.get("API_SLEEPERS", "100000"))
SECONDS = int(os.environ.get("API_SECONDS", "15"))
TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return time.monotonic() - t0, r.status, body


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def cpu_ms_per_s(pid, seconds, during=None):
    c0, t0 = cpu_ticks(pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        if during:
            during()
        time.sleep(1)
    return (cpu_ticks(pid) - c0) * TICK_NS / 1e6 / (time.monotonic() - t0)


def main():
    target = subprocess.Popen([BENCH, "sleepers", str(N), "64"], stdout=subprocess.PIPE,
                              text=True)
    assert target.stdout.readline().startswith("ready")
    port = free_port()
    err = open("/tmp/memscoped-api-bench.err", "w+")
    ms = subprocess.Popen([MEMSCOPED, "-vv", "-p", str(target.pid), "--listen",
                           f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while "attached " not in open(err.name).read():
            assert time.monotonic() < deadline and ms.poll() is None, "memscoped did not attach"
            time.sleep(0.1)
        os.kill(target.pid, signal.SIGUSR1)
        line = target.stdout.readline()
        assert line.startswith("spawned"), line
        deadline = time.monotonic() + 60
        while True:
            _, status, body = get(port, "/api/v1/tasks?limit=1")
            if status == 200 and re.search(rb'"matched":(\d+)', body) and \
                    int(re.search(rb'"matched":(\d+)', body).group(1)) >= N:
                break
            assert time.monotonic() < deadline, body[:300]
            time.sleep(0.5)
        mark = len(open(err.name).read())
        api_ms, metrics_ms = [], []

        def read_api():
            dt, status, _ = get(port, "/api/v1/tasks?limit=1000&sort=live_bytes")
            assert status == 200
            api_ms.append(dt * 1e3)
            dt, status, _ = get(port, "/metrics")
            metrics_ms.append(dt * 1e3)
        busy_cpu = cpu_ms_per_s(ms.pid, SECONDS, read_api)
        busy_rss = rss_mib(ms.pid)
        copies = [(int(n), float(t)) for n, t in re.findall(
            r"api snapshot: (\d+) tasks in ([\d.]+) ms", open(err.name).read()[mark:])]
        time.sleep(12)  # the API is no longer wanted: copies stop
        mark = len(open(err.name).read())
        idle_cpu = cpu_ms_per_s(ms.pid, 5)
        idle_rss = rss_mib(ms.pid)
        after = re.findall(r"api snapshot", open(err.name).read()[mark:])
        ms_copy = [t for _, t in copies]
        print(f"api.py: {N} sleeping tasks; snapshot copies {len(copies)} of "
              f"{copies[0][0] if copies else 0} tasks: median {statistics.median(ms_copy):.1f} ms, "
              f"max {max(ms_copy):.1f} ms (main loop, once a second while read)")
        print(f"api.py: GET /api/v1/tasks?limit=1000: median {statistics.median(api_ms):.1f} ms, "
              f"max {max(api_ms):.1f} ms; GET /metrics meanwhile: median "
              f"{statistics.median(metrics_ms):.1f} ms, max {max(metrics_ms):.1f} ms")
        print(f"api.py: memscoped while the API is read: {busy_cpu:.0f} ms CPU/s, "
              f"RSS {busy_rss:.1f} MiB; not read: {idle_cpu:.0f} ms CPU/s, RSS {idle_rss:.1f} MiB; "
              f"copies in those 5 s: {len(after)}")
    finally:
        ms.send_signal(signal.SIGINT)
        try:
            ms.wait(30)
        except subprocess.TimeoutExpired:
            ms.kill()
        target.kill()
        target.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
