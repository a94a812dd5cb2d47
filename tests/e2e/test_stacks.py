"""Sampled allocation stacks (--sample-bytes, --pprof, --folded) on a C target built -O2
-fomit-frame-pointer with three call paths to malloc, one through a shared library
(tests/targets/stacks_c.c). The pprof file is read back with protoc against the
profile.proto of Debian's golang-github-google-pprof-dev."""
import gzip
import os
import re
import signal
import subprocess
import tempfile
import time

from harness import (Memscoped, Target, check, check_eq, process_of, run_memscoped,
                     target_path)
from test_async_task import binary
from test_tokio import TokioTarget, tasks_by_id

PROTO_DIR = "/usr/share/gocode/src/github.com/google/pprof/proto"
# Each path's own frames, outermost first, after main.
PATHS = {"alpha": ["alpha_outer", "alpha_inner"],
         "beta": ["beta_outer", "beta_mid", "beta_inner"],
         "gamma": ["gamma_outer", "gamma_inner"]}
START = ["_start", "__libc_start_main", "__libc_start_call_main", "main"]


def parse_text(text):
    """protoc's text format as nested dicts of lists."""
    root, stack = {}, []
    cur = root
    for line in text.splitlines():
        line = line.strip()
        if line.endswith("{"):
            child = {}
            cur.setdefault(line[:-1].strip(), []).append(child)
            stack.append(cur)
            cur = child
        elif line == "}":
            cur = stack.pop()
        elif line:
            key, value = line.split(":", 1)
            value = value.strip()
            if value in ("true", "false"):
                value = value == "true"
            elif value.startswith('"'):
                value = bytes(value[1:-1], "utf-8").decode("unicode_escape")
            else:
                value = int(value)
            cur.setdefault(key, []).append(value)
    return root


def decode_pprof(path):
    with open(path, "rb") as f:
        raw = f.read()
    check(raw[:2] == b"\x1f\x8b", f"{path} is not gzip'd")
    p = subprocess.run(["protoc", "--decode", "perftools.profiles.Profile", "-I", PROTO_DIR,
                        "profile.proto"], input=gzip.decompress(raw), capture_output=True)
    check_eq(p.returncode, 0, f"protoc --decode ({p.stderr.decode()})")
    return parse_text(p.stdout.decode())


def pprof_samples(prof):
    """[(functions outermost first, {type: value}, {label: value})] and the string table."""
    strings = prof["string_table"]
    funcs = {f["id"][0]: strings[f.get("name", [0])[0]] for f in prof.get("function", [])}
    locs = {}
    for loc in prof["location"]:
        lines = loc.get("line", [])
        locs[loc["id"][0]] = funcs[lines[0]["function_id"][0]] if lines else "?"
    types = [strings[t.get("type", [0])[0]] + "/" + strings[t.get("unit", [0])[0]]
             for t in prof["sample_type"]]
    out = []
    for s in prof.get("sample", []):
        frames = [locs[i] for i in s.get("location_id", [])][::-1]
        values = dict(zip(types, s.get("value", []) + [0] * (4 - len(s.get("value", [])))))
        labels = {strings[lb["key"][0]]: strings[lb.get("str", [0])[0]]
                  for lb in s.get("label", [])}
        out.append((frames, values, labels))
    return out, strings, types


def traced(target, args, go, during=None):
    """Attaches memscoped with args, runs go() (the target's truth), then during(ms) if given;
    returns (truth, report, stderr) and always stops both."""
    ms = None
    try:
        ms = Memscoped([target.pid], *args)
        truth = go()
        if during:
            during(ms)
        report, _, err = ms.stop(timeout=60)
    finally:
        if ms:
            ms.kill()
        target.stop()
    check_eq(report["events"]["lost"], 0, "lost events")
    return truth, report, err


def path_of(frames, paths=PATHS):
    for name, own in paths.items():
        if frames[-len(own):] == own:
            return name
    return None


