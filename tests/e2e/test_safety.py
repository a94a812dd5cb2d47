"""Safety: the target never pays for memscoped's death, its forks, execs, threads and exits."""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

from harness import (Memscoped, Target, TestFailure, check, check_eq, process_of, status_once,
                     target_path, thread_of, wait_line)
from test_tokio import TokioTarget

HEAP_FIELDS = ("live_bytes", "live_allocations", "allocated_bytes_total", "allocations_total")
OUR_PROGS = {"alloc_entry", "alloc_return", "task_poll_enter", "task_poll_return"}
UPROBE_MULTI = (12, "uprobe_multi")  # bpftool before 7.3 prints the link type as a number


def bpftool(*args):
    # A listing fails (status 255) when an object goes away while bpftool walks the ids: other
    # BPF users on the machine come and go, so it is read again.
    for _ in range(9):
        r = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=20)
        if r.returncode == 0:
            break
    r.check_returncode()
    return json.loads(r.stdout) if r.stdout.strip() else []


def bpf_fdinfo(kinds, pids=None):
    """The fdinfo ({field: value}) of every descriptor of kinds ("anon_inode:bpf_link", …)
    that a live process (of pids, or any) holds."""
    for pid in pids or filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") not in kinds:
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    yield {k: v.strip() for k, v in (line.split(":", 1) for line in f
                                                     if ":" in line)}
            except OSError:
                continue


def bpf_held():
    """Ids of the BPF programs and links some live process holds a file descriptor to."""
    progs, links = set(), set()
    for info in bpf_fdinfo(("anon_inode:bpf-prog", "anon_inode:bpf_link")):
        if "link_id" in info:
            links.add(int(info["link_id"]))
        if "prog_id" in info:
            progs.add(int(info["prog_id"]))
    return progs, links


def our_bpf_objects():
    """(programs, links) of memscoped's program names: {id: name}, {link id: prog name}."""
    progs = {p["id"]: p.get("name") for p in bpftool("prog", "show")
             if p.get("name") in OUR_PROGS}
    links = {l["id"]: progs[l["prog_id"]] for l in bpftool("link", "show")
             if l.get("prog_id") in progs and l.get("type") in UPROBE_MULTI}
    return progs, links


class BpfBaseline:
    """Programs and links loaded after this point that nobody holds are leaks.

    Other memscoped instances may run on the machine at the same time: theirs are held by a
    live process, ours died with the memscoped we killed."""

    def __init__(self):
        self.prog_floor = max((p["id"] for p in bpftool("prog", "show")), default=0)
        self.link_floor = max((l["id"] for l in bpftool("link", "show")), default=0)

    def orphans(self):
        progs, links = our_bpf_objects()
        held_progs, held_links = bpf_held()
        return ({i: n for i, n in progs.items() if i > self.prog_floor and i not in held_progs},
                {i: n for i, n in links.items() if i > self.link_floor and i not in held_links})

    def check_released(self, what, timeout=2.5):
        # The kernel frees a program when its last reference goes, after an RCU grace period.
        deadline = time.monotonic() + timeout
        while True:
            progs, links = self.orphans()
            if not progs and not links:
                return
            if time.monotonic() > deadline:
                raise TestFailure(f"{what}: {timeout}s after memscoped died, uprobe_multi links "
                                  f"{links} and programs {progs} are still loaded")
            time.sleep(0.1)


def uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def kernel_uprobe_leaks(pid, since):
    """The kernel's warnings since that uptime that it leaked a uprobe of process pid."""
    out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
    leaks = []
    for line in out.splitlines():
        if f":{pid} failed to unregister, leaking uprobe" not in line:
            continue
        try:
            if float(line[1:line.index("]")]) >= since:
                leaks.append(line)
        except ValueError:
            leaks.append(line)
    return leaks


