#!/usr/bin/env bash
# Runs the service for real on embedded defaults: SQLite catalog, local duplicity target, and a sample site tree when
# this machine has no /home/virtual. Prints where Swagger UI is and an admin token to paste into "Authorize".
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v duplicity >/dev/null || ! command -v getfattr >/dev/null || ! command -v setfacl >/dev/null; then
  echo "demo: installing duplicity, attr and acl"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq duplicity attr acl >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build

demo=$PWD/.demo
mkdir -p "$demo"
if [ -d /home/virtual ]; then
  virtual_root=/home/virtual
else
  virtual_root=$demo/virtual
  bash scripts/sample-tree.sh "$virtual_root"
fi

token=$(node -e "process.stdout.write(require('crypto').randomBytes(24).toString('base64url'))")
digest=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
printf '[{"name":"demo-admin","role":"admin","sha256":"%s"}]\n' "$digest" > "$demo/tokens.json"
chmod 600 "$demo/tokens.json"

export PORT=${PORT:-8080} HOST=${HOST:-127.0.0.1}
export VIRTUAL_ROOT=${VIRTUAL_ROOT:-$virtual_root}
export DATA_DIR=${DATA_DIR:-$demo/data}
export API_TOKENS_FILE=$demo/tokens.json
export DUPLICITY_TARGET=${DUPLICITY_TARGET:-file://$demo/backups}
export LOG_FORMAT=${LOG_FORMAT:-pretty}

# A small young generation: the idle service holds ~100 MB instead of ~128 MB (README, Memory).
node --max-semi-space-size=2 --optimize-for-size dist/main.js &
service=$!
trap 'kill $service 2>/dev/null' INT TERM EXIT
node -e "
  const url = 'http://$HOST:$PORT/readyz';
  (async () => { for (let i = 0; i < 150; i++) { try { if ((await fetch(url)).ok) return; } catch {} await new Promise(r => setTimeout(r, 200)); } process.exit(1); })();
" || { echo "demo: the service did not become ready" >&2; exit 1; }

cat <<INFO

  apiscp-backup-api is running (Ctrl-C stops it)
  Swagger UI:  http://$HOST:$PORT/docs
  Token:       $token      (role admin; click "Authorize" and paste it)
  Sites from:  $VIRTUAL_ROOT
  Backups to:  $DUPLICITY_TARGET
  Try:         curl -H "Authorization: Bearer $token" http://$HOST:$PORT/v1/sites

INFO
wait $service
