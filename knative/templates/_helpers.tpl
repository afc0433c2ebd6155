{{/*
Helpers of the pickspin-knative chart. The functions' configuration is
`.Values.global.pickspin` (validated by pickspin.core.settings.Settings when they start).
*/}}

{{/*
Fail at render time, naming the key, on what would make every function fail to start:
no service matrix, an unknown default profile, a service naming an unknown model or backend.
*/}}
{{- define "pickspin-knative.validate" -}}
{{- $global := .Values.global | default dict -}}
{{- $ps := required "global.pickspin is required: the service matrix, routing and profiles" $global.pickspin -}}
{{- $profiles := required "global.pickspin.profiles is required" $ps.profiles -}}
{{- $profile := required "global.pickspin.defaultProfile is required" $ps.defaultProfile -}}
{{- if not (hasKey $profiles $profile) -}}
{{- fail (printf "global.pickspin.defaultProfile: unknown profile %q (have %s)" $profile (keys $profiles | sortAlpha | join ", ")) -}}
{{- end -}}
{{- $models := list -}}
{{- range $ps.models -}}{{- $models = append $models .name -}}{{- end -}}
{{- $backends := list -}}
{{- range $ps.backends -}}{{- $backends = append $backends .name -}}{{- end -}}
{{- range $i, $svc := (required "global.pickspin.services is required" $ps.services) -}}
{{- if not (has $svc.model $models) -}}
{{- fail (printf "global.pickspin.services[%d].model: unknown model %q (have %s)" $i (toString $svc.model) ($models | join ", ")) -}}
{{- end -}}
{{- if not (has $svc.backend $backends) -}}
{{- fail (printf "global.pickspin.services[%d].backend: unknown backend %q (have %s)" $i (toString $svc.backend) ($backends | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Common labels. */}}
{{- define "pickspin-knative.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: pickspin
{{- end -}}

{{/* Image of a function: (dict "root" $ "fn" $fn); `kn func build` pushes `<registry>/<name>:latest`. */}}
{{- define "pickspin-knative.image" -}}
{{- $img := .root.Values.image -}}
{{- .fn.image | default (printf "%s/%s:%s" ($img.registry | trimSuffix "/") .fn.name ($img.tag | default "latest")) -}}
{{- end -}}

{{/*
URL of a function's Knative Service from a pod of the release: its short name, resolved in
the namespace the caller runs in (as func.yaml gives it, so `kn func deploy` agrees):
(dict "root" $ "fn" $fn).
*/}}
{{- define "pickspin-knative.url" -}}
{{- printf "http://%s" .fn.name -}}
{{- end -}}

{{/* Name of the chart's dead-letter Service. */}}
{{- define "pickspin-knative.deadLetterName" -}}
{{- printf "%s-dead-letters" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A sink reference to the Broker. */}}
{{- define "pickspin-knative.brokerRef" -}}
ref:
  apiVersion: eventing.knative.dev/v1
  kind: Broker
  name: {{ .Values.broker.name }}
{{- end -}}

{{/* Trigger name for a function and an event type: (dict "fn" $fn "type" $type). */}}
{{- define "pickspin-knative.triggerName" -}}
{{- $slug := .type | trimPrefix "io.pickspin." | replace "." "-" | lower -}}
{{- printf "%s-%s" .fn.name $slug | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Is the Prometheus Operator in use (global.prometheus.operator, default true)? "true" or "". */}}
{{- define "pickspin-knative.operator" -}}
{{- $prom := .Values.global.prometheus | default dict -}}
{{- if ternary $prom.operator true (hasKey $prom "operator") -}}true{{- end -}}
{{- end -}}

{{/* Checksum of the functions' configuration: a change of it rolls every function. */}}
{{- define "pickspin-knative.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum -}}
{{- end -}}

{{/*
Seconds of the telemetry statistics window: the keda chart's recording-rule window,
4 × global.prometheus.scrapeInterval (tests/charts checks that the two agree).
*/}}
{{- define "pickspin-knative.rateWindowSeconds" -}}
{{- $prom := .Values.global.prometheus | default dict -}}
{{- mul 4 (int (ternary $prom.scrapeInterval 30 (hasKey $prom "scrapeInterval"))) -}}
{{- end -}}
