"""Allocator families: jemalloc, mimalloc, tcmalloc and Rust's global allocator, exact.

Each target (tests/targets/alloc_family.c, alloc_cxx.cc, the tokio target's FFI allocators)
prints the ground truth of what it did with its allocator's own API, from the values the
allocator returned; memscoped's report must agree to the byte, per thread."""
import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import (Memscoped, Target, TestFailure, check, check_eq, process_of,
                     run_memscoped, target_path, thread_of)
from test_metrics import free_port, scrape

HEAP_FIELDS = ("live_bytes", "live_allocations", "allocated_bytes_total", "allocations_total")
LIBDIR = "/usr/lib/x86_64-linux-gnu"
LIBS = {"jemalloc": "libjemalloc.so.2", "mimalloc": "libmimalloc.so.2",
        "tcmalloc": "libtcmalloc_minimal.so.4"}


def sum_truth(truth, field):
    return sum(t[field] for t in truth["threads"])


def check_exact(proc, truth):
    for t in truth["threads"]:
        got = thread_of(proc, t["tid"])
        for f in HEAP_FIELDS:
            check_eq(got[f], t[f], f"tid {t['tid']} {f}")
    for f in ("frees_total", "frees_untracked_total"):
        check_eq(proc["heap"][f], sum_truth(truth, f), f"process {f}")
    if "failures" in truth["threads"][0]:
        check_eq(proc["heap"]["allocation_failures_total"], sum_truth(truth, "failures"),
                 "allocation failures")


def check_allocator(proc, err, family, lib):
    a = proc["allocator"]
    check_eq(a["family"], family, "processes[].allocator.family")
    check(os.path.basename(a["object"]).startswith(lib), f"allocator object {a['object']!r}")
    m = re.search(rf"allocator {family} in '([^']+)' \((\d+) functions\)", err)
    check(m is not None, f"no attach line naming {family}: {err!r}")
    check_eq(m.group(1), a["object"], "attach line object")
    check_eq(a["functions"], int(m.group(2)), "functions in JSON vs the attach line")


def run_family(argv, family, lib, *args, env=None):
    target = Target(argv, env=env)
    try:
        ms = Memscoped([target.pid], *args)
        truth = target.go()
        report, _, err = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    check_eq(report["events"]["lost"], 0, "lost events")
    check_exact(proc, truth)
    check_allocator(proc, err, family, lib)
    return proc, err


def family_test(family, pre):
    def test():
        argv = [target_path(f"alloc_family_{family}"), "3"] + (["pre"] if pre else [])
        run_family(argv, family, LIBS[family])
    return test


for _f in ("jemalloc", "mimalloc", "tcmalloc"):
    globals()[f"test_alloc_{_f}_api_exact_attached_before_work"] = family_test(_f, False)
    globals()[f"test_alloc_{_f}_api_exact_attached_after_work"] = family_test(_f, True)


def static_test(family):
    def test():
        exe = target_path(f"alloc_family_{family}_static")
        proc, _ = run_family([exe, "2"], family, f"alloc_family_{family}_static")
        check_eq(proc["allocator"]["object"], exe, "the executable holds the allocator")
    return test


for _f in ("jemalloc", "tcmalloc"):
    globals()[f"test_alloc_{_f}_linked_into_the_executable_exact"] = static_test(_f)


def test_alloc_rjem_prefixed_jemalloc_beside_glibc_exact():
    # The standard names are glibc's, the _rjem_ API is jemalloc's, in the executable: both
    # are probed, every block counted once by the one that made it.
    exe = target_path("alloc_family_rjem")
    proc, err = run_family([exe, "2"], "glibc", "libc.so")
    check(f"jemalloc in '{exe}' (" in err, f"prefixed jemalloc not probed: {err!r}")


def test_alloc_jemalloc_counts_14_or_more_functions():
    # malloc calloc realloc free posix_memalign aligned_alloc memalign valloc mallocx rallocx
    # xallocx sdallocx dallocx and C++'s new/delete (Debian builds them in).
    proc, _ = run_family([target_path("alloc_family_jemalloc"), "1"], "jemalloc", LIBS["jemalloc"])
    check(proc["allocator"]["functions"] >= 14, f"functions {proc['allocator']}")


def test_alloc_cxx_new_delete_under_tcmalloc_exact():
    run_family([target_path("alloc_cxx_tcmalloc"), "2"], "tcmalloc", LIBS["tcmalloc"])


def test_alloc_jemalloc_preloaded_into_a_glibc_program_exact():
    env = dict(os.environ, LD_PRELOAD=os.path.join(LIBDIR, LIBS["jemalloc"]))
    run_family([target_path("alloc_family"), "2"], "jemalloc", LIBS["jemalloc"], env=env)


