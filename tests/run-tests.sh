#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI run it:
# dependencies, build, the tiny guest image, every suite, then every suite again under ASan+UBSan
# (but for the suite asan-skip: two long PostgreSQL repeats of cases ASan sees on SQLite),
# then a bounded run of every libFuzzer harness (tests/fuzz, QSIM_FUZZ_SECONDS each, default 60).
# Usage: bash tests/run-tests.sh [--no-asan] [--no-fuzz] [--suite unit|vm|integration|fuzz]...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

asan=1
fuzz=1
suites=()
only_fuzz=0
while [ $# -gt 0 ]; do
    case "$1" in
    --no-asan) asan=0 ;;
    --no-fuzz) fuzz=0 ;;
    --suite)
        shift
        if [ "$1" = fuzz ]; then only_fuzz=1; else suites+=(--suite "$1"); fi
        ;;
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

run_pass() { # dir, label, extra meson test args...
    local rc=0 dir=$1 label=$2
    shift 2
    meson test -C "$dir" --print-errorlogs --no-rebuild "${suites[@]}" "$@" || rc=$?
    count "$dir" "$label"
    return $rc
}

# a --suite list without fuzz runs no fuzzer; --suite fuzz alone runs only the fuzzers
if [ "${#suites[@]}" -gt 0 ]; then
    fuzz=$only_fuzz
fi
rc=0
if [ "$only_fuzz" = 0 ] || [ "${#suites[@]}" -gt 0 ]; then
    setup build
    meson compile -C build guest-image
    run_pass build plain || rc=$?

    if [ "$asan" = 1 ]; then
        setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
        # suite asan-skip: long repeats of cases the ASan pass runs on the other backend
        run_pass build-asan asan --no-suite asan-skip || rc=$?
    fi
fi

if [ "$fuzz" = 1 ]; then
    # clang's libFuzzer, with ASan+UBSan, over the parsers hostile peers reach
    if [ -f build-fuzz/build.ninja ]; then
        meson setup --reconfigure build-fuzz >/dev/null
    else
        CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined \
            -Db_lundef=false -Dvm_tests=disabled >/dev/null
    fi
    meson compile -C build-fuzz $(cd tests/fuzz && for f in fuzz-*.c; do echo "tests/fuzz/${f%.c}"; done)
    fuzz_out=$(bash tests/fuzz/run-fuzzers.sh build-fuzz "${QSIM_FUZZ_SECONDS:-60}") || rc=1
    printf '%s\n' "$fuzz_out"
    line=$(printf '%s\n' "$fuzz_out" | tail -1)
    p=$(echo "$line" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(echo "$line" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    total_pass=$((total_pass + ${p:-0}))
    total_fail=$((total_fail + ${f:-1}))
fi

echo "run-tests: finished in $(( $(date +%s) - start )) s"
echo "tests: $total_pass passed, $total_fail failed"
exit $rc
