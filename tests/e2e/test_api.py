"""The JSON API (/api/v1/processes, /api/v1/tasks) on --listen, against a real tokio target.

Its figures are checked against the JSON report of the same run (taken once the target went
quiet, so that nothing changes in between) and against the target's own ground truth."""
import json
import time

from harness import Memscoped, Target, check, check_eq, process_of, target_path
from test_metrics import free_port, request, wait_for
from test_tokio import TokioTarget, check_task

# Figures that grow with the clock while a task lives: compared apart.
CLOCK_FIELDS = ("idle_seconds", "age_seconds", "suspect_reason", "suspended_seconds")

# In the reports only: the tasks (served by /api/v1/tasks) and the time series.
REPORT_ONLY = ("tasks", "timeseries", "stacks")


def api(port, path, status=200):
    got, headers, body = request(port, path)
    check_eq(got, status, f"status of GET {path} ({body[:300]!r})")
    check_eq(headers.get("content-type"), "application/json", f"content type of {path}")
    return json.loads(body)


def quiet(port):
    """An API answer taken once the target went quiet: two snapshots a second apart agree on
    every event received."""
    def attempt():
        a = api(port, "/api/v1/processes")
        time.sleep(1.2)
        b = api(port, "/api/v1/processes")
        return (a["events"] == b["events"] and b["duration_seconds"] > a["duration_seconds"], b)
    return wait_for(attempt, 20, "events stable across API snapshots")[1]


class ApiRun:
    """A tokio target scenario run to its end under memscoped --listen."""

    def __init__(self, scenario, n):
        self.target = TokioTarget("release", scenario, "current", "--n", str(n))
        self.port = free_port()
        self.ms = None
        try:
            self.ms = Memscoped([self.target.pid], "--listen", f"127.0.0.1:{self.port}",
                                "--stuck-after", "1", "--runtime", "tokio")
            self.records, self.summaries, _ = self.target.go()
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.ms is not None:
            self.ms.kill()
        self.target.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_same_task(api_task, rep_task, pid):
    what = f"API task {rep_task['id']}"
    check_eq(api_task["pid"], pid, f"{what} pid")
    expected = {k: v for k, v in rep_task.items() if k not in CLOCK_FIELDS}
    got = {k: v for k, v in api_task.items() if k not in CLOCK_FIELDS and k != "pid"}
    check_eq(got, expected, what)
    check_eq(set(api_task), set(rep_task) | {"pid"}, f"{what} fields")
    if rep_task["ended"] is not None:
        for k in CLOCK_FIELDS:
            check_eq(api_task.get(k), rep_task.get(k), f"{what} {k} (ended: fixed)")
    else:
        # The report is taken after the API's snapshot: its clock figures are not smaller.
        check(api_task["idle_seconds"] <= rep_task["idle_seconds"], f"{what} idle_seconds")


def test_api_matches_the_json_report_and_the_truth():
    # Every scenario, 8 tasks each: all of them fit in one answer (limit=1000).
    with ApiRun("all", 8) as run:
        port, pid = run.port, run.target.pid
        procs = quiet(port)
        # The answers below come from the same snapshot or a later one of the quiet target.
        tasks = api(port, f"/api/v1/tasks?pid={pid}&limit=1000")
        by_live = tasks["tasks"]
        suspects = api(port, "/api/v1/tasks?suspects=1&limit=1000")
        polls_asc = api(port, "/api/v1/tasks?sort=polls&order=asc&limit=1000")
        by_type = api(port, "/api/v1/tasks?sort=type&limit=1000")
        filtered = api(port, "/api/v1/tasks?type=T_SLEEP&limit=1000")
        two = api(port, "/api/v1/tasks?limit=2&sort=future_size_bytes")
        report, _, _ = run.ms.stop()
    proc = process_of(report, pid)
    rep_tasks = {t["id"]: t for t in proc["tasks"]}

    check_eq(procs["api_version"], 1, "api_version")
    check_eq(procs["memscoped_version"], report["memscoped_version"], "memscoped_version")
    check_eq(procs["events"], report["events"], "events (the target was quiet)")
    check_eq(len(procs["processes"]), 1, "processes")
    # The process object is the report's, minus its tasks and time series, figure for figure.
    check_eq(procs["processes"][0], {k: v for k, v in proc.items() if k not in REPORT_ONLY},
             "process object vs the JSON report")

    check_eq(tasks["matched"], len(proc["tasks"]), "tasks matched vs the report")
    check_eq(tasks["returned"], len(by_live), "returned")
    check_eq(tasks["snapshot"]["tasks_omitted"], 0, "tasks omitted")
    check_eq({t["id"] for t in by_live}, set(rep_tasks), "task ids vs the report")
    for t in by_live:
        check_same_task(t, rep_tasks[t["id"]], pid)
    # And against the target's own records of what each task did.
    api_by_id = {t["id"]: t for t in by_live}
    for rec in run.records:
        check_task(api_by_id[f"tokio:{rec['id']}"], rec)

    check_eq((tasks["sort"], tasks["order"], tasks["limit"]), ("live_bytes", "desc", 1000),
             "default sort")
    lives = [t["live_bytes"] for t in by_live]
    check_eq(lives, sorted(lives, reverse=True), "sorted by live_bytes, largest first")
    polls = [t["polls"] for t in polls_asc["tasks"]]
    check_eq(polls, sorted(polls), "sort=polls&order=asc")
    check_eq(by_type["order"], "asc", "text keys sort ascending by default")
    types = [t["type"] for t in by_type["tasks"]]
    check_eq(types, sorted(types), "sort=type")
    check_eq({t["id"] for t in suspects["tasks"]},
             {i for i, t in rep_tasks.items() if t["suspect"]}, "suspects=1 vs the report")
    check_eq(suspects["matched"], proc["tasks_summary"]["suspects"], "suspects vs the summary")
    want = {i for i, t in rep_tasks.items() if "t_sleep" in t["type"].lower()}
    check(want, "no t_sleep task in the scenario")
    check_eq({t["id"] for t in filtered["tasks"]}, want, "type filter (substring, any case)")
    check_eq(two["returned"], 2, "limit=2")
    check_eq(two["matched"], len(proc["tasks"]), "matched counts past the limit")
    biggest = sorted((t["future_size_bytes"] for t in proc["tasks"]), reverse=True)[:2]
    check_eq([t["future_size_bytes"] for t in two["tasks"]], biggest, "the two largest futures")


