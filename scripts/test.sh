#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): installs and starts what the tests need,
# then lint, type-check, format, build, spec drift, and every unit, e2e and integration test against the real tools.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-test-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

npm run --silent lint
npm run --silent typecheck
npm run --silent format:check
npm run --silent build

# Spec drift: the committed spec must be what the code generates.
generated=$(mktemp)
node dist/openapi/write-spec.js "$generated" >/dev/null
if ! diff -q openapi/openapi.json "$generated" >/dev/null; then
  echo "openapi/openapi.json drifted from the code; run 'npm run openapi' and commit it:" >&2
  diff -u openapi/openapi.json "$generated" | head -40 >&2
  exit 1
fi

npm run --silent build:test
mapfile -t files < <(find dist-test/test -name '*.test.js' | sort)
mkdir -p test-artifacts
node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
