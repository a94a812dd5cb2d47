"""The HTML report (--html) of a real tokio run, opened in headless Chromium.

The page must render without a console message, make no network request, show exactly the
figures of the JSON report written at the same moment, sort its task types table when a
column header is clicked, and produce a 1280x800 screenshot.
Each detector is first shown to catch a page that does log and does fetch. Chromium is a
test dependency (scripts/install-deps.sh): without it these tests fail, they never skip."""
import html.parser
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time

from harness import (ROOT, Memscoped, Target, check, check_eq, process_of, run_memscoped,
                     target_path)
from test_tokio import TokioTarget

DATA_OPEN = '<script type="application/json" id="memscoped-data">'
# Chromium itself (not the page) may try update, time and account servers: requests whose
# isolation key is the page's file:// origin, or with any initiator, are the page's.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-default-apps", "--disable-extensions",
                  "--no-pings", "--disable-domain-reliability", "--hide-scrollbars",
                  "--host-resolver-rules=MAP * ~NOTFOUND"]
SCREENSHOT = os.path.join(ROOT, "docs", "html-report.png")


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    check(path, "chromium is not installed (apt-get install chromium; scripts/install-deps.sh)")
    return path


def browse(page, workdir, *extra):
    """Opens page (a file) in headless Chromium; returns (stdout, console lines, page requests)."""
    netlog = os.path.join(workdir, "netlog.json")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    p = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                        "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}",
                        "--net-log-capture-mode=Everything", *extra, "file://" + page],
                       capture_output=True, text=True, timeout=120)
    check_eq(p.returncode, 0, f"chromium exit status (stderr: {p.stderr[-2000:]!r})")
    console = [line for line in p.stderr.splitlines() if ":CONSOLE" in line]
    with open(netlog) as f:
        log = json.load(f)
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests = []
    for e in log["events"]:
        params = e.get("params") or {}
        if e["type"] != start or "url" not in params:
            continue
        page_made = ("file://" in params.get("network_isolation_key", "") or
                     params.get("initiator", "not an origin") != "not an origin")
        if page_made and not params["url"].startswith(("file:", "data:")):
            requests.append(params["url"])
    return p.stdout, console, requests


def test_html_detectors_catch_a_page_that_logs_and_fetches():
    with tempfile.TemporaryDirectory(prefix="memscoped-html-") as d:
        page = os.path.join(d, "control.html")
        with open(page, "w") as f:
            f.write('<html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("control"); fetch("http://127.0.0.1:9/y");'
                    '</script></body></html>')
        _, console, requests = browse(page, d, "--dump-dom")
    check(any('"control"' in line for line in console), f"console not seen: {console!r}")
    check_eq(sorted(requests), ["http://127.0.0.1:9/x.png", "http://127.0.0.1:9/y"],
             "page requests seen")


class Dom(html.parser.HTMLParser):
    """Elements with data-* attributes, with the nearest enclosing row, table and section."""

    def __init__(self):
        super().__init__()
        self.stack = []
        self.figures = []  # (section pid, table, row attrs, field, value)
        self.rows = []     # (section pid, table, row attrs)
        self.charts = []   # (section pid, attrs)
        self.paths = []    # (section pid, attrs)
        self.body = {}

    def ctx(self, key):
        for tag, attrs in reversed(self.stack):
            if key in attrs:
                return attrs[key]
        return None

    def row(self):
        for tag, attrs in reversed(self.stack):
            if tag == "tr":
                return attrs
        return None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag not in ("meta", "link", "br", "img", "input", "line", "rect", "path"):
            self.stack.append((tag, a))
        pid = self.ctx("data-pid")
        if tag == "tr" and self.ctx("data-table") and any(t == "tbody" for t, _ in self.stack):
            self.rows.append((pid, self.ctx("data-table"), a))
        if "data-field" in a:
            self.figures.append((pid, self.ctx("data-table"), self.row(), a["data-field"],
                                 a["data-value"], a))
        if "data-points" in a:
            self.charts.append((pid, a))
        if tag == "path" and "data-series" in a:
            self.paths.append((pid, a))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return


def num(v):
    return float(v) if v not in ("", None) else None


def same(dom_value, json_value, what):
    """A data-value against the JSON report's value, exactly (numbers as numbers)."""
    if isinstance(json_value, bool):
        check_eq(dom_value, "true" if json_value else "false", what)
    elif isinstance(json_value, (int, float)):
        check_eq(num(dom_value), float(json_value), what)
    elif json_value is None:
        check_eq(dom_value, "", what)
    else:
        check_eq(dom_value, json_value, what)


