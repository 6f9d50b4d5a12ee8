#!/usr/bin/env bash
# Checks the deployment files of deploy/ (issue 19): the Prometheus alert
# rules (syntax, and their unit tests: which fire and which stay quiet), the
# example Prometheus configuration, and the Grafana dashboard (valid JSON, a
# data source and queries on every panel, every query valid PromQL). Every
# metric a query or rule names must be one lastframe exports, listed below: a
# renamed or removed metric fails here until deploy/ follows it.
# Also the HAProxy configuration (deploy/haproxy.cfg) and the one
# deploy/local-cluster.sh makes from it, with `haproxy -c`.
# Needs promtool (Debian's prometheus package) and haproxy, from scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# HAProxy 2.6 (Debian 12's) must accept the configuration as shipped, and as
# local-cluster.sh rewrites it (its own global section, bind and servers).
# -c reads the file only: no port is bound, no node need run.
haproxy -c -q -f deploy/haproxy.cfg
bash -n deploy/local-cluster.sh
cluster_cfg="$(mktemp)"
deploy/local-cluster.sh config 3 18080 >"$cluster_cfg"
grep -q '^    server node3 127.0.0.1:18083 id 3$' "$cluster_cfg"
grep -q '^    bind 127.0.0.1:18080$' "$cluster_cfg"
haproxy -c -q -f "$cluster_cfg"
rm -f "$cluster_cfg"
echo "check-deploy: deploy/haproxy.cfg and local-cluster.sh's configuration pass haproxy -c"

promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

# The example configuration names an admin key file under /etc/prometheus,
# which promtool wants to exist: check its syntax in place, then all of it
# (its rule files included) on a copy whose key file is a stand-in.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
promtool check config --syntax-only deploy/prometheus/prometheus.yml
cp deploy/prometheus/alerts.yml "$tmp/"
printf 'stand-in admin key\n' >"$tmp/admin-key"
sed "s|credentials_file: .*|credentials_file: $tmp/admin-key|" \
  deploy/prometheus/prometheus.yml >"$tmp/prometheus.yml"
grep -q "credentials_file: $tmp/admin-key" "$tmp/prometheus.yml"
promtool check config "$tmp/prometheus.yml"

# The dashboard, and the metric names of the dashboard's and the rules' queries.
/usr/bin/python3 - "$tmp" <<'PY'
import json
import re
import subprocess
import sys

tmp = sys.argv[1]
DASHBOARD = "deploy/grafana/lastframe.json"
RULES = "deploy/prometheus/alerts.yml"

# What lastframe exports (src/core/metrics, src/core/limits, src/core/process_metrics
# and their callers): name -> label names. Prometheus adds job and instance to each;
# histograms are queried as NAME_bucket (with le), NAME_count and NAME_sum.
GAUGES = {
    "lastframe_streams": set(),
    "lastframe_streams_live": set(),
    "lastframe_producers_connected": set(),
    "lastframe_pull_sources": {"state"},
    "lastframe_limit_max": {"limit", "unit"},
    "lastframe_limit_in_use": {"limit", "unit"},
    "lastframe_build_info": {"version", "commit"},
    "process_resident_memory_bytes": set(),
    "process_virtual_memory_bytes": set(),
    "process_open_fds": set(),
    "process_max_fds": set(),
    "process_threads": set(),
    "process_start_time_seconds": set(),
}
COUNTERS = {
    "lastframe_snapshot_renders_total": set(),
    "lastframe_snapshot_cache_hits_total": set(),
    "lastframe_snapshot_coalesced_total": set(),
    "lastframe_ingest_bytes_total": set(),
    "lastframe_ingest_fragments_total": set(),
    "lastframe_ingest_acks_total": {"type"},
    "lastframe_ingest_errors_total": {"error"},
    "lastframe_ingest_producers_started_total": set(),
    "lastframe_ingest_producers_ended_total": set(),
    "lastframe_pull_reconnects_total": set(),
    "lastframe_object_store_requests_total": {"store", "operation"},
    "lastframe_object_store_failures_total": {"store", "operation"},
    "lastframe_object_store_retries_total": {"store", "operation"},
    "lastframe_limit_refusals_total": {"limit", "unit"},
    "process_cpu_seconds_total": set(),
}
HISTOGRAMS = {
    "lastframe_http_request_duration_seconds": {"route", "code"},
    "lastframe_snapshot_stage_duration_seconds": {"stage"},
    "lastframe_ingest_ack_delay_seconds": {"type"},
    "lastframe_fragment_fsync_duration_seconds": set(),
    "lastframe_pull_first_frame_seconds": set(),
    "lastframe_object_upload_duration_seconds": {"store"},
}
TARGET_LABELS = {"job", "instance"}
# Series Prometheus itself makes for each scrape target.
SYNTHETIC = {"up": set()}

