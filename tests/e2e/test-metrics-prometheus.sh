#!/usr/bin/env bash
# Metrics end to end (issue 15): a real `qsimd all` on the tiny guest, scraped every second
# by a real Prometheus (Debian's package) in a temporary directory on 127.0.0.1. Two
# requests run (one done, one failed); Prometheus's query API must then show both in
# qsim_requests_finished_total with the right labels, and two observations in the
# submit -> first stdout byte histogram. Also: `promtool check metrics` on the live output,
# every exported family documented in docs/metrics.md, and `qsimd agents`' METRICS_LISTEN.
# No timing is asserted: the waits are hang guards, generous for TCG on a loaded machine.
# Usage: test-metrics-prometheus.sh QSIMD SOURCE_ROOT
set -uo pipefail
qsimd=$1 src=$2
images=$src/vm_images

if [ ! -f "$images/tiny.qcow2" ]; then
    if [ -n "${QSIM_REQUIRE_VM:-}" ]; then
        echo "Bail out! $images/tiny.qcow2 is missing (meson compile -C build guest-image)"
        exit 1
    fi
    echo "1..0 # SKIP tiny guest image not built"
    exit 0
fi
for tool in prometheus promtool curl python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "Bail out! $tool is missing: bash data/install-deps.sh installs it"
        exit 1
    fi
done

