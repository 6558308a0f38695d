#!/usr/bin/env bash
# The Prometheus files in data/prometheus/ (issue 15), without a qsimd: promtool checks the
# alerting rules and unit-tests them (tests/e2e/metrics-alerts-test.yml), checks the example
# scrape configuration, and every qsim_ metric the rules and the Grafana dashboard use must
# be one docs/metrics.md documents. The dashboard itself is not checked against a Grafana.
# Usage: test-metrics-files.sh SOURCE_ROOT
set -uo pipefail
src=$1
data=$src/data/prometheus

for tool in promtool python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "Bail out! $tool is missing: bash data/install-deps.sh installs it (Debian's prometheus)"
        exit 1
    fi
done
tmp=$(mktemp -d /tmp/qsim-metrics-files.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

if out=$(promtool check rules "$data/qsim-alerts.yml" 2>&1); then
    ok "promtool check rules accepts qsim-alerts.yml"
else
    not_ok "promtool check rules" "$out"
fi
cp "$data/qsim-alerts.yml" "$src/tests/e2e/metrics-alerts-test.yml" "$tmp/"
if out=$(cd "$tmp" && promtool test rules metrics-alerts-test.yml 2>&1); then
    ok "promtool test rules: each alert fires when it should and only then"
else
    not_ok "promtool test rules" "$out"
fi
# the example names a token file under /etc/prometheus: check it with one that exists
echo -n token >"$tmp/qsim-token"
sed "s|/etc/prometheus/qsim-token|$tmp/qsim-token|" "$data/prometheus.yml" >"$tmp/prometheus.yml"
if out=$(cd "$tmp" && promtool check config prometheus.yml 2>&1); then
    ok "promtool check config accepts the example prometheus.yml (and its rule file)"
else
    not_ok "promtool check config" "$out"
fi

if out=$(python3 - "$data" "$src/docs/metrics.md" <<'PY' 2>&1
import json, re, sys
data, doc = sys.argv[1], open(sys.argv[2]).read()
documented = set(re.findall(r"`(qsim_[a-z_]+)`", doc))
dash = json.load(open(data + "/grafana-dashboard.json"))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
exprs.append(open(data + "/qsim-alerts.yml").read())
used = set()
for e in exprs:
    for m in re.findall(r"\bqsim_[a-z_]+", e):
        # histogram series are documented by their family name
        used.add(re.sub(r"_(bucket|sum|count)$", "", m) if m not in documented else m)
missing = sorted(used - documented)
assert not missing, "used but not in docs/metrics.md: %s" % missing
assert len(dash["panels"]) > 0
print("%d metrics used, all documented" % len(used))
PY
); then
    ok "every metric the rules and the dashboard use is documented ($out)"
else
    not_ok "rules and dashboard metrics" "$out"
fi

echo "1..$n"
[ "$failed" = 0 ]
