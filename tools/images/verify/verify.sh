#!/usr/bin/env bash
# Runs the images tools/images built (the archives of images.json) outside Kubernetes, the way the
# cluster will run them, and checks each one's contract. A check of ours, not a test tier: the
# cluster tier runs them for real.
#
#   tools/images/verify/verify.sh [pause|node|services|postgres|curl|busybox|coredns|local-path]...
#
# Everything runs inside one network namespace with only loopback, one private mount namespace and
# one PID namespace whose end kills whatever is still running: nothing reaches the network, nothing
# stays mounted, nothing outlives the script. Each "container" is tools/images/verify/ctr.sh:
# read-only image root, the pod's volumes, the pod's uid, exactly the pod's environment.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${BAZAR_CACHE_DIR:-$HOME/.cache/bazar}/images"
index="$cache/images.json"

if [ -z "${BAZAR_VERIFY_INSIDE:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "verify.sh: needs root (namespaces, chroot)" >&2; exit 1; }
  [ -f "$index" ] || { echo "verify.sh: no $index; run npm run images -- build" >&2; exit 1; }
  exec env BAZAR_VERIFY_INSIDE=1 unshare --net --mount --propagation private --pid --fork --kill-child -- "$0" "$@"
fi

mount -t proc proc /proc
ip link set lo up
work="$(mktemp -d /tmp/bazar-verify.XXXXXX)"
export CTR_TMPDIR="$work/mnt"
mkdir -p "$CTR_TMPDIR"
cleanup() {
  local status=$?
  # Our children first (they hold mounts of $work), then the files.
  pkill -P $$ 2>/dev/null || :
  wait 2>/dev/null || :
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

failures=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() {
  printf 'FAIL  %s\n' "$*"
  failures=$((failures + 1))
}
check() {
  local what="$1"
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
section() { printf '\n== %s\n' "$*"; }

record() { node -e 'const i=require(process.argv[1]); const r=i.images.find(r=>r.name===process.argv[2]); if(!r){process.exit(1)} console.log(r[process.argv[3]])' "$index" "$1" "$2"; }

# The image's root under $work/img/NAME/root and its config (from the docker-archive).
extract() {
  local name="$1" dir="$work/img/$1"
  [ -d "$dir/root" ] && return 0
  local archive
  archive="$(record "$name" archive)"
  mkdir -p "$dir/root"
  tar -xf "$archive" -C "$dir" manifest.json
  local config layer
  config="$(node -p 'require(process.argv[1])[0].Config' "$dir/manifest.json")"
  tar -xf "$archive" -C "$dir" "$config"
  mv "$dir/$config" "$dir/config.json"
  for layer in $(node -p 'require(process.argv[1])[0].Layers.join(" ")' "$dir/manifest.json"); do
    tar -xOf "$archive" "$layer" | tar -x -C "$dir/root" --numeric-owner --xattrs --xattrs-include='*'
  done
}

# NAME=VALUE lines of the image's Env.
image_env() { node -e 'for (const e of require(process.argv[1]).config.Env ?? []) console.log(e)' "$work/img/$1/config.json"; }
image_field() { node -p 'JSON.stringify(require(process.argv[1]).config[process.argv[2]] ?? null)' "$work/img/$1/config.json" "$2"; }

# ctr NAME UID:GID [ctr.sh volume options]... -- [NAME=VALUE]... -- [CMD...]
# Runs in the foreground, with the image's Env first and the given variables after it; no CMD means
# the image's ENTRYPOINT + CMD (the given args replace CMD when they start with "+").
ctr() {
  local name="$1" user="$2"
  shift 2
  local -a opts=() envs=() cmd=() argv=()
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ "$#" -gt 0 ] && shift
  cmd=("$@")
  mapfile -t base_env < <(image_env "$name")
  if [ "${#cmd[@]}" -eq 0 ] || [ "${cmd[0]}" = + ]; then
    mapfile -t argv < <(node -e 'const c=require(process.argv[1]).config; for (const a of c.Entrypoint ?? []) console.log(a); if (process.argv.length <= 2) for (const a of c.Cmd ?? []) console.log(a)' "$work/img/$name/config.json" ${cmd[@]:+x})
    cmd=("${argv[@]}" "${cmd[@]:1}")
  fi
  local workdir
  workdir="$(node -p 'require(process.argv[1]).config.WorkingDir || "/"' "$work/img/$name/config.json")"
  local -a launch=(unshare --mount --propagation private -- "$here/ctr.sh" "$work/img/$name/root" "$user" -w "$workdir")
  launch+=("${opts[@]}" -- "${base_env[@]}" "${envs[@]}" -- "${cmd[@]}")
  if [ -z "${CTR_PIDFILE:-}" ]; then
    "${launch[@]}"
    return
  fi
  # A server: unshare, ctr.sh and chroot exec one another, so this pid is the server's own, the
  # process a runtime would send the STOPSIGNAL to.
  "${launch[@]}" &
  echo $! >"$CTR_PIDFILE"
  wait $!
}

# stop NAME: the STOPSIGNAL to the server started with CTR_PIDFILE=$work/NAME.pid, then wait for it.
stop_server() {
  local pidfile="$work/$1.pid" signal="${2:-INT}" pid i
  for ((i = 0; i < 50; i++)); do [ -s "$pidfile" ] && break; sleep 0.1; done
  pid="$(cat "$pidfile")"
  kill -"$signal" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "stop_server: $1 (pid $pid) did not stop" >&2
  return 1
}

wait_for() {
  local what="$1" tries="$2"
  shift 2
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "timed out waiting for $what" >&2
  return 1
}

# A directory like the kubelet's emptyDir or local-path-provisioner's PV: root-owned, mode 0777.
volume() {
  mkdir -p "$work/vol/$1"
  chmod 0777 "$work/vol/$1"
  printf '%s\n' "$work/vol/$1"
}

# ---------------------------------------------------------------- pause

verify_pause() {
  section "pause: $(record pause ref)"
  extract pause
  check "entrypoint /pause, user 65535:65535" test "$(image_field pause Entrypoint)$(image_field pause User)" = '["/pause"]"65535:65535"'
  # As PID 1 of its own PID namespace (the pod sandbox), with an orphan reparented to it.
  unshare --mount --propagation private --pid --fork --kill-child -- "$here/ctr.sh" "$work/img/pause/root" 65535:65535 \
    -- -- /pause &
  local holder=$!
  sleep 0.5
  local pause_pid
  pause_pid="$(pgrep -P "$holder" | head -1)"
  check "pause runs as PID 1 of the sandbox" grep -q '^NSpid:.*[[:space:]]1$' "/proc/$pause_pid/status"
  # A process in the sandbox's PID namespace whose parent exits becomes pause's child; it must not stay a zombie.
  nsenter --target "$pause_pid" --pid -- /bin/sh -c 'sleep 0.2 & exit 0'
  sleep 1
  local zombies
  zombies="$(ps -o stat= --ppid "$pause_pid" | grep -c '^Z' || true)"
  check "orphans are reaped (zombies: $zombies)" test "$zombies" = 0
  kill -TERM "$pause_pid"
  local status=0
  wait "$holder" || status=$?
  check "SIGTERM ends it with status 0 (got $status)" test "$status" = 0
}

# ---------------------------------------------------------------- node base and services

verify_node() {
  section "node-standin: $(record node-standin ref)"
  extract node-standin
  local out
  out="$(ctr node-standin 1000:1000 -t /tmp -- HOME=/home/node -- node -e 'console.log(process.version, require("node:os").userInfo().username)')"
  check "node $out as uid 1000 (user node)" test "${out% *}" != "" -a "${out#* }" = node
  check "node is 20.x" grep -q '^v20\.' <<<"$out"
  out="$(ctr node-standin 1000:1000 -t /tmp -- HOME=/tmp -- npm --version)"
  check "npm $out" grep -q '^10\.' <<<"$out"
  check "NODE_EXTRA_CA_CERTS names the CA bundle" grep -qx 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' <(image_env node-standin)
  out="$(ctr node-standin 0:0 -t /tmp -- -- + --version)"
  check "entrypoint gives options to node ($out)" grep -q '^v20\.' <<<"$out"
}

verify_services() {
  local svc
  for svc in front catalog order; do
    section "$svc: $(record "$svc" ref)"
    extract "$svc"
    check "USER 1000:1000, CMD exec node dist/services/\${SERVICE}/src/main.js, SERVICE=$svc" \
      test "$(image_field "$svc" User)$(image_field "$svc" Cmd)$(grep -c "^SERVICE=$svc\$" <(image_env "$svc"))" = \
      '"1000:1000"["/bin/sh","-c","exec node dist/services/${SERVICE}/src/main.js"]1'
    # Every compiled module of the service loads (no missing file or dependency), with the chart's
    # read-only root and /tmp emptyDir.
    local out
    out="$(ctr "$svc" 1000:1000 -t /tmp -- HOME=/tmp -- node --input-type=module -e "
      import { readdirSync } from 'node:fs';
      const dirs = ['dist/services/$svc/src', 'dist/services/shared/src'];
      let n = 0;
      for (const d of dirs) for (const f of readdirSync(d, { recursive: true })) {
        if (String(f).endsWith('.js') && !String(f).endsWith('main.js')) { await import('/app/' + d + '/' + f); n++; }
      }
      console.log(n);
    " 2>&1)" || true
    check "all $out modules of $svc and shared import" grep -qE '^[0-9]+$' <<<"$out"
    out="$(ctr "$svc" 1000:1000 -t /tmp -- HOME=/tmp -- 2>&1 || true)"
    check "its CMD starts node main.js (which asks for its configuration: $(head -1 <<<"$out" | cut -c1-60))" \
      grep -q 'configuration error\|is required' <<<"$out"
  done
}

# ---------------------------------------------------------------- postgres

# The chart's files and container arguments, rendered by helm (values: the defaults).
render_chart() {
  local helm="${BAZAR_TOOLS_BIN:-$HOME/.cache/bazar-tools/bin}/helm"
  command -v "$helm" >/dev/null || helm="$(command -v helm)"
  mkdir -p "$work/chart"
  "$helm" template bazar "$repo/charts/bazar" >"$work/chart/render.yaml"
  (cd "$repo" && node --input-type=module -e "
    import { parseAllDocuments } from 'yaml';
    import fs from 'node:fs';
    const out = process.argv[1];
    const docs = parseAllDocuments(fs.readFileSync(out + '/render.yaml', 'utf8')).map((d) => d.toJS()).filter(Boolean);
    const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'bazar-postgresql');
    for (const [k, v] of Object.entries(cm.data)) fs.writeFileSync(out + '/' + k, v, { mode: 0o555 });
    for (const d of docs.filter((d) => d.kind === 'StatefulSet')) {
      const role = d.metadata.name.endsWith('standby') ? 'standby' : 'primary';
      fs.writeFileSync(out + '/' + role + '.args', d.spec.template.spec.containers[0].args.join('\n') + '\n');
    }
  " "$work/chart")
}

# The chart's server arguments with another port (all pods share one loopback here).
pg_args() { sed "s/^port=5432\$/port=$2/" "$work/chart/$1.args"; }

pg_probe() { ctr postgres-standin 999:999 -- -- pg_isready --quiet --host=127.0.0.1 --port="$1"; }
psql_as() {
  local user="$1" password="$2" port="$3"
  shift 3
  ctr postgres-standin 999:999 -t /tmp -- PGPASSWORD="$password" -- \
    psql --no-psqlrc -X -At -v ON_ERROR_STOP=1 --host=127.0.0.1 --port="$port" --username="$user" "$@"
}

PG_PASSWORD=superuser-secret-123
DB_PASSWORD=app-secret-4567890
REPL_PASSWORD=repl-secret-13579

# start_primary NAME PORT DATA: the chart's primary container (args, env, volumes, uid 999).
start_primary() {
  local name="$1" port="$2" data="$3"
  local -a args
  mapfile -t args < <(pg_args primary "$port")
  CTR_PIDFILE="$work/$name.pid" ctr postgres-standin 999:999 -v "$data:/var/lib/postgresql" -f "$work/chart/pg_hba.conf:/etc/bazar/pg_hba.conf" \
    -v "$work/initdb:/docker-entrypoint-initdb.d" -v "$(volume "$name-run"):/var/run/postgresql" \
    -v "$(volume "$name-tmp"):/tmp" -- \
    PGPORT="$port" POSTGRES_PASSWORD="$PG_PASSWORD" BAZAR_DB_NAME=bazar BAZAR_DB_USER=bazar \
    BAZAR_DB_PASSWORD="$DB_PASSWORD" BAZAR_REPLICATION_USER=replicator BAZAR_REPLICATION_PASSWORD="$REPL_PASSWORD" \
    -- + "${args[@]}" >>"$work/$name.log" 2>&1 &
}

# The image's STOPSIGNAL: SIGINT, PostgreSQL's fast shutdown.
stop_pg() { stop_server "$1" INT; }

verify_postgres() {
  section "postgres-standin: $(record postgres-standin ref)"
  extract postgres-standin
  render_chart
  mkdir -p "$work/initdb"
  cp "$work/chart/10-bazar-roles.sh" "$work/initdb/"
  chmod 0555 "$work/initdb/10-bazar-roles.sh"
  check "ENTRYPOINT docker-entrypoint.sh, CMD postgres, STOPSIGNAL SIGINT" \
    test "$(image_field postgres-standin Entrypoint)$(image_field postgres-standin Cmd)$(image_field postgres-standin StopSignal)" = '["docker-entrypoint.sh"]["postgres"]"SIGINT"'
  check "PGDATA=/var/lib/postgresql/18/docker" grep -qx 'PGDATA=/var/lib/postgresql/18/docker' <(image_env postgres-standin)
  check "postgres user is uid/gid 999" grep -q '^postgres:x:999:999:' "$work/img/postgres-standin/root/etc/passwd"

  # First start: initdb, the chart's init script once, then the server with the chart's arguments.
  local pvc
  pvc="$(volume pvc-primary)"
  start_primary primary 5432 "$pvc"
  wait_for "the primary" 120 pg_probe 5432 || { tail -30 "$work/primary.log"; return 1; }
  pass "primary ready (pg_isready, as the chart's probes ask)"
  check "initdb ran in /var/lib/postgresql/18/docker" test -s "$pvc/18/docker/PG_VERSION"
  check "data directory owned by 999, mode 0700" test "$(stat -c '%u %a' "$pvc/18/docker")" = '999 700'
  check "the init script ran once" test "$(grep -c 'running /docker-entrypoint-initdb.d/10-bazar-roles.sh' "$work/primary.log")" = 1
  check "it created the roles and the database" grep -q 'bazar: created role bazar (pg_monitor), database bazar' "$work/primary.log"
  local out
  out="$(psql_as bazar "$DB_PASSWORD" 5432 --dbname=bazar -c "SELECT current_user || ' ' || pg_has_role('pg_monitor', 'member')::text")"
  check "the services' role logs in over TCP with its password ($out)" test "$out" = 'bazar true'
  out="$(psql_as postgres "$PG_PASSWORD" 5432 --dbname=postgres -c 'SHOW server_version_num')"
  check "POSTGRES_PASSWORD is the superuser's password (server $out)" grep -q '^18' <<<"$out"
  check "a wrong password is refused" bash -c "! psql_as postgres wrong 5432 --dbname=postgres -c 'SELECT 1' 2>/dev/null"
  out="$(psql_as postgres "$PG_PASSWORD" 5432 --dbname=postgres -c 'SHOW synchronous_standby_names')"
  check "the chart's server arguments apply (synchronous_standby_names=$out)" test "$out" = '*'

  # The standby: the chart's bootstrap-standby.sh as the init container, then the server.
  local spvc
  spvc="$(volume pvc-standby)"
  local status=0
  ctr postgres-standin 999:999 -v "$spvc:/var/lib/postgresql" -f "$work/chart/bootstrap-standby.sh:/opt/bazar/bootstrap-standby.sh" \
    -v "$(volume standby-run):/var/run/postgresql" -v "$(volume standby-tmp):/tmp" -- \
    POD_NAME=bazar-postgresql-standby-0 PRIMARY_HOST=127.0.0.1 PRIMARY_PORT=5432 REPLICATION_USER=replicator \
    REPLICATION_PASSWORD="$REPL_PASSWORD" -- /bin/bash /opt/bazar/bootstrap-standby.sh >"$work/bootstrap.log" 2>&1 || status=$?
  check "bootstrap-standby.sh (pg_receivewal slot, pg_basebackup -R) exits 0 (got $status)" test "$status" = 0
  [ "$status" = 0 ] || tail -20 "$work/bootstrap.log"
  check "it left a standby data directory" test -f "$spvc/18/docker/standby.signal" -a -s "$spvc/18/docker/PG_VERSION"
  local -a sargs
  mapfile -t sargs < <(pg_args standby 5433)
  CTR_PIDFILE="$work/standby.pid" ctr postgres-standin 999:999 -v "$spvc:/var/lib/postgresql" \
    -f "$work/chart/pg_hba.conf:/etc/bazar/pg_hba.conf" \
    -v "$(volume standby-run):/var/run/postgresql" -v "$(volume standby-tmp):/tmp" -- PGPORT=5433 \
    -- + "${sargs[@]}" >"$work/standby.log" 2>&1 &
  wait_for "the standby" 120 pg_probe 5433 || { tail -30 "$work/standby.log"; return 1; }
  check "standby start skipped initialisation" grep -q 'holds a database; skipping initialisation' "$work/standby.log"
  wait_for "streaming" 60 bash -c "psql_as postgres '$PG_PASSWORD' 5432 --dbname=postgres -c \"SELECT state FROM pg_stat_replication\" | grep -qx streaming"
  out="$(psql_as postgres "$PG_PASSWORD" 5432 --dbname=postgres -c "SELECT application_name || ' ' || state || ' ' || sync_state FROM pg_stat_replication")"
  check "pg_stat_replication on the primary: $out" test "$out" = 'bazar-postgresql-standby-0 streaming sync'
  out="$(psql_as postgres "$PG_PASSWORD" 5432 --dbname=postgres -c "SELECT slot_name || ' ' || active::text FROM pg_replication_slots")"
  check "replication slot $out" test "$out" = 'bazar_postgresql_standby_0 true'
  psql_as bazar "$DB_PASSWORD" 5432 --dbname=bazar -c 'SET synchronous_commit = remote_apply; CREATE TABLE probe(v int); INSERT INTO probe VALUES (42)' >/dev/null
  out="$(psql_as bazar "$DB_PASSWORD" 5433 --dbname=bazar -c 'SELECT v FROM probe')"
  check "a remote_apply write is on the standby at once ($out)" test "$out" = 42

  # A restart on the same data directory: no second initialisation, the scripts do not run again.
  stop_pg primary
  rm -f "$work/primary.pid"
  start_primary primary 5432 "$pvc"
  wait_for "the restarted primary" 120 pg_probe 5432 || { tail -30 "$work/primary.log"; return 1; }
  check "restart skipped initialisation" grep -q 'holds a database; skipping initialisation' "$work/primary.log"
  check "the init script still ran only once" test "$(grep -c 'running /docker-entrypoint-initdb.d/' "$work/primary.log")" = 1
  wait_for "streaming again" 60 bash -c "psql_as postgres '$PG_PASSWORD' 5432 --dbname=postgres -c \"SELECT state FROM pg_stat_replication\" | grep -qx streaming"
  pass "the standby streams again after the primary's restart"
  stop_pg standby
  stop_pg primary

  verify_postgres_contract
}

# The rest of the documented contract the chart does not use today.
verify_postgres_contract() {
  local out status pvc
  # No password, empty data directory: refused, with the reason.
  pvc="$(volume pvc-nopass)"
  status=0
  out="$(ctr postgres-standin 999:999 -v "$pvc:/var/lib/postgresql" -t /var/run/postgresql -t /tmp -- -- 2>&1)" || status=$?
  check "no POSTGRES_PASSWORD on a new database: exit $status, says why" \
    bash -c '[ "$1" != 0 ] && grep -q "POSTGRES_PASSWORD is not set" <<<"$2"' _ "$status" "$out"

  # Started as root, POSTGRES_USER/POSTGRES_DB, *.sql and a sourced *.sh: runs as postgres.
  pvc="$(volume pvc-root)"
  mkdir -p "$work/initdb2"
  printf 'CREATE TABLE from_sql(v text); INSERT INTO from_sql VALUES (current_user);\n' >"$work/initdb2/20-table.sql"
  printf 'psql_local --dbname "$POSTGRES_DB" -c "INSERT INTO from_sql VALUES (\x27sourced\x27)"\n' >"$work/initdb2/30-sourced.sh"
  chmod 0644 "$work/initdb2/30-sourced.sh"
  CTR_PIDFILE="$work/root.pid" ctr postgres-standin 0:0 -v "$pvc:/var/lib/postgresql" -v "$work/initdb2:/docker-entrypoint-initdb.d" \
    -t /var/run/postgresql -t /tmp -- POSTGRES_PASSWORD=rootstarted-pw POSTGRES_USER=shop POSTGRES_DB=books \
    -- + postgres -c listen_addresses=127.0.0.1 -c port=5434 >"$work/root.log" 2>&1 &
  wait_for "the root-started server" 120 pg_probe 5434 || { tail -30 "$work/root.log"; return 1; }
  check "started as root: data owned by postgres (999)" test "$(stat -c %u "$pvc/18/docker")" = 999
  out="$(psql_as shop rootstarted-pw 5434 --dbname=books -c "SELECT string_agg(v, ' ' ORDER BY v) FROM from_sql")"
  check "POSTGRES_USER/POSTGRES_DB, a *.sql and a sourced *.sh ran ($out)" test "$out" = 'shop sourced'
  check "the server runs as uid 999, not root" test "$(ps -o uid= -C postgres | tr -d ' ' | sort -u)" = 999
  stop_pg root

  # An arbitrary uid without a passwd entry (nss_wrapper).
  pvc="$(volume pvc-uid)"
  CTR_PIDFILE="$work/uid.pid" ctr postgres-standin 4321:4321 -v "$pvc:/var/lib/postgresql" -t /var/run/postgresql -t /tmp -- \
    POSTGRES_PASSWORD=any-uid-pw -- + postgres -c listen_addresses=127.0.0.1 -c port=5435 >"$work/uid.log" 2>&1 &
  if wait_for "the uid 4321 server" 120 pg_probe 5435; then pass "runs as uid 4321, which has no passwd entry"; else fail "uid 4321"; tail -20 "$work/uid.log"; fi
  stop_pg uid
}

# ---------------------------------------------------------------- curl, busybox

verify_curl() {
  section "curl-standin: $(record curl-standin ref)"
  extract curl-standin
  local out
  out="$(ctr curl-standin 100:101 -t /tmp -- -- curl --version | head -1)"
  check "${out%% (*} as uid 100" grep -q '^curl 8\.' <<<"$out"
  # The chart's helm test script, unchanged, against a tiny front on loopback that answers the
  # documented shapes: sh, curl, grep -E, sed, date and cat must behave as the script expects.
  (cd "$work" && node -e '
    const http = require("node:http");
    let bought = null;
    http.createServer((req, res) => {
      const send = (code, body) => { res.writeHead(code, {"content-type": "application/json"}); res.end(JSON.stringify(body)); };
      if (req.url.startsWith("/search/")) return send(200, { topic: "distributed systems", books: [{ id: 1, title: "t" }] });
      if (req.url === "/info/1") return send(200, { id: 1, title: "t", topic: "distributed systems", price: 30, stock: 99 });
      if (req.url === "/purchase/1") { bought ??= req.headers["idempotency-key"]; return send(200, { orderId: "o-" + bought, bookId: 1, title: "t", price: 30, remainingStock: 98 }); }
      if (req.url.startsWith("/orders/")) return send(200, { orderId: req.url.slice(8) });
      send(404, { error: { code: "not_found", message: "no" } });
    }).listen(8080, "127.0.0.1");
  ') &
  local server=$!
  wait_for "the fake front" 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080'
  # The test pod's command, as the chart renders it: /bin/sh -ec '<script>'.
  [ -f "$work/chart/render.yaml" ] || render_chart
  mkdir -p "$work/chart/test"
  (cd "$repo" && node --input-type=module -e "
    import { parseAllDocuments } from 'yaml';
    import fs from 'node:fs';
    const docs = parseAllDocuments(fs.readFileSync(process.argv[1] + '/render.yaml', 'utf8')).map((d) => d.toJS()).filter(Boolean);
    const command = docs.find((d) => d.kind === 'Pod').spec.containers[0].command;
    command.forEach((arg, i) => fs.writeFileSync(process.argv[1] + '/test/' + i, arg));
  " "$work/chart")
  local -a cmd=()
  local i
  for ((i = 0; i < $(ls "$work/chart/test" | wc -l); i++)); do cmd+=("$(<"$work/chart/test/$i")"); done
  local status=0
  out="$(ctr curl-standin 100:101 -t /tmp -- BASE=http://127.0.0.1:8080 -- "${cmd[@]}" 2>&1)" || status=$?
  kill "$server"
  check "the chart's helm test script passes in the curl stand-in (exit $status)" grep -q '^PASS: ' <<<"$out"
  [ "$status" = 0 ] || printf '%s\n' "$out" | tail -10
}

verify_busybox() {
  section "busybox-standin: $(record busybox-standin ref)"
  extract busybox-standin
  # What local-path-provisioner's helper pods run: sh -c 'mkdir -m 0777 -p DIR' and 'rm -rf DIR'.
  local vol
  vol="$(volume local-path)"
  ctr busybox-standin 0:0 -v "$vol:/data" -- -- sh -c 'mkdir -m 0777 -p /data/pvc-1/x && chmod 0777 /data/pvc-1'
  check "helper setup: mkdir -m 0777 -p" test "$(stat -c %a "$vol/pvc-1")" = 777
  ctr busybox-standin 0:0 -v "$vol:/data" -- -- sh -c 'set -eu; rm -rf /data/pvc-1'
  check "helper teardown: rm -rf" test ! -e "$vol/pvc-1"
}

# ---------------------------------------------------------------- coredns, local-path-provisioner

verify_coredns() {
  section "coredns: $(record coredns ref)"
  extract coredns
  check "/coredns has cap_net_bind_service (uid 65532 binds :53)" \
    bash -c "getcap '$work/img/coredns/root/coredns' | grep -q cap_net_bind_service"
  mkdir -p "$work/coredns"
  printf '.:53 {\n  hosts {\n    10.0.0.7 probe.bazar.test\n  }\n  errors\n}\n' >"$work/coredns/Corefile"
  CTR_PIDFILE="$work/coredns.pid" ctr coredns 65532:65532 -v "$work/coredns:/etc/coredns" -- -- + -conf /etc/coredns/Corefile \
    >"$work/coredns.log" 2>&1 &
  local answer=""
  wait_for "coredns" 40 bash -c "ctr busybox-standin 65534:65534 -- -- nslookup probe.bazar.test 127.0.0.1 | grep -q 10.0.0.7" || :
  answer="$(ctr busybox-standin 65534:65534 -- -- nslookup probe.bazar.test 127.0.0.1 2>&1 | grep -c 10.0.0.7 || true)"
  check "as uid 65532 it serves :53 (answer for probe.bazar.test)" test "$answer" -ge 1
  stop_server coredns TERM
  [ "$answer" -ge 1 ] || tail -20 "$work/coredns.log"
}

verify_local_path() {
  section "local-path-provisioner: $(record local-path-provisioner ref)"
  extract local-path-provisioner
  local out
  out="$(ctr local-path-provisioner 0:0 -- -- local-path-provisioner --help 2>&1 || true)"
  check "local-path-provisioner runs (--help: $(grep -m1 -i usage <<<"$out" | cut -c1-50))" grep -qi 'usage' <<<"$out"
  check "and sh from the busybox base" ctr local-path-provisioner 0:0 -- -- sh -c 'true'
}

export -f ctr image_env psql_as pg_probe record stop_server
export work here index

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(pause node services postgres curl busybox coredns local-path)
for t in "${targets[@]}"; do
  case "$t" in
    pause) verify_pause ;;
    node) verify_node ;;
    services) verify_services ;;
    postgres) verify_postgres ;;
    curl) verify_curl ;;
    busybox) verify_busybox ;;
    coredns) verify_coredns ;;
    local-path) verify_local_path ;;
    *) echo "verify.sh: unknown check $t" >&2; exit 2 ;;
  esac
done
printf '\n%s\n' "$([ "$failures" = 0 ] && echo 'all checks passed' || echo "$failures checks FAILED")"
[ "$failures" = 0 ]
