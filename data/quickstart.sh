#!/usr/bin/env bash
# README command 1: from a fresh Debian 12 machine to a VM that boots and answers.
# Installs the packages, builds qsim and the tiny guest, starts `qsimd all` on 127.0.0.1,
# runs one sample request with live output through `qsim-ctl run`, then stops qsimd.
# Usage: bash data/quickstart.sh [--keep-running] [commands...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

keep=0
if [ "${1:-}" = "--keep-running" ]; then
    keep=1
    shift
fi
commands=${*:-'echo "Hello from $(hostname)"; uname -a; echo "this line goes to stderr" >&2; cat /proc/uptime'}

bash data/install-deps.sh
if [ -f build/build.ninja ]; then
    meson setup --reconfigure build >/dev/null
else
    meson setup build
fi
meson compile -C build
meson compile -C build guest-image

port=${QSIM_API_PORT:-8000}
state=$root/build/quickstart
# qsimd refuses a group- or world-writable database or run directory (another local user
# could swap files in it): keep ours private whatever the umask
mkdir -p "$state"
chmod 700 "$state"
export QSIM_DB_PATH=$state/qsim.db
export QSIM_API_PORT=$port
export QSIM_VM_IMAGES_DIR=$root/vm_images
export QSIM_VM_CONFIG_DIR=$root/vm_configs
export QSIM_RUN_DIR=$state/run
export QSIM_URL=http://127.0.0.1:$port

./build/src/daemon/qsimd all >"$state/qsimd.log" 2>&1 &
qsimd_pid=$!
stop_qsimd() {
    if [ "$keep" = 0 ] && kill -0 "$qsimd_pid" 2>/dev/null; then
        kill -TERM "$qsimd_pid"
        wait "$qsimd_pid" || true
    fi
}
trap stop_qsimd EXIT

for _ in $(seq 1 100); do
    if ./build/src/cli/qsim-ctl status >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$qsimd_pid" 2>/dev/null; then
        echo "quickstart: qsimd exited; its log follows" >&2
        cat "$state/qsimd.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "quickstart: qsimd all is up on $QSIM_URL (log: $state/qsimd.log)"
echo "quickstart: running on the tiny VM: $commands"
rc=0
./build/src/cli/qsim-ctl run tiny --timeout 120 -- "$commands" || rc=$?
echo "quickstart: the request ended with exit status $rc"
./build/src/cli/qsim-ctl list-requests --limit 5 || true
if [ "$keep" = 1 ]; then
    echo "quickstart: qsimd keeps running as PID $qsimd_pid; try: QSIM_URL=$QSIM_URL ./build/src/cli/qsim-ctl run tiny -- uname -a"
    trap - EXIT
fi
exit $rc