def histogram(tasks, type_name):
    """The future size histogram of a type from the JSON report's tasks: 'bound:count ...'."""
    counts = {}
    for t in tasks:
        if t["type"] == type_name:
            b = 1
            while b < t["future_size_bytes"]:
                b *= 2
            counts[b] = counts.get(b, 0) + 1
    return " ".join(f"{b}:{counts[b]}" for b in sorted(counts))




def compare(dom, report):
    """Every figure the page shows against the JSON report of the same moment."""
    header = {f: v for pid, table, row, f, v, _ in dom.figures if pid is None}
    same(header["events.received"], report["events"]["received"], "events received")
    same(header["events.lost"], report["events"]["lost"], "events lost")
    same(header["duration_seconds"], report["duration_seconds"], "duration")
    same(header["complete"], all(p["complete"] for p in report["processes"]), "complete")
    same(header["targets"], ", ".join(f"{p['comm']} ({p['pid']})" for p in report["processes"]),
         "targets")
    allocators = []
    for p in report["processes"]:
        a = p.get("allocator")
        if a and f"{a['family']} in {a['object']}" not in allocators:
            allocators.append(f"{a['family']} in {a['object']}")
    same(header["allocator"], ", ".join(allocators) or "none", "allocator")
    check(allocators, "no allocator in the JSON report")
    same(header["runtimes"], ", ".join(sorted({r for p in report["processes"]
                                                for r in p["runtimes"]})) or "none", "runtimes")
    compared = 0
    for proc in report["processes"]:
        pid = str(proc["pid"])
        figs = [(table, row, f, v) for p, table, row, f, v, _ in dom.figures if p == pid]
        cards = {f: v for table, row, f, v in figs if table is None}
        for key, value in cards.items():
            group, field = key.split(".")
            same(value, proc[group][field], f"card {key}")
            compared += 1
        check_eq(len(cards), 8, "summary cards")

        # Task types: one row per type (fewer than the page's bound of 100), every figure.
        types = {t["name"]: t for t in proc["task_types"]}
        rows = [r for p, table, r in dom.rows if p == pid and table == "types"]
        check_eq(sorted(r["data-type"] for r in rows), sorted(types), "task type rows")
        for table, row, f, v in figs:
            if table != "types":
                continue
            ty = types[row["data-type"]]
            same(v, ty[f], f"type {ty['name']} {f}")
            compared += 1
        hists = {row["data-type"]: a["data-hist"] for p, table, row, f, v, a in dom.figures
                 if p == pid and table == "types" and f == "future_size_bytes"}
        for name in types:
            check_eq(hists[name], histogram(proc["tasks"], name), f"histogram of {name}")

        # Suspects: every suspect task (fewer than 100), in the report's figures.
        tasks = {t["id"]: t for t in proc["tasks"]}
        suspects = sorted(t["id"] for t in proc["tasks"] if t["suspect"])
        check(suspects, "the scenario leaves suspects")
        rows = [r for p, table, r in dom.rows if p == pid and table == "suspects"]
        check_eq(sorted(r["data-id"] for r in rows), suspects, "suspect rows")
        # Top tasks: every task holding bytes (fewer than 100), largest first.
        holders = [t for t in proc["tasks"] if t["live_bytes"]]
        rows = [r for p, table, r in dom.rows if p == pid and table == "top"]
        check_eq(sorted(r["data-id"] for r in rows), sorted(t["id"] for t in holders),
                 "top task rows")
        check_eq([tasks[r["data-id"]]["live_bytes"] for r in rows],
                 sorted((t["live_bytes"] for t in holders), reverse=True), "top tasks order")
        for table, row, f, v in figs:
            if table not in ("suspects", "top"):
                continue
            t = tasks[row["data-id"]]
            same(v, t.get(f, "") if f == "suspect_reason" else t[f], f"task {t['id']} {f}")
            compared += 1
        # Threads (fewer than 20).
        threads = {str(t["tid"]): t for t in proc["threads"]}
        for table, row, f, v in figs:
            if table == "threads":
                same(v, threads[row["data-tid"]][f], f"thread {row['data-tid']} {f}")
                compared += 1

        # The chart: the series' points, its last point at the report's own figures.
        ts = proc["timeseries"]
        charts = [a for p, a in dom.charts if p == pid]
        check_eq(len(charts), 1, "charts")
        same(charts[0]["data-points"], len(ts["seconds"]), "chart points")
        same(charts[0]["data-last-heap"], proc["heap"]["live_bytes"], "chart last heap")
        same(charts[0]["data-last-untasked"], proc["tasks_summary"]["untasked_live_bytes"],
             "chart last untasked")
        series = {a["data-series"]: a["data-last"] for p, a in dom.paths if p == pid}
        for ty in ts["task_types"]:
            same(series[ty["name"]], ty["held_bytes"][-1], f"chart series {ty['name']}")
        same(series["untasked"], ts["untasked_live_bytes"][-1], "chart untasked")
        same(series["other task types"], ts["other_task_held_bytes"][-1], "chart other")
        check_eq(len(series), len(ts["task_types"]) + 3, "chart series")
    return compared


