{{/*
pgdispatch.validateValues: checks the rules values.schema.json cannot express (cross-field
arithmetic, mutually exclusive sources), collects every problem and fails once with guidance.
Rendered (empty) from NOTES.txt and every Deployment so that `helm template` and `helm install`
both stop before anything is applied.
*/}}
{{- define "pgdispatch.validateValues" -}}
{{- $v := .Values -}}
{{- $problems := list -}}

{{- if and (not $v.database.url) (not $v.database.existingSecret) -}}
{{- $problems = append $problems "database: set database.url or database.existingSecret (an external PostgreSQL is required; the embedded database is not for Kubernetes)" -}}
{{- end -}}
{{- if and $v.database.url $v.database.existingSecret -}}
{{- $problems = append $problems "database: set only one of database.url and database.existingSecret" -}}
{{- end -}}
{{- if and $v.database.listenUrl $v.database.existingSecret -}}
{{- $problems = append $problems "database: with database.existingSecret, put the direct URL in that Secret and name its key in database.existingSecretListenUrlKey instead of database.listenUrl" -}}
{{- end -}}

{{- $c := $v.config -}}
{{- if gt (mul (int $c.heartbeatMs) 2) (int $c.leaseMs) -}}
{{- $problems = append $problems (printf "config.heartbeatMs (%d) must be at most half of config.leaseMs (%d), or leases expire between heartbeats" (int $c.heartbeatMs) (int $c.leaseMs)) -}}
{{- end -}}
{{- if gt (int $c.maxPayloadBytes) (int $c.bodyLimitBytes) -}}
{{- $problems = append $problems (printf "config.maxPayloadBytes (%d) must not exceed config.bodyLimitBytes (%d)" (int $c.maxPayloadBytes) (int $c.bodyLimitBytes)) -}}
{{- end -}}
{{- /*
The termination budget of a pod: preStop pause + SHUTDOWN_GRACE_MS (in-flight jobs finish) +
5 s to release the rest, answer waiting long-polls and close (the HTTP close is forced after 2 s).
Kubernetes counts the preStop pause against terminationGracePeriodSeconds, then SIGKILLs: a pod
killed before it released its jobs leaves their leases to expire (LEASE_MS) and spends an attempt.
*/ -}}
{{- $apiBudget := add (mul (int $v.preStopSleepSeconds) 1000) (int $c.shutdownGraceMs) 5000 -}}
{{- if lt (mul (int $v.terminationGracePeriodSeconds) 1000) $apiBudget -}}
{{- $problems = append $problems (printf "terminationGracePeriodSeconds (%d) must be at least preStopSleepSeconds (%d s) + config.shutdownGraceMs (%d ms) + 5 s = %d s, or Kubernetes kills pods before in-flight jobs are released" (int $v.terminationGracePeriodSeconds) (int $v.preStopSleepSeconds) (int $c.shutdownGraceMs) (div (add $apiBudget 999) 1000)) -}}
{{- end -}}

{{- if and $v.auth.workerTokenSecret (lt (len $v.auth.workerTokenSecret) 32) -}}
{{- $problems = append $problems "auth.workerTokenSecret must be at least 32 characters (leave it empty to generate one)" -}}
{{- end -}}

{{- if and $v.autoscaling.enabled (not (dig "requests" "cpu" "" ($v.resources | default dict))) -}}
{{- $problems = append $problems "autoscaling scales on CPU utilization: set resources.requests.cpu (or autoscaling.enabled=false)" -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- $problems = append $problems "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and $v.podDisruptionBudget.enabled (not (kindIs "invalid" $v.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" $v.podDisruptionBudget.maxUnavailable)) -}}
{{- $problems = append $problems "podDisruptionBudget: set only one of minAvailable and maxUnavailable (null the other)" -}}
{{- end -}}

{{- $w := $v.worker -}}
{{- if $w.enabled -}}
{{- $queues := $w.queues | default list -}}
{{- if eq (len $queues) 0 -}}
{{- $problems = append $problems "worker.enabled needs worker.queues: list the queues the workers execute, or [\"*\"] for all" -}}
{{- end -}}
{{- if and (has "*" $queues) (gt (len $queues) 1) -}}
{{- $problems = append $problems "worker.queues: \"*\" already means every queue; use it alone" -}}
{{- end -}}
{{- if and $w.image.repository (not (or $w.image.tag $w.image.digest)) -}}
{{- $problems = append $problems "worker.image.repository is set: set worker.image.tag or worker.image.digest too (your image's version, not the chart's)" -}}
{{- end -}}
{{- if and $w.autoscaling.enabled (not $w.keda.enabled) (not (dig "requests" "cpu" "" ($w.resources | default dict))) -}}
{{- $problems = append $problems "worker.autoscaling scales on CPU utilization: set worker.resources.requests.cpu (or worker.autoscaling.enabled=false)" -}}
{{- end -}}
{{- if and $w.keda.enabled (not $w.keda.prometheus.serverAddress) -}}
{{- $problems = append $problems "worker.keda.prometheus.serverAddress is required: the Prometheus that scrapes the api's /metrics" -}}
{{- end -}}
{{- if and $w.keda.enabled (gt (int $w.keda.minReplicaCount) (int $w.keda.maxReplicaCount)) -}}
{{- $problems = append $problems "worker.keda.minReplicaCount must not exceed worker.keda.maxReplicaCount" -}}
{{- end -}}
{{- if and $w.autoscaling.enabled (gt (int $w.autoscaling.minReplicas) (int $w.autoscaling.maxReplicas)) -}}
{{- $problems = append $problems "worker.autoscaling.minReplicas must not exceed worker.autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and $w.podDisruptionBudget.enabled (not (kindIs "invalid" $w.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" $w.podDisruptionBudget.maxUnavailable)) -}}
{{- $problems = append $problems "worker.podDisruptionBudget: set only one of minAvailable and maxUnavailable (null the other)" -}}
{{- end -}}
{{- $workerBudget := add (mul (int $w.preStopSleepSeconds) 1000) (int $c.shutdownGraceMs) 5000 -}}
{{- if lt (mul (int $w.terminationGracePeriodSeconds) 1000) $workerBudget -}}
{{- $problems = append $problems (printf "worker.terminationGracePeriodSeconds (%d) must be at least worker.preStopSleepSeconds (%d s) + config.shutdownGraceMs (%d ms) + 5 s = %d s, or Kubernetes kills workers before in-flight jobs are released" (int $w.terminationGracePeriodSeconds) (int $w.preStopSleepSeconds) (int $c.shutdownGraceMs) (div (add $workerBudget 999) 1000)) -}}
{{- end -}}
{{- if and $w.token (lt (len $w.token) 16) -}}
{{- $problems = append $problems "worker.token must be at least 16 characters (leave it empty to generate one)" -}}
{{- end -}}
{{- if and $w.token $w.existingSecret -}}
{{- $problems = append $problems "worker: set only one of worker.token and worker.existingSecret" -}}
{{- end -}}
{{- range $w.extraEnv -}}
{{- if hasPrefix "DATABASE_" (toString .name) -}}
{{- $problems = append $problems (printf "worker.extraEnv must not set %s: workers never hold database credentials (they reach the api at API_URL)" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- if $problems -}}
{{- fail (printf "\n\npgdispatch: invalid values:\n  - %s\n\nSee values.yaml (## @param) and docs/operations.md." (join "\n  - " $problems)) -}}
{{- end -}}
{{- end -}}
