#!/usr/bin/env bash
# Runs every libFuzzer harness in BUILD_DIR/tests/fuzz for SECONDS each, two at a time, on a
# copy of its seed corpus in tests/fuzz/corpus/<name> (new inputs go to the copy; the seeds
# and every committed crash input are replayed first, as regression tests). A crash, leak,
# timeout or out-of-memory is a failure; its input is kept in tests/fuzz/crashes/ to be
# committed to the corpus once fixed. Prints "fuzz: N passed, N failed".
# Usage: run-fuzzers.sh BUILD_DIR [SECONDS]
set -uo pipefail
build=$1
seconds=${2:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
crashes=$root/tests/fuzz/crashes
work=$(mktemp -d /tmp/qsim-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$crashes"

run_one() { # name
    local name=$1 bin=$build/tests/fuzz/fuzz-$1 rc
    mkdir -p "$work/$name"
    "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$crashes/$name-" \
        "$work/$name" "$root/tests/fuzz/corpus/$name" >"$work/$name.log" 2>&1
    rc=$?
    if [ "$rc" = 0 ]; then
        echo "fuzz: $name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$name.log" | grep -o '[0-9]*$') runs in ${seconds}s)"
    else
        echo "fuzz: $name: FAILED (exit $rc); input kept in $crashes/$name-*; log tail:"
        tail -40 "$work/$name.log" | sed 's/^/    /'
    fi
    return $rc
}

names=()
for bin in "$build"/tests/fuzz/fuzz-*; do
    [ -f "$bin" ] && [ -x "$bin" ] && names+=("${bin##*/fuzz-}")
done
if [ "${#names[@]}" = 0 ]; then
    echo "fuzz: no harness in $build/tests/fuzz" >&2
    exit 1
fi
pass=0 fail=0
i=0
while [ "$i" -lt "${#names[@]}" ]; do
    pids=()
    for name in "${names[@]:$i:2}"; do
        run_one "$name" >"$work/$name.result" 2>&1 &
        pids+=($!)
    done
    for j in "${!pids[@]}"; do
        name=${names[$((i + j))]}
        if wait "${pids[$j]}"; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
        cat "$work/$name.result"
    done
    i=$((i + 2))
done
rmdir "$crashes" 2>/dev/null || true
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
