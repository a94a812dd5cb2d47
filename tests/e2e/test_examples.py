"""examples/: the Grafana dashboard and the Prometheus alerting rules.

Every PromQL expression they hold must parse (promtool check rules), name only metrics the
exporter serves, and the rules' unit tests must pass (promtool test rules). promtool is a test
dependency (Debian's prometheus package, scripts/install-deps.sh): without it these fail."""
import json
import os
import re
import shutil
import subprocess
import tempfile

from harness import ROOT, check, check_eq

EXAMPLES = os.path.join(ROOT, "examples")
DASHBOARD = os.path.join(EXAMPLES, "grafana", "memscoped-dashboard.json")
RULES = os.path.join(EXAMPLES, "prometheus", "memscoped-rules.yml")
RULE_TESTS = os.path.join(EXAMPLES, "prometheus", "memscoped-rules.test.yml")
# Grafana's variables, replaced by what they expand to before promtool reads an expression.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$comm": ".*", "$pid": ".*"}


def promtool(*args, cwd=None):
    path = shutil.which("promtool")
    check(path, "promtool is not installed (apt-get install prometheus; scripts/install-deps.sh)")
    p = subprocess.run([path, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


def yaml_load(path):
    try:
        import yaml
    except ImportError:
        raise AssertionError("python3-yaml is not installed (scripts/install-deps.sh)")
    with open(path) as f:
        return yaml.safe_load(f)


def exporter_metrics():
    """The metric families memscoped serves, from the exporter's own table."""
    with open(os.path.join(ROOT, "src", "exporter_prometheus.c")) as f:
        names = set(re.findall(r'"(memscoped_[a-z_]+)"', f.read()))
    check(len(names) > 15, f"metric families found in the exporter: {sorted(names)!r}")
    return names


def dashboard_expressions(dash):
    exprs = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            exprs.append(t["expr"])
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((.*), *([a-z_]+)\)", var["query"]["query"])
            check(m, f"variable {var['name']}: {var['query']['query']!r}")
            exprs.append(m.group(1))
    return exprs


def rule_expressions():
    return [r["expr"] for g in yaml_load(RULES)["groups"] for r in g["rules"]]


def expand(expr):
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(k, GRAFANA_VARS[k])
    check("$" not in expr, f"unexpanded variable in {expr!r}")
    return expr


def check_parses(exprs, what):
    """Each expression as a recording rule of a temporary file: promtool parses every one."""
    with tempfile.TemporaryDirectory(prefix="memscoped-promql-") as d:
        path = os.path.join(d, "exprs.yml")
        with open(path, "w") as f:
            json.dump({"groups": [{"name": "exprs", "rules": [
                {"record": f"check:expr_{i}", "expr": expand(e)} for i, e in enumerate(exprs)]}]},
                f)
        code, out = promtool("check", "rules", path)
    check_eq(code, 0, f"promtool check rules on the {what}'s expressions: {out}")
    check(f"SUCCESS: {len(exprs)} rules found" in out, f"promtool: {out!r}")


def test_promql_checker_rejects_a_bad_expression():
    with tempfile.TemporaryDirectory(prefix="memscoped-promql-") as d:
        path = os.path.join(d, "bad.yml")
        with open(path, "w") as f:
            json.dump({"groups": [{"name": "g", "rules": [
                {"record": "bad", "expr": "rate(memscoped_heap_live_bytes[5m]"}]}]}, f)
        code, out = promtool("check", "rules", path)
    check(code != 0, f"promtool accepted an unclosed parenthesis: {out!r}")


def test_dashboard_expressions_parse_and_name_served_metrics():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = dashboard_expressions(dash)
    check(len(exprs) >= 20, f"{len(exprs)} expressions in the dashboard")
    check_parses(exprs, "dashboard")
    served = exporter_metrics()
    used = set()
    for e in exprs:
        used |= set(re.findall(r"memscoped_[a-z_]+", e))
    check_eq(sorted(used - served), [], "dashboard metrics the exporter does not serve")
    # What the dashboard is for: per process and per task type.
    for m in ("memscoped_heap_live_bytes", "memscoped_untasked_live_bytes",
              "memscoped_events_total", "memscoped_events_lost_total", "memscoped_target_up",
              "memscoped_tasks_live", "memscoped_tasks_suspect", "memscoped_task_live_bytes",
              "memscoped_future_size_bytes", "memscoped_tasks_spawned_total"):
        check(m in used, f"dashboard does not show {m}")


def test_dashboard_is_provisionable_as_is():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    check_eq((dash["uid"], dash.get("id")), ("memscoped", None), "uid, and no instance id")
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    check_eq(sorted(variables), ["comm", "datasource", "pid"], "template variables")
    check_eq((variables["datasource"]["type"], variables["datasource"]["query"]),
             ("datasource", "prometheus"), "datasource variable")
    for name in ("comm", "pid"):
        check(variables[name]["includeAll"] and variables[name]["multi"], f"${name}: all, multi")
    ids = [p["id"] for p in dash["panels"]]
    check_eq(len(ids), len(set(ids)), "unique panel ids")
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        check_eq(p["datasource"], {"type": "prometheus", "uid": "${datasource}"},
                 f"panel {p['title']!r} datasource")
        check(p["targets"], f"panel {p['title']!r} has queries")
        g = p["gridPos"]
        check(g["x"] + g["w"] <= 24 and g["h"] > 0, f"panel {p['title']!r} gridPos {g!r}")
        for t in p["targets"]:
            check_eq(t["datasource"]["uid"], "${datasource}", f"query of {p['title']!r}")
            if "memscoped_events" not in t["expr"]:  # events are per daemon, not per target
                check('pid=~"$pid"' in t["expr"] and 'comm=~"$comm"' in t["expr"],
                      f"{p['title']!r}: {t['expr']!r} ignores $pid/$comm")
    prov = yaml_load(os.path.join(EXAMPLES, "grafana", "provisioning", "dashboards",
                                  "memscoped.yaml"))
    check_eq((prov["apiVersion"], prov["providers"][0]["type"]), (1, "file"), "provider")
    check(prov["providers"][0]["options"]["path"], "provider path")
    ds = yaml_load(os.path.join(EXAMPLES, "grafana", "provisioning", "datasources",
                                "prometheus.yaml"))
    check_eq(ds["datasources"][0]["type"], "prometheus", "provisioned data source")


def test_alert_rules_parse_name_served_metrics_and_pass_their_unit_tests():
    code, out = promtool("check", "rules", RULES)
    check_eq(code, 0, f"promtool check rules: {out}")
    exprs = rule_expressions()
    check_parses(exprs, "alerting rules")
    used = set()
    for e in exprs:
        used |= set(re.findall(r"memscoped_[a-z_]+", e))
    check_eq(sorted(used - exporter_metrics()), [], "rule metrics the exporter does not serve")
    alerts = [r["alert"] for g in yaml_load(RULES)["groups"] for r in g["rules"]]
    tested = {t["alertname"] for case in yaml_load(RULE_TESTS)["tests"]
              for t in case["alert_rule_test"] if t["exp_alerts"]}
    check_eq(sorted(tested), sorted(alerts), "alerts with a firing unit test")
    code, out = promtool("test", "rules", os.path.basename(RULE_TESTS),
                         cwd=os.path.dirname(RULE_TESTS))
    check_eq(code, 0, f"promtool test rules: {out}")
    check("SUCCESS" in out, f"promtool test rules: {out!r}")
    # The example scrape config loads the rules: promtool checks both together.
    code, out = promtool("check", "config", os.path.join(EXAMPLES, "prometheus.yml"))
    check_eq(code, 0, f"promtool check config examples/prometheus.yml: {out}")
    check("SUCCESS: 5 rules found" in out, f"examples/prometheus.yml loads the rules: {out!r}")
