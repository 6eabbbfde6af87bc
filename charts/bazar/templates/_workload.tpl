{{/*
The service workloads: one Deployment per component and role, plus its PDB and HPA.
Arguments (a dict):
  root       the chart context (.)
  component  front | catalog | order
  role       "" (front) | origin | replica
  workload   the values of this Deployment (replicas, resources, autoscaling, pdb, scheduling, ...)
  service    the component's values (image and service settings)
*/}}

{{- define "bazar.workloadName" -}}
{{- include "bazar.fullname" .root }}-{{ .component }}{{ if .role }}-{{ .role }}{{ end }}
{{- end }}

{{/* True when the workload may run more than one pod (then it gets a PDB). */}}
{{- define "bazar.workloadMultiPod" -}}
{{- $w := .workload }}
{{- if $w.autoscaling.enabled }}
{{- if gt (int $w.autoscaling.minReplicas) 1 }}true{{ end }}
{{- else if gt (int $w.replicas) 1 }}true{{ end }}
{{- end }}

{{- define "bazar.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "bazar.secretName" .root }}
      key: {{ .key }}
{{- end }}

{{- define "bazar.deployment" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $w := .workload }}
{{- $component := .component }}
{{- $role := .role }}
{{- $sel := dict "root" $root "component" $component "role" $role }}
{{- $policy := $v.storePolicy }}
{{- $policyName := include "bazar.policyName" $root }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "bazar.workloadName" . }}
  namespace: {{ include "bazar.namespace" $root }}
  labels:
    {{- include "bazar.componentLabels" $sel | nindent 4 }}
spec:
  {{- if not $w.autoscaling.enabled }}
  replicas: {{ int $w.replicas }}
  {{- end }}
  revisionHistoryLimit: {{ int $v.revisionHistoryLimit }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # Never below the desired count: a new pod must be ready before an old one drains.
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "bazar.componentSelectorLabels" $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "bazar.componentSelectorLabels" $sel | nindent 8 }}
        app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
        app.kubernetes.io/part-of: bazar
        {{- with $w.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $w.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "bazar.serviceAccountName" $root }}
      # The services watch EndpointSlices and the StorePolicy through the API server.
      automountServiceAccountToken: true
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ include "bazar.terminationGracePeriodSeconds" $root }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      {{- with $v.image.pullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      {{- with $w.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $w.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- include "bazar.tolerations" (dict "root" $root "tolerations" $w.tolerations) | nindent 6 }}
      {{- if $w.affinity }}
      affinity:
        {{- toYaml $w.affinity | nindent 8 }}
      {{- else if and .spreadAcrossRoles $v.spreadAcrossNodes }}
      # The service's pods of every role apart too (the spread below counts one Deployment's): its
      # Deployments take the same requests (order's origin and replica both commit purchases), and a
      # node holding all of them would take the service with it.
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "bazar.componentSelectorLabels" (dict "root" $root "component" $component "role" "") | nindent 20 }}
      {{- end }}
      {{- if $w.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml $w.topologySpreadConstraints | nindent 8 }}
      {{- else if $v.spreadAcrossNodes }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "bazar.componentSelectorLabels" $sel | nindent 14 }}
          matchLabelKeys:
            - pod-template-hash
      {{- end }}
      containers:
        - name: {{ $component }}
          image: {{ include "bazar.image" (dict "root" $root "image" .service.image) | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          # The same start command the devstack uses (see the Dockerfile's CMD).
          command:
            - node
            {{- range $root.Values.nodeFlags }}
            - {{ . | quote }}
            {{- end }}
            - dist/services/{{ $component }}/src/main.js
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
            {{- if eq $component "front" }}
            # /internal/* (invalidations from the writers) only: see INTERNAL_PORT.
            - name: internal
              containerPort: 8081
              protocol: TCP
            {{- end }}
          env:
            - name: SERVICE_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: HOST
              value: "0.0.0.0"
            - name: PORT
              value: "8080"
            {{- if $role }}
            - name: ROLE
              value: {{ $role }}
            {{- end }}
            - name: LOG_LEVEL
              value: {{ $v.config.logLevel | quote }}
            {{- with $v.tracing }}
            {{- if .otlpEndpoint }}
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: {{ .otlpEndpoint | quote }}
            - name: OTEL_TRACES_SAMPLER_ARG
              value: {{ .sampleRatio | toString | quote }}
            {{- end }}
            {{- end }}
            - name: SHUTDOWN_DELAY_MS
              value: {{ int $v.config.shutdownDelayMs | quote }}
            - name: DRAIN_TIMEOUT_MS
              value: {{ int $v.config.drainTimeoutMs | quote }}
            - name: UPSTREAM_TIMEOUT_MS
              value: {{ int $v.config.upstreamTimeoutMs | quote }}
            - name: UPSTREAM_WRITE_TIMEOUT_MS
              value: {{ include "bazar.upstreamWriteTimeoutMs" $root | quote }}
            - name: UPSTREAM_MAX_ATTEMPTS
              value: {{ int $v.config.upstreamMaxAttempts | quote }}
            - name: CONSISTENCY_MODE
              value: {{ $policy.consistencyMode | quote }}
            - name: LOAD_BALANCING
              value: {{ $policy.loadBalancing | quote }}
            - name: INVALIDATION_TIMEOUT_MS
              value: {{ int $policy.invalidationTimeoutMs | quote }}
            - name: DISCOVERY
              value: kubernetes
            # Writers push invalidations to the fronts' internal port, found in this Service's slices.
            - name: FRONT_SERVICE
              value: {{ include "bazar.frontInternalService" $root }}
            - name: FRONT_INTERNAL_PORT_NAME
              value: internal
            - name: CATALOG_SERVICE
              value: {{ include "bazar.catalogService" $root }}
            - name: CATALOG_ORIGIN_SERVICE
              value: {{ include "bazar.catalogOriginService" $root }}
            - name: ORDER_SERVICE
              value: {{ include "bazar.orderService" $root }}
            - name: DISCOVERY_PORT_NAME
              value: http
            {{- if $policyName }}
            - name: POLICY_NAME
              value: {{ $policyName }}
            {{- end }}
            {{- with $v.config.nodeOptions }}
            - name: NODE_OPTIONS
              value: {{ . | quote }}
            {{- end }}
            {{- include "bazar.secretEnv" (dict "root" $root "env" "INTERNAL_TOKEN" "key" "internal-token") | nindent 12 }}
            {{- if ne $component "order" }}
            {{- include "bazar.secretEnv" (dict "root" $root "env" "ADMIN_TOKEN" "key" "admin-token") | nindent 12 }}
            # GET /search/:topic pages: the front validates them, the catalog reads them (the same sizes).
            - name: SEARCH_PAGE_SIZE
              value: {{ include "bazar.searchPageSize" $root | quote }}
            - name: SEARCH_MAX_PAGE_SIZE
              value: {{ int $v.config.searchMaxPageSize | quote }}
            {{- end }}
            {{- if eq $component "front" }}
            # /internal/* on its own port, which the NetworkPolicy opens to catalog and order pods only.
            - name: INTERNAL_PORT
              value: "8081"
            - name: CACHE_MAX_ENTRIES
              value: {{ int $policy.cache.maxEntries | quote }}
            - name: CACHE_MAX_BYTES
              value: {{ int $policy.cache.maxBytes | quote }}
            - name: CACHE_TTL_MS
              value: {{ int $policy.cache.ttlMs | quote }}
            - name: CACHE_RECONCILE_INTERVAL_MS
              value: {{ int .service.cacheReconcileIntervalMs | quote }}
            # GET /live: what this front answers and receives, as it happens (kubectl port-forward, then /live).
            - name: LIVE_PAGE
              value: {{ .service.livePage | quote }}
            {{- else }}
            {{- if and (eq $component "catalog") (eq $role "replica") }}
            # Catalog replicas read from a hot standby.
            - name: DATABASE_REPLICA_URL
              value: {{ include "bazar.db.replicaUrl" $root | quote }}
            {{- else }}
            # Catalog origins and all order pods read and write on the primary.
            - name: DATABASE_URL
              value: {{ include "bazar.db.primaryUrl" $root | quote }}
            {{- end }}
            {{- $pgValues := $root.Values.postgresql }}
            {{- if and (eq $component "order") (or (and $pgValues.external.enabled $pgValues.external.standbyHost) (include "bazar.db.standbyEnabled" $root)) }}
            # Order lookups read the standby first, so they keep working while the primary is down.
            - name: DATABASE_REPLICA_URL
              value: {{ include "bazar.db.replicaUrl" $root | quote }}
            {{- end }}
            {{- if eq $component "catalog" }}
            - name: REPLICA_WAIT_MS
              value: {{ int .service.replicaWaitMs | quote }}
            {{- end }}
            - name: SYNC_COMMIT_TIMEOUT_MS
              value: {{ include "bazar.syncCommitTimeoutMs" (dict "root" $root "service" .service) | quote }}
            - name: STRICT_STANDBY_LOSS
              value: {{ $v.config.strictStandbyLoss | quote }}
            # A write that finds no writable primary waits this long for one (a switchover), then 503.
            - name: PRIMARY_WAIT_MS
              value: {{ include "bazar.primaryWaitMs" (dict "root" $root "service" .service) | quote }}
            - name: DB_POOL_MAX
              value: {{ int .service.dbPoolMax | quote }}
            # The database URLs carry no password; node-postgres takes it from PGPASSWORD.
            {{- include "bazar.secretEnv" (dict "root" $root "env" "PGPASSWORD" "key" "database-password") | nindent 12 }}
            {{- end }}
            {{- with $v.config.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $w.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $v.probes.startup }}
          {{- if .enabled }}
          startupProbe:
            httpGet:
              path: /livez
              port: http
            periodSeconds: {{ int .periodSeconds }}
            timeoutSeconds: {{ int .timeoutSeconds }}
            failureThreshold: {{ int .failureThreshold }}
          {{- end }}
          {{- end }}
          livenessProbe:
            httpGet:
              path: /livez
              port: http
            periodSeconds: {{ int $v.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ int $v.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ int $v.probes.liveness.failureThreshold }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ int $v.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ int $v.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ int $v.probes.readiness.failureThreshold }}
            successThreshold: {{ int $v.probes.readiness.successThreshold }}
          resources:
            {{- toYaml $w.resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $v.tmpSizeLimit }}
{{- end }}

{{- define "bazar.pdb" -}}
{{- $w := .workload }}
{{- if and $w.pdb.enabled (include "bazar.workloadMultiPod" .) }}
{{- $sel := dict "root" .root "component" .component "role" .role }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "bazar.workloadName" . }}
  namespace: {{ include "bazar.namespace" .root }}
  labels:
    {{- include "bazar.componentLabels" $sel | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $w.pdb.minAvailable) }}
  minAvailable: {{ $w.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $w.pdb.maxUnavailable | default 1 }}
  {{- end }}
  {{- with .root.Values.pdbUnhealthyPodEvictionPolicy }}
  unhealthyPodEvictionPolicy: {{ . }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "bazar.componentSelectorLabels" $sel | nindent 6 }}
{{- end }}
{{- end }}