def test_alloc_naming_an_absent_allocator_lists_what_was_searched():
    target = Target([target_path("alloc_family_jemalloc"), "1"])
    try:
        status, _, err = run_memscoped("-p", str(target.pid), "--allocator", "mimalloc")
    finally:
        target.stop()
    check_eq(status, 1, f"exit status ({err!r})")
    check("allocator 'mimalloc' not found; searched " in err, f"stderr {err!r}")
    check("libjemalloc.so.2" in err and "alloc_family_jemalloc'" in err, f"stderr {err!r}")
    check_eq(err.count("\n"), 1, f"one line: {err!r}")


def test_alloc_invalid_allocator_name_is_a_usage_error():
    status, _, err = run_memscoped("-p", "1", "--allocator", "hoard")
    check_eq(status, 2, "exit status")
    check("invalid --allocator 'hoard'" in err, f"stderr {err!r}")


def test_alloc_unknown_allocator_is_an_error_naming_it():
    with tempfile.TemporaryDirectory() as d:
        src, lib = os.path.join(d, "bump.c"), os.path.join(d, "libbump.so")
        with open(src, "w") as f:
            f.write("#include <stddef.h>\n#include <sys/mman.h>\n"
                    "void *malloc(size_t n){void *p=mmap(0,n+16,3,0x22,-1,0);"
                    "return p==MAP_FAILED?0:p;}\n"
                    "void free(void *p){(void)p;}\n"
                    "void *calloc(size_t a,size_t b){return malloc(a*b);}\n"
                    "void *realloc(void *p,size_t n){(void)p;return malloc(n);}\n")
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", src, "-o", lib], check=True)
        p = subprocess.Popen(["sleep", "60"], env=dict(os.environ, LD_PRELOAD=lib))
        try:
            time.sleep(0.3)
            status, _, err = run_memscoped("-p", str(p.pid))
        finally:
            p.kill()
            p.wait()
    check_eq(status, 1, f"exit status ({err!r})")
    check(f"unknown allocator: '{lib}' defines malloc and free" in err, f"stderr {err!r}")


def test_alloc_explicit_family_probes_only_it():
    # --allocator glibc on a jemalloc program: attaches to libc, which this program never calls.
    target = Target([target_path("alloc_family_jemalloc"), "1"])
    try:
        ms = Memscoped([target.pid], "--allocator", "glibc")
        target.go()
        report, _, err = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    check_eq(proc["allocator"]["family"], "glibc", "family")
    check("allocator glibc in '" in err and "jemalloc" not in err.split("attached")[0],
          f"stderr {err!r}")


def test_alloc_allocator_info_metric():
    port = free_port()
    target = Target([target_path("alloc_family_mimalloc"), "1"])
    line = []
    try:
        ms = Memscoped([target.pid], "--listen", f"127.0.0.1:{port}")
        # A render is up to a second old.
        for _ in range(40):
            line = [x for x in scrape(port).splitlines()
                    if x.startswith("memscoped_allocator_info{")]
            if line:
                break
            time.sleep(0.1)
        target.go()
        ms.stop()
    finally:
        target.stop()
    check_eq(len(line), 1, f"allocator_info samples: {line}")
    check(f'pid="{target.pid}"' in line[0] and 'family="mimalloc"' in line[0] and
          'object="/usr/lib/x86_64-linux-gnu/libmimalloc.so.2' in line[0] and
          line[0].endswith(" 1"), f"sample {line[0]!r}")


def test_alloc_busy_target_with_no_allocator_events_is_warned_once():
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "spin.c"), os.path.join(d, "spin")
        with open(src, "w") as f:
            f.write("int main(void){for(;;)__asm__ volatile(\"\");}\n")
        subprocess.run(["cc", "-O1", src, "-o", exe], check=True)
        p = subprocess.Popen([exe])
        try:
            ms = Memscoped([p.pid], "--stuck-after", "1", "-d", "3")
            report, _, err = ms.wait(timeout=20)
        finally:
            p.kill()
            p.wait()
    lines = [x for x in err.splitlines() if "no allocator events" in x]
    check_eq(len(lines), 1, f"warning lines: {err!r}")
    check(lines[0].startswith(f"memscoped: warning: pid {p.pid}: no allocator events in ") and
          "probed glibc in '" in lines[0], f"warning {lines[0]!r}")
    check_eq(process_of(report, p.pid)["heap"]["allocations_total"], 0, "allocations")


def test_alloc_idle_target_is_not_warned():
    target = Target([target_path("alloc_family_jemalloc"), "1"])
    try:
        ms = Memscoped([target.pid], "--stuck-after", "1")
        time.sleep(1.6)
        _, _, err = ms.stop()
    finally:
        target.stop()
    check("no allocator events" not in err, f"stderr {err!r}")


