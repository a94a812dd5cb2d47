"""Helpers for end-to-end tests: real targets, the real daemon, real BPF (root)."""
import json
import os
import signal
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
# MEMSCOPED runs another build of the daemon (the sanitizer one) against the same targets.
MEMSCOPED = os.environ.get("MEMSCOPED") or os.path.join(BUILD, "memscoped")


def target_path(name):
    return os.path.join(BUILD, "targets", name)


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def check_eq(actual, expected, what):
    if actual != expected:
        raise TestFailure(f"{what}: got {actual!r}, expected {expected!r}")


def wait_line(stream, prefix, timeout, proc=None):
    """Reads lines until one starts with prefix; returns it (raises on timeout or EOF)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.01)
            continue
        seen.append(line)
        if line.startswith(prefix):
            return line.rstrip("\n")
    raise TestFailure(f"no line starting with {prefix!r} within {timeout}s; saw {seen[-5:]!r}")


class Target:
    """A target program that prints 'ready PID', waits for SIGUSR1, then prints
    'truth {json}' and 'done'."""

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        self.pid = self.proc.pid
        wait_line(self.proc.stdout, "ready", 10, self.proc)
        self.truth = None

    def go(self, timeout=30):
        os.kill(self.pid, signal.SIGUSR1)
        line = wait_line(self.proc.stdout, "truth ", timeout, self.proc)
        self.truth = json.loads(line[len("truth "):])
        wait_line(self.proc.stdout, "done", timeout, self.proc)
        return self.truth

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Memscoped:
    """The daemon attached to pids; stop() returns (json report, stdout text, stderr)."""

    def __init__(self, pids, *args, wait_attached=True, new_session=False):
        self.dir = tempfile.TemporaryDirectory(prefix="memscoped-e2e-")
        self.report = os.path.join(self.dir.name, "report.json")
        if "--user" in args:  # the report is written by that user
            os.chmod(self.dir.name, 0o777)
        self.errpath = os.path.join(self.dir.name, "stderr")
        argv = [MEMSCOPED, "-r", self.report]
        for p in pids:
            argv += ["-p", str(p)]
        argv += list(args)
        self.err = open(self.errpath, "w+")
        # In a session of its own, its children can be found after it died.
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     start_new_session=new_session)
        if wait_attached:
            self.wait_attached(len(pids))

    def stderr(self):
        with open(self.errpath) as f:
            return f.read()

    def wait_attached(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stderr().count("attached ") >= n:
                return
            if self.proc.poll() is not None:
                raise TestFailure(f"memscoped exited {self.proc.returncode}: {self.stderr()}")
            time.sleep(0.02)
        raise TestFailure(f"memscoped did not attach within {timeout}s: {self.stderr()}")

    def stop(self, sig=signal.SIGINT, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout=30):
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise TestFailure(f"memscoped did not exit within {timeout}s")
        check_eq(self.proc.returncode, 0, f"memscoped exit status (stderr: {self.stderr()})")
        with open(self.report) as f:
            report = json.load(f)
        return report, out, self.stderr()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def status_once(pid, done):
    """/proc/PID/status as a dict, once done(status) holds (or after 2 s)."""
    for _ in range(100):
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":\t", 1) for line in f if ":\t" in line)
        if done(status):
            break
        time.sleep(0.02)
    return status


def run_memscoped(*args, timeout=20):
    """Runs memscoped to completion; returns (exit status, stdout, stderr)."""
    p = subprocess.run([MEMSCOPED, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def process_of(report, pid):
    for p in report["processes"]:
        if p["pid"] == pid:
            return p
    raise TestFailure(f"pid {pid} not in report")


def thread_of(proc, tid):
    for t in proc["threads"]:
        if t["tid"] == tid:
            return t
    raise TestFailure(f"tid {tid} not in report of pid {proc['pid']}")