def run_exact(target_name, paths, start):
    """--sample-bytes 1 on a target: each path's folded line and pprof sample hold exactly
    start + its own frames (root first) and exactly its bytes. start: the frames from _start
    to the target's main, or a callable checking them. Returns what the checks need more."""
    d = tempfile.mkdtemp(prefix="memscoped-stacks-")
    folded, pprof = os.path.join(d, "f.txt"), os.path.join(d, "p.pb.gz")
    target = Target([target_path(target_name), "exact"])

    def usr1(ms):
        # SIGUSR1 writes the files while tracing goes on; the exit rewrites them.
        ms.proc.send_signal(signal.SIGUSR1)
        for _ in range(500):
            if os.path.exists(folded) and os.path.exists(pprof):
                break
            time.sleep(0.02)
        check(os.path.exists(folded) and os.path.exists(pprof), "SIGUSR1 wrote no stacks")
        os.unlink(folded)

    truth, report, err = traced(target, ["--sample-bytes", "1", "--folded", folded,
                                         "--pprof", pprof], target.go, usr1)

    def check_frames(frames, name, what):
        own = paths[name]
        if callable(start):
            start(frames[:-len(own)], f"{what} of path {name}")
        else:
            check_eq(frames, start + own, f"{what} of path {name}")

    # Folded: root first, exactly the path's functions after the start frames.
    lines = {}
    with open(folded) as f:
        for line in f:
            stack, value = line.rstrip("\n").rsplit(" ", 1)
            frames = stack.split(";")
            name = path_of(frames, paths)
            if name:
                check(name not in lines, f"two folded lines for path {name}: {line!r}")
                lines[name] = (frames, int(value))
    for name in paths:
        check(name in lines, f"no folded line for path {name}")
        frames, value = lines[name]
        check_frames(frames, name, "folded frames")
        check_eq(value, truth[name]["live_bytes"], f"folded bytes of path {name}")
    # pprof: the same stacks (leaf first in the file), exact values, labels.
    prof = decode_pprof(pprof)
    samples, strings, types = pprof_samples(prof)
    check_eq(types, ["alloc_objects/count", "alloc_space/bytes", "inuse_objects/count",
                     "inuse_space/bytes"], "sample types")
    seen = set()
    for frames, values, labels in samples:
        name = path_of(frames, paths)
        if not name:
            continue
        seen.add(name)
        check_frames(frames, name, "pprof frames")
        t = truth[name]
        check_eq(values, {"alloc_objects/count": t["live_count"],
                          "alloc_space/bytes": t["live_bytes"],
                          "inuse_objects/count": t["live_count"],
                          "inuse_space/bytes": t["live_bytes"]}, f"pprof values of {name}")
        check_eq(labels.get("thread"), str(target.pid), f"thread label of {name}")
    check_eq(seen, set(paths), "paths in the pprof profile")
    return target, truth, report, prof, err


def test_stacks_c_every_allocation_exact_frames_and_bytes():
    target, truth, report, prof, _ = run_exact("stacks_c", PATHS, START)
    strings = prof["string_table"]
    # The JSON report's stacks: the three paths, largest first, exact.
    top = process_of(report, target.pid)["stacks"]["top"]
    check_eq([(t["frames"], t["live_bytes"], t["allocations"]) for t in top[:3]],
             [(START + PATHS[n], truth[n]["live_bytes"], truth[n]["live_count"])
              for n in ("gamma", "beta", "alpha")], "JSON stacks.top")
    check_eq(process_of(report, target.pid)["stacks"]["sample_bytes"], 1, "sample_bytes")
    files = {strings[m["filename"][0]]: strings[m["build_id"][0]] if "build_id" in m else ""
             for m in prof["mapping"]}
    for obj in ("stacks_c", "libstacks_lib.so"):
        got = [bid for f, bid in files.items() if f.endswith("/" + obj)]
        check(got and re.fullmatch(r"[0-9a-f]{40}", got[0]), f"mapping {obj}: {files}")