def tokio_ffi_test(variant, family, rt):
    def test():
        from test_tokio import check_all_records, check_summary, run
        (records, summaries, _), proc, _, err = run(variant, "all", rt)
        check_eq(proc["allocator"]["family"], family, "allocator family")
        check(f"allocator {family} in '{LIBDIR}/{LIBS[family]}" in err, f"stderr {err!r}")
        # Per-task bytes exact, never-completing tasks flagged, as with glibc.
        check_all_records(proc, records)
        check_summary(proc, records, summaries, rt)
    return test


for _f in ("jemalloc", "mimalloc"):
    for _v in ("", "-strip"):
        for _rt in ("current", "multi"):
            globals()[f"test_alloc_tokio_global_allocator_{_f}{_v.replace('-', '_')}_{_rt}"] = \
                tokio_ffi_test(f"{_f}{_v}", _f, _rt)


def test_alloc_rust_global_allocator_over_an_unnamed_allocator_is_layered_once():
    # The selfcheck build's #[global_allocator] wraps System: memscoped cannot name it, so it
    # probes Rust's shims over glibc, and counts each allocation once (exact per task).
    from test_tokio import check_all_records, run
    (records, _, _), proc, _, err = run("selfcheck", "all", "multi")
    check_eq(proc["allocator"]["family"], "rust", "allocator family")
    check("allocator rust in '" in err and ", glibc in '" in err, f"stderr {err!r}")
    check_all_records(proc, records)


def test_alloc_rust_requested_probes_only_the_shims_and_says_what_they_miss():
    # rustc 1.9x inlines a #[global_allocator] into the crate that defines it (its own code
    # calls mallocx/sdallocx, not __rust_alloc/__rust_dealloc): asked for the shims alone,
    # memscoped probes just them and says that frees went unseen, never silently.
    from test_tokio import run
    _, proc, _, err = run("jemalloc", "all", "current", extra=("--allocator", "rust"))
    check_eq(proc["allocator"]["family"], "rust", "allocator family")
    check(re.search(r"allocator rust in '[^']+' \(4 functions\)\n", err) is not None,
          f"only Rust's four shims: {err!r}")
    check(proc["heap"]["allocations_total"] > 0, "the shims saw std's allocations")
    check_eq(proc["complete"], False, "figures marked incomplete")
    check_eq(len(re.findall(rf"warning: pid {proc['pid']}: \d+ allocations reused addresses "
                            r"still live: frees were not seen; probed rust in ", err)), 1,
             f"one missed-frees warning: {err!r}")


class Redis:
    """Debian's redis-server (redis-tools ships its binary, linked to libjemalloc2), spoken to
    in RESP over one connection."""

    def __init__(self, d):
        import socket
        self.port = free_port()
        exe = os.path.join(d, "redis-server")  # redis picks its mode from argv[0]
        os.symlink("/usr/bin/redis-check-rdb", exe)
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        for _ in range(100):
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise TestFailure("redis-server did not listen")
        self.f = self.sock.makefile("rb")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        line = self.f.readline()
        if line[:1] == b"$":
            return self.f.read(int(line[1:]) + 2)[:-2]
        check(line[:1] in (b"+", b":"), f"redis error {line!r}")
        return line.strip()

    def used_memory(self):
        info = self.cmd("INFO", "memory").decode()
        check("mem_allocator:jemalloc" in info, "redis is not on jemalloc")
        return int(re.search(r"used_memory:(\d+)", info).group(1))

    def stop(self):
        self.sock.close()
        self.proc.kill()
        self.proc.wait()


def test_alloc_debian_redis_on_jemalloc_agrees_with_its_own_used_memory():
    # redis counts used_memory with jemalloc's usable size of every block it allocates;
    # memscoped counts the bytes asked for, which jemalloc rounds up by at most a few percent
    # for these sizes. Keys: 4 blocks each (key, value object, value string, dict entry).
    if not os.path.exists("/usr/bin/redis-check-rdb"):
        raise TestFailure("redis-tools is not installed (scripts/install-deps.sh)")
    keys = 2000
    with tempfile.TemporaryDirectory() as d:
        redis = Redis(d)
        try:
            ms = Memscoped([redis.pid])
            redis.used_memory()  # INFO's own first-call allocations
            before = redis.used_memory()
            for i in range(keys):
                redis.cmd("SET", f"key:{i}", b"v" * 1000)
            after = redis.used_memory()
            report, _, err = ms.stop()
        finally:
            redis.stop()
    proc = process_of(report, redis.pid)
    check_eq(proc["allocator"]["family"], "jemalloc", "redis's allocator")
    check_eq(report["events"]["lost"], 0, "lost events")
    grown = after - before
    live = proc["heap"]["live_bytes"]
    check(0.95 * grown <= live <= grown,
          f"memscoped's live bytes {live} vs redis's used_memory growth {grown}")
    check(4 * keys <= proc["heap"]["live_allocations"] <= 4 * keys + 64,
          f"live blocks {proc['heap']['live_allocations']} for {keys} keys")
