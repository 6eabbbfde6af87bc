#!/usr/bin/env bash
# Entrypoint of Bazar's stand-in for the official postgres:18 image (docker.io/library/postgres).
# Written for this project to that image's documented contract, as far as a user of the image (and
# charts/bazar) relies on it:
#
#   docker-entrypoint.sh postgres [-c name=value ...]     the default command is `postgres`; leading
#                                                         options alone mean `postgres <options>`
#   PGDATA                  default /var/lib/postgresql/18/docker (the image's volume is its parent)
#   POSTGRES_PASSWORD       superuser password; required to initialise, unless
#   POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER           superuser name (default postgres)
#   POSTGRES_DB             database created on first start (default: $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS    extra initdb arguments (shell words); POSTGRES_INITDB_WALDIR
#   <VAR>_FILE              read the four variables above from a file instead
#   /docker-entrypoint-initdb.d/*   on the first start only (empty PGDATA), in name order, against a
#                           temporary server that listens on the Unix socket only and gets the same
#                           server arguments: *.sh executed if executable, else sourced; *.sql (and
#                           .sql.gz/.xz/.zst) run with psql as POSTGRES_USER on POSTGRES_DB
#   started as root         prepares the directories, then runs as postgres (uid/gid 999)
#   started as another uid  works as that uid (nss_wrapper gives initdb a passwd entry if needed)
#   any other command       runs as it is
# A data directory that holds a database (PG_VERSION) is never initialised again.
set -Eeo pipefail

PG_DEFAULT_DATA="/var/lib/postgresql/${PG_MAJOR:-18}/docker"
export PGDATA="${PGDATA:-$PG_DEFAULT_DATA}"
INITDB_DIR=/docker-entrypoint-initdb.d

log() { printf '%s: %s\n' "${0##*/}" "$*"; }
die() {
  printf '%s: error: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# VAR from the environment or from the file named by VAR_FILE (never both), exported.
env_or_file() {
  local var="$1" default="${2:-}" file_var="${1}_FILE"
  local value="${!var:-}" file="${!file_var:-}"
  [ -z "$value" ] || [ -z "$file" ] || die "both $var and $file_var are set; use one"
  if [ -n "$file" ]; then value="$(<"$file")"; fi
  export "$var=${value:-$default}"
  unset "$file_var"
}

read_settings() {
  env_or_file POSTGRES_PASSWORD
  env_or_file POSTGRES_USER postgres
  env_or_file POSTGRES_DB "$POSTGRES_USER"
  env_or_file POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  : "${POSTGRES_INITDB_WALDIR:=}"
}

# postgres --help, --version, --describe-config ... only print something: no setup for them.
only_prints() {
  local arg
  for arg; do
    case "$arg" in -'?' | --help | --describe-config | -V | --version) return 0 ;; esac
  done
  return 1
}

has_database() { [ -s "$PGDATA/PG_VERSION" ]; }

