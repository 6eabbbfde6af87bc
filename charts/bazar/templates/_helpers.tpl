{{/* vim: set filetype=mustache: */}}

{{/* The chart name. */}}
{{- define "bazar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name. Truncated to 30 characters: the longest derived name,
"<fullname>-postgresql-standby-hl", and StatefulSet pod/revision names must stay within the
Kubernetes limits.
*/}}
{{- define "bazar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 30 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 30 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 30 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "bazar.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{- define "bazar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: name + instance. Immutable once a workload exists. */}}
{{- define "bazar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bazar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The recommended labels, on every object. */}}
{{- define "bazar.labels" -}}
helm.sh/chart: {{ include "bazar.chart" . }}
{{ include "bazar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bazar
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of one component, optionally one role.
Usage: include "bazar.componentSelectorLabels" (dict "root" . "component" "catalog" "role" "origin")
*/}}
{{- define "bazar.componentSelectorLabels" -}}
{{ include "bazar.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- if .role }}
role: {{ .role }}
{{- end }}
{{- end }}

{{/* All labels of one component/role. */}}
{{- define "bazar.componentLabels" -}}
{{ include "bazar.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- if .role }}
role: {{ .role }}
{{- end }}
{{- end }}

{{/* Kubernetes Service names: the services discover each other through these (see discoverySchema). */}}
{{- define "bazar.frontService" -}}{{ include "bazar.fullname" . }}-front{{- end }}
{{/* The fronts' /internal/* port (invalidations): its own headless Service, never exposed by the front Service's type. */}}
{{- define "bazar.frontInternalService" -}}{{ include "bazar.fullname" . }}-front-internal{{- end }}
{{- define "bazar.catalogService" -}}{{ include "bazar.fullname" . }}-catalog{{- end }}
{{- define "bazar.catalogOriginService" -}}{{ include "bazar.fullname" . }}-catalog-origin{{- end }}
{{- define "bazar.orderService" -}}{{ include "bazar.fullname" . }}-order{{- end }}
{{- define "bazar.postgresqlPrimaryName" -}}{{ include "bazar.fullname" . }}-postgresql{{- end }}
{{- define "bazar.postgresqlStandbyName" -}}{{ include "bazar.fullname" . }}-postgresql-standby{{- end }}
{{/* engine: patroni. The StatefulSet, Patroni's scope (cluster name, prefix of its ConfigMaps) and its pods' ServiceAccount. */}}
{{- define "bazar.patroniName" -}}{{ include "bazar.fullname" . }}-patroni{{- end }}

{{- define "bazar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bazar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bazar.secretName" -}}
{{- default (include "bazar.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/* The StorePolicy the services watch; empty when they use the environment policy only. */}}
{{- define "bazar.policyName" -}}
{{- if .Values.storePolicy.name }}
{{- .Values.storePolicy.name }}
{{- else if .Values.storePolicy.create }}
{{- include "bazar.fullname" . }}
{{- end }}
{{- end }}

{{/* Image reference of a service. Usage: include "bazar.image" (dict "root" . "image" .Values.front.image) */}}
{{- define "bazar.image" -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- if .root.Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* Image reference of a third-party image with registry/repository/tag. */}}
{{- define "bazar.thirdPartyImage" -}}
{{- if .registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .registry) .repository .tag }}
{{- else }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds of service pods: must exceed SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS, or
the kubelet kills a pod that is still draining.
*/}}
{{- define "bazar.terminationGracePeriodSeconds" -}}
{{- $c := .Values.config }}
{{- $needMs := add (int $c.shutdownDelayMs) (int $c.drainTimeoutMs) }}
{{- if kindIs "invalid" $c.terminationGracePeriodSeconds }}
{{- add (div (add $needMs 999) 1000) 10 }}
{{- else }}
{{- if le (mul (int $c.terminationGracePeriodSeconds) 1000) $needMs }}
{{- fail (printf "config.terminationGracePeriodSeconds (%v s) must exceed config.shutdownDelayMs + config.drainTimeoutMs (%v ms)" $c.terminationGracePeriodSeconds $needMs) }}
{{- end }}
{{- int $c.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
A writer's SYNC_COMMIT_TIMEOUT_MS: <service>.syncCommitTimeoutMs when set. null: with the bundled Patroni,
one loop_wait and 5 s more: Patroni names no standby that is gone from its next loop on, which lets the
commits waiting for it go (synchronous_mode without strict), and a write must not be refused before
that; otherwise 2000. `dict "root" $ "service" <values of catalog or order>`.
*/}}
{{- define "bazar.syncCommitTimeoutMs" -}}
{{- if not (kindIs "invalid" .service.syncCommitTimeoutMs) }}{{ int .service.syncCommitTimeoutMs }}
{{- else if include "bazar.db.patroni" .root }}{{ add (mul (int .root.Values.postgresql.patroni.loopWait) 1000) 5000 }}
{{- else }}2000
{{- end }}
{{- end }}

{{/*
A writer's PRIMARY_WAIT_MS: <service>.primaryWaitMs when set. null: with the bundled Patroni, one
loop_wait (a switchover, which drains and rollouts of the primary make, hands over within it);
otherwise 0 (no primary to wait for: the pair does not fail over).
*/}}
{{- define "bazar.primaryWaitMs" -}}
{{- if not (kindIs "invalid" .service.primaryWaitMs) }}{{ int .service.primaryWaitMs }}
{{- else if include "bazar.db.patroni" .root }}{{ mul (int .root.Values.postgresql.patroni.loopWait) 1000 }}
{{- else }}0
{{- end }}
{{- end }}

{{/*
UPSTREAM_WRITE_TIMEOUT_MS (fronts, catalog replicas): a strict write's longest wait must fit in it: its
wait for a primary (PRIMARY_WAIT_MS), for the standby (SYNC_COMMIT_TIMEOUT_MS) and for the fronts
(invalidationTimeoutMs). A write that waited for a primary was refused once before (up to a connect
timeout, 1000 ms, after its first announcement) and is announced again: one more invalidationTimeoutMs
and 1000 ms while any writer waits. Cut shorter, a write served after its wait would be answered 504
upstream_timeout, and the front would send it to the next writer, which would wait all over again.
null: that longest wait and 2000 ms more; a value that does not exceed it is refused.
*/}}
{{- define "bazar.upstreamWriteTimeoutMs" -}}
{{- $v := .Values }}
{{- $invalidation := int $v.storePolicy.invalidationTimeoutMs }}
{{- $catalogWait := int (include "bazar.primaryWaitMs" (dict "root" . "service" $v.catalog)) }}
{{- $orderWait := int (include "bazar.primaryWaitMs" (dict "root" . "service" $v.order)) }}
{{- $catalog := add $catalogWait (include "bazar.syncCommitTimeoutMs" (dict "root" . "service" $v.catalog)) }}
{{- $order := add $orderWait (include "bazar.syncCommitTimeoutMs" (dict "root" . "service" $v.order)) }}
{{- $needMs := add (max $catalog $order) $invalidation }}
{{- $why := "the larger primaryWaitMs + syncCommitTimeoutMs plus storePolicy.invalidationTimeoutMs" }}
{{- if gt (max $catalogWait $orderWait) 0 }}
{{- $needMs = add $needMs $invalidation 1000 }}
{{- $why = "the larger primaryWaitMs + syncCommitTimeoutMs plus twice storePolicy.invalidationTimeoutMs plus 1000 ms (a write that waited for a primary is announced twice, and its first refusal may take a connect timeout)" }}
{{- end }}
{{- if kindIs "invalid" $v.config.upstreamWriteTimeoutMs }}
{{- add $needMs 2000 }}
{{- else }}
{{- if le (int $v.config.upstreamWriteTimeoutMs) $needMs }}
{{- fail (printf "config.upstreamWriteTimeoutMs (%v ms) must exceed %s (%v ms): a strict write may wait that long before it answers" $v.config.upstreamWriteTimeoutMs $why $needMs) }}
{{- end }}
{{- int $v.config.upstreamWriteTimeoutMs }}
{{- end }}
{{- end }}

{{- define "bazar.searchPageSize" -}}
{{- $c := .Values.config }}
{{- if gt (int $c.searchPageSize) (int $c.searchMaxPageSize) }}
{{- fail (printf "config.searchPageSize (%v) must not exceed config.searchMaxPageSize (%v)" $c.searchPageSize $c.searchMaxPageSize) }}
{{- end }}
{{- int $c.searchPageSize }}
{{- end }}

{{/* ---------------------------------------------------------------- database */}}

{{- define "bazar.db.external" -}}
{{- if .Values.postgresql.external.enabled }}true{{ end }}
{{- end }}

{{/*
The bundled PostgreSQL's engine: postgresql.engine when it is set. Unset (""): on an upgrade of a release
that runs the pair (its primary StatefulSet <fullname>-postgresql found with `lookup`), the pair, so that
a release installed before patroni became the default keeps its database; otherwise patroni. (`helm
template` and client-side dry runs cannot look up: they show patroni.)
*/}}
{{- define "bazar.db.engine" -}}
{{- if .Values.postgresql.engine }}{{ .Values.postgresql.engine }}
{{- else if and .Release.IsUpgrade (lookup "apps/v1" "StatefulSet" (include "bazar.namespace" .) (printf "%s-postgresql" (include "bazar.fullname" .))) }}pair
{{- else }}patroni
{{- end }}
{{- end }}

{{/* The bundled PostgreSQL is the primary + standby pair. */}}
{{- define "bazar.db.pair" -}}
{{- if and (not .Values.postgresql.external.enabled) (eq (include "bazar.db.engine" .) "pair") }}true{{ end }}
{{- end }}

{{/* The bundled PostgreSQL is the Patroni-managed StatefulSet. */}}
{{- define "bazar.db.patroni" -}}
{{- if and (not .Values.postgresql.external.enabled) (eq (include "bazar.db.engine" .) "patroni") }}true{{ end }}
{{- end }}

{{/*
A bundled server other than the primary exists, behind the standby Service (<fullname>-postgresql-standby):
the pair's standbys, or Patroni's replicas (more than one instance).
*/}}
{{- define "bazar.db.standbyEnabled" -}}
{{- if include "bazar.db.patroni" . }}
{{- if gt (int .Values.postgresql.patroni.instances) 1 }}true{{ end }}
{{- else if and (include "bazar.db.pair" .) .Values.postgresql.standby.enabled (gt (int .Values.postgresql.standby.replicas) 0) }}true{{ end }}
{{- end }}

{{/* postgres:// URL of the primary. No password: node-postgres reads PGPASSWORD from the environment. */}}
{{- define "bazar.db.primaryUrl" -}}
{{- $pg := .Values.postgresql }}
{{- $host := "" }}
{{- $port := 0 }}
{{- if $pg.external.enabled }}
{{- $host = required "postgresql.external.primaryHost is required when postgresql.external.enabled is true" $pg.external.primaryHost }}
{{- $port = int $pg.external.primaryPort }}
{{- else }}
{{- /* The short name resolves in the release namespace (first DNS search domain) and survives a
kustomize namespace change of the rendered k8s/ manifests. */}}
{{- $host = include "bazar.postgresqlPrimaryName" . }}
{{- $port = int $pg.port }}
{{- end }}
{{- printf "postgres://%s@%s:%d/%s" (urlquery $pg.username) $host $port (urlquery $pg.database) }}
{{- if and $pg.external.enabled $pg.external.params }}?{{ $pg.external.params }}{{ end }}
{{- end }}

{{/* postgres:// URL catalog replicas read from: a standby when there is one, else the primary. */}}
{{- define "bazar.db.replicaUrl" -}}
{{- $pg := .Values.postgresql }}
{{- if and $pg.external.enabled $pg.external.standbyHost }}
{{- printf "postgres://%s@%s:%d/%s" (urlquery $pg.username) $pg.external.standbyHost (int $pg.external.standbyPort) (urlquery $pg.database) }}
{{- if $pg.external.params }}?{{ $pg.external.params }}{{ end }}
{{- else if include "bazar.db.standbyEnabled" . }}
{{- printf "postgres://%s@%s:%d/%s" (urlquery $pg.username) (include "bazar.postgresqlStandbyName" .) (int $pg.port) (urlquery $pg.database) }}
{{- else }}
{{- include "bazar.db.primaryUrl" . }}
{{- end }}
{{- end }}

{{/*
The pod's tolerations: its own (values), then NoExecute tolerations of a node marked not-ready or
unreachable for nodeLossTolerationSeconds, unless its own already name that taint. Kubernetes gives
every pod 300 s of these (DefaultTolerationSeconds); shorter moves the store's pods off a dead node
sooner. Arguments: root, tolerations (the workload's list).
*/}}
{{- define "bazar.tolerations" -}}
{{- $own := .tolerations | default list }}
{{- $seconds := .root.Values.nodeLossTolerationSeconds }}
{{- $all := $own }}
{{- if not (kindIs "invalid" $seconds) }}
{{- $named := list }}
{{- range $own }}{{- $named = append $named (.key | default "") }}{{- end }}
{{- range $taint := list "node.kubernetes.io/not-ready" "node.kubernetes.io/unreachable" }}
{{- if not (has $taint $named) }}
{{- $all = append $all (dict "key" $taint "operator" "Exists" "effect" "NoExecute" "tolerationSeconds" (int $seconds)) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $all }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* A Prometheus duration of hours, minutes and seconds ("1h", "2m", "1m30s"; values.schema.json
  checks the form) in seconds, to compare two of them. */}}
{{- define "bazar.durationSeconds" -}}
{{- $d := toString . -}}
{{- $h := regexFind "[0-9]+h" $d | trimSuffix "h" | default "0" | int -}}
{{- $m := regexFind "[0-9]+m" $d | trimSuffix "m" | default "0" | int -}}
{{- $s := regexFind "[0-9]+s" $d | trimSuffix "s" | default "0" | int -}}
{{- add (mul $h 3600) (mul $m 60) $s -}}
{{- end }}
