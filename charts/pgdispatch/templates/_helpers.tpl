{{/*
Naming, labels and shared snippets. Every helper is prefixed with the chart name.
The api tier uses `pgdispatch.*`; the worker tier `pgdispatch.worker.*`, whose
`app.kubernetes.io/name` differs (`<name>-worker`) so that no api selector ever matches a worker.
*/}}

{{/* pgdispatch.name: the chart name, or nameOverride, as used in `app.kubernetes.io/name`. */}}
{{- define "pgdispatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* pgdispatch.fullname: the release-qualified name of the api tier's objects. */}}
{{- define "pgdispatch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* pgdispatch.chart: chart name and version for the `helm.sh/chart` label. */}}
{{- define "pgdispatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* pgdispatch.commonLabels: labels shared by every object of the release (no name/component). */}}
{{- define "pgdispatch.commonLabels" -}}
helm.sh/chart: {{ include "pgdispatch.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "pgdispatch.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* pgdispatch.selectorLabels: the api tier's selector (api Deployment, Service, PDB). */}}
{{- define "pgdispatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pgdispatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* pgdispatch.labels: full labels of api-tier and shared objects. */}}
{{- define "pgdispatch.labels" -}}
{{ include "pgdispatch.commonLabels" . }}
app.kubernetes.io/name: {{ include "pgdispatch.name" . }}
app.kubernetes.io/component: api
{{- end -}}

{{/* pgdispatch.worker.name: `<name>-worker`, the worker pods' `app.kubernetes.io/name`. */}}
{{- define "pgdispatch.worker.name" -}}
{{- printf "%s-worker" (include "pgdispatch.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* pgdispatch.worker.fullname: `<fullname>-worker`, the worker tier's object names. */}}
{{- define "pgdispatch.worker.fullname" -}}
{{- printf "%s-worker" (include "pgdispatch.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* pgdispatch.worker.selectorLabels: the worker tier's selector (worker Deployment, PDB, PodMonitor). */}}
{{- define "pgdispatch.worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pgdispatch.worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* pgdispatch.worker.labels: full labels of worker-tier objects. */}}
{{- define "pgdispatch.worker.labels" -}}
{{ include "pgdispatch.commonLabels" . }}
app.kubernetes.io/name: {{ include "pgdispatch.worker.name" . }}
app.kubernetes.io/component: worker
{{- end -}}

{{/* pgdispatch.serviceAccountName: the ServiceAccount both tiers run as. */}}
{{- define "pgdispatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pgdispatch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* pgdispatch.image: `repository:tag` or `repository@digest`; the tag defaults to appVersion. */}}
{{- define "pgdispatch.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
pgdispatch.worker.image: the workers' image. With any of worker.image.repository/tag/digest set it
is `<worker.image.repository or image.repository>` with the worker's digest or tag (a team image
with its own tasks); otherwise exactly the api's image.
*/}}
{{- define "pgdispatch.worker.image" -}}
{{- $wi := .Values.worker.image -}}
{{- if or $wi.repository $wi.tag $wi.digest -}}
{{- $repo := default .Values.image.repository $wi.repository -}}
{{- if $wi.digest -}}
{{- printf "%s@%s" $repo $wi.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion $wi.tag) -}}
{{- end -}}
{{- else -}}
{{- include "pgdispatch.image" . -}}
{{- end -}}
{{- end -}}

{{/* pgdispatch.role: the api Deployment's DISPATCH_ROLE (`dispatchRole` "" means all). */}}
{{- define "pgdispatch.role" -}}
{{- default "all" .Values.dispatchRole -}}
{{- end -}}

{{/* pgdispatch.secretName: the chart-managed Secret holding database URLs and api credentials. */}}
{{- define "pgdispatch.secretName" -}}
{{- include "pgdispatch.fullname" . -}}
{{- end -}}

{{/* pgdispatch.database.secretName: the Secret holding DATABASE_URL (existing or chart-managed). */}}
{{- define "pgdispatch.database.secretName" -}}
{{- default (include "pgdispatch.secretName" .) .Values.database.existingSecret -}}
{{- end -}}

{{/* pgdispatch.database.urlKey: the key of DATABASE_URL in that Secret. */}}
{{- define "pgdispatch.database.urlKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end -}}

{{/* pgdispatch.database.listenUrlKey: the key of DATABASE_LISTEN_URL, empty when none is configured. */}}
{{- define "pgdispatch.database.listenUrlKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretListenUrlKey }}{{- else if .Values.database.listenUrl -}}database-listen-url{{- end -}}
{{- end -}}

{{/* pgdispatch.auth.secretName: the Secret holding API_KEYS and WORKER_TOKEN_SECRET. */}}
{{- define "pgdispatch.auth.secretName" -}}
{{- default (include "pgdispatch.secretName" .) .Values.auth.existingSecret -}}
{{- end -}}

{{/* pgdispatch.worker.secretName: the Secret holding the worker credential (existing or generated). */}}
{{- define "pgdispatch.worker.secretName" -}}
{{- default (include "pgdispatch.worker.fullname" .) .Values.worker.existingSecret -}}
{{- end -}}

{{/* pgdispatch.worker.secretKey: the key of the worker credential in that Secret. */}}
{{- define "pgdispatch.worker.secretKey" -}}
{{- if .Values.worker.existingSecret -}}{{ .Values.worker.existingSecretKey }}{{- else -}}worker-token{{- end -}}
{{- end -}}

{{/* pgdispatch.worker.queues: the worker queues joined with `sep` ("," for LISTEN_QUEUES, "+" for WORKER_KEYS). */}}
{{- define "pgdispatch.worker.queues" -}}
{{- join .sep .ctx.Values.worker.queues -}}
{{- end -}}

{{/* pgdispatch.worker.apiUrl: API_URL of the workers — the api Service unless overridden. */}}
{{- define "pgdispatch.worker.apiUrl" -}}
{{- default (printf "http://%s:%d" (include "pgdispatch.fullname" .) (int .Values.service.port)) .Values.worker.apiUrl -}}
{{- end -}}

{{/*
pgdispatch.secretValue: an explicit value, else the value already stored in the named Secret
(`lookup`, so generated credentials stay stable across upgrades), else a fresh random string.
Args: dict "ctx" $ "secret" <name> "key" <key> "value" <explicit> "length" <n> ["suffix" <s>];
the suffix (e.g. the scopes of a generated API key) is appended to generated values only.
`helm template` has no cluster, so it always generates: pass explicit values for reproducible renders.
*/}}
{{- define "pgdispatch.secretValue" -}}
{{- if .value -}}
{{- .value -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret | default dict -}}
{{- $stored := dig "data" .key "" $existing -}}
{{- if $stored -}}
{{- $stored | b64dec -}}
{{- else -}}
{{- printf "%s%s" (randAlphaNum (int .length)) (default "" .suffix) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* pgdispatch.podSecurityContext: the pod security context shared by every pod of the chart. */}}
{{- define "pgdispatch.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{/* pgdispatch.containerSecurityContext: the container security context shared by every container. */}}
{{- define "pgdispatch.containerSecurityContext" -}}
{{- toYaml .Values.securityContext -}}
{{- end -}}

{{/*
pgdispatch.probes: startup and liveness on /healthz, readiness on /readyz, hitting the pod's own
port. Liveness never depends on the database (/healthz answers from the process alone); the
startup probe covers the wait for the database and migrations before the port opens.
*/}}
{{- define "pgdispatch.probes" -}}
{{- if .Values.startupProbe.enabled }}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  {{- toYaml (omit .Values.startupProbe "enabled") | nindent 2 }}
{{- end }}
{{- if .Values.livenessProbe.enabled }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  {{- toYaml (omit .Values.livenessProbe "enabled") | nindent 2 }}
{{- end }}
{{- if .Values.readinessProbe.enabled }}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  {{- toYaml (omit .Values.readinessProbe "enabled") | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
pgdispatch.lifecycle: the preStop pause of a tier (`seconds`; nothing when 0). Kubernetes sends
SIGTERM only after preStop returns, and the pause counts against terminationGracePeriodSeconds;
SIGTERM then starts the server's drain (stop pulling, let in-flight jobs run for
SHUTDOWN_GRACE_MS, release the rest without spending an attempt). Kubernetes ≥ 1.30 has a
built-in sleep action (no binary needed in the image, e.g. a distroless team image); older
clusters run the image's `sleep`.
Args: dict "ctx" $ "seconds" <n>.
*/}}
{{- define "pgdispatch.lifecycle" -}}
{{- if gt (int .seconds) 0 }}
lifecycle:
  preStop:
    {{- if semverCompare ">=1.30-0" .ctx.Capabilities.KubeVersion.Version }}
    sleep:
      seconds: {{ int .seconds }}
    {{- else }}
    exec:
      command: ["sleep", {{ int .seconds | quote }}]
    {{- end }}
{{- end }}
{{- end -}}

{{/* pgdispatch.tmpVolume: the writable /tmp of a read-only root filesystem. */}}
{{- define "pgdispatch.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- else }} {}
    {{- end }}
{{- end -}}
