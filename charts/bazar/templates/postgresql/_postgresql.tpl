{{/*
One PostgreSQL StatefulSet. Arguments: root, role (primary | standby), values (postgresql.primary or
postgresql.standby), name.
*/}}
{{- define "bazar.postgresql.statefulset" -}}
{{- $root := .root }}
{{- $pg := $root.Values.postgresql }}
{{- $s := .values }}
{{- $role := .role }}
{{- $sel := dict "root" $root "component" "postgresql" "role" $role }}
{{- $standby := eq $role "standby" }}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .name }}
  namespace: {{ include "bazar.namespace" $root }}
  labels:
    {{- include "bazar.componentLabels" $sel | nindent 4 }}
spec:
  serviceName: {{ .name }}-hl
  replicas: {{ if $standby }}{{ int $s.replicas }}{{ else }}1{{ end }}
  podManagementPolicy: OrderedReady
  updateStrategy:
    type: RollingUpdate
  persistentVolumeClaimRetentionPolicy:
    whenDeleted: {{ $s.pvcRetentionPolicy.whenDeleted }}
    whenScaled: {{ $s.pvcRetentionPolicy.whenScaled }}
  selector:
    matchLabels:
      {{- include "bazar.componentSelectorLabels" $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "bazar.componentSelectorLabels" $sel | nindent 8 }}
        app.kubernetes.io/part-of: bazar
        {{- with $s.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # Roll the pods when the scripts or pg_hba.conf change.
        checksum/config: {{ include "bazar.postgresql.configData" $root | sha256sum }}
        {{- with $s.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      # PostgreSQL never talks to the Kubernetes API.
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ int $s.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $pg.podSecurityContext | nindent 8 }}
      {{- with $root.Values.image.pullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      {{- with $s.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $s.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- include "bazar.tolerations" (dict "root" $root "tolerations" $s.tolerations) | nindent 6 }}
      {{- if $s.affinity }}
      affinity:
        {{- toYaml $s.affinity | nindent 8 }}
      {{- else if $root.Values.spreadAcrossNodes }}
      # The primary and the standby on different nodes when there are several (soft: one node still
      # works): a node lost then costs one of them, not the data and its copy.
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "bazar.componentSelectorLabels" (dict "root" $root "component" "postgresql" "role" "") | nindent 20 }}
      {{- end }}
      {{- if $standby }}
      initContainers:
        - name: bootstrap
          image: {{ include "bazar.thirdPartyImage" $pg.image | quote }}
          imagePullPolicy: {{ $pg.image.pullPolicy }}
          command: [/bin/bash, /opt/bazar/bootstrap-standby.sh]
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: PRIMARY_HOST
              value: {{ include "bazar.postgresqlPrimaryName" $root }}
            - name: PRIMARY_PORT
              value: {{ int $pg.port | quote }}
            - name: REPLICATION_USER
              value: {{ $pg.replicationUsername | quote }}
            - name: REPLICATION_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ include "bazar.secretName" $root }}
                  key: replication-password
          resources:
            {{- toYaml $s.resources | nindent 12 }}
          securityContext:
            {{- toYaml $pg.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/postgresql
            - name: scripts
              mountPath: /opt/bazar
              readOnly: true
            - name: run
              mountPath: /var/run/postgresql
            - name: tmp
              mountPath: /tmp
      {{- end }}
      containers:
        - name: postgresql
          image: {{ include "bazar.thirdPartyImage" $pg.image | quote }}
          imagePullPolicy: {{ $pg.image.pullPolicy }}
          args:
            - postgres
            - -c
            - listen_addresses=*
            - -c
            - port={{ int $pg.port }}
            - -c
            - hba_file=/etc/bazar/pg_hba.conf
            - -c
            - wal_level=replica
            # The pod's name as a server setting: the writers report which server is the primary
            # (SELECT current_setting('bazar.member'); the StorePolicy status, /readyz).
            - -c
            - bazar.member=$(POD_NAME)
            {{- if and (not $standby) (include "bazar.db.standbyEnabled" $root) $pg.synchronousStandbyNames }}
            # Commits that ask for remote_apply (strict mode) wait for a standby.
            - -c
            - {{ printf "synchronous_standby_names=%s" $pg.synchronousStandbyNames | quote }}
            {{- end }}
            {{- range $k, $val := $pg.parameters }}
            - -c
            - {{ printf "%s=%v" $k $val | quote }}
            {{- end }}
          ports:
            - name: postgresql
              containerPort: {{ int $pg.port }}
              protocol: TCP
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: PGPORT
              value: {{ int $pg.port | quote }}
            {{- if not $standby }}
            # Used by the image's entrypoint on the first start only (empty data directory).
            - name: POSTGRES_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ include "bazar.secretName" $root }}
                  key: postgres-password
            - name: BAZAR_DB_NAME
              value: {{ $pg.database | quote }}
            - name: BAZAR_DB_USER
              value: {{ $pg.username | quote }}
            - name: BAZAR_DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ include "bazar.secretName" $root }}
                  key: database-password
            - name: BAZAR_REPLICATION_USER
              value: {{ $pg.replicationUsername | quote }}
            - name: BAZAR_REPLICATION_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ include "bazar.secretName" $root }}
                  key: replication-password
            {{- end }}
          lifecycle:
            # Kubernetes stops a container with SIGTERM, PostgreSQL's *smart* shutdown: it waits for
            # every session to end, and the services' pools keep theirs open, so a deleted pod went on
            # serving (a standby went on acknowledging strict commits) until the grace period ran out
            # and it was killed. A fast shutdown instead: sessions end at once (the services answer
            # 503 or degrade, as docs/guarantees.md G5/G6 say), a shutdown checkpoint, a clean stop.
            # pg_ctl finds the data directory in PGDATA, which the image sets. It does not wait: the
            # container ends when PostgreSQL has stopped, and the SIGTERM that follows the hook cannot
            # turn a fast shutdown back into a smart one.
            preStop:
              exec:
                command: [pg_ctl, stop, --mode=fast, --no-wait]
          startupProbe:
            exec:
              command: [pg_isready, --quiet, --host=127.0.0.1, --port={{ int $pg.port }}]
            periodSeconds: 5
            timeoutSeconds: 3
            # A first start (initdb) or crash recovery may take a while.
            failureThreshold: 120
          livenessProbe:
            exec:
              command: [pg_isready, --quiet, --host=127.0.0.1, --port={{ int $pg.port }}]
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          readinessProbe:
            exec:
              command: [pg_isready, --quiet, --host=127.0.0.1, --port={{ int $pg.port }}]
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 3
          resources:
            {{- toYaml $s.resources | nindent 12 }}
          securityContext:
            {{- toYaml $pg.containerSecurityContext | nindent 12 }}
          volumeMounts:
            # PostgreSQL 18+ images keep PGDATA in /var/lib/postgresql/<major>/docker: mount the parent.
            - name: data
              mountPath: /var/lib/postgresql
            - name: config
              mountPath: /etc/bazar
              readOnly: true
            {{- if not $standby }}
            - name: initdb
              mountPath: /docker-entrypoint-initdb.d
              readOnly: true
            {{- end }}
            - name: run
              mountPath: /var/run/postgresql
            - name: tmp
              mountPath: /tmp
            - name: shm
              mountPath: /dev/shm
      volumes:
        - name: config
          configMap:
            name: {{ include "bazar.postgresqlPrimaryName" $root }}
            items:
              - key: pg_hba.conf
                path: pg_hba.conf
        {{- if $standby }}
        - name: scripts
          configMap:
            name: {{ include "bazar.postgresqlPrimaryName" $root }}
            items:
              - key: bootstrap-standby.sh
                path: bootstrap-standby.sh
        {{- else }}
        - name: initdb
          configMap:
            name: {{ include "bazar.postgresqlPrimaryName" $root }}
            defaultMode: 0555
            items:
              - key: 10-bazar-roles.sh
                path: 10-bazar-roles.sh
        {{- end }}
        - name: run
          emptyDir: {}
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        - name: shm
          emptyDir:
            medium: Memory
            sizeLimit: {{ $pg.shmSizeLimit }}
        {{- if not $s.persistence.enabled }}
        - name: data
          emptyDir: {}
        {{- end }}
  {{- if $s.persistence.enabled }}
  volumeClaimTemplates:
    - apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
        labels:
          {{- include "bazar.componentSelectorLabels" $sel | nindent 10 }}
      spec:
        accessModes:
          {{- toYaml $s.persistence.accessModes | nindent 10 }}
        {{- with $s.persistence.storageClass }}
        storageClassName: {{ if eq . "-" }}""{{ else }}{{ . }}{{ end }}
        {{- end }}
        resources:
          requests:
            storage: {{ $s.persistence.size }}
  {{- end }}
{{- end }}