def read_lines(proc, timeout):
    """All of a target's remaining stdout as {first word: rest}, once it exits."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TestFailure(f"target {proc.pid} did not finish within {timeout}s")
    return dict((line.split(" ", 1) + [""])[:2] for line in out.splitlines() if line)


def executable_mappings(pid):
    """(start, end, file offset, path) of each file-backed executable mapping of pid."""
    maps = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) < 6 or "x" not in fields[1] or not fields[5].startswith("/"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            maps.append((start, end, int(fields[2], 16), fields[5].rstrip("\n")))
    return maps


def text_diffs(pid):
    """Where pid's executable code differs from the file it maps: [(path, file offset, byte in
    the process, byte in the file)]. A uprobe is an int3 (0xcc) written into the process's copy
    of the page, so a probe left behind shows here, whatever the load on the machine."""
    diffs = []
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end, offset, path in executable_mappings(pid):
            # map_files opens the very file mapped, even if it was replaced on disk since.
            with open(f"/proc/{pid}/map_files/{start:x}-{end:x}", "rb") as f:
                f.seek(offset)
                want = f.read(end - start)
            mem.seek(start)
            got = mem.read(len(want))
            if got == want:
                continue
            for i in range(0, len(want), 4096):
                if got[i:i + 4096] != want[i:i + 4096]:
                    diffs += [(path, offset + j, got[j], want[j])
                              for j in range(i, min(i + 4096, len(want))) if got[j] != want[j]]
    return diffs


def symbolize(path, offset, _cache={}):
    """'function+0xN' for a file offset in an ELF object, from its dynamic and static symbols."""
    if path not in _cache:
        loads, syms = [], []
        out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True).stdout
        for line in out.splitlines():
            f = line.split()
            if f and f[0] == "LOAD":
                loads.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
        for flag in ("-D", ""):
            out = subprocess.run(["nm", "--defined-only", *filter(None, [flag]), path],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                f = line.split()
                if len(f) == 3 and f[1] in "tTwWiI":
                    syms.append((int(f[0], 16), f[2].split("@")[0]))
        _cache[path] = (loads, sorted(syms))
    loads, syms = _cache[path]
    vaddr = next((offset - off + va for off, va, size in loads if off <= offset < off + size),
                 offset)
    best = max((s for s in syms if s[0] <= vaddr), default=(0, "?"))
    return f"{os.path.basename(path)}:{best[1]}+{vaddr - best[0]:#x}"


def describe(diffs, limit=6):
    return ", ".join(f"{symbolize(path, off)} is {got:#04x} (file {want:#04x})"
                     for path, off, got, want in diffs[:limit]) + \
        (f" and {len(diffs) - limit} more" if len(diffs) > limit else "")


class TraceFs:
    """The kernel's tracefs uprobe lists (uprobe_events, uprobe_profile), mounted for the test
    if nobody has. memscoped's BPF uprobes are not tracefs events: any entry added while it ran
    is a leftover of some other kind to look at."""

    def __init__(self):
        self.dir, self.mounted = "/sys/kernel/tracing", False
        if not os.path.exists(os.path.join(self.dir, "uprobe_events")):
            self.dir = tempfile.mkdtemp(prefix="memscoped-tracefs-")
            subprocess.run(["mount", "-t", "tracefs", "nodev", self.dir], check=True)
            self.mounted = True
        self.before = self.entries()

    def entries(self):
        lines = set()
        for name in ("uprobe_events", "uprobe_profile"):
            with open(os.path.join(self.dir, name)) as f:
                lines |= {f"{name}: {line.strip()}" for line in f if line.strip()}
        return lines

    def added(self):
        return sorted(self.entries() - self.before)

    def close(self):
        if self.mounted:
            subprocess.run(["umount", self.dir], check=False)
            os.rmdir(self.dir)


def session_members(sid):
    """Pids of the live processes in session sid (memscoped and every child it forked). A zombie
    has closed its files; init here may take seconds to reap one."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] not in "ZX":
            pids.append(int(pid))
    return pids


def wait_session_gone(sid, what, timeout=10):
    # A link-creating child finishes its bpf() call after the daemon died, then exits; until it
    # has, its probes are in place by design.
    deadline = time.monotonic() + timeout
    while session_members(sid):
        if time.monotonic() > deadline:
            raise TestFailure(f"{what}: processes {session_members(sid)} forked by the killed "
                              f"memscoped still run {timeout}s later")
        time.sleep(0.01)


def link_holders(sid, daemon):
    """The processes of session sid other than the daemon that hold a BPF link."""
    holders = []
    for pid in session_members(sid):
        if pid == daemon:
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf_link":
                    holders.append(pid)
                    break
            except OSError:
                pass
    return holders


