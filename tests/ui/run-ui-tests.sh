#!/usr/bin/env bash
# Runs the dashboard's browser tests: installs the locked npm packages first
# (npm ci, skipped when node_modules already matches the lockfile, so a run
# without network works once they are there). Usage: run-ui-tests.sh QSIMD SOURCE_ROOT OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null; then
    [ -n "${QSIM_REQUIRE_VM:-}" ] && { echo "Bail out! node is missing (data/install-deps.sh)"; exit 1; }
    echo "1..0 # SKIP node is not installed"
    exit 0
fi
if ! cmp -s "$here/package-lock.json" "$here/node_modules/.package-lock.json" 2>/dev/null &&
   ! node -e 'const a=require(process.argv[1]).packages,b=require(process.argv[2]).packages;for(const k of Object.keys(a))if(k&&(!b[k]||b[k].version!==a[k].version))process.exit(1)' \
        "$here/package-lock.json" "$here/node_modules/.package-lock.json" 2>/dev/null; then
    echo "# npm ci in $here"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) | sed 's/^/# /'
fi
exec node "$here/test-dashboard.mjs" "$@"