# Data of another layout (the pre-18 /var/lib/postgresql/data, another major) is never initialised
# over or ignored silently: the user mounted the volume at the wrong place or skipped pg_upgrade.
refuse_foreign_data() {
  local dir found=()
  for dir in /var/lib/postgresql /var/lib/postgresql/data /var/lib/postgresql/*/docker; do
    [ "$dir" != "$PGDATA" ] && [ -s "$dir/PG_VERSION" ] && found+=("$dir")
  done
  [ "${#found[@]}" -eq 0 ] && return 0
  die "no database in PGDATA=$PGDATA, but PostgreSQL data in: ${found[*]}." \
    "From 18 on the data lives in /var/lib/postgresql/<major>/docker: mount the volume at" \
    "/var/lib/postgresql, and upgrade older data with pg_upgrade."
}

# mkdir/chmod that may fail (a read-only image directory, a mount we do not own): PostgreSQL
# itself reports what it cannot use.
prepare_directories() {
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql || :
  chmod 03775 /var/run/postgresql || :
  if [ -n "$POSTGRES_INITDB_WALDIR" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chmod 00700 "$POSTGRES_INITDB_WALDIR" || :
  fi
}

# Started as root: hand the directories to postgres and run this script again as postgres.
become_postgres() {
  prepare_directories
  local dir
  for dir in "$PGDATA" /var/run/postgresql ${POSTGRES_INITDB_WALDIR:+"$POSTGRES_INITDB_WALDIR"}; do
    find "$dir" \! -user postgres -exec chown postgres:postgres '{}' +
  done
  HOME=/var/lib/postgresql exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$BASH_SOURCE" "$@"
}

require_password() {
  [ -n "$POSTGRES_PASSWORD" ] && return 0
  [ "$POSTGRES_HOST_AUTH_METHOD" = trust ] && return 0
  die "the database is uninitialised and POSTGRES_PASSWORD is not set." \
    "Set POSTGRES_PASSWORD (the superuser's password), or POSTGRES_HOST_AUTH_METHOD=trust to allow" \
    "every connection without a password (not recommended)."
}

# initdb looks the current uid up in /etc/passwd; an arbitrary uid gets a passwd entry through
# nss_wrapper for the duration of initdb.
with_passwd_entry() {
  local uid gid lib
  uid="$(id -u)"
  gid="$(id -g)"
  if getent passwd "$uid" >/dev/null; then
    "$@"
    return
  fi
  for lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do [ -s "$lib" ] && break; done
  [ -s "$lib" ] || die "uid $uid has no passwd entry and nss_wrapper is missing"
  local passwd group
  passwd="$(mktemp)"
  group="$(mktemp)"
  printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$uid" "$gid" "$PGDATA" >"$passwd"
  printf 'postgres:x:%s:\n' "$gid" >"$group"
  local status=0
  LD_PRELOAD="$lib" NSS_WRAPPER_PASSWD="$passwd" NSS_WRAPPER_GROUP="$group" "$@" || status=$?
  rm -f "$passwd" "$group"
  return "$status"
}

run_initdb() {
  local -a args=(--username="$POSTGRES_USER")
  if [ -n "$POSTGRES_INITDB_WALDIR" ]; then args+=(--waldir="$POSTGRES_INITDB_WALDIR"); fi
  # POSTGRES_INITDB_ARGS is documented as shell words (quotes allowed), hence eval. The password
  # reaches initdb through a pipe, never a file or the command line.
  if [ -n "$POSTGRES_PASSWORD" ]; then
    eval 'with_passwd_entry initdb "${args[@]}" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
  else
    eval 'with_passwd_entry initdb "${args[@]}" '"$POSTGRES_INITDB_ARGS"
  fi
}

# Remote connections authenticate with the server's password_encryption method (scram-sha-256),
# or with POSTGRES_HOST_AUTH_METHOD.
allow_remote_connections() {
  local method="$POSTGRES_HOST_AUTH_METHOD"
  [ -n "$method" ] || method="$(postgres -C password_encryption "$@")"
  {
    printf '\n'
    [ "$method" = trust ] && printf '# POSTGRES_HOST_AUTH_METHOD=trust: every connection is trusted\n'
    printf 'host all all all %s\n' "$method"
  } >>"$PGDATA/pg_hba.conf"
}

# The temporary server: the caller's server arguments, reachable on the Unix socket only.
start_temp_server() {
  local -a opts=("$@" -c listen_addresses= -p "${PGPORT:-5432}")
  PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "${opts[@]}")" -w start
}

stop_temp_server() {
  PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_local() {
  PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

create_database() {
  [ "$POSTGRES_DB" = postgres ] && return 0
  local exists
  exists="$(psql_local --dbname postgres --tuples-only --set db="$POSTGRES_DB" \
    <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
  [ -n "${exists//[[:space:]]/}" ] && return 0
  psql_local --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  log "created database $POSTGRES_DB"
}

run_init_file() {
  local f="$1"
  case "$f" in
    *.sh)
      if [ -x "$f" ]; then
        log "running $f"
        "$f"
      else
        log "sourcing $f"
        # shellcheck disable=SC1090
        . "$f"
      fi
      ;;
    *.sql) log "running $f" && psql_local --dbname "$POSTGRES_DB" -f "$f" ;;
    *.sql.gz) log "running $f" && gunzip -c "$f" | psql_local --dbname "$POSTGRES_DB" ;;
    *.sql.xz) log "running $f" && xz -dc "$f" | psql_local --dbname "$POSTGRES_DB" ;;
    *.sql.zst) log "running $f" && zstd -dc "$f" | psql_local --dbname "$POSTGRES_DB" ;;
    *) log "ignoring $f" ;;
  esac
}

run_init_files() {
  # Fails early, and clearly, when the directory cannot be read by this uid.
  ls "$INITDB_DIR/" >/dev/null
  local f
  for f in "$INITDB_DIR"/*; do
    [ -e "$f" ] || continue
    run_init_file "$f"
  done
}

first_start() {
  require_password
  log "initialising $PGDATA"
  run_initdb
  allow_remote_connections "$@"
  export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
  start_temp_server "$@"
  create_database
  run_init_files
  stop_temp_server
  unset PGPASSWORD
  log "init process complete; ready for start up"
}

main() {
  if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
  if [ "${1:-}" != postgres ] || only_prints "$@"; then exec "$@"; fi

  read_settings
  if [ "$(id -u)" = 0 ]; then become_postgres "$@"; fi
  prepare_directories
  if has_database; then
    log "$PGDATA holds a database; skipping initialisation"
  else
    refuse_foreign_data
    first_start "${@:2}"
  fi
  exec "$@"
}

main "$@"