tmp=$(mktemp -d /tmp/qsim-metrics.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
prom_port=$(free_port)
agents_port=$(free_port)
url=http://127.0.0.1:$port
prom=http://127.0.0.1:$prom_port
token=metrics-test-token
qsimd_pid= prom_pid= agents_pid=
stop_pid() { # pid: ours only, started by this script
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
    fi
}
cleanup() {
    stop_pid "$prom_pid"
    stop_pid "$agents_pid"
    stop_pid "$qsimd_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

mkdir -p "$tmp/configs"
cp "$src/vm_configs/tiny.conf" "$tmp/configs/"
export QSIM_DB_PATH=$tmp/qsim.db QSIM_API_PORT=$port QSIM_VM_IMAGES_DIR=$images
export QSIM_VM_CONFIG_DIR=$tmp/configs QSIM_RUN_DIR=$tmp/run QSIM_STATE_DIR=$tmp/state
export QSIM_AGENT_COUNT=2 QSIM_MAX_CONCURRENT_VMS=2 QSIM_LOG_LEVEL=INFO QSIM_API_TOKENS=$token
unset QSIM_ACCEL SQLITE_SIM_ACCEL QSIM_METRICS_LISTEN QSIM_METRICS_LOOPBACK_NO_AUTH

"$qsimd" all >"$tmp/qsimd.log" 2>&1 &
qsimd_pid=$!
up=0
for _ in $(seq 1 600); do
    if curl -sf "$url/health" >/dev/null; then up=1; break; fi
    kill -0 "$qsimd_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "Bail out! qsimd all did not come up: $(tail -5 "$tmp/qsimd.log" | tr '\n' ' ')"
    exit 1
fi
auth=(-H "Authorization: Bearer $token")

code=$(curl -s -o /dev/null -w '%{http_code}' "$url/metrics")
[ "$code" = 401 ] && ok "/metrics needs the token like the rest of the API" || not_ok "/metrics without a token" "HTTP $code"
curl -s "${auth[@]}" -D "$tmp/headers" "$url/metrics" >"$tmp/metrics.txt"
grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/headers" \
    && ok "/metrics is text/plain; version=0.0.4" || not_ok "/metrics content type" "$(cat "$tmp/headers")"
if out=$(promtool check metrics <"$tmp/metrics.txt" 2>&1); then
    ok "promtool check metrics accepts a live qsimd all's output"
else
    not_ok "promtool check metrics" "$out"
fi

# every family qsimd exports is documented
missing=$(grep '^# TYPE ' "$tmp/metrics.txt" | awk '{print $3}' | while read -r m; do
    grep -q "\`$m\`" "$src/docs/metrics.md" || echo "$m"
done)
[ -z "$missing" ] && ok "docs/metrics.md lists every exported metric" || not_ok "undocumented metrics" $missing

# Prometheus, private: its own data dir, config and port; scrapes qsimd every second
echo -n "$token" >"$tmp/token"
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $src/data/prometheus/qsim-alerts.yml
scrape_configs:
  - job_name: qsim
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: $tmp/token
    static_configs:
      - targets: ["127.0.0.1:$port"]
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom-data" \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
up=0
for _ in $(seq 1 600); do
    if curl -sf "$prom/-/ready" >/dev/null; then up=1; break; fi
    kill -0 "$prom_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "Bail out! prometheus did not come up: $(tail -5 "$tmp/prometheus.log" | tr '\n' ' ')"
    exit 1
fi
ok "a private Prometheus runs on 127.0.0.1:$prom_port"

# query EXPR: prints Prometheus's JSON answer
query() { curl -s --data-urlencode "query=$1" "$prom/api/v1/query"; }
# wait_query EXPR PYTHON-CONDITION-ON-RESULT: polls until it holds. The limit is a hang
# guard (a scrape a second makes it true within seconds of the event); after one check has
# failed the later ones wait less, so a broken build fails every check it breaks within
# meson's timeout instead of timing out as a whole.
wait_limit=90
wait_query() {
    local expr=$1 cond=$2 until=$((SECONDS + wait_limit))
    while [ "$SECONDS" -lt "$until" ]; do
        if query "$expr" | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert d['status'] == 'success', d
r = d['data']['result']
sys.exit(0 if ($cond) else 1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    wait_limit=15
    return 1
}

if wait_query 'up{job="qsim"}' 'len(r) == 1 and r[0]["value"][1] == "1"'; then
    ok "Prometheus scrapes qsimd all with the bearer token (up == 1)"
    wait_limit=90
else
    echo "Bail out! Prometheus does not scrape qsimd: $(query 'up') $(curl -s "$prom/api/v1/targets" | head -c 1000)"
    exit 1
fi

submit() { # commands: prints the uuid
    curl -s "${auth[@]}" -X POST "$url/requests" -H "Content-Type: application/json" \
        -d "{\"vm_name\": \"tiny\", \"commands\": \"$1\", \"timeout\": 300}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])'
}
good=$(submit 'echo hello from metrics')
bad=$(submit 'echo about to fail; exit 3')
if [ -n "$good" ] && [ -n "$bad" ]; then ok "two requests submitted"; else not_ok "submit" "$good" "$bad"; fi

final() { curl -s "${auth[@]}" "$url/requests/$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["status"])'; }
until=$((SECONDS + 240))
while [ "$SECONDS" -lt "$until" ]; do
    g=$(final "$good") b=$(final "$bad")
    case "$g $b" in *pending*|*acknowledged*|*running*) sleep 0.5 ;; *) break ;; esac
done
[ "$g $b" = "done failed" ] && ok "the requests end done and failed" \
    || not_ok "final statuses" "$g $b" "$(tail -20 "$tmp/qsimd.log")"

if wait_query 'qsim_requests_finished_total' \
    'sorted((x["metric"].get("status"), x["metric"].get("reason"), x["value"][1]) for x in r) == [("done", "success", "1"), ("failed", "exit_nonzero", "1")]'; then
    ok "Prometheus: qsim_requests_finished_total has {done,success} 1 and {failed,exit_nonzero} 1"
else
    not_ok "qsim_requests_finished_total in Prometheus" "$(query 'qsim_requests_finished_total')"
fi
if wait_query 'sum(qsim_first_stdout_byte_seconds_count)' 'len(r) == 1 and float(r[0]["value"][1]) == 2'; then
    ok "Prometheus: the submit -> first stdout byte histogram has 2 observations"
else
    not_ok "first-byte histogram in Prometheus" "$(query 'qsim_first_stdout_byte_seconds_count')"
fi
wait_query 'sum(qsim_first_stdout_byte_seconds_bucket{le="+Inf"})' 'len(r) == 1 and float(r[0]["value"][1]) == 2' \
    && ok "Prometheus: its +Inf bucket holds both" || not_ok "+Inf bucket" "$(query 'qsim_first_stdout_byte_seconds_bucket')"
wait_query 'qsim_requests_submitted_total' 'len(r) == 1 and r[0]["value"][1] == "2"' \
    && ok "Prometheus: qsim_requests_submitted_total is 2" || not_ok "submitted total" "$(query 'qsim_requests_submitted_total')"
wait_query 'sum(qsim_vm_ready_seconds_count)' 'len(r) == 1 and float(r[0]["value"][1]) == 2' \
    && ok "Prometheus: two VM start -> ready observations" || not_ok "ready histogram" "$(query 'qsim_vm_ready_seconds_count')"
wait_query 'qsim_output_bytes_total{log_type="stdout"}' 'len(r) == 1 and float(r[0]["value"][1]) > 0' \
    && ok "Prometheus: stdout bytes stored are counted" || not_ok "output bytes" "$(query 'qsim_output_bytes_total')"
wait_query 'qsim_http_requests_total{route="/requests",method="POST",code="2xx"}' 'len(r) == 1 and float(r[0]["value"][1]) == 2' \
    && ok "Prometheus: HTTP requests by route template" || not_ok "http requests" "$(query 'qsim_http_requests_total')"
wait_query 'qsim_build_info' 'len(r) == 1 and r[0]["metric"]["version"] and r[0]["metric"]["qemu"] != "unknown" and r[0]["metric"]["accel"] in ("kvm", "tcg")' \
    && ok "Prometheus: qsim_build_info names the version, QEMU and the accelerator" || not_ok "build info" "$(query 'qsim_build_info')"
# the bundled alerting rules load and evaluate against real series
rules=$(curl -s "$prom/api/v1/rules")
printf '%s' "$rules" | python3 -c '
import json, sys
d = json.load(sys.stdin)
rules = [r for g in d["data"]["groups"] for r in g["rules"]]
names = {r["name"] for r in rules}
assert {"QsimQueueWaitHigh", "QsimFailureRatioHigh", "QsimNoReadyAgent", "QsimDiskLow"} <= names, names
assert all(r["health"] != "err" for r in rules), [(r["name"], r.get("lastError")) for r in rules]' \
    && ok "Prometheus loads data/prometheus/qsim-alerts.yml and evaluates it without errors" \
    || not_ok "alerting rules in Prometheus" "$(printf '%s' "$rules" | head -c 2000)"

# `qsimd agents` with METRICS_LISTEN: its own /metrics (only that path), its own agents
QSIM_METRICS_LISTEN=127.0.0.1:$agents_port QSIM_AGENT_COUNT=3 "$qsimd" agents >"$tmp/agents.log" 2>&1 &
agents_pid=$!
up=0
for _ in $(seq 1 600); do
    if curl -s -o /dev/null "${auth[@]}" "http://127.0.0.1:$agents_port/metrics"; then up=1; break; fi
    kill -0 "$agents_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" = 1 ]; then
    curl -s "${auth[@]}" "http://127.0.0.1:$agents_port/metrics" >"$tmp/agents.txt"
    code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "http://127.0.0.1:$agents_port/requests")
    if promtool check metrics <"$tmp/agents.txt" >/dev/null 2>&1 &&
        grep -q '^qsim_agents{state="idle"} 3$' "$tmp/agents.txt" &&
        ! grep -q '^qsim_requests_submitted_total' "$tmp/agents.txt" && [ "$code" = 404 ]; then
        ok "qsimd agents serves its own /metrics on METRICS_LISTEN (and nothing else)"
    else
        not_ok "qsimd agents METRICS_LISTEN" "requests: HTTP $code" "$(grep -v '^#' "$tmp/agents.txt" | head -20)"
    fi
else
    not_ok "qsimd agents METRICS_LISTEN did not come up" "$(tail -5 "$tmp/agents.log")"
fi

stop_pid "$agents_pid"; agents_pid=
stop_pid "$prom_pid"; prom_pid=
kill -TERM "$qsimd_pid"
wait "$qsimd_pid"
rc=$?
qsimd_pid=
[ "$rc" = 0 ] && ok "qsimd exits 0 on SIGTERM" || not_ok "qsimd SIGTERM exit" "rc=$rc" "$(tail -5 "$tmp/qsimd.log")"

echo "1..$n"
[ "$failed" = 0 ]