def freeze_phase(ms):
    """Stops memscoped (it can fork nothing more) and says where it is: its phase, and whether
    a helper it forked holds a link or is making one (a link-creating child, or the watcher in
    the moment between its fork and closing what it inherited). Returns (phase, held)."""
    pid = ms.proc.pid
    os.kill(pid, signal.SIGSTOP)
    status_once(pid, lambda s: s.get("State", "").startswith(("T", "Z")))
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
        caps = int(status_once(pid, lambda s: True)["CapEff"], 16)
    except (OSError, KeyError):
        return "exited", False
    # Before the attach completes a child is creating a link (no fd yet while the kernel is
    # placing its probes); after it, the watcher holds none once it closed what it inherited.
    attached = "attached " in ms.stderr()
    held = bool(children) and not attached or bool(link_holders(pid, pid))
    if not attached:
        phase = "creating links (helper child)" if children else "planning and loading"
    elif caps:
        phase = "attach scan, before the capability drop"
    else:
        phase = ("tracing (watcher running)" if children else
                 "capabilities dropped, before the watcher")
    return phase, held


def start_checksum(steps, path=None):
    """Starts safety_checksum (or a copy at path); returns (process, its untraced malloc+free
    ns) once ready."""
    p = subprocess.Popen([path or target_path("safety_checksum"), str(steps)],
                         stdout=subprocess.PIPE, text=True)
    before = wait_line(p.stdout, "before_ns ", 30, p)
    wait_line(p.stdout, "ready", 10, p)
    return p, float(before.split()[1])


def finish_checksum(p):
    """Waits for the checksum, then lets the target time its malloc; returns its lines."""
    line = wait_line(p.stdout, "checksum ", 60, p)
    gap = wait_line(p.stdout, "max_gap_us ", 10, p)
    gaps = wait_line(p.stdout, "gaps_us", 10, p)
    os.kill(p.pid, signal.SIGUSR1)
    out = read_lines(p, 60)
    out["checksum"] = line.split(" ", 1)[1]
    out["max_gap_us"] = gap.split(" ", 1)[1]
    # (end, length) in seconds of CLOCK_MONOTONIC, the clock of time.monotonic().
    out["gaps"] = [tuple(float(x) / 1e6 for x in g.split(":")) for g in gaps.split()[1:]]
    return out


def longest_gap_within(gaps, t0, t1):
    """The target's longest stall (us) that overlaps [t0, t1], 0 if none of 1 ms or more."""
    return max((length * 1e6 for end, length in gaps if end >= t0 and end - length <= t1),
               default=0)


def run_checksum(steps):
    """An untraced run: (checksum, malloc ns, longest stall in us)."""
    p, _ = start_checksum(steps)
    os.kill(p.pid, signal.SIGUSR1)
    out = finish_checksum(p)
    check_eq(p.returncode, 0, f"untraced safety_checksum exit status ({out})")
    return out["checksum"], float(out["malloc_ns"]), float(out["max_gap_us"])


# A uprobe costs a trap of 0.7 us or more per call here (DESIGN.md), two or three per pair; the
# best of the target's 50 rounds stays within tens of ns of its untraced figure under any load.
TRAP_NS = 500
LIBC_PROBED = {"malloc", "free", "calloc", "realloc"}


def check_no_probe_left(pid, ms, what, tracefs, since):
    """Once memscoped and its children are gone: the target's code equals its files, and no
    tracefs or leaked kernel uprobe remains."""
    diffs = text_diffs(pid)
    check(not diffs, f"{what}: the target's code differs from its files after "
          f"memscoped died: {describe(diffs)}")
    check(not tracefs.added(), f"{what}: tracefs uprobes added: {tracefs.added()}")
    # Unregistering can fail in the kernel, which then keeps the uprobe.
    leaks = kernel_uprobe_leaks(ms.proc.pid, since)
    check(not leaks, f"{what}: the kernel leaked uprobes: {leaks[:2]}")