def test_stacks_cxx_every_allocation_demangled_exact():
    new = "operator new(unsigned long)"
    run_exact("stacks_cxx", {
        "alpha": ["paths::Alpha::make(unsigned long)", "paths::Alpha::fill(unsigned long)",
                  new],
        "beta": ["char* paths::beta<int>(unsigned long)", "paths::beta_leaf(unsigned long)",
                 new],
        "gamma": ["paths::Gamma::operator()(unsigned long) const", new]}, START)


def test_stacks_rust_release_every_allocation_full_depth_exact():
    def start(frames, what):
        # Full depth: from _start through std's runtime to our main (std's frames between
        # vary with the rustc version).
        check(frames[:4] == START and frames[-1] == "stacks_rust::main" and
              all(f.startswith("std::") for f in frames[4:-1]), f"{what}: {frames}")

    run_exact("stacks_rust", {
        "alpha": ["stacks_rust::alpha_outer", "stacks_rust::alpha_inner"],
        "beta": ["stacks_rust::beta_outer", "stacks_rust::beta_mid", "stacks_rust::beta_inner"],
        "gamma": ["stacks_rust::Gamma::build"]}, start)


def test_stacks_default_sampling_large_totals_within_10_percent():
    """1024 blocks of 1 MiB per path at the default R = 512 KiB: each is sampled with
    p = 1 - e^-2 = 0.8647 and then stands for Z/p bytes. The estimate's relative standard
    deviation is sqrt((1-p)/p / n) = sqrt(0.1565/1024) = 1.24%, so 10% is 8 standard
    deviations: a false failure has odds below 1e-15."""
    d = tempfile.mkdtemp(prefix="memscoped-stacks-")
    pprof = os.path.join(d, "p.pb.gz")
    target = Target([target_path("stacks_c"), "large"])
    # A burst of 2.6k samples in ~50 ms: a ring that holds them all (a half-full ring takes no
    # more samples, so the exact events are never the ones lost).
    truth, report, err = traced(target, ["--pprof", pprof, "--ring-size", "67108864"],
                                lambda: target.go(timeout=120))
    m = re.search(r"stacks: (\d+) samples \((\d+) lost, (\d+) dropped, (\d+) truncated\)", err)
    check(m is not None, f"no stacks summary line: {err!r}")
    check_eq(m.group(2, 3, 4), ("0", "0", "0"), "samples lost, dropped, truncated")
    samples, _, _ = pprof_samples(decode_pprof(pprof))
    got = {name: 0 for name in PATHS}
    for frames, values, _ in samples:
        name = path_of(frames)
        if name:
            got[name] += values["alloc_space/bytes"]
    for name in PATHS:
        exact = truth[name]["freed_bytes"] + truth[name]["live_bytes"]
        check(abs(got[name] - exact) <= 0.10 * exact,
              f"path {name}: estimated {got[name]} bytes allocated, exact {exact}")


