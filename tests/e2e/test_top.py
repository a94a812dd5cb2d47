"""`memscoped top` driven in tmux (send-keys, capture-pane) against a live tokio target.

The target's own records say which tasks never complete (the suspects), their future types,
cell sizes and live bytes; the screen must show exactly those, first."""
import os
import re
import shlex
import signal
import subprocess
import time

from harness import MEMSCOPED, Memscoped, TestFailure, check, check_eq
from test_metrics import free_port
from test_tokio import TokioTarget

CLOSURE = re.compile(r"::(\{\{closure\}\}|\{closure#0\}|\{async_fn_env#0\})$")
COLUMNS = ("mark", "id", "kind", "state", "polls", "busy", "idle", "future", "live", "type")


class Tmux:
    """One tmux session on a server of its own, running cmd; the shell prints EXIT=status."""

    def __init__(self, cmd, width=200, height=60, env=""):
        self.sock = f"memscoped-e2e-{os.getpid()}-{time.monotonic_ns()}"
        shell = f"{env}{cmd}; echo EXIT=$?; stty -a; sleep 600"
        subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", "new-session", "-d", "-s",
                        "top", "-x", str(width), "-y", str(height), shell], check=True)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True,
                              text=True).stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "top")

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "top", *keys)

    def wait(self, pred, what, timeout=30):
        """Polls the screen until pred(screen) is true; returns the screen."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if pred(s):
                return s
            if time.monotonic() >= deadline:
                raise TestFailure(f"{what} within {timeout}s; screen:\n{s}")
            time.sleep(0.1)

    def exit_status(self, timeout=30):
        # stty -a, run after top, starts with the line speed: the terminal's state follows.
        s = self.wait(lambda s: re.search(r"EXIT=\d+", s) and "speed " in s and "min =" in s,
                      "top exits", timeout)
        return int(re.search(r"EXIT=(\d+)", s).group(1)), s

    def top_pid(self):
        """The pid of top: the child of the pane's shell."""
        shell = self.tmux("display", "-p", "-t", "top", "#{pane_pid}").strip()
        pids = subprocess.run(["pgrep", "-P", shell], capture_output=True,
                              text=True).stdout.split()
        check_eq(len(pids), 1, f"children of the pane's shell {shell}")
        return int(pids[0])

    def close(self):
        self.tmux("kill-server")


def rows(screen):
    """The task table's rows as dicts (from line 5 to the footer)."""
    out = []
    for line in screen.splitlines()[4:]:
        if line.startswith(" q quit") or not line.strip():
            break
        f = line[2:].split(None, 8)
        check_eq(len(f), 9, f"fields of row {line!r}")
        out.append(dict(zip(COLUMNS, [line[0]] + f)))
    return out


def type_cell(future):
    return CLOSURE.sub("", future)


def sort_line(screen):
    return screen.splitlines()[2]


def leak_run():
    """The v0 tokio target (future types named) run through every scenario, memscoped
    attached before, listening on a free port."""
    target = TokioTarget("v0", "all")
    port = free_port()
    ms = Memscoped([target.pid], "--listen", f"127.0.0.1:{port}", "--stuck-after", "1",
                   "--runtime", "tokio")
    records, _, _ = target.go()
    return target, ms, port, records


def wait_suspects(tm, n, shown=None):
    """Waits for the header to count n suspects and the table to show them (or shown)."""
    shown = n if shown is None else shown
    return tm.wait(lambda s: len([r for r in rows(s) if r["mark"] == "!"]) == shown
                   and f"suspects {n} " in s, f"{n} suspects on the screen")