def test_sigkill_leaves_target_intact_and_no_probes():
    """SIGKILL at random moments of the attach and of tracing. The proof is deterministic:
    after memscoped and its children are gone, every byte of the target's code equals the file
    (no int3 left), no link, program or tracefs uprobe remains, and the target's heap is intact.
    SAFETY_RUNS sets the number of kills; SAFETY_LOG appends one JSON line per kill."""
    steps = 150000
    runs = int(os.environ.get("SAFETY_RUNS", 20))
    seed = int(os.environ.get("SAFETY_SEED", time.time()))
    log = open(os.environ["SAFETY_LOG"], "a") if os.environ.get("SAFETY_LOG") else None
    rng = random.Random(seed)
    base = [run_checksum(steps) for _ in range(2)]
    check_eq(base[1][0], base[0][0], "checksum of two untraced runs")
    checksum, base_ns = base[0][0], min(b[1] for b in base)
    bpf, tracefs = BpfBaseline(), TraceFs()
    since = uptime() - 1
    try:
        for i in range(runs):
            # Odd runs kill while events flow, after checking that the probes are visible in the
            # target's code (the check below can see an int3); even runs start the workload with
            # the attach (which then takes 20-450 ms) and kill 0-80 ms later: planning, link
            # creation in the helper child, the attach scan, the capability drop, the watcher.
            attached = bool(i % 2)
            delay = rng.uniform(0, 0.5) if attached else rng.uniform(0, 0.08)
            what = (f"run {i} (SAFETY_SEED={seed}, kill {delay * 1000:.0f} ms "
                    f"{'after attach' if attached else 'from start'}")
            target, before_ns = start_checksum(steps)
            try:
                ms = Memscoped([target.pid], wait_attached=attached, new_session=True)
                if attached:
                    seen = {symbolize(path, off).split(":")[1].split("+")[0]
                            for path, off, got, _ in text_diffs(target.pid) if got == 0xcc}
                    check(LIBC_PROBED <= seen, f"{what}: attached, but int3s are only in {seen}: "
                          "the code check cannot see probes")
                os.kill(target.pid, signal.SIGUSR1)
                time.sleep(delay)
                phase, helpers_held = freeze_phase(ms)
                what += f", {phase}{', a helper holding links' if helpers_held else ''})"
                t0 = time.monotonic()
                ms.kill()
                # The kernel removes the probes while the daemon exits, before it is reaped.
                reap_ms = (time.monotonic() - t0) * 1000
                # Probes still in place once the daemon is dead belong to a helper it forked.
                int3_after_kill = bool(text_diffs(target.pid))
                wait_session_gone(ms.proc.pid, what)
                helper_ms = (time.monotonic() - t0) * 1000
                # Unless a helper held links when it was killed, its probes die with it.
                check(not int3_after_kill or helpers_held,
                      f"{what}: int3s in the target after memscoped was reaped, for "
                      f"{helper_ms:.0f} ms: a helper it forked kept its links")
                bpf.check_released(what)
                t1 = time.monotonic()
                check_no_probe_left(target.pid, ms, what, tracefs, since)
                out = finish_checksum(target)
            finally:
                if target.poll() is None:
                    target.kill()
                    target.wait()
            check_eq(target.returncode, 0, f"{what}: target exit status ({out})")
            check_eq(out.get("checksum"), checksum, f"{what}: checksum")
            ns = float(out["malloc_ns"])
            if log:
                log.write(json.dumps({"seed": seed, "run": i, "delay_ms": delay * 1000,
                                      "attached": attached, "phase": phase,
                                      "int3_after_kill": int3_after_kill,
                                      "helper_ms": helper_ms, "reap_ms": reap_ms,
                                      "detach_stall_us": longest_gap_within(out["gaps"], t0, t1),
                                      "max_gap_us": float(out["max_gap_us"]),
                                      "untraced_max_gap_us": max(b[2] for b in base),
                                      "malloc_ns": ns, "before_ns": before_ns}) + "\n")
                log.flush()
            # A coarse second signal: no scheduling noise adds half a microsecond to the best
            # of 50 rounds, while any probe left in malloc or free adds more than that.
            check(ns < max(base_ns, before_ns) + TRAP_NS,
                  f"{what}: malloc+free {ns:.0f} ns, {before_ns:.0f} ns before the attach: "
                  f"a trap on every call, though the code check found no int3")
    finally:
        tracefs.close()
        if log:
            log.close()


