#!/usr/bin/env bash
# schemathesis (from PyPI, pinned) against the store as a user starts it, `npm start`, on a free port:
#   - every check of schemathesis (`--checks all`: no 5xx, status codes, response schemas, content
#     types, response headers, invalid data rejected, valid data accepted, unsupported methods 405
#     with Allow, auth enforced), through every phase (coverage, fuzzing, stateful over the links),
#     against the document the front serves at GET /openapi.json;
#   - then scripts/schemathesis/audit.mjs: every change to stock and orders in the database is
#     accounted for by a request the API accepted, so no rejected request changed anything.
# Stops everything it started, also on failure or Ctrl-C. Exit 0 only when both pass.
#
#   bash scripts/schemathesis.sh
#   SCHEMATHESIS_MAX_EXAMPLES=500 SCHEMATHESIS_SEED=7 bash scripts/schemathesis.sh
#
# The venv lives outside the repository (BAZAR_SCHEMATHESIS_VENV, default ~/.cache/bazar/...); it
# is created on first use with the pinned version.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

ST_VERSION=4.32.5
VENV="${BAZAR_SCHEMATHESIS_VENV:-$HOME/.cache/bazar/schemathesis-$ST_VERSION}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-150}"
SEED="${SCHEMATHESIS_SEED:-20261201}"
started=$(date +%s)

if [[ ! -x "$VENV/bin/st" ]] || [[ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $ST_VERSION" ]]; then
  echo "== schemathesis $ST_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bazar-schemathesis.XXXXXX")
store_pid=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$store_pid" ]] && kill -0 "$store_pid" 2>/dev/null; then
    # Ctrl-C for the launcher's process group: it stops every service and Postgres, in order.
    kill -INT -- "-$store_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$store_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$store_pid" 2>/dev/null; then
      echo "schemathesis.sh: the store did not stop in 30 s; killing it" >&2
      kill -KILL -- "-$store_pid" 2>/dev/null || true
    fi
    wait "$store_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f "$work/store.log" ]]; then
    echo "--- npm start output (last 40 lines) ---" >&2
    tail -n 40 "$work/store.log" >&2 || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
token="schemathesis-$(node -e "console.log(require('crypto').randomBytes(16).toString('hex'))")"
data="$work/data"

echo "== npm start on port $port"
# Its own process group (setsid), so that cleanup can signal the launcher and whatever it spawned.
ADMIN_TOKEN="$token" setsid npm start --silent -- --port "$port" --data-dir "$data" --reset \
  >"$work/store.log" 2>&1 </dev/null &
store_pid=$!
for _ in $(seq 1 1200); do
  grep -q 'Bazar is running' "$work/store.log" 2>/dev/null && break
  kill -0 "$store_pid" 2>/dev/null || { echo "schemathesis.sh: npm start exited" >&2; exit 1; }
  sleep 0.1
done
grep -q 'Bazar is running' "$work/store.log" || { echo "schemathesis.sh: the store was not up in 120 s" >&2; exit 1; }
base="http://127.0.0.1:$port"

# The primary, for the audit: its port from the banner, its password from the cluster's metadata.
pg_port=$(sed -n 's/.*postgres  *primary \([0-9][0-9]*\), standby.*/\1/p' "$work/store.log" | head -n 1)
pg_password=$(node -e "console.log(JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).password)" "$data/pg/cluster.json")
db="postgres://bazar:$pg_password@127.0.0.1:$pg_port/bazar"

node scripts/schemathesis/audit.mjs snapshot "$db" >"$work/before.json"

echo "== schemathesis $ST_VERSION: $base/openapi.json (max $MAX_EXAMPLES examples per operation, seed $SEED)"
st_rc=0
(
  cd "$work"
  "$VENV/bin/st" --config-file "$root/scripts/schemathesis/schemathesis.toml" run "$base/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --workers 1 \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --generation-database none \
    --request-timeout 10 \
    --report har --report-har-path "$work/run.har" \
    --no-color
) || st_rc=$?

echo "== audit: rejected requests changed nothing"
audit_rc=0
node scripts/schemathesis/audit.mjs verify "$db" "$work/before.json" "$work/run.har" || audit_rc=$?

elapsed=$(($(date +%s) - started))
if [[ $st_rc -ne 0 || $audit_rc -ne 0 ]]; then
  echo "schemathesis.sh: FAILED (schemathesis exit $st_rc, audit exit $audit_rc) in ${elapsed} s" >&2
  exit 1
fi
echo "schemathesis.sh: passed in ${elapsed} s"
