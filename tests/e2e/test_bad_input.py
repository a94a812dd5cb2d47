"""Bad input: one clear line on stderr, a non-zero exit, no crash, no hang."""
import os
import subprocess
import tempfile

from harness import MEMSCOPED, Target, check, check_eq, run_memscoped, target_path


def expect_error(args, status, text):
    code, out, err = run_memscoped(*args)
    check_eq(code, status, f"exit status of memscoped {' '.join(args)} (stderr {err!r})")
    check(text in err, f"stderr {err!r} lacks {text!r}")
    check(err.startswith("memscoped: "), f"stderr {err!r} does not start with 'memscoped: '")


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return str(p.pid)


def test_no_pid():
    expect_error([], 2, "no target: give at least one --pid")


def test_pid_that_does_not_exist():
    expect_error(["-p", dead_pid()], 1, "no such process")


def test_kernel_thread():
    expect_error(["-p", "2"], 1, "is a kernel thread")


def test_zombie():
    p = subprocess.Popen(["true"])
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    try:
        expect_error(["-p", str(p.pid)], 1, "has exited (zombie)")
    finally:
        p.wait()


def test_malformed_numbers():
    expect_error(["-p", "12x"], 2, "invalid --pid '12x'")
    expect_error(["-p", "1", "-d", "soon"], 2, "invalid --duration 'soon'")
    expect_error(["-p", "1", "-i", "-3"], 2, "invalid --interval '-3'")
    expect_error(["-p", "1", "--max-allocations", "0"], 2, "invalid --max-allocations '0'")
    expect_error(["-p", "1", "--max-types", "0"], 2, "invalid --max-types '0'")


def test_ring_size_not_a_power_of_two():
    expect_error(["-p", "1", "--ring-size", "1000000"], 2, "invalid --ring-size '1000000'")


def test_unknown_flag_and_stray_argument():
    expect_error(["-p", "1", "--frobnicate"], 2, "unrecognized option")
    expect_error(["-p", "1", "extra"], 2, "unexpected argument 'extra'")


def test_same_pid_twice():
    expect_error(["-p", "1", "-p", "1"], 2, "pid 1 given twice")


def test_unwritable_report_path():
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        expect_error(["-p", str(target.pid), "-r", "/nonexistent-dir/r.json"], 1,
                     "cannot write report '/nonexistent-dir/r.json'")
    finally:
        target.stop()


def test_not_root_names_missing_capabilities():
    code, _, err = (lambda p: (p.returncode, p.stdout, p.stderr))(subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", MEMSCOPED, "-p", "1"],
        capture_output=True, text=True, timeout=10))
    check_eq(code, 1, f"exit status ({err!r})")
    check("missing capabilities: CAP_BPF, CAP_PERFMON" in err, f"stderr {err!r}")


def test_static_executable_without_allocator_symbols():
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "s.c"), os.path.join(d, "static-stripped")
        with open(src, "w") as f:
            f.write("#include <unistd.h>\nint main(void){pause();return 0;}\n")
        subprocess.run(["cc", "-static", "-s", "-O1", src, "-o", exe], check=True)
        p = subprocess.Popen([exe])
        try:
            expect_error(["-p", str(p.pid)], 1, "no allocator symbols")
        finally:
            p.kill()
            p.wait()


def test_pid_exiting_during_attach():
    # Short-lived processes race the attach; each run must end in a clean error or success.
    for _ in range(10):
        p = subprocess.Popen(["sleep", "0.05"])
        code, _, err = run_memscoped("-p", str(p.pid), "-d", "0.2")
        p.wait()
        check(code in (0, 1), f"exit status {code}: {err!r}")
        if code == 1:
            check(any(s in err for s in ("exited during attach", "no such process",
                                         "has exited")), f"unclear error {err!r}")


def test_each_missing_capability_is_named():
    # CAP_SYS_ADMIN also grants BPF and perf events, so it goes with the one under test.
    for drop, named in (("cap_bpf,cap_sys_admin", "CAP_BPF"),
                        ("cap_perfmon,cap_sys_admin", "CAP_PERFMON"),
                        ("cap_sys_ptrace", "CAP_SYS_PTRACE")):
        p = subprocess.run(["capsh", f"--drop={drop}", "--", "-c", f"exec {MEMSCOPED} -p 1"],
                           capture_output=True, text=True, timeout=10)
        check_eq(p.returncode, 1, f"exit status without {named} ({p.stderr!r})")
        check_eq(p.stderr, f"memscoped: missing capabilities: {named} (run as root)\n",
                 f"stderr without {named}")