def test_sigkill_while_attaching_dynamically_leaves_targets_intact():
    """The attaches and detaches that happen while memscoped runs: a target that exits while
    another stays traced, and the library watcher (the privileged helper) attaching to libpcl
    loaded by dlopen after the attach. memscoped is killed at random moments around the
    watcher's attach (it looks every second); the same proof as above on the remaining target,
    which then runs its coroutines to the end. SAFETY_DYNAMIC_RUNS sets the number of kills."""
    runs = int(os.environ.get("SAFETY_DYNAMIC_RUNS", 6))
    seed = int(os.environ.get("SAFETY_SEED", time.time()))
    rng = random.Random(seed)
    bpf = BpfBaseline()
    for i in range(runs):
        delay = rng.uniform(0, 1.5)
        what = f"run {i} (SAFETY_SEED={seed}, kill {delay * 1000:.0f} ms after the dlopen"
        host = subprocess.Popen([target_path("coro_dlopen"), target_path("libcoro_pcl_app.so"),
                                 "2"], stdout=subprocess.PIPE, text=True)
        churn = Target([target_path("safety_churn"), "100"])
        try:
            wait_line(host.stdout, "loader", 10, host)
            ms = Memscoped([host.pid, churn.pid], "--runtime", "auto", new_session=True)
            os.kill(churn.pid, signal.SIGUSR1)
            churn.proc.wait(10)
            os.kill(host.pid, signal.SIGUSR2)
            wait_line(host.stdout, "ready", 10, host)
            time.sleep(delay)
            what += (", after the watcher attached)" if "loaded after attach" in ms.stderr()
                     else ", before the watcher attached)")
            ms.kill()
            wait_session_gone(ms.proc.pid, what)
            bpf.check_released(what)
            diffs = text_diffs(host.pid)
            check(not diffs, f"{what}: the target's code differs from its files after "
                  f"memscoped died: {describe(diffs)}")
            os.kill(host.pid, signal.SIGUSR1)
            truth = json.loads(wait_line(host.stdout, "truth ", 30, host)[len("truth "):])
            wait_line(host.stdout, "done", 30, host)
            check(host.poll() is None, f"{what}: target died")
        finally:
            host.terminate()
            host.wait()
            churn.stop()
        check_eq(churn.proc.returncode, 0, f"{what}: exit status of the target that exited")
        check_eq(host.returncode, 0, f"{what}: target exit status")
        check(truth["threads"], f"{what}: no coroutine figures from the target")


def test_sigkill_during_tokio_attach_leaves_target_intact():
    """Kills during a tokio attach, which has more to do: naming hundreds of poll copies, links
    on the executable, the attach scan of the target's memory. One multi-thread tokio target
    with live sleeping tasks is attached and killed again and again; after each kill its code
    equals its files and nothing is left loaded. SAFETY_TOKIO_RUNS sets the number of kills."""
    runs = int(os.environ.get("SAFETY_TOKIO_RUNS", 6))
    seed = int(os.environ.get("SAFETY_SEED", time.time()))
    rng = random.Random(seed)
    bpf = BpfBaseline()
    target = TokioTarget("release", "all", "multi")
    try:
        target.go()
        for i in range(runs):
            delay = rng.uniform(0, 0.25)
            what = f"run {i} (SAFETY_SEED={seed}, kill {delay * 1000:.0f} ms from start"
            ms = Memscoped([target.pid], "--runtime", "tokio", wait_attached=False,
                           new_session=True)
            time.sleep(delay)
            what += f", {freeze_phase(ms)[0]})"
            ms.kill()
            wait_session_gone(ms.proc.pid, what)
            bpf.check_released(what)
            diffs = text_diffs(target.pid)
            check(not diffs, f"{what}: the target's code differs from its files after "
                  f"memscoped died: {describe(diffs)}")
            check(target.proc.poll() is None, f"{what}: target died")
        # And a last attach that is not killed sees every sleeper the earlier ones left alone.
        ms = Memscoped([target.pid], "--runtime", "tokio")
        report, _, err = ms.stop()
        check(process_of(report, target.pid)["tasks_summary"]["live"] > 0,
              f"no live tokio task found after the kills: {err}")
    finally:
        target.stop()


def test_sigint_during_event_flood_exits_within_a_second():
    target = Target([target_path("safety_churn")])
    ms = None
    try:
        ms = Memscoped([target.pid])
        time.sleep(1)
        t0 = time.monotonic()
        ms.proc.send_signal(signal.SIGINT)
        try:
            ms.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise TestFailure("memscoped still runs 5 s after SIGINT under an event flood")
        elapsed = time.monotonic() - t0
        report, _, _ = ms.wait()
        check(target.proc.poll() is None, "target died")
    finally:
        if ms:
            ms.kill()
        status = target.stop()
    check(elapsed < 1.0, f"memscoped took {elapsed:.2f} s to exit after SIGINT")
    check_eq(status, 0, "target exit status")
    check(report["events"]["received"] > 10000,
          f"only {report['events']['received']} events: no flood")
    check_eq(process_of(report, target.pid)["exited"], False, "exited")