{{/* The client Service of a PostgreSQL role, and the headless Service its StatefulSet needs. */}}
{{- define "bazar.postgresql.services" -}}
{{- $root := .root }}
{{- $sel := dict "root" $root "component" "postgresql" "role" .role }}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ include "bazar.namespace" $root }}
  labels:
    {{- include "bazar.componentLabels" $sel | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "bazar.componentSelectorLabels" $sel | nindent 4 }}
  ports:
    - name: postgresql
      port: {{ int $root.Values.postgresql.port }}
      targetPort: postgresql
      protocol: TCP
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}-hl
  namespace: {{ include "bazar.namespace" $root }}
  labels:
    {{- include "bazar.componentLabels" $sel | nindent 4 }}
spec:
  type: ClusterIP
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    {{- include "bazar.componentSelectorLabels" $sel | nindent 4 }}
  ports:
    - name: postgresql
      port: {{ int $root.Values.postgresql.port }}
      targetPort: postgresql
      protocol: TCP
{{- end }}

{{/* The ConfigMap data: pg_hba.conf and the scripts (also checksummed into the pod templates). */}}
{{- define "bazar.postgresql.configData" -}}
{{- $pg := .Values.postgresql -}}
# Passed as hba_file: the data directory's own pg_hba.conf is not used.
pg_hba.conf: |
  # TYPE  DATABASE     USER                                  ADDRESS  METHOD
  # The Unix socket lives in an emptyDir only this container sees (the image's default, too).
  local   all          all                                            trust
  host    replication  {{ $pg.replicationUsername | printf "%-37s" }} all      scram-sha-256
  host    all          all                                   all      scram-sha-256
