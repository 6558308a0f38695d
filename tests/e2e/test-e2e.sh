#!/usr/bin/env bash
# End to end, as a user sees it: `qsimd all` on the real tiny guest, driven by the seed's curl
# examples and by qsim-ctl, over real HTTP on 127.0.0.1. TAP output.
# Usage: test-e2e.sh QSIMD QSIM_CTL SOURCE_ROOT
set -uo pipefail
qsimd=$1 ctl=$2 src=$3
images=$src/vm_images

if [ ! -f "$images/tiny.qcow2" ]; then
    if [ -n "${QSIM_REQUIRE_VM:-}" ]; then
        echo "Bail out! $images/tiny.qcow2 is missing (meson compile -C build guest-image)"
        exit 1
    fi
    echo "1..0 # SKIP tiny guest image not built"
    exit 0
fi

tmp=$(mktemp -d /tmp/qsim-e2e.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
qsimd_pid=
cleanup() {
    if [ -n "$qsimd_pid" ] && kill -0 "$qsimd_pid" 2>/dev/null; then
        kill -KILL "$qsimd_pid" 2>/dev/null
        wait "$qsimd_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { # description, then a command that must succeed
    local d=$1; shift
    local out
    if out=$("$@" 2>&1); then ok "$d"; else not_ok "$d" "command failed: $*" "$out"; fi
}

export QSIM_DB_PATH=$tmp/qsim.db QSIM_API_PORT=$port QSIM_VM_IMAGES_DIR=$images
# QSIM_TEST_DATABASE=pg (test e2e-pg): the same run on a real PostgreSQL server of its own,
# stopped with this script (its watchdog also stops it if we die)
unset QSIM_DATABASE_URL SQLITE_SIM_DATABASE_URL
if [ "${QSIM_TEST_DATABASE:-}" = pg ]; then
    pg_dir=$(mktemp -u /tmp/qsim-e2e-pg.XXXXXX)
    if ! pg_url=$(bash "$src/tests/pg/pg-server.sh" start "$pg_dir" $$ 2>"$tmp/pg.err"); then
        echo "Bail out! cannot start PostgreSQL: $(tr '\n' ' ' <"$tmp/pg.err")"
        exit 1
    fi
    export QSIM_DATABASE_URL=$pg_url
    cleanup_pg() { bash "$src/tests/pg/pg-server.sh" destroy "$pg_dir" >/dev/null 2>&1; }
    trap 'cleanup; cleanup_pg' EXIT
fi
# the bundled configs, plus tinykvm: the tiny guest with ACCEL=kvm forced
mkdir -p "$tmp/configs"
cp "$src"/vm_configs/*.conf "$tmp/configs/"
{ cat "$src/vm_configs/tiny.conf"; echo "ACCEL=kvm"; } >"$tmp/configs/tinykvm.conf"
export QSIM_VM_CONFIG_DIR=$tmp/configs QSIM_RUN_DIR=$tmp/run QSIM_STATE_DIR=$tmp/state
unset QSIM_ACCEL SQLITE_SIM_ACCEL
export QSIM_AGENT_COUNT=2 QSIM_MAX_CONCURRENT_VMS=2 QSIM_URL=$url QSIM_LOG_LEVEL=INFO
unset QSIM_API_TOKENS SQLITE_SIM_API_TOKENS

"$qsimd" all >"$tmp/qsimd.log" 2>&1 &
qsimd_pid=$!
up=0
for _ in $(seq 1 300); do
    if curl -sf "$url/health" >/dev/null; then up=1; break; fi
    kill -0 "$qsimd_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "Bail out! qsimd all did not come up: $(tail -5 "$tmp/qsimd.log" | tr '\n' ' ')"
    exit 1
fi
ok "qsimd all serves /health"
if [ -n "${QSIM_DATABASE_URL:-}" ]; then
    # the run below is on PostgreSQL, not on a SQLite file made behind our back
    pg_status=$("$qsimd" status 2>&1)
    if grep -q '^database: postgresql://' <<<"$pg_status" && [ ! -e "$tmp/qsim.db" ]; then
        ok "the store is the PostgreSQL database of DATABASE_URL"
    else
        not_ok "the store is PostgreSQL" "$(ls "$tmp")" "$pg_status"
    fi
fi

# The seed README's example, byte for byte but for the VM name.
reply=$(curl -s -X POST "$url/requests" \
  -H "Content-Type: application/json" \
  -d '{
    "vm_name": "tiny",
    "commands": "echo Hello World && uname -a",
    "timeout": 300
  }')
uuid=$(printf '%s' "$reply" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"]=="pending" and d["message"]=="Request created successfully"; print(d["uuid"])') \
    && ok "seed curl POST /requests answers pending" || not_ok "seed curl POST /requests" "$reply"

# show-logs --follow ends when the request ends, and carries its output.
follow=$(timeout 180 "$ctl" show-logs "$uuid" --follow 2>&1)
case "$follow" in
*"Hello World"*) ok "show-logs --follow streams the output and ends" ;;
*) not_ok "show-logs --follow" "$follow" ;;
esac
state=$(curl -s "$url/requests/$uuid" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["status"], d["exit_code"])')
[ "$state" = "done 0" ] && ok "the seed request ends done with exit code 0" || not_ok "seed request final state" "$state"
logs=$(curl -s "$url/requests/$uuid/logs")
printf '%s' "$logs" | python3 -c '
import json, sys
types = [e["log_type"] for e in json.load(sys.stdin)]
for t in ("boot", "system", "command", "stdout"):
    assert t in types, t
assert types.index("command") < types.index("stdout")
' && ok "logs hold boot, system, command and stdout entries in order" || not_ok "log types" "$(printf '%s' "$logs" | head -c 400)"

# qsim-ctl run passes the guest's streams and exit status through.
"$ctl" run tiny -- 'echo out; echo err >&2; exit 3' >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 3 ] && ok "run passes exit status 3 through" || not_ok "run exit status" "rc=$rc" "$(cat "$tmp/err")"
[ "$(cat "$tmp/out")" = "out" ] && ok "run streams stdout to stdout" || not_ok "run stdout" "$(cat "$tmp/out")"
grep -qx "err" "$tmp/err" && ok "run streams stderr to stderr" || not_ok "run stderr" "$(cat "$tmp/err")"

"$ctl" run tiny -- 'true' >/dev/null 2>&1
rc=$?
[ "$rc" = 0 ] && ok "run exits 0 on success" || not_ok "run success" "rc=$rc"

"$ctl" run tiny --timeout 5 -- 'sleep 60' >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" = 124 ] && ok "run exits 124 when the request times out" || not_ok "run timeout" "rc=$rc" "$(cat "$tmp/err")"

"$ctl" --json list-requests --limit 10 | python3 -c 'import json,sys; assert len(json.load(sys.stdin)) == 4' \
    && ok "list-requests --json lists the four requests" || not_ok "list-requests --json"
check "qsim-ctl stats answers" "$ctl" stats
check "qsim-ctl vms lists tiny" bash -c "'$ctl' vms | grep -q '^tiny'"
check "qsimd status finds nothing wrong" "$qsimd" status

# The accelerator: one verdict for this host in the store, shown by /health, /vms, status.
health_accel=$(curl -s "$url/health" | python3 -c '
import json, sys
a = json.load(sys.stdin)["accelerator"]
assert a["setting"] == "auto" and a["source"] == "default", a
assert len(a["hosts"]) == 1, a
h = a["hosts"][0]
assert h["accel"] in ("kvm", "tcg") and h["probe"], h
print(h["accel"])') && ok "/health shows the accelerator and its probe ($health_accel)" \
    || not_ok "/health accelerator" "$(curl -s "$url/health")"
curl -s "$url/vms" | python3 -c '
import json, sys
vms = {v["name"]: v for v in json.load(sys.stdin)}
assert vms["tinykvm"]["accelerator"]["setting"] == "kvm", vms["tinykvm"]
assert vms["tinykvm"]["accelerator"]["source"] == "tinykvm.conf", vms["tinykvm"]
assert vms["tiny"]["accelerator"]["setting"] == "auto", vms["tiny"]' \
    && ok "/vms shows each VM's accelerator setting" || not_ok "/vms accelerator" "$(curl -s "$url/vms")"
"$qsimd" status >"$tmp/status" 2>&1
grep -q "^accelerator: $health_accel (ACCEL=auto from default" "$tmp/status" \
    && ok "qsimd status says $health_accel and why" || not_ok "status accelerator" "$(cat "$tmp/status")"
logs=$(curl -s "$url/requests/$uuid/logs?log_type=system")
printf '%s' "$logs" | grep -q "accelerator: $health_accel (ACCEL=auto" \
    && ok "the request's system log names its accelerator" || not_ok "system log accelerator" "$(printf '%s' "$logs" | head -c 600)"

# ACCEL=kvm forced: where KVM runs a guest it works; where it does not, the request fails
# fast with a reason that names KVM, never a generic boot timeout.
start=$(date +%s)
"$ctl" run tinykvm --timeout 120 -- 'echo kvm-ok' >"$tmp/out" 2>"$tmp/err"
rc=$? took=$(( $(date +%s) - start ))
if [ "$health_accel" = kvm ]; then
    [ "$rc" = 0 ] && [ "$(cat "$tmp/out")" = kvm-ok ] && ok "forced KVM runs where KVM works" \
        || not_ok "forced KVM on a KVM host" "rc=$rc" "$(tail -5 "$tmp/err")"
else
    reason=$(curl -s "$url/requests?vm_name=tinykvm" | python3 -c '
import json, sys
r = json.load(sys.stdin)[0]
print(r["status"], r["error"])')
    if [ "$rc" = 0 ]; then
        not_ok "forced KVM on a host where KVM cannot run a guest" "it succeeded"
    elif [[ "$reason" == failed* && "$reason" == *KVM* && "$reason" == *"ACCEL=kvm from tinykvm.conf"* ]]; then
        ok "forced KVM fails in ${took}s, naming KVM and the ACCEL setting"
    else
        not_ok "forced KVM failure reason" "rc=$rc" "$reason"
    fi
    [ "$took" -le 30 ] && ok "forced KVM fails fast (${took}s)" || not_ok "forced KVM took ${took}s"
fi

# PostgreSQL restarts under a running qsimd: /health says degraded meanwhile, and the same
# process serves and runs requests again once it is back, without a restart of its own
if [ -n "${QSIM_DATABASE_URL:-}" ]; then
    bash "$src/tests/pg/pg-server.sh" stop "$pg_dir"
    code=$(curl -s -o "$tmp/health" -w '%{http_code}' "$url/health")
    if [ "$code" = 503 ] && grep -q '"status":"degraded"' "$tmp/health" \
        && grep -q '"database":"unreachable"' "$tmp/health"; then
        ok "/health is 503 degraded while PostgreSQL is down"
    else
        not_ok "/health while PostgreSQL is down" "HTTP $code" "$(cat "$tmp/health")"
    fi
    bash "$src/tests/pg/pg-server.sh" start "$pg_dir" >/dev/null 2>"$tmp/pg.err" \
        || not_ok "PostgreSQL restarts" "$(cat "$tmp/pg.err")"
    back=0
    for _ in $(seq 1 100); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health")" = 200 ]; then back=1; break; fi
        sleep 0.1
    done
    [ "$back" = 1 ] && ok "/health is ok again after PostgreSQL restarted" \
        || not_ok "/health after the restart" "$(curl -s "$url/health")"
    out=$("$ctl" run tiny --timeout 120 -- 'echo after-restart' 2>"$tmp/err")
    rc=$?
    [ "$rc" = 0 ] && [ "$out" = after-restart ] && ok "a request runs after PostgreSQL restarted" \
        || not_ok "request after the restart" "rc=$rc out=$out" "$(tail -5 "$tmp/err")" "$(tail -25 "$tmp/qsimd.log" | tr "\n" "|")"
fi

# Graceful stop: qsimd exits 0 and no QEMU of ours is left.
kill -TERM "$qsimd_pid"
wait "$qsimd_pid"
rc=$?
qsimd_pid=
[ "$rc" = 0 ] && ok "qsimd exits 0 on SIGTERM" || not_ok "qsimd SIGTERM exit" "rc=$rc" "$(tail -5 "$tmp/qsimd.log")"
if pgrep -f -- "$tmp/run" >/dev/null; then
    not_ok "no QEMU left after shutdown" "$(pgrep -af -- "$tmp/run")"
else
    ok "no QEMU left after shutdown"
fi
left=$(find "$tmp/run" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
[ "$left" = 0 ] && ok "no run directory left" || not_ok "run directories left" "$(ls "$tmp/run")"

echo "1..$n"
[ "$failed" = 0 ]
