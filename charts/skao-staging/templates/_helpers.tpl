{{/* Names and labels. */}}
{{- define "skao-staging.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "skao-staging.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "skao-staging.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "skao-staging.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "skao-staging.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "skao-staging.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: skao-staging
{{- end }}

{{/* Selector labels of one component (api, worker, migrate, mariadb): pass (dict "ctx" $ "component" "api"). */}}
{{- define "skao-staging.selectorLabels" -}}
app.kubernetes.io/name: {{ include "skao-staging.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "skao-staging.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "skao-staging.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "skao-staging.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The Secret and key holding the database URL. */}}
{{- define "skao-staging.databaseSecret" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecret }}
{{- else if .Values.mariadb.enabled }}{{ include "skao-staging.mariadbHost" . }}
{{- else }}{{ include "skao-staging.fullname" . }}-database{{ end }}
{{- end }}

{{- define "skao-staging.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{- define "skao-staging.mariadbHost" -}}
{{ include "skao-staging.fullname" . }}-mariadb
{{- end }}

{{/* A MariaDB password: the value given, else the one already in the cluster, else a new random one. */}}
{{- define "skao-staging.mariadbSecretValue" -}}
{{- $given := index .ctx.Values.mariadb .field }}
{{- if $given }}{{ $given }}{{ else }}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace (include "skao-staging.mariadbHost" .ctx) }}
{{- if and $existing (hasKey $existing.data .key) }}{{ index $existing.data .key | b64dec }}{{ else }}{{ randAlphaNum 24 }}{{ end }}
{{- end }}
{{- end }}

{{/* Values that cannot be expressed in values.schema.json. */}}
{{- define "skao-staging.validate" -}}
{{- if and (not .Values.mariadb.enabled) (not .Values.database.url) (not .Values.database.existingSecret) }}
{{- fail "a database is required: set database.url, database.existingSecret, or mariadb.enabled (evaluation)" }}
{{- end }}
{{- if and (eq .Values.auth.mode "oidc") (or (not .Values.auth.oidc.issuer) (not .Values.auth.oidc.audience)) }}
{{- fail "auth.mode=oidc needs auth.oidc.issuer and auth.oidc.audience" }}
{{- end }}
{{- if and .Values.jupyterhub.enabled (not .Values.jupyterhub.url) }}
{{- fail "jupyterhub.enabled needs jupyterhub.url" }}
{{- end }}
{{- if and .Values.jupyterhub.enabled (not .Values.jupyterhub.apiToken) (not .Values.jupyterhub.existingSecret) }}
{{- fail "jupyterhub.enabled needs jupyterhub.existingSecret or jupyterhub.apiToken" }}
{{- end }}
{{- with .Values.rucio }}
{{- if and .enabled (or (not .url) (not .account) (not .rse) (not .rseMounts)) }}
{{- fail "rucio.enabled needs rucio.url, rucio.account, rucio.rse and rucio.rseMounts" }}
{{- end }}
{{- if and .enabled (not .existingSecret) (not .tokenSecret) }}
{{- fail "rucio.enabled needs rucio.existingSecret (userpass) or rucio.tokenSecret" }}
{{- end }}
{{- end }}
{{- if and .Values.notifications.webhook.url (not .Values.notifications.webhook.existingSecret) }}
{{- fail "notifications.webhook.url needs notifications.webhook.existingSecret (key: secret) to sign its bodies" }}
{{- end }}
{{- end }}

{{/* The service's settings, shared by the API, the workers and the migration. */}}
{{- define "skao-staging.env" -}}
- name: STAGING_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "skao-staging.databaseSecret" . }}
      key: {{ include "skao-staging.databaseSecretKey" . }}
- name: STAGING_STORAGE_ROOTS
  value: {{ include "skao-staging.rootPaths" . | quote }}
- name: STAGING_USER_AREAS
  value: {{ printf "%s/%s" (trimSuffix "/" .Values.storage.userAreas.mountPath) .Values.storage.userAreas.pathTemplate | quote }}
{{- if .Values.storage.groupRoots }}
- name: STAGING_GROUP_STORAGE_ROOTS
  value: {{ toJson .Values.storage.groupRoots | quote }}
{{- end }}
- name: STAGING_METHODS
  value: {{ join "," (without .Values.methods (ternary "" "jupyter_copy" .Values.jupyterhub.enabled)) | quote }}
- name: STAGING_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: STAGING_LOG_FILE
  value: /var/log/skao-staging/staging_service.log
- name: STAGING_AUTH_MODE
  value: {{ .Values.auth.mode | quote }}
- name: STAGING_ADMIN_GROUP
  value: {{ .Values.auth.adminGroup | quote }}
{{- if eq .Values.auth.mode "oidc" }}
- name: STAGING_OIDC_ISSUER
  value: {{ .Values.auth.oidc.issuer | quote }}
- name: STAGING_OIDC_AUDIENCE
  value: {{ .Values.auth.oidc.audience | quote }}
- name: STAGING_OIDC_USERNAME_CLAIM
  value: {{ .Values.auth.oidc.usernameClaim | quote }}
- name: STAGING_OIDC_GROUPS_CLAIM
  value: {{ .Values.auth.oidc.groupsClaim | quote }}
{{- end }}
{{- if eq .Values.auth.mode "header" }}
- name: STAGING_AUTH_USER_HEADER
  value: {{ .Values.auth.header.userHeader | quote }}
- name: STAGING_AUTH_GROUPS_HEADER
  value: {{ .Values.auth.header.groupsHeader | quote }}
- name: STAGING_TRUSTED_PROXIES
  value: {{ join "," .Values.auth.header.trustedProxies | quote }}
{{- end }}
{{- if .Values.jupyterhub.enabled }}
- name: STAGING_JUPYTERHUB_URL
  value: {{ .Values.jupyterhub.url | quote }}