def test_top_shows_suspects_first_sorts_filters_and_quits():
    target, ms, port, records = leak_run()
    tm = None
    try:
        suspects = {str(r["id"]): r for r in records if not r["completes"]}
        check(len(suspects) >= 10, f"{len(suspects)} never-completing tasks")
        tm = Tmux(f"{MEMSCOPED} top --connect 127.0.0.1:{port}")
        screen = wait_suspects(tm, len(suspects))
        check(f"pid {target.pid} " in screen.splitlines()[0], f"header: {screen[:200]!r}")
        table = rows(screen)
        # Suspects first, marked, and exactly the tasks that never complete.
        marks = [r["mark"] for r in table]
        check_eq(marks[:len(suspects)], ["!"] * len(suspects), "suspects first")
        check("!" not in marks[len(suspects):], "no suspect after the first non-suspect")
        first = table[:len(suspects)]
        check_eq({r["id"] for r in first}, set(suspects), "suspect ids vs the target's records")
        for r in first:
            rec = suspects[r["id"]]
            check_eq(r["type"], type_cell(rec["future"]), f"type of task {r['id']}")
            check_eq(int(r["live"]), rec["live_bytes"], f"live bytes of task {r['id']}")
            check_eq(int(r["future"]), rec["cell_size"], f"future size of task {r['id']}")
            check_eq(r["state"], "idle", f"state of task {r['id']}")
        check_eq([int(r["live"]) for r in first],
                 sorted((int(r["live"]) for r in first), reverse=True), "live bytes, desc")
        check("sort: live_bytes desc" in sort_line(screen), sort_line(screen))

        # '>' moves the sort to the next column (type), ascending.
        tm.keys(">")
        screen = tm.wait(lambda s: "sort: type asc" in sort_line(s), "sort by type")
        screen = tm.wait(lambda s: len(rows(s)) >= len(suspects), "rows sorted by type")
        first = rows(screen)[:len(suspects)]
        check_eq([r["type"] for r in first], sorted(r["type"] for r in first),
                 "suspects sorted by type")
        check_eq({r["id"] for r in first}, set(suspects), "still the suspects first")
        # Back past live bytes to the future size, largest first; 'r' reverses it.
        tm.keys("<", "<")
        screen = tm.wait(lambda s: "sort: future_size_bytes desc" in sort_line(s),
                         "sort by future size")
        sizes = [int(r["future"]) for r in rows(screen)[:len(suspects)]]
        check_eq(sizes, sorted(sizes, reverse=True), "suspects by future size, desc")
        tm.keys("r")
        screen = tm.wait(lambda s: "sort: future_size_bytes asc" in sort_line(s), "reverse")
        sizes = [int(r["future"]) for r in rows(screen)[:len(suspects)]]
        check_eq(sizes, sorted(sizes), "suspects by future size, asc")

        # '/' filters by type text: exactly the tasks whose future type has it.
        tm.keys("/", "child_sleep", "Enter")
        want = {str(r["id"]) for r in records if "t_child_sleep" in r["future"]}
        check(want, "no t_child_sleep tasks in the scenario")
        screen = tm.wait(lambda s: "filter: child_sleep" in s and
                         {r["id"] for r in rows(s)} == want, "rows filtered by type")
        check(all("t_child_sleep" in r["type"] for r in rows(screen)), "filtered types")

        # Enter: one task's details, its parent among them.
        tm.keys("Enter")
        screen = tm.wait(lambda s: "task details" in s, "the details view")
        shown = re.search(r"id +tokio:(\d+)", screen)
        check(shown and shown.group(1) in want, f"details of a filtered task:\n{screen}")
        rec = next(r for r in records if str(r["id"]) == shown.group(1))
        check(f"parent      tokio:{rec['parent_id']}" in screen, f"parent:\n{screen}")
        check(f"future      {rec['cell_size']} bytes" in screen, f"future size:\n{screen}")
        tm.keys("Escape")
        tm.wait(lambda s: "task details" not in s and "filter: child_sleep" in s, "back")

        # The task type view, filtered the same way.
        tm.keys("t")
        screen = tm.wait(lambda s: " task types " in s.splitlines()[2], "the type view")
        lines = [l for l in screen.splitlines()[4:] if "t_child_sleep" in l]
        check_eq(len(lines), 1, f"one t_child_sleep type line:\n{screen}")
        live, spawned, susp = (int(x) for x in lines[0][1:].split()[:3])
        check_eq(spawned, len(want), "t_child_sleep spawned")
        check_eq(susp, len([i for i in want if i in suspects]), "t_child_sleep suspects")
        tm.keys("q")
        status, screen = tm.exit_status()
        check_eq(status, 0, "exit status after q")
        check(" icanon" in screen and " echo" in screen, f"terminal not restored:\n{screen}")
    finally:
        if tm:
            tm.close()
        ms.kill()
        target.stop()


def test_top_fits_80x24_redraws_on_resize_and_restores_the_terminal_on_signals():
    target, ms, port, records = leak_run()
    sessions = []
    try:
        nsusp = len([r for r in records if not r["completes"]])
        tm = Tmux(f"{MEMSCOPED} top --connect {port}", 80, 24)
        sessions.append(tm)
        check(nsusp > 19, f"{nsusp} suspects: not enough to fill 80x24")
        screen = wait_suspects(tm, nsusp, 19)
        lines = screen.splitlines()
        check_eq(len(rows(screen)), 24 - 5, "table rows in 24 lines")
        check(lines[23].startswith(" q quit"), f"footer on the last line: {lines[23]!r}")
        check(all(len(l) <= 80 for l in lines), "lines wider than 80")
        tm.tmux("resize-window", "-t", "top", "-x", "120", "-y", "40")
        tm.wait(lambda s: len(rows(s)) == 35 and s.splitlines()[39].startswith(" q quit"),
                "35 table rows after resizing to 120x40")
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            if sig != signal.SIGTERM:
                tm = Tmux(f"{MEMSCOPED} top --connect {port}", 80, 24)
                sessions.append(tm)
            tm.wait(lambda s: "suspects" in s, "top drawn")
            os.kill(tm.top_pid(), sig)
            status, screen = tm.exit_status()
            check_eq(status, 0 if sig == signal.SIGINT else 128 + sig,
                     f"exit status on {sig.name}")
            check(" icanon" in screen and " echo" in screen and "-icanon" not in screen,
                  f"terminal not restored after {sig.name}:\n{screen}")
            tm.close()
    finally:
        for tm in sessions:
            tm.close()
        ms.kill()
        target.stop()