KNOWN = {}
for table in (GAUGES, COUNTERS, SYNTHETIC):
    for name, labels in table.items():
        KNOWN[name] = labels | TARGET_LABELS
for name, labels in HISTOGRAMS.items():
    KNOWN[name + "_bucket"] = labels | TARGET_LABELS | {"le"}
    KNOWN[name + "_count"] = labels | TARGET_LABELS
    KNOWN[name + "_sum"] = labels | TARGET_LABELS

KEYWORDS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
            "quantile", "count_values", "group", "by", "without", "on", "ignoring",
            "group_left", "group_right", "bool", "and", "or", "unless", "offset", "atan2",
            "inf", "nan"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^{}]*)\}")
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*,?')
IDENT = re.compile(r"(?<![A-Za-z0-9_:.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")

errors = []


def check_expr(where, expr):
    """The metric names and label names |expr| uses must be lastframe's."""
    metrics = set()
    rest = expr
    for m in SELECTOR.finditer(expr):
        name, body = m.group(1), m.group(2)
        labels = set()
        pos = 0
        while pos < len(body):
            mm = MATCHER.match(body, pos)
            if not mm:
                errors.append(f"{where}: cannot read the matchers {{{body}}}")
                break
            labels.add(mm.group(1))
            pos = mm.end()
        if name is None:
            errors.append(f"{where}: a selector without a metric name: {{{body}}}")
            continue
        if name in KNOWN and labels - KNOWN[name]:
            errors.append(f"{where}: {name} has no label(s) {sorted(labels - KNOWN[name])}")
    rest = SELECTOR.sub(lambda m: (m.group(1) or "") + " ", expr)
    grouping = set()
    for m in GROUPING.finditer(rest):
        grouping |= {l.strip() for l in m.group(2).split(",") if l.strip()}
    rest = GROUPING.sub(" ", rest)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)              # ranges, [5m] or [$__rate_interval]
    rest = re.sub(r'"(?:[^"\\]|\\.)*"', " ", rest)     # string literals
    for m in IDENT.finditer(rest):
        word, call = m.group(1), m.group(2)
        if call or word in KEYWORDS:
            continue
        if word not in KNOWN:
            errors.append(f"{where}: {word} is not a metric lastframe exports")
        else:
            metrics.add(word)
    if not metrics:
        errors.append(f"{where}: names no metric: {expr}")
    available = set().union(*(KNOWN[m] for m in metrics)) if metrics else set()
    if grouping - available:
        errors.append(f"{where}: groups by {sorted(grouping - available)}, which none of "
                      f"{sorted(metrics)} has")
    return metrics


# --- The dashboard.
try:
    with open(DASHBOARD) as f:
        dash = json.load(f)
except ValueError as e:
    sys.exit(f"{DASHBOARD}: not valid JSON: {e}")

variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
ds_var = variables.get("datasource")
if not ds_var or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
    errors.append(f"{DASHBOARD}: needs a template variable 'datasource' of type datasource, "
                  "query prometheus")
if "instance" not in variables:
    errors.append(f"{DASHBOARD}: needs a template variable 'instance'")
if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
    errors.append(f"{DASHBOARD}: schemaVersion {dash.get('schemaVersion')} is older than 36")


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