def test_api_bounds_its_answers_and_rejects_bad_parameters():
    # 1200 short tasks: more than the largest limit.
    with ApiRun("churn", 1200) as run:
        port, pid = run.port, run.target.pid
        quiet(port)
        default = api(port, "/api/v1/tasks")
        check(default["matched"] > 100, f"the scenario has {default['matched']} tasks")
        check_eq((default["limit"], default["returned"], len(default["tasks"])), (100, 100, 100),
                 "default limit")
        full = api(port, "/api/v1/tasks?limit=1000")
        check_eq(full["matched"], 1200, "tasks matched")
        check_eq((full["returned"], len(full["tasks"])), (1000, 1000), "limit=1000 (the maximum)")
        bad = {
            "limit=0": "invalid limit '0': expected 1 to 1000",
            "limit=1001": "invalid limit '1001': expected 1 to 1000",
            "limit=ten": "invalid limit 'ten': expected 1 to 1000",
            "limit=": "invalid limit '': expected 1 to 1000",
            "sort=size": "invalid sort 'size': expected one of id, kind, state, polls, "
                         "busy_seconds, idle_seconds, future_size_bytes, live_bytes, type, "
                         "age_seconds, live_allocations, allocated_bytes_total, "
                         "allocations_total, pid",
            "order=up": "invalid order 'up': expected asc or desc",
            "suspects=yes": "invalid suspects 'yes': expected 0 or 1",
            "pid=-1": "invalid pid '-1': expected a process id",
            "pid=0": "invalid pid '0': expected a process id",
            "pid=1&pid=2": "parameter 'pid' given twice",
            "colour=red": "unknown parameter 'colour' (expected one of: pid, sort, order, "
                          "limit, suspects, type)",
            "limit": "parameter 'limit' has no value",
        }
        for query, msg in bad.items():
            got = api(port, f"/api/v1/tasks?{query}", status=400)
            check_eq(got, {"error": msg}, f"answer to ?{query}")
        check_eq(api(port, "/api/v1/processes?sort=type", status=400),
                 {"error": "unknown parameter 'sort' (expected one of: pid)"}, "processes?sort")
        many = "&".join(f"type={i}" for i in range(17))
        check_eq(api(port, f"/api/v1/tasks?{many}", status=400),
                 {"error": "too many query parameters (at most 16)"}, "17 parameters")
        other = pid + 1 if pid + 1 < 4194304 else 1
        check_eq(api(port, f"/api/v1/tasks?pid={other}", status=404),
                 {"error": f"pid {other} is not traced"}, "an untraced pid")
        check_eq(api(port, f"/api/v1/processes?pid={other}", status=404),
                 {"error": f"pid {other} is not traced"}, "an untraced pid (processes)")
        check_eq(len(api(port, f"/api/v1/processes?pid={pid}")["processes"]), 1, "pid filter")
        for path in ("/api/v2/tasks", "/api/v1/task", "/api/"):
            check_eq(api(port, path, status=404),
                     {"error": "no such API path (api_version 1 has /api/v1/processes and "
                               "/api/v1/tasks)"}, f"GET {path}")
        status, headers, _ = request(port, "/api/v1/tasks", method="POST", body=b"x")
        check_eq(status, 405, "POST /api/v1/tasks")
        check_eq(headers.get("allow"), "GET, HEAD", "Allow of a 405")
        # /metrics still answers next to the API.
        status, _, body = request(port, "/metrics")
        check_eq(status, 200, "/metrics next to the API")
        check(b"memscoped_heap_live_bytes" in body, "metrics text")
        run.ms.stop()


def test_api_serves_coroutines_as_the_report_does():
    # ucontext coroutines: ids of stack and lifetime, and the report's coroutine fields.
    target = Target([target_path("coro_ucontext"), "3"])
    port = free_port()
    ms = None
    try:
        ms = Memscoped([target.pid], "--runtime", "ucontext", "--stuck-after", "1",
                       "--listen", f"127.0.0.1:{port}")
        truth = target.go()
        procs = quiet(port)
        tasks = api(port, f"/api/v1/tasks?pid={target.pid}&limit=1000&sort=id")
        report, _, _ = ms.stop()
    finally:
        if ms is not None:
            ms.kill()
        target.stop()
    proc = process_of(report, target.pid)
    check_eq(procs["processes"][0], {k: v for k, v in proc.items() if k not in REPORT_ONLY},
             "process object vs the JSON report")
    rep_tasks = {t["id"]: t for t in proc["tasks"]}
    check_eq({t["id"] for t in tasks["tasks"]}, set(rep_tasks), "coroutine ids vs the report")
    check_eq(len(tasks["tasks"]), len(truth["coroutines"]), "coroutines vs the target's truth")
    for t in tasks["tasks"]:
        check(t["id"].startswith("ucontext:0x"), f"coroutine id {t['id']}")
        check_same_task(t, rep_tasks[t["id"]], target.pid)
