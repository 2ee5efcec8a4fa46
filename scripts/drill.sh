#!/usr/bin/env bash
# The crash and chain drills with more rounds than the suite runs: npm run drill -- --rounds 100 [--seed N] [--sftp]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=100
seed=""
files=(dist-test/test/integration/drills/crash-rounds.test.js dist-test/test/integration/drills/duplicity-chain.test.js)
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --sftp) files+=(dist-test/test/integration/drills/sftp-target.test.js); shift ;;
    *) echo "usage: npm run drill -- [--rounds N] [--seed N] [--sftp]" >&2; exit 64 ;;
  esac
done
npm run build --silent
npm run build:test --silent
export DRILL_ROUNDS="$rounds" DRILL_CHAIN_ROUNDS="$rounds" DRILL_SFTP_ROUNDS="$rounds"
[ -n "$seed" ] && export DRILL_SEED="$seed"
exec node --test --test-concurrency=1 --test-timeout=0 "${files[@]}"