{{- define "bazar.hpa" -}}
{{- $a := .workload.autoscaling }}
{{- if $a.enabled }}
{{- $sel := dict "root" .root "component" .component "role" .role }}
{{- if lt (int $a.maxReplicas) (int $a.minReplicas) }}
{{- fail (printf "%s: autoscaling.maxReplicas must be >= minReplicas" (include "bazar.workloadName" .)) }}
{{- end }}
{{- if and (kindIs "invalid" $a.targetCPUUtilizationPercentage) (kindIs "invalid" $a.targetMemoryUtilizationPercentage) }}
{{- fail (printf "%s: autoscaling needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" (include "bazar.workloadName" .)) }}
{{- end }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "bazar.workloadName" . }}
  namespace: {{ include "bazar.namespace" .root }}
  labels:
    {{- include "bazar.componentLabels" $sel | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "bazar.workloadName" . }}
  minReplicas: {{ int $a.minReplicas }}
  maxReplicas: {{ int $a.maxReplicas }}
  metrics:
    {{- if not (kindIs "invalid" $a.targetCPUUtilizationPercentage) }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ int $a.targetCPUUtilizationPercentage }}
    {{- end }}
    {{- if not (kindIs "invalid" $a.targetMemoryUtilizationPercentage) }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ int $a.targetMemoryUtilizationPercentage }}
    {{- end }}
{{- end }}
{{- end }}

{{/* A ClusterIP (or front: configurable) Service whose port is named http: discovery reads its EndpointSlices. */}}
{{- define "bazar.service" -}}
{{- $sel := dict "root" .root "component" .component "role" .role }}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ include "bazar.namespace" .root }}
  labels:
    {{- include "bazar.componentLabels" (dict "root" .root "component" .component "role" "") | nindent 4 }}
    {{- if .scrape }}
    bazar.dev/scrape: "true"
    {{- end }}
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .type | default "ClusterIP" }}
  selector:
    {{- include "bazar.componentSelectorLabels" $sel | nindent 4 }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
      protocol: TCP
      {{- if and .nodePort (ne (.type | default "ClusterIP") "ClusterIP") }}
      nodePort: {{ .nodePort }}
      {{- end }}
{{- end }}