def test_stacks_tokio_release_per_task_bytes_and_spawn_locations():
    """Every allocation sampled on the tokio release target: each task's sampled live bytes
    (pprof label task = its tokio Id) equal its ground truth for tasks that spawned no
    children (a child's cell is allocated by its parent, then becomes the child's), and the
    stacks run from _start through the task's poll, whose return address the kernel's
    uretprobe replaced while it runs (without the fix-up they would end at the poll)."""

    d = tempfile.mkdtemp(prefix="memscoped-stacks-")
    pprof = os.path.join(d, "p.pb.gz")
    target = TokioTarget("release", "all", "current")
    (records, _, _), report, err = traced(
        target, ["--runtime", "tokio", "--sample-bytes", "1", "--ring-size", "268435456",
                 "--pprof", pprof], target.go)
    m = re.search(r"stacks: (\d+) samples \((\d+) lost, (\d+) dropped, (\d+) truncated\)", err)
    check(m is not None and m.group(2, 3) == ("0", "0"), f"samples lost or dropped: {err!r}")
    samples, _, _ = pprof_samples(decode_pprof(pprof))
    live, types = {}, {}
    for frames, values, labels in samples:
        if "task" not in labels or not values["inuse_space/bytes"]:
            continue
        live[labels["task"]] = live.get(labels["task"], 0) + values["inuse_space/bytes"]
        types[labels["task"]] = labels["task_type"]
        # raw::poll may be a jmp thunk, gone from the stack: Harness::poll is what it runs.
        check(frames[0] == "_start" and
              any(f.startswith("tokio::runtime::task::harness::Harness<T,S>::poll")
                  for f in frames),
              f"task {labels['task']}: not from _start through the task's poll: {frames}")
    tasks = tasks_by_id(process_of(report, target.pid))
    checked = 0
    for rec in records:
        if rec["spawned_cells"]:
            continue
        tid = str(rec["id"])
        check_eq(live.get(tid, 0), rec["live_bytes"], f"sampled live bytes of task {tid}")
        if rec["live_bytes"]:
            check_eq(types[tid], tasks[f"tokio:{tid}"]["type"], f"task_type label of {tid}")
            checked += 1
    check(checked >= 5, f"only {checked} tasks with live bytes checked")
    # Spawn locations: every live task's cell was sampled; the first frame outside tokio is
    # the target's own spawn helper (tokio::spawn is called only there).
    proc = process_of(report, target.pid)
    sites = {s["task_type"]: s["function"] for s in proc["stacks"]["spawn_locations"]}
    live_types = {t["type"] for t in proc["tasks"] if t["state"] in ("idle", "running")}
    check(live_types and live_types <= set(sites), f"spawn locations {sites} for {live_types}")
    for ty, fn in sites.items():
        check(fn in ("tokio_target::spawn_rec", "tokio_target::spawn_rec_at"),
              f"spawn location of {ty}: {fn}")


def test_stacks_bad_options_one_line_and_usage_status():
    for args, text in (
            (["--sample-bytes", "x"], "invalid --sample-bytes 'x'"),
            (["--sample-bytes", "2000000000000"], "invalid --sample-bytes '2000000000000'"),
            (["--pprof", ""], "invalid --pprof ''"),
            (["--folded", ""], "invalid --folded ''"),
            (["--sample-bytes", "0", "--folded", "/tmp/f"], "--sample-bytes is 0")):
        code, _, err = run_memscoped("-p", str(os.getpid()), *args)
        check_eq(code, 2, f"exit status of {args} (stderr {err!r})")
        # One line saying what is wrong (argp adds its "Try --help" hint to parse errors).
        check(err.startswith("memscoped: ") and text in err.splitlines()[0],
              f"{args}: stderr {err!r}")


def async_task_stacks(executor):
    def test():
        """Every allocation sampled on an async-task executor (release build): each task
        type's sampled live bytes equal the exact figure of its tasks, and its spawn location
        is the target's spawn_all (the first frame outside async-task and the executor)."""
        target = Target([binary(executor, "release")])
        _, report, _ = traced(target, ["--runtime", "async-task", "--sample-bytes", "1"],
                              target.go)
        proc = process_of(report, target.pid)
        exact = {}
        for t in proc["tasks"]:
            if t["runtime"] == "async-task":
                exact[t["type"]] = exact.get(t["type"], 0) + t["live_bytes"]
        sampled = {ty["task_type"]: sum(s["live_bytes"] for s in ty["top"])
                   for ty in proc["stacks"]["task_types"]}
        leaking = {ty for ty, b in exact.items() if b}
        check(leaking, f"no task type holds memory: {exact}")
        for ty in leaking:
            check_eq(sampled.get(ty), exact[ty], f"sampled live bytes of {ty}")
        sites = {s["task_type"]: s["function"] for s in proc["stacks"]["spawn_locations"]}
        crate = executor.replace("-", "_") + "_target"
        for ty in leaking:
            check_eq(sites.get(ty), f"{crate}::spawn_all", f"spawn location of {ty}")
    return test


test_stacks_async_std_type_bytes_and_spawn_locations = async_task_stacks("async-std")
test_stacks_smol_type_bytes_and_spawn_locations = async_task_stacks("smol")
