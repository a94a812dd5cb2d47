"""Bad input: one clear line on stderr, a non-zero exit, no crash, no hang."""
import os
import subprocess
import tempfile

from harness import (BUILD, MEMSCOPED, Memscoped, Target, check, check_eq, run_memscoped,
                     target_path)


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


def damaged_elf_files(d):
    """A libc decoy with smashed headers, a truncated Rust binary, and garbage after ELF magic."""
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    with open(libc, "rb") as f:
        data = bytearray(f.read())
    data[0x28:0x30] = b"\xff" * 8            # e_shoff far past the end of the file
    data[0x20:0x28] = (len(data) - 8).to_bytes(8, "little")  # e_phoff: headers cut short
    data[0x1000:0x3000] = os.urandom(0x2000)
    decoy = os.path.join(d, "libc.so.6")     # named like a libc, mapped before the real one
    with open(decoy, "wb") as f:
        f.write(data)
    trunc = os.path.join(d, "libtokio_truncated.so")
    with open(os.path.join(BUILD, "tokio-out", "tokio-target-release"),
              "rb") as f:
        head = f.read(16384)                 # valid ELF header; sections past the end
    with open(trunc, "wb") as f:
        f.write(head)
    garbage = os.path.join(d, "libgarbage.so")
    with open(garbage, "wb") as f:
        f.write(b"\x7fELF\x02\x01\x01" + os.urandom(65536))
    return [decoy, trunc, garbage]


def test_damaged_elf_files_in_the_targets_maps():
    from test_core import check_threads_exact
    with tempfile.TemporaryDirectory() as d:
        files = damaged_elf_files(d)
        target = Target([target_path("alloc_pattern"), "2"] + [f"map={p}" for p in files])
        try:
            maps = open(f"/proc/{target.pid}/maps").read()
            check(all(p in maps for p in files), "the damaged files are not mapped")
            # Every runtime looks through the maps (tokio in shared objects, coroutines).
            ms = Memscoped([target.pid], "--runtime", "auto")
            truth = target.go()
            report, _, err = ms.stop()
            # Asked for tokio, it names what it searched and fails cleanly.
            code, _, err2 = run_memscoped("-p", str(target.pid), "--runtime", "tokio", "-d", "1")
        finally:
            target.stop()
    proc = report["processes"][0]
    check_threads_exact(proc, truth)
    check_eq(proc["complete"], True, "complete")
    check("Sanitizer" not in err and "Sanitizer" not in err2, f"sanitizer report: {err}{err2}")
    check_eq(code, 1, f"--runtime tokio exit status ({err2!r})")
    check("no tokio in" in err2, f"stderr {err2!r}")


def test_user_that_does_not_exist_or_cannot_write_the_report():
    expect_error(["-p", "1", "--user", "no-such-user-here"], 2,
                 "invalid --user 'no-such-user-here': no such user")
    with tempfile.TemporaryDirectory() as d:  # root's, mode 0700
        expect_error(["-p", "1", "--user", "nobody", "-r", os.path.join(d, "r.json")], 1,
                     "as user nobody: Permission denied")
