"""Metrics: the /metrics endpoint, the textfile, a real Prometheus server and SIGUSR1 reports.

Everything listens on loopback only, on ports the kernel picked as free."""
import gzip
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

from harness import (BUILD, Memscoped, Target, check, check_eq, process_of, run_memscoped,
                     target_path, wait_line)

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEAP_METRICS = ("memscoped_heap_live_bytes", "memscoped_heap_live_allocations",
                "memscoped_heap_allocated_bytes_total", "memscoped_heap_allocations_total",
                "memscoped_heap_frees_total", "memscoped_untasked_live_bytes",
                "memscoped_probes_attached", "memscoped_target_up")
# Metric name -> field of the JSON report's processes[].heap.
HEAP_FIELD = {
    "memscoped_heap_live_bytes": "live_bytes",
    "memscoped_heap_live_allocations": "live_allocations",
    "memscoped_heap_allocated_bytes_total": "allocated_bytes_total",
    "memscoped_heap_allocations_total": "allocations_total",
    "memscoped_heap_frees_total": "frees_total",
}
# Metric name -> field of the JSON report's task_types[].
TYPE_FIELD = {
    "memscoped_tasks_spawned_total": "spawned",
    "memscoped_tasks_completed_total": "completed",
    "memscoped_tasks_cancelled_total": "cancelled",
    "memscoped_tasks_live": "live",
    "memscoped_task_live_bytes": "live_bytes",
    "memscoped_task_allocated_bytes_total": "allocated_bytes_total",
    "memscoped_task_polls_total": "polls",
}
# The daemon re-renders the metrics every second.
RENDER_PERIOD = 1.0
TOKIO_TARGET = os.path.join(BUILD, "tokio-out", "tokio-target-release")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, path, method="GET", headers=None, body=None, conn=None):
    """One HTTP request to 127.0.0.1:port; returns (status, headers dict, body bytes)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if conn is None:
            c.close()


def scrape(port):
    status, headers, body = request(port, "/metrics")
    check_eq(status, 200, "GET /metrics status")
    return body.decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse(text):
    """Samples of a text-format scrape: list of (name, {label: value}, float)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m is not None, f"unparsable sample line {line!r}")
        labels = dict(LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def values(samples, name, **match):
    """The samples of one metric whose labels include match: list of (labels, value)."""
    return [(lab, v) for n, lab, v in samples
            if n == name and all(lab.get(k) == str(x) for k, x in match.items())]


def one(samples, name, **match):
    got = values(samples, name, **match)
    check_eq(len(got), 1, f"number of {name} samples with {match}")
    return got[0][1]


def without_self_metrics(text):
    """The scrape minus process_* families, which change between two renders."""
    return "\n".join(line for line in text.splitlines()
                     if not re.match(r"(# (HELP|TYPE) )?process_", line))


def promtool_check(text, what):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=20)
    check_eq((p.returncode, p.stdout + p.stderr), (0, ""), f"promtool check metrics on {what}")


def sum_truth(truth, field):
    return sum(t[field] for t in truth["threads"])


