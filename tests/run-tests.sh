#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI run it:
# dependencies, build, the tiny guest image, every suite, then every suite again under ASan+UBSan.
# Usage: bash tests/run-tests.sh [--no-asan] [--suite unit|vm|integration]...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

asan=1
suites=()
while [ $# -gt 0 ]; do
    case "$1" in
    --no-asan) asan=0 ;;
    --suite) shift; suites+=(--suite "$1") ;;
    *) echo "run-tests: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done

start=$(date +%s)
bash data/install-deps.sh

setup() { # dir, extra meson args...
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@"
    fi
    meson compile -C "$dir"
}

# A missing guest image must fail the vm suites, never skip them silently.
export QSIM_REQUIRE_VM=1

total_pass=0
total_fail=0
count() { # dir, label
    local line
    line=$(python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = skip = 0
for raw in open(sys.argv[1]):
    r = json.loads(raw)
    if r["result"] in ("OK", "EXPECTEDFAIL"):
        ok += 1
    elif r["result"] == "SKIP":
        skip += 1
    else:
        bad += 1
print(ok, bad, skip)
PY
)
    read -r p f s <<<"$line"
    echo "$2: $p passed, $f failed, $s skipped"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

run_pass() { # dir, label
    local rc=0
    meson test -C "$1" --print-errorlogs --no-rebuild "${suites[@]}" || rc=$?
    count "$1" "$2"
    return $rc
}

setup build
meson compile -C build guest-image
rc=0
run_pass build plain || rc=$?

if [ "$asan" = 1 ]; then
    setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
    run_pass build-asan asan || rc=$?
fi

echo "run-tests: finished in $(( $(date +%s) - start )) s"
echo "tests: $total_pass passed, $total_fail failed"
exit $rc