# Run once, by the image's entrypoint, on the primary's first start (empty data directory).
10-bazar-roles.sh: |
  #!/bin/bash
  # Creates the services' role (owner of their database, member of pg_monitor) and the
  # replication role. The temporary server already runs with synchronous_standby_names set and no
  # standby exists yet, so every statement here commits with synchronous_commit = local.
  set -euo pipefail
  psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" --dbname postgres \
    --set=app_user="$BAZAR_DB_USER" --set=app_password="$BAZAR_DB_PASSWORD" --set=app_db="$BAZAR_DB_NAME" \
    --set=repl_user="$BAZAR_REPLICATION_USER" --set=repl_password="$BAZAR_REPLICATION_PASSWORD" <<'EOSQL'
  SET synchronous_commit = local;
  CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
  GRANT pg_monitor TO :"app_user";
  CREATE DATABASE :"app_db" OWNER :"app_user";
  CREATE ROLE :"repl_user" REPLICATION LOGIN PASSWORD :'repl_password';
  EOSQL
  echo "bazar: created role $BAZAR_DB_USER (pg_monitor), database $BAZAR_DB_NAME, replication role $BAZAR_REPLICATION_USER"
# The standbys' init container: an empty data directory is filled with pg_basebackup -R from the
# primary, through a physical replication slot named after the pod.
bootstrap-standby.sh: |
  #!/bin/bash
  set -euo pipefail
  : "${PGDATA:?PGDATA must be set (the official image sets it)}"
  if [ -s "$PGDATA/PG_VERSION" ]; then
    echo "bootstrap-standby: $PGDATA already holds a database; streaming resumes from its slot"
    exit 0
  fi
  slot="$(printf '%s' "$POD_NAME" | tr -c 'a-z0-9_' '_')"
  until pg_isready --quiet --host="$PRIMARY_HOST" --port="$PRIMARY_PORT"; do
    echo "bootstrap-standby: waiting for the primary $PRIMARY_HOST:$PRIMARY_PORT"
    sleep 2
  done
  export PGPASSWORD="$REPLICATION_PASSWORD"
  conn="host=$PRIMARY_HOST port=$PRIMARY_PORT user=$REPLICATION_USER application_name=$POD_NAME"
  pg_receivewal --dbname="$conn" --slot="$slot" --create-slot --if-not-exists --no-password
  # Copy into a scratch directory and move it into place only when complete, so a pod killed
  # half-way never leaves a data directory that looks initialised.
  scratch="$PGDATA.bootstrap"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  chmod 0700 "$scratch"
  echo "bootstrap-standby: pg_basebackup from $PRIMARY_HOST into $PGDATA (slot $slot)"
  pg_basebackup --dbname="$conn" --pgdata="$scratch" --slot="$slot" --write-recovery-conf \
    --wal-method=stream --checkpoint=fast --no-password --progress
  # No PG_VERSION: whatever is there is not a database.
  rm -rf "$PGDATA"
  mv "$scratch" "$PGDATA"
  echo "bootstrap-standby: done"
{{- end }}