def wait_for(fn, timeout, what):
    """Calls fn until it returns a true value; returns it, or fails with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last and last[0]:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} within {timeout}s; last: {last!r}")
        time.sleep(0.1)


def scrape_when(port, name, expected, timeout=3 * RENDER_PERIOD, **match):
    """Scrapes until one sample of name equals expected (a render is up to 1 s old)."""
    def attempt():
        samples = parse(scrape(port))
        got = [v for _, v in values(samples, name, **match)]
        return (got == [expected], got, samples)
    return wait_for(attempt, timeout, f"{name}{match} == {expected}")[2]


class QuietTarget:
    """alloc_pattern with memscoped attached (extra args), run to the end of its pattern."""

    def __init__(self, *args, threads=2):
        self.target = Target([target_path("alloc_pattern"), str(threads)])
        self.ms = None
        try:
            self.ms = Memscoped([self.target.pid], *args)
            self.truth = self.target.go()
        except BaseException:
            self.close()
            raise
        self.pid = self.target.pid
        self.live = sum_truth(self.truth, "live_bytes")

    def stop(self):
        return self.ms.stop()

    def close(self):
        if self.ms is not None:
            self.ms.kill()
        self.target.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_scrape_passes_promtool_and_matches_report_and_truth():
    port = free_port()
    with QuietTarget("--listen", f"127.0.0.1:{port}") as q:
        scrape_when(port, "memscoped_heap_live_bytes", q.live, pid=q.pid)
        text = scrape(port)
        report, _, _ = q.stop()
    promtool_check(text, "a live scrape")
    samples = parse(text)
    proc = process_of(report, q.pid)
    for name in HEAP_METRICS:
        got = values(samples, name)
        check_eq(len(got), 1, f"{name} samples")
        check_eq(got[0][0], {"pid": str(q.pid), "comm": "alloc_pattern"}, f"{name} labels")
    for name, field in HEAP_FIELD.items():
        check_eq(one(samples, name, pid=q.pid), proc["heap"][field], f"{name} vs JSON report")
        check_eq(one(samples, name, pid=q.pid), sum_truth(q.truth, field), f"{name} vs truth")
    # No runtime: every live byte is untasked, and no task families are rendered.
    check_eq(one(samples, "memscoped_untasked_live_bytes", pid=q.pid), q.live, "untasked bytes")
    check_eq(one(samples, "memscoped_target_up", pid=q.pid), 1, "target_up")
    check(one(samples, "memscoped_probes_attached", pid=q.pid) > 0, "no probes attached")
    check(not values(samples, "memscoped_tasks_spawned_total"), "task metrics without tasks")
    check_eq(one(samples, "memscoped_events_total"), report["events"]["received"], "events")
    check_eq(one(samples, "memscoped_events_lost_total"), 0, "lost events")
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_start_time_seconds"):
        check_eq(len(values(samples, name)), 1, f"{name} samples")
    check("# TYPE memscoped_heap_live_bytes gauge" in text, "heap_live_bytes is a gauge")
    check("# TYPE memscoped_heap_allocations_total counter" in text, "allocations is a counter")


def test_gzip_and_identity_carry_the_same_text():
    port = free_port()
    with QuietTarget("--listen", f"127.0.0.1:{port}") as q:
        scrape_when(port, "memscoped_heap_live_bytes", q.live, pid=q.pid)
        # Both on one keep-alive connection, as Prometheus scrapes.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            # Twice at most: the two requests may straddle a render.
            for _ in range(2):
                s1, h1, plain = request(port, "/metrics", conn=conn)
                reused = conn.sock is not None
                s2, h2, packed = request(port, "/metrics", headers={"Accept-Encoding": "gzip"},
                                         conn=conn)
                unpacked = gzip.decompress(packed) if packed[:2] == b"\x1f\x8b" else packed
                if without_self_metrics(unpacked.decode()) == without_self_metrics(plain.decode()):
                    break
        finally:
            conn.close()
        s3, h3, refused = request(port, "/metrics", headers={"Accept-Encoding": "gzip;q=0"})
        s4, h4, head = request(port, "/metrics", method="HEAD", headers={"Accept-Encoding": "gzip"})
        q.stop()
    check_eq((s1, s2, s3, s4), (200, 200, 200, 200), "statuses")
    check_eq(h1.get("content-type"), METRICS_TYPE, "Content-Type (identity)")
    check_eq(h2.get("content-type"), METRICS_TYPE, "Content-Type (gzip)")
    check(reused, "the server closed a keep-alive connection after a scrape")
    check_eq(h1.get("content-encoding"), None, "Content-Encoding without Accept-Encoding")
    check_eq(h2.get("content-encoding"), "gzip", "Content-Encoding with Accept-Encoding: gzip")
    check("accept-encoding" in h2.get("vary", "").lower(), f"Vary: {h2.get('vary')!r}")
    check_eq(packed[:2], b"\x1f\x8b", "gzip magic")
    check(len(packed) < len(plain), f"gzip body {len(packed)} not smaller than {len(plain)}")
    check_eq(without_self_metrics(unpacked.decode()), without_self_metrics(plain.decode()),
             "gzip text vs identity text")
    check(f'memscoped_heap_live_bytes{{pid="{q.pid}",comm="alloc_pattern"}} {q.live}\n'
          in unpacked.decode(), "live bytes in the gzip text")
    check_eq(h3.get("content-encoding"), None, "Content-Encoding with gzip;q=0")
    check(refused.startswith(b"# HELP "), "identity body with gzip;q=0")
    check_eq(head, b"", "HEAD body")
    check_eq(h4.get("content-type"), METRICS_TYPE, "HEAD Content-Type")


def test_unknown_paths_and_methods():
    port = free_port()
    with QuietTarget("--listen", f"127.0.0.1:{port}", threads=1) as q:
        nope = request(port, "/nope")
        near = request(port, "/metricsx")
        query = request(port, "/metrics?name[]=x")
        post = request(port, "/metrics", method="POST", body=b"x=1",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        delete = request(port, "/", method="DELETE")
        index = request(port, "/")
        after = request(port, "/metrics")
        q.stop()
    check_eq(nope[0], 404, "GET /nope")
    check_eq(near[0], 404, "GET /metricsx")
    check_eq(query[0], 200, "GET /metrics?query")
    check_eq(post[0], 405, "POST /metrics")
    check("GET" in post[1].get("allow", ""), f"405 Allow header: {post[1].get('allow')!r}")
    check_eq(delete[0], 405, "DELETE /")
    check("GET" in delete[1].get("allow", ""), "405 Allow header on DELETE")
    check_eq(index[0], 200, "GET /")
    check(index[1].get("content-type", "").startswith("text/html"),
          f"index Content-Type {index[1].get('content-type')!r}")
    check(b'href="/metrics"' in index[2], f"index has no link to /metrics: {index[2]!r}")
    check_eq(after[0], 200, "GET /metrics after the bad requests")
    check(b"memscoped_heap_live_bytes{" in after[2], "metrics still served")


def test_listen_port_in_use_fails_before_attaching():
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            code, out, err = run_memscoped("-p", str(target.pid), "--listen",
                                           f"127.0.0.1:{port}")
        # The target is untouched and still runs its pattern.
        truth = target.go()
    finally:
        target.stop()
    check_eq(code, 1, f"exit status (stderr {err!r})")
    check_eq(len(err.splitlines()), 1, f"stderr lines: {err!r}")
    check(f"127.0.0.1:{port}" in err, f"stderr does not name the address: {err!r}")
    check("in use" in err.lower(), f"stderr does not say the address is in use: {err!r}")
    check("attached" not in err, f"probes were attached: {err!r}")
    check_eq(out, "", "stdout")
    check(truth["threads"][0]["live_allocations"] > 0, "target did not run")


def test_unparsable_listen_values_fail_clearly():
    target = Target([target_path("alloc_pattern"), "1"])
    try:
        results = []
        for spec in ("nonsense", "127.0.0.1:", "127.0.0.1:65536", "300.0.0.1:9100", "[::1",
                     "localhost:x", "9100x"):
            results.append((spec,) + run_memscoped("-p", str(target.pid), "--listen", spec))
        empty = run_memscoped("-p", str(target.pid), "--listen", "")
    finally:
        target.stop()
    for spec, code, out, err in results:
        # A bad command line: exit 2, the error on one line, argp's "Try --help" after it.
        check_eq(code, 2, f"exit status of --listen {spec!r}")
        check(err.splitlines()[1:] == ["Try `memscoped --help' or `memscoped --usage' for more "
                                       "information."], f"stderr lines for --listen {spec!r}: {err!r}")
        check(err.startswith("memscoped: "), f"stderr {err!r}")
        check(f"'{spec}'" in err and "[ADDR:]PORT" in err,
              f"--listen {spec!r}: message does not quote the value and the syntax: {err!r}")
        check("attached" not in err, f"probes were attached for --listen {spec!r}")
    check_eq(empty[0], 2, f"exit status of --listen '' ({empty[2]!r})")
    check("invalid --listen ''" in empty[2], f"stderr {empty[2]!r}")


def test_no_empty_scrape_before_the_first_render():
    # The socket listens before the probes are attached; a scrape in between must not be a
    # 200 without samples, which Prometheus takes as "every series is gone".
    target = Target([target_path("alloc_pattern"), "1"])
    port = free_port()
    ms = None
    try:
        ms = Memscoped([target.pid], "--listen", f"127.0.0.1:{port}", wait_attached=False)
        answers = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                status, _, body = request(port, "/metrics")
            except OSError:
                continue  # not listening yet
            answers.append((status, len(body)))
            if status == 200 and b"memscoped_target_up{" in body:
                break
        ms.stop()
    finally:
        if ms is not None:
            ms.kill()
        target.stop()
    check(answers and answers[-1][0] == 200, f"never got the metrics: {answers[-3:]}")
    empty = [a for a in answers if a[0] == 200 and a[1] == 0]
    check_eq(len(empty), 0, f"200 answers with an empty body, of {len(answers)} scrapes")


PROMETHEUS_CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: memscoped
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


def prometheus_query(port, query):
    status, _, body = request(port, "/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    if status != 200:
        return []
    data = json.loads(body)
    return data["data"]["result"] if data.get("status") == "success" else []


def stop_process(p, timeout=10):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def test_real_prometheus_scrapes_the_reported_value():
    port, prom_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="memscoped-prom-") as d, \
            QuietTarget("--listen", f"127.0.0.1:{port}") as q:
        # Only start Prometheus once the render shows the quiet target: every scrape agrees.
        scrape_when(port, "memscoped_heap_live_bytes", q.live, pid=q.pid)
        own = parse(scrape(port))
        config = os.path.join(d, "prometheus.yml")
        with open(config, "w") as f:
            f.write(PROMETHEUS_CONFIG.format(port=port))
        log = open(os.path.join(d, "prometheus.log"), "w+")
        prom = subprocess.Popen(["prometheus", f"--config.file={config}",
                                 f"--storage.tsdb.path={os.path.join(d, 'data')}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}",
                                 f"--web.console.templates={d}",
                                 f"--web.console.libraries={d}"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            def queried():
                if prom.poll() is not None:
                    log.seek(0)
                    raise AssertionError(f"prometheus exited {prom.returncode}: "
                                         f"{log.read()[-2000:]}")
                try:
                    r = prometheus_query(prom_port, "memscoped_heap_live_bytes")
                except OSError:
                    r = []
                return (bool(r), r)
            _, result = wait_for(queried, 20, "prometheus has memscoped_heap_live_bytes")
            up = prometheus_query(prom_port, 'up{job="memscoped"}')
            scraped = prometheus_query(prom_port, 'scrape_samples_scraped{job="memscoped"}')
            _, _, targets = request(prom_port, "/api/v1/targets")
            # Ask memscoped itself for its JSON report, without stopping it.
            before = mtime(q.ms.report)
            q.ms.proc.send_signal(signal.SIGUSR1)

            def rewritten():
                try:
                    with open(q.ms.report) as f:
                        return (mtime(q.ms.report) != before, json.load(f))
                except (OSError, ValueError):
                    return (False, None)
            _, report = wait_for(rewritten, 5, "JSON report rewritten after SIGUSR1")
        finally:
            stop_process(prom)
            log.close()
        q.stop()
    check_eq(len(result), 1, f"series of memscoped_heap_live_bytes: {result!r}")
    labels = result[0]["metric"]
    check_eq((labels.get("pid"), labels.get("comm"), labels.get("job")),
             (str(q.pid), "alloc_pattern", "memscoped"), "labels in Prometheus")
    value = int(float(result[0]["value"][1]))
    check_eq(value, q.live, "Prometheus value vs target truth")
    check_eq(value, process_of(report, q.pid)["heap"]["live_bytes"], "Prometheus vs JSON report")
    check_eq([r["value"][1] for r in up], ["1"], "up")
    check_eq([r["value"][1] for r in scraped], [str(len(own))], "samples per scrape")
    health = [t["health"] for t in json.loads(targets)["data"]["activeTargets"]]
    check_eq(health, ["up"], "target health")


def test_textfile_is_rewritten_atomically_and_at_exit():
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="memscoped-textfile-") as d:
        path = os.path.join(d, "memscoped.prom")
        with QuietTarget("--listen", f"127.0.0.1:{port}", "--textfile", path, "-i", "1") as q:
            scrape_when(port, "memscoped_heap_live_bytes", q.live, pid=q.pid)

            def current():
                try:
                    with open(path) as f:
                        text = f.read()
                except OSError:
                    return (False, None)
                line = f'memscoped_heap_live_bytes{{pid="{q.pid}",comm="alloc_pattern"}} {q.live}\n'
                return (line in text, text)
            # Rewritten every --interval (1 s) while running.
            _, during = wait_for(current, 4, "textfile shows the live bytes")
            http_text = scrape(port)
            report, _, _ = q.stop()
        leftovers = sorted(os.listdir(d))
        with open(path) as f:
            final = f.read()
    promtool_check(during, "the textfile while running")
    promtool_check(final, "the textfile at exit")
    check_eq(leftovers, ["memscoped.prom"], "files beside the textfile (no .tmp)")
    check_eq(without_self_metrics(during), without_self_metrics(http_text),
             "textfile vs /metrics")
    samples = parse(final)
    proc = process_of(report, q.pid)
    for name, field in HEAP_FIELD.items():
        check_eq(one(samples, name, pid=q.pid), proc["heap"][field], f"textfile {name}")
    check_eq(one(samples, "memscoped_events_total"), report["events"]["received"],
             "textfile events_total at exit")


def test_textfile_is_written_at_exit():
    # Without --interval the period is 10 s: a shorter run gets the file from the exit path.
    with tempfile.TemporaryDirectory(prefix="memscoped-textfile-") as d:
        path = os.path.join(d, "metrics.prom")
        with QuietTarget("--textfile", path, threads=1) as q:
            report, _, _ = q.stop()
        leftovers = sorted(os.listdir(d))
        with open(path) as f:
            text = f.read()
    check_eq(leftovers, ["metrics.prom"], "files beside the textfile (no .tmp)")
    promtool_check(text, "the textfile written at exit")
    samples = parse(text)
    check_eq(one(samples, "memscoped_heap_live_bytes", pid=q.pid), q.live, "live bytes vs truth")
    check_eq(one(samples, "memscoped_heap_live_bytes", pid=q.pid),
             process_of(report, q.pid)["heap"]["live_bytes"], "live bytes vs JSON report")


class TokioRun:
    """The tokio target (one scenario) with memscoped attached, run to its 'done' line."""

    def __init__(self, scenario, *args):
        self.dir = tempfile.TemporaryDirectory(prefix="memscoped-tokio-")
        go = os.path.join(self.dir.name, "go")
        self.proc = subprocess.Popen([TOKIO_TARGET, scenario, "--go-file", go],
                                     stdout=subprocess.PIPE, text=True)
        self.ms = None
        try:
            ready = json.loads(wait_line(self.proc.stdout, "{", 10, self.proc))
            check_eq(ready["pid"], self.proc.pid, "ready pid")
            self.pid = self.proc.pid
            self.port = free_port()
            self.ms = Memscoped([self.pid], "--listen", f"127.0.0.1:{self.port}", *args)
            open(go, "w").close()
            self.lines = []
            while True:
                line = wait_line(self.proc.stdout, "{", 20, self.proc)
                self.lines.append(json.loads(line))
                if self.lines[-1]["type"] == "done":
                    break
        except BaseException:
            self.close()
            raise

    def summary(self):
        return [r for r in self.lines if r["type"] == "summary"]

    def quiet_scrape(self):
        """A scrape rendered after the target went quiet: two renders agree on the events."""
        def attempt():
            a = parse(scrape(self.port))
            time.sleep(RENDER_PERIOD + 0.1)
            b = parse(scrape(self.port))
            ea, eb = values(a, "memscoped_events_total"), values(b, "memscoped_events_total")
            # Before the first render the body is empty (see test_no_empty_scrape_...).
            return (len(ea) == 1 and ea == eb, b)
        return wait_for(attempt, 8, "events_total stable across renders")[1]

    def close(self):
        if self.ms is not None:
            self.ms.kill()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def spawned_by_label(samples, pid):
    """{(runtime, task_type): spawned} from memscoped_tasks_spawned_total."""
    return {(lab["runtime"], lab["task_type"]): v
            for lab, v in values(samples, "memscoped_tasks_spawned_total", pid=pid)}


def test_task_metrics_match_the_json_report():
    with TokioRun("leak") as t:
        samples = t.quiet_scrape()
        text = scrape(t.port)
        report, _, _ = t.ms.stop()
    promtool_check(text, "a scrape with task metrics")
    proc = process_of(report, t.pid)
    truth_tasks = sum(s["tasks"] for s in t.summary())
    spawned = spawned_by_label(samples, t.pid)
    check(spawned, "no memscoped_tasks_spawned_total samples")
    check_eq({rt for rt, _ in spawned}, {"tokio"}, "runtime label values")
    total = sum(spawned.values())
    check_eq(total, proc["tasks_summary"]["spawned"] + proc["tasks_summary"]["blocking_spawned"],
             "spawned (metrics) vs JSON tasks_summary")
    check_eq(total, sum(ty["spawned"] for ty in proc["task_types"]), "spawned vs JSON task_types")
    check_eq(total, truth_tasks, "spawned vs the target's truth")
    # Every type of the JSON report, figure by figure.
    for ty in proc["task_types"]:
        for name, field in TYPE_FIELD.items():
            check_eq(one(samples, name, pid=t.pid, runtime=ty["runtime"], task_type=ty["name"]),
                     ty[field], f"{name} of {ty['name']}")
        check_eq(one(samples, "memscoped_future_size_bytes", pid=t.pid, runtime=ty["runtime"],
                     task_type=ty["name"]), ty["future_size_bytes"], f"future size of {ty['name']}")
    polls = sum(v for _, v in values(samples, "memscoped_task_polls_total", pid=t.pid))
    check_eq(one(samples, "memscoped_task_poll_duration_seconds_count", pid=t.pid,
                 runtime="tokio"), polls, "poll histogram count vs polls_total")
    check_eq(one(samples, "memscoped_untasked_live_bytes", pid=t.pid),
             proc["tasks_summary"]["untasked_live_bytes"], "untasked live bytes")


def test_max_task_types_sums_the_rest_as_other():
    with TokioRun("leak") as full:
        uncapped = full.ms.stop()[0]
    with TokioRun("leak", "--max-task-types", "1") as t:
        samples = t.quiet_scrape()
        text = scrape(t.port)
        capped = t.ms.stop()[0]
    promtool_check(text, "a capped scrape")
    expected = process_of(uncapped, full.pid)["tasks_summary"]["spawned"]
    check(expected > 1, f"only {expected} tasks spawned")
    for name in list(TYPE_FIELD) + ["memscoped_tasks_suspect", "memscoped_future_size_bytes"]:
        labels = {lab["task_type"] for lab, _ in values(samples, name, pid=t.pid, runtime="tokio")}
        check(len(labels) <= 2 and "other" in labels, f"{name} task_type values: {labels}")
    spawned = spawned_by_label(samples, t.pid)
    check_eq(sum(spawned.values()), expected, "spawned (capped metrics) vs uncapped JSON")
    # The cap only changes the labels: the JSON report keeps every type.
    check_eq(process_of(capped, t.pid)["tasks_summary"]["spawned"], expected, "capped JSON")
    for name, field in (("memscoped_tasks_live", "live"),
                        ("memscoped_task_live_bytes", "live_bytes"),
                        ("memscoped_task_polls_total", "polls")):
        total = sum(v for _, v in values(samples, name, pid=t.pid))
        check_eq(total, sum(ty[field] for ty in process_of(capped, t.pid)["task_types"]),
                 f"sum of {name}")


def test_max_task_types_spends_labels_on_types_that_ran():
    # The leak scenario spawns tasks of 5 future types. From legacy symbols two of them are
    # indistinguishable (identical code), so they are one type, named "A | B": 4 in all.
    # --max-task-types 4 must name them all.
    with TokioRun("leak", "--max-task-types", "4") as t:
        samples = t.quiet_scrape()
        report = t.ms.stop()[0]
    ran = {ty["name"] for ty in process_of(report, t.pid)["task_types"] if ty["spawned"]}
    check_eq(len(ran), 4, f"types that spawned: {ran}")
    check(any(" | " in name for name in ran), f"no ambiguous type among {ran}")
    spawned = spawned_by_label(samples, t.pid)
    named = {tt for (_, tt), v in spawned.items() if tt != "other"}
    check_eq(spawned.get(("tokio", "other"), 0), 0,
             f"tasks summed as 'other' with room for every type; labels kept: {sorted(named)}")
    check_eq(named, ran, "task_type labels vs types that spawned")


def test_probes_attached_counts_every_probe_of_the_process():
    with TokioRun("leak") as t:
        samples = t.quiet_scrape()
        err = t.ms.stderr()
        t.ms.stop()
    m = re.search(rf"attached (\d+) probes to pid {t.pid}\b", err)
    check(m is not None, f"no attach line in {err!r}")
    check_eq(one(samples, "memscoped_probes_attached", pid=t.pid), int(m.group(1)),
             "memscoped_probes_attached vs the attach line (allocator + tokio poll probes)")


def read_until(fd, needle, timeout, buf):
    """Reads fd into buf (bytearray) until needle occurs after the current end; returns new text."""
    start = len(buf)
    deadline = time.monotonic() + timeout
    while needle not in buf[start:]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {needle!r} on stdout within {timeout}s; "
                                 f"got {bytes(buf[start:])[-500:]!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"stdout closed before {needle!r}")
            buf += chunk
    return bytes(buf[start:]).decode()


def mtime(path):
    """0 until memscoped first writes the file (it creates nothing at startup)."""
    return os.stat(path).st_mtime_ns if os.path.exists(path) else 0


def test_sigusr1_prints_a_report_and_keeps_running():
    with QuietTarget() as q:
        fd = q.ms.proc.stdout.fileno()
        buf = bytearray()
        reports = []
        for _ in range(2):
            before = mtime(q.ms.report)
            q.ms.proc.send_signal(signal.SIGUSR1)
            reports.append(read_until(fd, b"TID ", 5, buf))
            wait_for(lambda: (mtime(q.ms.report) != before,), 5,
                     "JSON report rewritten")
            with open(q.ms.report) as f:
                live = process_of(json.load(f), q.pid)["heap"]["live_bytes"]
            check_eq(live, q.live, "live bytes in the JSON report written on SIGUSR1")
            time.sleep(0.3)
            check(q.ms.proc.poll() is None, f"memscoped exited after SIGUSR1: {q.ms.stderr()!r}")
        report, rest, _ = q.stop()
    for text in reports:
        check("memscoped report:" in text, f"no report header in {text!r}")
        check(f"process {q.pid} (alloc_pattern)" in text,
              f"report does not name the process: {text!r}")
    check_eq(rest.count("memscoped report:"), 1, "final report at exit")
    check_eq(process_of(report, q.pid)["heap"]["live_bytes"], q.live, "final JSON report")