def test_children_after_fork_are_not_counted():
    target = Target([target_path("safety_fork"), "10"])
    try:
        ms = Memscoped([target.pid])
        truth = target.go()
        report, _, _ = ms.stop()
    finally:
        target.stop()
    check_eq(truth["children_ok"], truth["children"], "children that exited 0")
    proc = process_of(report, target.pid)
    # Children keep a 777777-byte block, churn 1000 pairs and free the parent's blocks.
    check(proc["heap"]["allocated_bytes_total"] < 777777,
          f"parent's allocated_bytes_total {proc['heap']['allocated_bytes_total']} "
          f"includes a child's 777777-byte block")
    for f in HEAP_FIELDS:
        check_eq(proc["heap"][f], truth[f], f"process {f}")
        check_eq(thread_of(proc, truth["tid"])[f], truth[f], f"main thread {f}")
    check_eq(proc["heap"]["frees_total"], 0, "frees_total (children freed their copies)")
    check_eq([t["tid"] for t in proc["threads"]], [truth["tid"]], "threads seen")
    check_eq(proc["complete"], True, "complete")


def test_exec_ends_the_targets_report_at_the_exec():
    # The new image is another program: the old one's blocks, tasks and probes mean nothing
    # there. memscoped ends that target's report at the exec, and, with no other target, ends.
    target = Target([target_path("safety_exec"), "self"])
    ms = None
    try:
        ms = Memscoped([target.pid])
        os.kill(target.pid, signal.SIGUSR1)
        wait_line(target.proc.stdout, "exec", 10, target.proc)
        check_eq(wait_line(target.proc.stdout, "after ", 10, target.proc),
                 f"after {target.pid}", "the new image's pid")
        report, text, err = ms.wait(timeout=5)
        wait_line(target.proc.stdout, "done", 10, target.proc)
        check(target.proc.poll() is None, "target died")
    finally:
        if ms:
            ms.kill()
        status = target.stop()
    check_eq(status, 0, "target exit status")
    check(f"pid {target.pid}: exec'd a new program" in err, f"exec not said: {err!r}")
    check("[exec'd" in text, "text report does not mark the exec")
    proc = process_of(report, target.pid)
    check_eq(proc["exec"], True, "exec")
    check_eq(proc["exited"], False, "exited")
    # Exactly the old image's figures: three 3333-byte blocks kept and 100 pairs churned;
    # none of the new image's five 2222-byte blocks or 1000 pairs.
    check_eq(proc["heap"]["live_bytes"], 3 * 3333, "live bytes at the exec")
    check_eq(proc["heap"]["live_allocations"], 3, "live allocations at the exec")
    check_eq(proc["heap"]["allocations_total"], 103, "allocations before the exec")


def test_exec_of_another_program_that_exits_ends_the_run():
    target = Target([target_path("safety_exec"), "true"])
    ms = Memscoped([target.pid])
    os.kill(target.pid, signal.SIGUSR1)
    try:
        target.proc.wait(10)
    finally:
        target.stop()
    check_eq(target.proc.returncode, 0, "exit status of /bin/true")
    t0 = time.monotonic()
    report, text, _ = ms.wait(timeout=5)
    elapsed = time.monotonic() - t0
    check(elapsed < 1.0, f"memscoped took {elapsed:.2f} s to notice the exit")
    proc = process_of(report, target.pid)
    check_eq(proc["exited"], True, "exited")
    check(proc["heap"]["allocations_total"] >= 103,
          f"allocations_total {proc['heap']['allocations_total']}: the old image was not seen")


def threads_run(*args):
    target = Target([target_path("safety_threads"), "2000"])
    try:
        ms = Memscoped([target.pid], *args)
        truth = target.go(timeout=60)
        report, text, _ = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    # The main thread allocates first, so it is always tracked, even with --max-threads.
    main = thread_of(proc, target.pid)
    for f in HEAP_FIELDS:
        check_eq(proc["heap"][f] - main[f], truth[f], f"process {f} minus the main thread's")
    check(main["live_allocations"] >= 1, "main thread's 4321-byte block")
    return proc, truth, text