def test_top_says_so_when_the_daemon_goes_away():
    target, ms, port, records = leak_run()
    tm = None
    try:
        tm = Tmux(f"{MEMSCOPED} top --connect {port}")
        tm.wait(lambda s: "suspects" in s, "top drawn")
        ms.kill()
        status, screen = tm.exit_status()
        check_eq(status, 1, "exit status when the daemon is gone")
        check(f"memscoped top: lost the daemon at http://127.0.0.1:{port}: " in screen,
              f"message:\n{screen}")
    finally:
        if tm:
            tm.close()
        ms.kill()
        target.stop()


def test_top_attaches_by_itself_and_stops_its_daemon():
    target = TokioTarget("v0", "leak")
    tm = None
    try:
        records, _, _ = target.go()
        nsusp = len([r for r in records if not r["completes"]])
        tm = Tmux(f"{MEMSCOPED} top -p {target.pid} --stuck-after 1 --runtime tokio")
        screen = wait_suspects(tm, nsusp)
        check(f"pid {target.pid} " in screen, f"header:\n{screen}")
        daemons = subprocess.run(["pgrep", "-f", f"^memscoped -p {target.pid} .*--listen 127.0.0.1:0$"],
                                 capture_output=True, text=True).stdout.split()
        check_eq(len(daemons), 1, "the daemon top started")
        tm.keys("q")
        status, _ = tm.exit_status()
        check_eq(status, 0, "exit status after q")
        deadline = time.monotonic() + 20
        while os.path.exists(f"/proc/{daemons[0]}") and time.monotonic() < deadline:
            time.sleep(0.1)
        check(not os.path.exists(f"/proc/{daemons[0]}"), "the daemon outlived top")
    finally:
        if tm:
            tm.close()
        target.stop()


def test_top_attached_by_itself_says_when_its_target_exits():
    target = TokioTarget("v0", "leak")
    tm = None
    try:
        records, _, _ = target.go()
        nsusp = len([r for r in records if not r["completes"]])
        tm = Tmux(f"{MEMSCOPED} top -p {target.pid} --stuck-after 1 --runtime tokio")
        wait_suspects(tm, nsusp)
        target.stop()
        status, screen = tm.exit_status()
        check_eq(status, 1, "exit status once the target exited")
        check("memscoped top: the daemon stopped: every target exited" in screen,
              f"message:\n{screen}")
    finally:
        if tm:
            tm.close()
        target.stop()


def test_top_bad_terminal_address_and_daemon_fail_clearly():
    port = free_port()
    # No daemon there.
    p = subprocess.run(["script", "-qec", f"{MEMSCOPED} top --connect {port}", "/dev/null"],
                       capture_output=True, text=True, timeout=30)
    check_eq(p.returncode, 1, f"exit status with no daemon ({p.stdout!r})")
    check(f"memscoped top: cannot read http://127.0.0.1:{port}/api/v1/processes: " in p.stdout
          and "(is memscoped running with --listen?)" in p.stdout, f"message: {p.stdout!r}")
    # Not a terminal.
    p = subprocess.run([MEMSCOPED, "top", "--connect", str(port)], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, timeout=30)
    check_eq((p.returncode, p.stderr),
             (1, "memscoped top: needs a terminal: standard input and output must be a tty\n"),
             "not a terminal")
    # A bad address, and --connect with daemon options.
    for args, msg in ((["--connect", "localhost:80"],
                       "memscoped top: invalid --connect 'localhost:80': expected [ADDR:]PORT\n"),
                      (["--connect", str(port), "-p", "1"],
                       "memscoped top: --connect watches a running daemon; '-p' is for "
                       "attaching (top -p PID ...)\n"),
                      (["-p", "1", "--listen", "9999"],
                       "memscoped top: --listen is chosen by top -p; to watch a daemon that "
                       "listens, use --connect\n")):
        p = subprocess.run([MEMSCOPED, "top", *args], capture_output=True, text=True,
                           timeout=30)
        check_eq((p.returncode, p.stderr), (2, msg), f"top {shlex.join(args)}")
    # A terminal type ncurses does not know, once a daemon answers.
    target, ms, port, _ = leak_run()
    tm = None
    try:
        tm = Tmux(f"{MEMSCOPED} top --connect {port}", env="TERM=no-such-terminal ")
        status, screen = tm.exit_status()
        check_eq(status, 1, "exit status with an unknown TERM")
        check("memscoped top: cannot drive the terminal (TERM=no-such-terminal): set TERM to a "
              "terminal type ncurses knows" in screen.replace("\n", ""), f"message:\n{screen}")
        # A target that does not exist: the daemon's own message.
        tm.close()
        tm = Tmux(f"{MEMSCOPED} top -p 999999999")
        status, screen = tm.exit_status()
        check_eq(status, 1, "exit status of top -p with a bad pid")
        check("memscoped top: the daemon did not start: " in screen, f"message:\n{screen}")
    finally:
        if tm:
            tm.close()
        ms.kill()
        target.stop()