exprs = []  # (where, expr)
ids = set()
rows = []
panels = list(all_panels(dash.get("panels", [])))
for p in panels:
    where = f"{DASHBOARD}: panel {p.get('id')} {p.get('title')!r}"
    if p.get("id") in ids:
        errors.append(f"{where}: id {p.get('id')} used twice")
    ids.add(p.get("id"))
    if "gridPos" not in p:
        errors.append(f"{where}: no gridPos")
    if p.get("type") == "row":
        rows.append(p.get("title"))
        continue
    ds = p.get("datasource")
    if not isinstance(ds, dict) or ds.get("uid") != "${datasource}" or ds.get("type") != "prometheus":
        errors.append(f"{where}: datasource must be {{type: prometheus, uid: ${{datasource}}}}, "
                      f"not {ds!r}")
    targets = p.get("targets") or []
    if not targets:
        errors.append(f"{where}: no targets")
    for t in targets:
        twhere = f"{where} target {t.get('refId')}"
        if not t.get("expr"):
            errors.append(f"{twhere}: no expr")
            continue
        tds = t.get("datasource")
        if tds is not None and tds.get("uid") != "${datasource}":
            errors.append(f"{twhere}: datasource {tds!r} is not ${{datasource}}")
        if 'instance=~"$instance"' not in t["expr"]:
            errors.append(f"{twhere}: does not follow the instance variable: {t['expr']}")
        exprs.append((twhere, t["expr"]))

for title in ("Overview", "HTTP", "Snapshots", "Ingest", "Pulls", "Object stores", "Limits",
              "Process"):
    if title not in rows:
        errors.append(f"{DASHBOARD}: no row {title!r}")

# The queries must be PromQL: promtool parses them as recording rules, with
# Grafana's variables filled in.
recording = []
for i, (where, expr) in enumerate(exprs):
    q = (expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
         .replace("$instance", ".*"))
    if "$" in q:
        errors.append(f"{where}: a variable this check does not know: {expr}")
    recording.append({"record": f"dashboard:query_{i}", "expr": q})
with open(f"{tmp}/dashboard_rules.yml", "w") as f:  # JSON is YAML
    json.dump({"groups": [{"name": "dashboard", "rules": recording}]}, f)
r = subprocess.run(["promtool", "check", "rules", f"{tmp}/dashboard_rules.yml"],
                   capture_output=True, text=True)
if r.returncode != 0:
    errors.append(f"{DASHBOARD}: a query is not valid PromQL:\n{r.stdout}{r.stderr}")

# --- The alert rules (promtool has checked their syntax above). Read line by
# line (no YAML library on a fresh Debian): one rule per "- alert:" or
# "- record:", each expr on one line.
with open(RULES) as f:
    text = f.read()
chunks = re.split(r"(?m)^\s*- (?=(?:alert|record):)", text)[1:]
if not chunks:
    errors.append(f"{RULES}: no rules found")
for chunk in chunks:
    name = re.match(r"(?:alert|record):\s*(\S+)", chunk).group(1)
    where = f"{RULES}: {name}"
    m = re.search(r"(?m)^\s*expr:[ \t]*(.*)$", chunk)
    if not m or not m.group(1).strip() or m.group(1).strip()[0] in "|>":
        errors.append(f"{where}: write its expr on the line of 'expr:' (this check reads it there)")
        continue
    exprs.append((where, m.group(1).strip().strip("'")))
    if chunk.startswith("alert:"):
        if not re.search(r"(?m)^\s*severity:\s*(critical|warning|info)\s*$", chunk):
            errors.append(f"{where}: no severity label (critical, warning or info)")
        for a in ("summary", "description"):
            if not re.search(rf"(?m)^\s*{a}:\s*\S", chunk):
                errors.append(f"{where}: no {a} annotation")

used = set()
for where, expr in exprs:
    used |= check_expr(where, expr)

if errors:
    print("check-deploy: FAILED", file=sys.stderr)
    for e in errors:
        print("  " + e, file=sys.stderr)
    sys.exit(1)
print(f"check-deploy: {len(panels)} dashboard panels and {len(exprs)} queries and rules "
      f"name only lastframe's metrics ({len(used)} of them)")
PY