def check_timeseries(proc):
    ts = proc["timeseries"]
    n = len(ts["seconds"])
    check(n >= 3, f"a run of seconds has points every second: {ts['seconds']!r}")
    check(all(a < b for a, b in zip(ts["seconds"], ts["seconds"][1:])), "time increases")
    check_eq(ts["heap_live_bytes"][-1], proc["heap"]["live_bytes"], "last point = report heap")
    for i in range(n):
        parts = (ts["untasked_live_bytes"][i] + ts["task_cell_live_bytes"][i] +
                 ts["other_task_held_bytes"][i] + sum(t["held_bytes"][i] for t in ts["task_types"]))
        check_eq(parts, ts["heap_live_bytes"][i], f"stack at point {i} sums to the heap")
    # The types' last points: what each type's tasks hold, alive or ended.
    types = {t["name"]: t for t in proc["task_types"]}
    for t in ts["task_types"]:
        ty = types[t["name"]]
        check_eq(t["held_bytes"][-1], ty["live_bytes"] + ty["outlived_live_bytes"],
                 f"series of {t['name']}")
    check(ts["task_types"], "task types have series")


# Appended to a copy of a report page: clicks column headers of the task types table as a user
# would, and leaves the row orders in a body attribute for --dump-dom.
SORT_CLICKS = """<script>
(function () {
	var out = {};
	function header(label) {
		return Array.prototype.filter.call(
			document.querySelectorAll('table[data-table="types"] thead th'),
			function (h) { return h.textContent === label; })[0];
	}
	function order() {
		return Array.prototype.map.call(
			document.querySelectorAll('table[data-table="types"] tbody tr'),
			function (r) { return r.getAttribute("data-type"); });
	}
	header("live bytes").click();
	out.live_bytes_first = order();
	header("live bytes").click();
	out.live_bytes_second = order();
	header("spawned").click();
	out.spawned_first = order();
	document.body.setAttribute("data-sort-test", JSON.stringify(out));
})();
</script>
"""


def check_sorting(page, workdir, proc):
    """Clicking a column sorts the rows by its figure, descending, then ascending."""
    with open(page) as f:
        text = f.read()
    copy = os.path.join(workdir, "sorted.html")
    with open(copy, "w") as f:
        f.write(text.replace("</body>", SORT_CLICKS + "</body>"))
    dom_text, console, requests = browse(copy, workdir, "--dump-dom")
    check_eq((console, requests), ([], []), "console and requests while sorting")
    dom = Dom()
    dom.feed(dom_text)
    orders = json.loads(dom.body["data-sort-test"])
    types = {t["name"]: t for t in proc["task_types"]}
    for key, field, descending in (("live_bytes_first", "live_bytes", True),
                                   ("live_bytes_second", "live_bytes", False),
                                   ("spawned_first", "spawned", True)):
        values = [types[name][field] for name in orders[key]]
        check_eq(sorted(orders[key]), sorted(types), f"rows after sorting ({key})")
        check_eq(values, sorted(values, reverse=descending), f"{field} order ({key})")
    check(orders["live_bytes_first"] != orders["live_bytes_second"], "sorting changed nothing")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    check_eq(head[:8], b"\x89PNG\r\n\x1a\n", "PNG signature")
    return struct.unpack(">II", head[16:24])


def test_html_report_of_a_tokio_run_matches_the_json_report_in_chromium():
    with tempfile.TemporaryDirectory(prefix="memscoped-html-") as d:
        page = os.path.join(d, "report.html")
        target = TokioTarget("v0", "all", "multi")
        try:
            ms = Memscoped([target.pid], "--stuck-after", "1", "--runtime", "tokio",
                           "--html", page)
            target.go()
            time.sleep(2.5)  # past --stuck-after: sleepers are suspects
            report, _, _ = ms.stop()
        finally:
            target.stop()
        proc = process_of(report, target.pid)
        check_timeseries(proc)
        with open(page) as f:
            text = f.read()
        check(len(text) < 2 * 1024 * 1024, f"page of {len(text)} bytes")
        check_eq(text.count(DATA_OPEN), 1, "data blocks")

        dom_text, console, requests = browse(page, d, "--dump-dom")
        check_eq(console, [], "console messages of the report page")
        check_eq(requests, [], "network requests of the report page")
        dom = Dom()
        dom.feed(dom_text)
        check_eq(dom.body.get("data-rendered"), "1", "page rendered by its script")
        compared = compare(dom, report)
        check(compared > 100, f"only {compared} figures compared")
        check_sorting(page, d, proc)

        shot = os.path.join(d, "shot.png")
        _, console, requests = browse(page, d, f"--screenshot={shot}", "--window-size=1280,800")
        check_eq(png_size(shot), (1280, 800), "screenshot size")
        check_eq((console, requests), ([], []), "console and requests while screenshotting")
        if os.environ.get("MEMSCOPED_UPDATE_SCREENSHOT"):
            shutil.copyfile(shot, SCREENSHOT)


