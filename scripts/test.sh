#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): installs and starts what the tests need,
# then lint, type-check, format, build, spec drift, and every unit, e2e and integration test against the real tools.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-test-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# Lint and format check run beside the builds (two cores). `build:test` type-checks everything `typecheck` does
# (same tsconfig includes), so the suite does not run tsc a third time.
checks=$(mktemp -d)
npm run --silent lint >"$checks/lint" 2>&1 &
lint_pid=$!
npm run --silent format:check >"$checks/format" 2>&1 &
format_pid=$!
npm run --silent build
npm run --silent build:test
for check in lint:$lint_pid format:$format_pid; do
  if ! wait "${check#*:}"; then
    cat "$checks/${check%%:*}" >&2
    echo "${check%%:*} failed" >&2
    exit 1
  fi
done
rm -rf "$checks"

# Spec drift: the committed spec must be what the code generates.
generated=$(mktemp)
node dist/openapi/write-spec.js "$generated" >/dev/null
if ! diff -q openapi/openapi.json "$generated" >/dev/null; then
  echo "openapi/openapi.json drifted from the code; run 'npm run openapi' and commit it:" >&2
  diff -u openapi/openapi.json "$generated" | head -40 >&2
  exit 1
fi

# The typed client must be what openapi-typescript makes of the committed spec.
generated_client=$(mktemp --suffix=.ts)
npx --no-install openapi-typescript openapi/openapi.json --default-non-nullable false -o "$generated_client" >/dev/null 2>&1
if ! diff -q clients/typescript/src/schema.ts "$generated_client" >/dev/null; then
  echo "clients/typescript/src/schema.ts drifted from openapi/openapi.json; run 'npm run client' and commit it:" >&2
  diff -u clients/typescript/src/schema.ts "$generated_client" | head -40 >&2
  exit 1
fi

# The contract as client generators read it: Redocly's recommended rules (redocly.yaml) with no problem at all, and
# Spectral's oas rules (.spectral.yaml) with no warning. Both run offline.
redocly_out=$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true npx --no-install redocly lint openapi/openapi.json 2>&1) || {
  echo "$redocly_out" >&2
  exit 1
}
if ! grep -q 'Your API description is valid' <<<"$redocly_out"; then
  echo "$redocly_out" >&2
  exit 1
fi
npx --no-install spectral lint --quiet --fail-severity=warn openapi/openapi.json

# Prometheus: the alerting rules, their unit test, and the scrape config the README shows (its paths made local).
promtool check rules prometheus/apiscp-backup-api.rules.yml >/dev/null
(cd prometheus && promtool test rules apiscp-backup-api.rules.test.yml >/dev/null)
prometheus_dir=$(mktemp -d)
cp prometheus/apiscp-backup-api.rules.yml "$prometheus_dir/"
echo token >"$prometheus_dir/token"
sed -e "s#/etc/prometheus/rules/#$prometheus_dir/#" -e "s#/etc/prometheus/apiscp-backup-api.token#$prometheus_dir/token#" \
  prometheus/scrape-config.yml >"$prometheus_dir/prometheus.yml"
promtool check config "$prometheus_dir/prometheus.yml" >/dev/null
rm -rf "$prometheus_dir" "$generated_client"

# One test file at a time. Two at a time (`--test-concurrency=2`) took 9.6 instead of 16.6 minutes on session 13's
# machine, and every file is written to allow it (its own temporary trees, database prefixes, daemons on free ports,
# service processes, and process scans limited to its own), but one of three such runs failed a restic cancel test
# ("the cancelled run left a lock behind") that no run one at a time ever has: not yet understood, so not risked in CI.
mapfile -t files < <(find dist-test/test -name '*.test.js' | sort)
mkdir -p test-artifacts
node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