- name: STAGING_JUPYTERHUB_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ if .Values.jupyterhub.existingSecret }}{{ .Values.jupyterhub.existingSecret }}{{ else }}{{ include "skao-staging.fullname" . }}-jupyterhub{{ end }}
      key: {{ if .Values.jupyterhub.existingSecret }}{{ .Values.jupyterhub.existingSecretKey }}{{ else }}api-token{{ end }}
- name: STAGING_JUPYTER_WORKDIR
  value: {{ .Values.jupyterhub.workdir | quote }}
- name: STAGING_JUPYTER_CHUNK_BYTES
  value: {{ .Values.jupyterhub.chunkBytes | quote }}
- name: STAGING_JUPYTER_CREATE_USERS
  value: {{ .Values.jupyterhub.createUsers | quote }}
- name: STAGING_JUPYTERHUB_TOKEN_AUTH
  value: {{ .Values.jupyterhub.tokenAuth | quote }}
- name: STAGING_JUPYTERHUB_TOKEN_SCOPE
  value: {{ .Values.jupyterhub.tokenScope | quote }}
- name: STAGING_JUPYTERHUB_TOKEN_CACHE_SECONDS
  value: {{ .Values.jupyterhub.tokenCacheSeconds | quote }}
{{- end }}
{{- if .Values.rucio.enabled }}
{{- with .Values.rucio }}
- name: STAGING_RUCIO_URL
  value: {{ .url | quote }}
- name: STAGING_RUCIO_AUTH_URL
  value: {{ .authUrl | default .url | quote }}
- name: STAGING_RUCIO_ACCOUNT
  value: {{ .account | quote }}
- name: STAGING_RUCIO_RSE
  value: {{ .rse | quote }}
- name: STAGING_RUCIO_RSE_MOUNTS
  value: {{ toJson .rseMounts | quote }}
- name: STAGING_RUCIO_PARALLEL_REQUESTS
  value: {{ .parallelRequests | quote }}
{{- if .groupScopes }}
- name: STAGING_GROUP_RUCIO_SCOPES
  value: {{ toJson .groupScopes | quote }}
{{- end }}
{{- if .tokenSecret }}
- name: STAGING_RUCIO_TOKEN_FILE
  value: /var/run/secrets/rucio/token
{{- else }}
- name: STAGING_RUCIO_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: username
- name: STAGING_RUCIO_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: password
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.lifetimes }}
- name: STAGING_DEFAULT_LIFETIME
  value: {{ .default | quote }}
- name: STAGING_MAX_LIFETIME
  value: {{ .max | quote }}
- name: STAGING_ALLOW_UNLIMITED_LIFETIME
  value: {{ .allowUnlimited | quote }}
- name: STAGING_REAPER_INTERVAL_SECONDS
  value: {{ .reaperIntervalSeconds | quote }}
- name: STAGING_QUOTA_HELD_BYTES_PER_USER
  value: {{ .quotaHeldBytesPerUser | int64 | quote }}
{{- end }}
{{- with .Values.notifications }}
- name: STAGING_NOTIFY_INTERVAL_SECONDS
  value: {{ .intervalSeconds | quote }}
{{- if .smtp.host }}
- name: STAGING_SMTP_HOST
  value: {{ .smtp.host | quote }}
- name: STAGING_SMTP_PORT
  value: {{ .smtp.port | quote }}
- name: STAGING_SMTP_STARTTLS
  value: {{ .smtp.starttls | quote }}
{{- if .smtp.from }}
- name: STAGING_SMTP_FROM
  value: {{ .smtp.from | quote }}
{{- end }}
{{- if .smtp.existingSecret }}
- name: STAGING_SMTP_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .smtp.existingSecret }}
      key: username
- name: STAGING_SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .smtp.existingSecret }}
      key: password
{{- end }}
{{- end }}
{{- if .webhook.url }}
- name: STAGING_WEBHOOK_URL
  value: {{ .webhook.url | quote }}
- name: STAGING_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .webhook.existingSecret }}
      key: secret
{{- end }}
{{- end }}
- name: STAGING_SHUTDOWN_GRACE_SECONDS
  value: {{ .Values.worker.shutdownGraceSeconds | quote }}
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{- define "skao-staging.rootPaths" -}}
{{- $paths := list }}{{ range .Values.storage.roots }}{{ $paths = append $paths .mountPath }}{{ end }}{{ join "," $paths }}
{{- end }}

{{/* Volumes: the storage roots (read-only), the user areas, and writable scratch for logs and /tmp. */}}
{{- define "skao-staging.volumes" -}}
{{- range .Values.storage.roots }}
- name: root-{{ .name }}
  {{- toYaml .volume | nindent 2 }}
{{- end }}
- name: user-areas
  {{- toYaml (.Values.storage.userAreas.volume | default (dict "persistentVolumeClaim" (dict "claimName" "user-areas"))) | nindent 2 }}
- name: logs
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if and .Values.rucio.enabled .Values.rucio.tokenSecret }}
- name: rucio-token
  secret:
    secretName: {{ .Values.rucio.tokenSecret }}
{{- end }}
{{- end }}

{{- define "skao-staging.volumeMounts" -}}
{{- range .Values.storage.roots }}
- name: root-{{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
- name: user-areas
  mountPath: {{ .Values.storage.userAreas.mountPath }}
- name: logs
  mountPath: /var/log/skao-staging
- name: tmp
  mountPath: /tmp
{{- if and .Values.rucio.enabled .Values.rucio.tokenSecret }}
- name: rucio-token
  mountPath: /var/run/secrets/rucio
  readOnly: true
{{- end }}
{{- end }}
