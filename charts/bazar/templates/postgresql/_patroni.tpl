{{/*
engine: patroni. Helpers of templates/postgresql/patroni.yaml and patroni-rbac.yaml.

Patroni (images/postgres-patroni) reads its settings from PATRONI_* variables; the image's entrypoint
turns the PATRONI_DCS_* ones into bootstrap.dcs, the cluster's dynamic configuration, which Patroni
writes to its <scope>-config ConfigMap ONCE, when it initialises the cluster. Later changes go through
`patronictl edit-config` (docs/deploy.md).
*/}}

{{/* The image: <registry>/<repository>:<tag>; registry defaults to image.registry, tag to appVersion. */}}
{{- define "bazar.patroni.image" -}}
{{- $i := .Values.postgresql.patroni.image }}
{{- $registry := $i.registry | default .Values.image.registry }}
{{- $tag := $i.tag | default .Chart.AppVersion }}
{{- if $registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" $registry) $i.repository $tag }}
{{- else }}
{{- printf "%s:%s" $i.repository $tag }}
{{- end }}
{{- end }}

{{- define "bazar.patroni.serviceAccountName" -}}
{{- $sa := .Values.postgresql.patroni.serviceAccount }}
{{- if $sa.create }}
{{- default (include "bazar.patroniName" .) $sa.name }}
{{- else }}
{{- required "postgresql.patroni.serviceAccount.name is required when postgresql.patroni.serviceAccount.create is false" $sa.name }}
{{- end }}
{{- end }}

{{/*
Labels Patroni finds its members (and its ConfigMaps) by: PATRONI_KUBERNETES_LABELS plus the scope label.
They select the StatefulSet's pods; Patroni adds `role` itself.
*/}}
{{- define "bazar.patroni.scopeLabel" -}}cluster-name{{- end }}
{{- define "bazar.patroni.selectorLabels" -}}
{{ include "bazar.componentSelectorLabels" (dict "root" . "component" "postgresql") }}
{{ include "bazar.patroni.scopeLabel" . }}: {{ include "bazar.patroniName" . }}
{{- end }}

{{/* PATRONI_KUBERNETES_LABELS: the selector labels but the scope label (Patroni adds that one). */}}
{{- define "bazar.patroni.kubernetesLabels" -}}
{{- include "bazar.componentSelectorLabels" (dict "root" . "component" "postgresql") | fromYaml | toJson }}
{{- end }}

{{/* synchronous_mode: on | off | quorum. Default: on in strict consistency mode, off otherwise. */}}
{{- define "bazar.patroni.synchronousMode" -}}
{{- $m := .Values.postgresql.patroni.synchronousMode }}
{{- if kindIs "invalid" $m }}
{{- if eq .Values.storePolicy.consistencyMode "strict" }}on{{ else }}off{{ end }}
{{- else if kindIs "bool" $m }}
{{- if $m }}on{{ else }}off{{ end }}
{{- else }}
{{- $m }}
{{- end }}
{{- end }}

{{/*
synchronous_mode_strict: true | false. Default: false (Patroni's): with no standby left, Patroni names
none, after taking them off its sync key (none can be promoted then), and strict writes go on, fenced by
version (docs/guarantees.md G6). true: they stop instead until a standby is back.
*/}}
{{- define "bazar.patroni.synchronousModeStrict" -}}
{{- $s := .Values.postgresql.patroni.synchronousModeStrict }}
{{- if kindIs "invalid" $s }}false
{{- else }}
{{- if $s }}true{{ else }}false{{ end }}
{{- end }}
{{- end }}

{{/*
synchronous_node_count. Default: in strict consistency mode every replica (instances - 1), since the
catalog replicas read strict reads from any of them and one that does not confirm commits can serve a
read that goes back in time; otherwise 1.
*/}}
{{- define "bazar.patroni.synchronousNodeCount" -}}
{{- $p := .Values.postgresql.patroni }}
{{- if kindIs "invalid" $p.synchronousNodeCount }}
{{- if eq .Values.storePolicy.consistencyMode "strict" }}{{ max 1 (sub (int $p.instances) 1) }}{{ else }}1{{ end }}
{{- else }}
{{- int $p.synchronousNodeCount }}
{{- end }}
{{- end }}

{{/*
The server parameters of bootstrap.dcs.postgresql.parameters, as JSON: what replication and pg_rewind
need (wal_level replica, hot_standby on, wal_log_hints on), postgresql.parameters over them, and in
asynchronous mode postgresql.synchronousStandbyNames (so that a strict commit asking for remote_apply
still waits for a replica; in synchronous mode Patroni manages synchronous_standby_names itself).
*/}}
{{- define "bazar.patroni.parameters" -}}
{{- $pg := .Values.postgresql }}
{{- $p := dict "wal_level" "replica" "hot_standby" "on" "wal_log_hints" "on" }}
{{- range $k, $v := $pg.parameters }}
{{- if eq $k "synchronous_standby_names" }}
{{- fail "postgresql.parameters.synchronous_standby_names: with postgresql.engine=patroni, set postgresql.synchronousStandbyNames (asynchronous mode) or let Patroni manage it (synchronous mode)" }}
{{- end }}
{{- $_ := set $p $k (toString $v) }}
{{- end }}
{{- if not (has (get $p "wal_level") (list "replica" "logical")) }}
{{- fail (printf "postgresql.parameters.wal_level=%s: Patroni's replicas need replica or logical" (get $p "wal_level")) }}
{{- end }}
{{- if not (has (lower (get $p "hot_standby")) (list "on" "true" "1" "yes")) }}
{{- fail "postgresql.parameters.hot_standby must stay on with postgresql.engine=patroni: catalog replicas and order lookups read from the replicas" }}
{{- end }}
{{- if not (has (lower (get $p "wal_log_hints")) (list "on" "true" "1" "yes")) }}
{{- fail "postgresql.parameters.wal_log_hints must stay on with postgresql.engine=patroni: a failed primary rejoins with pg_rewind" }}
{{- end }}
{{- if and (eq (include "bazar.patroni.synchronousMode" .) "off") (gt (int $pg.patroni.instances) 1) $pg.synchronousStandbyNames }}
{{- $_ := set $p "synchronous_standby_names" $pg.synchronousStandbyNames }}
{{- end }}
{{- toJson $p }}
{{- end }}

{{/* Refuses settings Patroni would reject or that defeat its purpose, with a clear message. */}}
{{- define "bazar.patroni.validate" -}}
{{- $p := .Values.postgresql.patroni }}
{{- $ttl := int $p.ttl }}
{{- $loop := int $p.loopWait }}
{{- $retry := int $p.retryTimeout }}
{{- if gt (add $loop (mul 2 $retry)) $ttl }}
{{- fail (printf "postgresql.patroni: loopWait + 2 * retryTimeout (%d + 2 * %d = %d s) must not exceed ttl (%d s): a primary still retrying the Kubernetes API would lose its leader lock and be replaced for nothing" $loop $retry (add $loop (mul 2 $retry)) $ttl) }}
{{- end }}
{{- $mode := include "bazar.patroni.synchronousMode" . }}
{{- if and (eq $mode "off") (eq (include "bazar.patroni.synchronousModeStrict" .) "true") }}
{{- fail "postgresql.patroni.synchronousModeStrict=true needs synchronous mode (postgresql.patroni.synchronousMode true or quorum, or storePolicy.consistencyMode strict)" }}
{{- end }}
{{- $sync := int (include "bazar.patroni.synchronousNodeCount" .) }}
{{- if and (ne $mode "off") (gt (int $p.instances) 1) (ge $sync (int $p.instances)) }}
{{- fail (printf "postgresql.patroni.synchronousNodeCount (%d) must be smaller than postgresql.patroni.instances (%d): the primary is not its own synchronous replica" $sync (int $p.instances)) }}
{{- end }}
{{- if and (ne $mode "off") (eq .Values.storePolicy.consistencyMode "strict") (lt $sync (sub (int $p.instances) 1)) }}
{{- fail (printf "postgresql.patroni.synchronousNodeCount (%d) must be instances - 1 (%d) in strict consistency mode: the catalog replicas read from every replica, and a strict read from one that does not confirm commits can go back in time (leave it null for instances - 1)" $sync (sub (int $p.instances) 1)) }}
{{- end }}
{{- if and (gt (int $p.primaryStopTimeout) 0) (ge (int $p.primaryStopTimeout) (int $p.terminationGracePeriodSeconds)) }}
{{- fail (printf "postgresql.patroni.terminationGracePeriodSeconds (%d s) must exceed primaryStopTimeout (%d s): the kubelet would kill Patroni before it stops PostgreSQL and hands the leader lock over" (int $p.terminationGracePeriodSeconds) (int $p.primaryStopTimeout)) }}
{{- end }}
{{- end }}

{{/* The roles container's files (a ConfigMap, checksummed into the pod template). */}}
{{- define "bazar.patroni.scriptsData" -}}
ensure-roles.sh: |
  #!/bin/sh
  # While this pod's PostgreSQL is the primary, creates what the services need and Patroni does not
  # (ensure-roles.sql). Runs beside Patroni, as the same user, over the pod's Unix socket.
  set -u
  interval="${CHECK_INTERVAL_SECONDS:-10}"
  export PGHOST=/var/run/postgresql PGUSER=postgres PGDATABASE=postgres PGCONNECT_TIMEOUT=3
  # Never wait for a synchronous standby (there may be none yet), never hang on a lock.
  export PGOPTIONS='-c synchronous_commit=local -c statement_timeout=30s -c lock_timeout=10s'
  stop=0
  sleeper=''
  trap 'stop=1; [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null' TERM INT
  last=''
  while [ "$stop" = 0 ]; do
    state="$(psql -XAtq -c 'SELECT pg_is_in_recovery()' 2>/dev/null)"
    case "$state" in
      f)
        if out="$(psql -XAtq -v ON_ERROR_STOP=1 -f /opt/bazar/ensure-roles.sql 2>&1)"; then
          [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/bazar-roles: /'
          [ "$last" = primary ] || echo "bazar-roles: primary; role $BAZAR_DB_USER and database $BAZAR_DB_NAME present"
          last=primary
        else
          printf '%s\n' "$out" | sed 's/^/bazar-roles: error: /' >&2
          last=error
        fi
        ;;
      t)
        [ "$last" = replica ] || echo "bazar-roles: replica; nothing to do"
        last=replica
        ;;
      *)
        [ "$last" = down ] || echo "bazar-roles: PostgreSQL not accepting connections yet"
        last=down
        ;;
    esac
    [ "$stop" = 0 ] || break
    sleep "$interval" &
    sleeper=$!
    wait "$sleeper"
    sleeper=''
  done
# Creates only what is missing: acts once on a new cluster, never again (a failover finds it all
# replicated). A password changed in the Secret later is not applied: ALTER ROLE (docs/deploy.md).
ensure-roles.sql: |
  \getenv app_user BAZAR_DB_USER
  \getenv app_password BAZAR_DB_PASSWORD
  \getenv app_db BAZAR_DB_NAME
  SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') AS missing \gset
  \if :missing
  CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
  \echo created role :app_user
  \endif
  SELECT NOT pg_has_role(:'app_user', 'pg_monitor', 'MEMBER') AS missing \gset
  \if :missing
  GRANT pg_monitor TO :"app_user";
  \echo granted pg_monitor to :app_user
  \endif
  SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') AS missing \gset
  \if :missing
  CREATE DATABASE :"app_db" OWNER :"app_user";
  \echo created database :app_db owned by :app_user
  \endif
{{- end }}