def test_html_report_of_ucontext_coroutines_matches_the_json_report():
    with tempfile.TemporaryDirectory(prefix="memscoped-html-") as d:
        page = os.path.join(d, "report.html")
        target = Target([target_path("coro_ucontext"), "3"])
        try:
            ms = Memscoped([target.pid], "--runtime", "ucontext", "--stuck-after", "1",
                           "--html", page)
            target.go()
            time.sleep(1.3)  # past --stuck-after: parked coroutines are suspects
            report, _, _ = ms.stop()
        finally:
            target.stop()
        proc = process_of(report, target.pid)
        check_eq(proc["runtimes"], ["ucontext"], "runtimes")
        check_timeseries(proc)
        dom_text, console, requests = browse(page, d, "--dump-dom")
        check_eq((console, requests), ([], []), "console messages and requests")
        dom = Dom()
        dom.feed(dom_text)
        compared = compare(dom, report)
        check(compared > 50, f"only {compared} figures compared")


def test_html_report_of_two_heap_only_targets_renders_cleanly():
    with tempfile.TemporaryDirectory(prefix="memscoped-html-") as d:
        page = os.path.join(d, "report.html")
        targets = [Target([target_path("alloc_pattern"), "2"]) for _ in range(2)]
        try:
            ms = Memscoped([t.pid for t in targets], "--runtime", "none", "--html", page)
            for t in targets:
                t.go()
            report, _, _ = ms.stop()
        finally:
            for t in targets:
                t.stop()
        dom_text, console, requests = browse(page, d, "--dump-dom")
        check_eq((console, requests), ([], []), "console messages and requests")
        dom = Dom()
        dom.feed(dom_text)
        check_eq(dom.body.get("data-rendered"), "1", "page rendered by its script")
        pids = sorted({pid for pid, *_ in dom.figures if pid is not None})
        check_eq(pids, sorted(str(t.pid) for t in targets), "a section per target")
        for proc in report["processes"]:
            check_eq(proc["task_types"], [], "no task types without a runtime")
            heap = [v for pid, table, row, f, v, _ in dom.figures
                    if pid == str(proc["pid"]) and f == "heap.live_bytes"]
            check_eq(heap, [str(proc["heap"]["live_bytes"])], f"live heap of {proc['pid']}")
            check_eq(proc["heap"]["live_bytes"], proc["timeseries"]["heap_live_bytes"][-1],
                     "last point of the series")


def test_html_report_is_rewritten_on_sigusr1():
    with tempfile.TemporaryDirectory(prefix="memscoped-html-") as d:
        page = os.path.join(d, "report.html")
        target = Target([target_path("alloc_pattern"), "1"])
        try:
            ms = Memscoped([target.pid], "--html", page)
            check(not os.path.exists(page), "HTML report written before it was asked for")
            ms.proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while not os.path.exists(page) and time.monotonic() < deadline:
                time.sleep(0.05)
            check(os.path.exists(page), "no HTML report after SIGUSR1")
            with open(page) as f:
                text = f.read()
            data = json.loads(text.split(DATA_OPEN, 1)[1].split("</script>", 1)[0])
            check_eq([p["pid"] for p in data["processes"]], [target.pid], "pids in the page")
            check_eq(os.listdir(d), ["report.html"], "files beside the report (no temporary)")
            report, _, _ = ms.stop()
        finally:
            target.stop()
        with open(page) as f:
            final = json.loads(f.read().split(DATA_OPEN, 1)[1].split("</script>", 1)[0])
        check_eq(final["events"], report["events"], "events in the final page")
        check_eq(final["processes"][0]["heap"], process_of(report, target.pid)["heap"],
                 "heap in the final page")


def test_html_unwritable_path_fails_before_attaching():
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        code, out, err = run_memscoped("-p", str(target.pid), "--html", "/nonexistent-dir/r.html")
        check_eq(code, 1, f"exit status (stderr {err!r})")
        check_eq(err, "memscoped: cannot write HTML report '/nonexistent-dir/r.html': "
                 "No such file or directory\n", "stderr")
        code, out, err = run_memscoped("-p", str(target.pid), "--html", "")
        check_eq(code, 2, f"exit status of --html '' (stderr {err!r})")
        check("invalid --html ''" in err, f"stderr {err!r}")
    finally:
        target.stop()