def test_two_thousand_threads_are_counted_exactly():
    proc, truth, _ = threads_run()
    workers = [t for t in proc["threads"] if t["tid"] != proc["pid"]]
    check_eq(len(workers), truth["threads"], "threads in the report")
    check_eq(sum(t["live_allocations"] for t in workers), truth["live_allocations"],
             "kept blocks of the threads")
    check_eq(sorted({(t["live_bytes"], t["allocations_total"]) for t in workers}),
             [(64, 2)], "each thread's live bytes and allocations")
    check_eq(proc["limits"]["thread_events_dropped"], 0, "thread_events_dropped")
    check_eq(proc["complete"], True, "complete")


def test_max_threads_drops_thread_figures_not_process_figures():
    proc, truth, text = threads_run("--max-threads", "100")
    check_eq(len(proc["threads"]), 100, "threads in the report")
    check(proc["limits"]["thread_events_dropped"] > 0, "thread_events_dropped is 0")
    check_eq(proc["complete"], False, "complete")
    check("incomplete" in text, "text report says incomplete")


def test_dlopen_dlclose_loop_keeps_figures_exact():
    target = Target([target_path("safety_dlopen"), "100"])
    try:
        ms = Memscoped([target.pid])
        truth = target.go(timeout=60)
        report, _, _ = ms.stop()
    finally:
        status = target.stop()
    check_eq(status, 0, "target exit status")
    check_eq(truth["failures"], 0, "dlopen/dlsym/dlclose failures")
    proc = process_of(report, target.pid)
    allocator = thread_of(proc, truth["tid"])
    for f in HEAP_FIELDS:
        check_eq(allocator[f], truth[f], f"allocating thread {f}")
    # Everything else is dlopen's own bookkeeping on the other threads.
    others = [t for t in proc["threads"] if t["tid"] != truth["tid"]]
    for f in HEAP_FIELDS:
        check_eq(proc["heap"][f] - sum(t[f] for t in others), truth[f],
                 f"process {f} minus the dlopen thread's")
    # dlopen allocates on every load: the probes stayed in libc through 100 unloads of libm.
    dl = thread_of(proc, truth["dl_tid"])
    check(dl["allocations_total"] >= truth["loops"],
          f"dlopen thread: {dl['allocations_total']} allocations in {truth['loops']} loads")
    check_eq(proc["complete"], True, "complete")


def test_target_exiting_mid_allocation_ends_the_run():
    target = Target([target_path("safety_churn"), "300"])
    ms = None
    try:
        ms = Memscoped([target.pid])
        os.kill(target.pid, signal.SIGUSR1)
        wait_line(target.proc.stdout, "exiting", 10, target.proc)
        target.proc.wait(5)
        t0 = time.monotonic()
        try:
            ms.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise TestFailure("memscoped still runs 5 s after its only target exited")
        elapsed = time.monotonic() - t0
        report, text, _ = ms.wait()
    finally:
        if ms:
            ms.kill()
        target.stop()
    check_eq(target.proc.returncode, 0, "target exit status")
    check(elapsed < 1.0, f"memscoped took {elapsed:.2f} s to notice the exit")
    proc = process_of(report, target.pid)
    check_eq(proc["exited"], True, "exited")
    check("[exited]" in text, "text report marks the exit")
    check(proc["heap"]["allocations_total"] > 1000, "no allocations seen")
    for f in HEAP_FIELDS:
        check(0 <= proc["heap"][f] < 1 << 40, f"process {f} is {proc['heap'][f]}")


