{{/*
Helpers of the Ember chart.
*/}}

{{/* The chart name, overridable with nameOverride. */}}
{{- define "ember.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified name of this release's objects (at most 63 characters, the
limit of a DNS label). When the release name already contains the chart name,
the release name alone is used.
*/}}
{{- define "ember.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "ember-0.1.0", for the helm.sh/chart label. */}}
{{- define "ember.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select this release's pods. Never change them: they are immutable in a Deployment. */}}
{{- define "ember.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ember.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels of every object of this release. */}}
{{- define "ember.labels" -}}
helm.sh/chart: {{ include "ember.chart" . }}
{{ include "ember.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: fhir-server
app.kubernetes.io/part-of: ember
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The service account the pods run as. */}}
{{- define "ember.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ember.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference. A digest (image.digest, set by the release pipeline) wins
over the tag, so that exactly the signed image is deployed.
*/}}
{{- define "ember.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding EMBER_DATABASE_URL: an existing one, or the one this chart makes. */}}
{{- define "ember.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "ember.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The key of the database URL inside that Secret. */}}
{{- define "ember.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- required "database.existingSecretKey is required with database.existingSecret" .Values.database.existingSecretKey }}
{{- else }}
{{- print "database-url" }}
{{- end }}
{{- end }}

{{/* EMBER_APP_NAME: the `app` field of every log line. Defaults to the release's full name. */}}
{{- define "ember.appName" -}}
{{- default (include "ember.fullname" .) .Values.config.appName }}
{{- end }}

{{/*
Checks that cannot be written in values.schema.json. Each one fails the
rendering with a message saying what to change.
*/}}
{{- define "ember.validate" -}}
{{- $db := .Values.database }}
{{- if and $db.url $db.existingSecret }}
{{- fail "set only one of database.url and database.existingSecret" }}
{{- end }}
{{- if not (or $db.url $db.existingSecret) }}
{{- fail "Ember needs PostgreSQL in a cluster: set database.existingSecret (recommended) or database.url to a postgres:// URL. The embedded SQLite store is for laptops only." }}
{{- end }}
{{- if and $db.url (not (regexMatch "^postgres(ql)?://" $db.url)) }}
{{- fail "database.url must be a postgres:// or postgresql:// URL; the embedded SQLite store is not supported in a cluster" }}
{{- end }}
{{- $delay := int64 .Values.config.shutdownDelayMs }}
{{- $grace := int64 .Values.config.shutdownGraceMs }}
{{- if gt $grace 9500 }}
{{- fail "config.shutdownGraceMs must be at most 9500: the platform kills a container 10 s after SIGTERM" }}
{{- end }}
{{- if gt $delay $grace }}
{{- fail "config.shutdownDelayMs must not exceed config.shutdownGraceMs: the delay is part of the grace period" }}
{{- end }}
{{- if lt (mul (int64 .Values.terminationGracePeriodSeconds) 1000) (add $delay $grace) }}
{{- fail (printf "terminationGracePeriodSeconds (%v s) must be at least config.shutdownDelayMs + config.shutdownGraceMs (%v ms), so Kubernetes never kills Ember before it has drained" .Values.terminationGracePeriodSeconds (add $delay $grace)) }}
{{- end }}
{{- if and (not .Values.autoscaling.enabled) (lt (int .Values.replicaCount) 2) }}
{{- fail "replicaCount must be at least 2: the platform requires two instances in different zones" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.minReplicas) 2) }}
{{- fail "autoscaling.minReplicas must be at least 2: the platform requires two instances in different zones" }}
{{- end }}
{{- end }}

{{/*
The environment of the container: one EMBER_* variable per setting of
`ember serve` (see docs/operations.md), the database URL from the Secret.
*/}}
{{- define "ember.env" -}}
{{- $c := .Values.config -}}
- name: EMBER_LISTEN
  value: {{ printf "0.0.0.0:%v" .Values.containerPort | quote }}
- name: EMBER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "ember.databaseSecretName" . }}
      key: {{ include "ember.databaseSecretKey" . }}
- name: EMBER_DB_POOL_SIZE
  value: {{ $c.dbPoolSize | quote }}
- name: EMBER_DB_ACQUIRE_TIMEOUT_MS
  value: {{ $c.dbAcquireTimeoutMs | quote }}
- name: EMBER_BASE_PATH
  value: {{ $c.basePath | quote }}
{{- if $c.publicBaseUrl }}
- name: EMBER_PUBLIC_BASE_URL
  value: {{ $c.publicBaseUrl | quote }}
{{- end }}
{{- if $c.authMode }}
- name: EMBER_AUTH
  value: {{ $c.authMode | quote }}
{{- end }}
- name: EMBER_AUTH_ISSUERS
  value: {{ $c.authIssuers | quote }}
{{- if $c.authAudience }}
- name: EMBER_AUTH_AUDIENCE
  value: {{ $c.authAudience | quote }}
{{- end }}
{{- if $c.authIntrospectionUrl }}
- name: EMBER_AUTH_INTROSPECTION_URL
  value: {{ $c.authIntrospectionUrl | quote }}
- name: EMBER_AUTH_INTROSPECTION_CLIENT_ID
  value: {{ $c.authIntrospectionClientId | quote }}
- name: EMBER_AUTH_INTROSPECTION_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ required "config.authIntrospectionSecret (a Secret with introspection-client-secret) is needed with config.authIntrospectionUrl" $c.authIntrospectionSecret | quote }}
      key: introspection-client-secret
{{- end }}
- name: EMBER_AUTH_LEEWAY_SECONDS
  value: {{ $c.authLeewaySeconds | int64 | quote }}
- name: EMBER_AUTH_CLAIMS
  value: {{ $c.authClaims | quote }}
- name: EMBER_KV_MAX_BYTES
  value: {{ $c.kvMaxBytes | int64 | quote }}
- name: EMBER_AUDIT
  value: {{ $c.audit | quote }}
- name: EMBER_CORS_ORIGINS
  value: {{ $c.corsOrigins | quote }}
- name: EMBER_CDS_CLIENTS
  value: {{ $c.cdsClients | quote }}
- name: EMBER_MAX_BODY_BYTES
  value: {{ $c.maxBodyBytes | int64 | quote }}
- name: EMBER_MAX_JSON_DEPTH
  value: {{ $c.maxJsonDepth | quote }}
- name: EMBER_VALIDATION
  value: {{ $c.validation | quote }}
- name: EMBER_VALIDATE_PROFILES
  value: {{ $c.validateProfiles | ternary "true" "false" | quote }}
- name: EMBER_MAX_BUNDLE_ENTRIES
  value: {{ $c.maxBundleEntries | int64 | quote }}
- name: EMBER_MAX_COUNT
  value: {{ $c.maxCount | quote }}
- name: EMBER_MAX_CONDITIONAL_DELETE
  value: {{ $c.maxConditionalDelete | int64 | quote }}
- name: EMBER_MAX_EXPANSION
  value: {{ $c.maxExpansion | int64 | quote }}
- name: EMBER_JOB_LEASE_SECONDS
  value: {{ $c.jobLeaseSeconds | int64 | quote }}
- name: EMBER_JOB_MAX_ATTEMPTS
  value: {{ $c.jobMaxAttempts | int64 | quote }}
- name: EMBER_JOB_RETRY_BASE_MS
  value: {{ $c.jobRetryBaseMs | int64 | quote }}
- name: EMBER_JOB_CONCURRENCY
  value: {{ $c.jobConcurrency | int64 | quote }}
- name: EMBER_EXPORT_EXPIRY_SECONDS
  value: {{ $c.exportExpirySeconds | int64 | quote }}
- name: EMBER_EXPORT_FILE_RESOURCES
  value: {{ $c.exportFileResources | int64 | quote }}
- name: EMBER_COEXISTENCE_TAG
  value: {{ $c.coexistenceTag | quote }}
- name: EMBER_MISSING_CHECK_SECONDS
  value: {{ $c.missingCheckSeconds | int64 | quote }}
- name: EMBER_REQUEST_TIMEOUT_MS
  value: {{ $c.requestTimeoutMs | int64 | quote }}
- name: EMBER_SHUTDOWN_DELAY_MS
  value: {{ $c.shutdownDelayMs | int64 | quote }}
- name: EMBER_SHUTDOWN_GRACE_MS
  value: {{ $c.shutdownGraceMs | int64 | quote }}
- name: EMBER_APP_NAME
  value: {{ include "ember.appName" . | quote }}
- name: EMBER_LOG
  value: {{ $c.log | quote }}
- name: EMBER_LOG_PHI
  value: {{ $c.logPhi | ternary "true" "false" | quote }}
- name: EMBER_TRUSTED_PROXIES
  value: {{ $c.trustedProxies | quote }}
- name: EMBER_LIVENESS_PATH
  value: {{ $c.livenessPath | quote }}
- name: EMBER_READINESS_PATH
  value: {{ $c.readinessPath | quote }}
{{- /*
Span export; only set when given a value.
*/}}
{{- if .Values.opentelemetry.collectorUrl }}
- name: OPENTELEMETRY_COLLECTOR_URL
  value: {{ .Values.opentelemetry.collectorUrl | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