def test_two_instances_on_one_target():
    target = Target([target_path("alloc_pattern"), "2"])
    first = second = None
    try:
        first = Memscoped([target.pid])
        second = Memscoped([target.pid], wait_attached=False)
        deadline = time.monotonic() + 20
        while "attached " not in second.stderr() and second.proc.poll() is None:
            check(time.monotonic() < deadline, "second memscoped neither attached nor exited")
            time.sleep(0.02)
        if second.proc.poll() is not None:
            # Refusing is allowed: one clear line and a failure status, and the first still works.
            err = second.stderr()
            check(second.proc.returncode != 0, "second memscoped exited 0 without attaching")
            check(err.startswith("memscoped: ") and err.count("\n") == 1,
                  f"second memscoped's refusal is not one line: {err!r}")
            second = None
        truth = target.go()
        reports = [first.stop()[0]] + ([second.stop()[0]] if second else [])
    finally:
        for m in (first, second):
            if m:
                m.kill()
        target.stop()
    for n, report in enumerate(reports):
        proc = process_of(report, target.pid)
        for t in truth["threads"]:
            got = thread_of(proc, t["tid"])
            for f in HEAP_FIELDS:
                check_eq(got[f], t[f], f"instance {n + 1}: tid {t['tid']} {f}")
        for f in HEAP_FIELDS + ("frees_total",):
            check_eq(proc["heap"][f], sum(t[f] for t in truth["threads"]),
                     f"instance {n + 1}: process {f}")
        check_eq(proc["complete"], True, f"instance {n + 1}: complete")


def test_max_allocations_bound_is_reported():
    target = Target([target_path("alloc_pattern"), "2"])
    try:
        ms = Memscoped([target.pid], "--max-allocations", "10")
        truth = target.go()
        report, text, _ = ms.stop()
    finally:
        target.stop()
    proc = process_of(report, target.pid)
    check(proc["limits"]["allocations_dropped"] > 0, "allocations_dropped is 0")
    check_eq(proc["complete"], False, "complete")
    check(proc["heap"]["live_allocations"] <= 10,
          f"{proc['heap']['live_allocations']} live allocations over a bound of 10")
    # Totals count every allocation, tracked or not.
    check_eq(proc["heap"]["allocations_total"], sum(t["allocations_total"]
                                                    for t in truth["threads"]),
             "allocations_total")
    check("incomplete" in text, f"text report does not say incomplete: {text!r}")


def test_sigkill_with_a_selector_leaves_the_selected_target_intact():
    """Daemon mode: the target is chosen by --comm and attached by the helper, which holds its
    links. SIGKILL of the daemon at random moments (the helper dies with it): every byte of the
    target's code equals the file afterwards, no link, program or uprobe remains, and the
    target's heap checksum is intact."""
    steps = 150000
    runs = max(2, int(os.environ.get("SAFETY_RUNS", 20)) // 2)
    seed = int(os.environ.get("SAFETY_SEED", time.time()))
    rng = random.Random(seed)
    d = tempfile.TemporaryDirectory(prefix="memscoped-safety-")
    # A name of its own: the selector must choose no other process on the machine.
    comm = f"msk12s{os.getpid() % 1000000}"
    exe = os.path.join(d.name, comm)
    shutil.copy(target_path("safety_checksum"), exe)
    checksum = run_checksum(steps)[0]
    bpf, tracefs = BpfBaseline(), TraceFs()
    since = uptime() - 1
    for i in range(runs):
        attached = bool(i % 2)
        delay = rng.uniform(0, 0.3) if attached else rng.uniform(0, 0.08)
        what = (f"run {i} (SAFETY_SEED={seed}, kill {delay * 1000:.0f} ms "
                f"{'after attach' if attached else 'from start'})")
        target, _ = start_checksum(steps, exe)
        try:
            ms = Memscoped([], "--comm", f"^{comm}$", wait_attached=False, new_session=True)
            if attached:
                deadline = time.monotonic() + 20
                while f"probes to pid {target.pid} " not in ms.stderr():
                    check(time.monotonic() < deadline, f"{what}: not attached: {ms.stderr()}")
                    time.sleep(0.01)
                seen = {symbolize(path, off).split(":")[1].split("+")[0]
                        for path, off, got, _ in text_diffs(target.pid) if got == 0xcc}
                check(LIBC_PROBED <= seen, f"{what}: attached, but int3s are only in {seen}")
            os.kill(target.pid, signal.SIGUSR1)
            time.sleep(delay)
            ms.kill()
            wait_session_gone(ms.proc.pid, what)
            bpf.check_released(what)
            check_no_probe_left(target.pid, ms, what, tracefs, since)
            out = finish_checksum(target)
        finally:
            if target.poll() is None:
                target.kill()
                target.wait()
        check_eq(target.returncode, 0, f"{what}: target exit status ({out})")
        check_eq(out.get("checksum"), checksum, f"{what}: checksum")
