{{/*
Helpers of the pickspin-keda chart. The service matrix is `.Values.global.pickspin`
(the same mapping pickspin.core.settings.Settings validates); a service is `<model>-<backend>`.
*/}}

{{/* The service matrix, required. */}}
{{- define "pickspin-keda.pickspin" -}}
{{- $global := .Values.global | default dict -}}
{{- $ps := required "global.pickspin is required: the service matrix, routing and profiles" $global.pickspin -}}
{{- if not (required "global.pickspin.services is required" $ps.services) -}}
{{- fail "global.pickspin.services: at least one service is required" -}}
{{- end -}}
{{- toJson $ps -}}
{{- end -}}

{{/*
Fail with a message naming the key when the values are inconsistent in a way the
values schema cannot express: unknown profile, model or backend, bad numbers.
*/}}
{{- define "pickspin-keda.validate" -}}
{{- $ps := include "pickspin-keda.pickspin" . | fromJson -}}
{{- $profiles := required "global.pickspin.profiles is required" $ps.profiles -}}
{{- $profile := required "global.pickspin.defaultProfile is required" $ps.defaultProfile -}}
{{- if not (hasKey $profiles $profile) -}}
{{- fail (printf "global.pickspin.defaultProfile: unknown profile %q (have %s)" $profile (keys $profiles | sortAlpha | join ", ")) -}}
{{- end -}}
{{- $models := list -}}
{{- range $ps.models -}}{{- $models = append $models .name -}}{{- end -}}
{{- $backends := list -}}
{{- range $ps.backends -}}{{- $backends = append $backends .name -}}{{- end -}}
{{- range $i, $svc := $ps.services -}}
{{- if not (has $svc.model $models) -}}
{{- fail (printf "global.pickspin.services[%d].model: unknown model %q (have %s)" $i (toString $svc.model) ($models | join ", ")) -}}
{{- end -}}
{{- if not (has $svc.backend $backends) -}}
{{- fail (printf "global.pickspin.services[%d].backend: unknown backend %q (have %s)" $i (toString $svc.backend) ($backends | join ", ")) -}}
{{- end -}}
{{- range $key := list "concurrency" "gpus" "maxReplicas" -}}
{{- $v := index $svc $key -}}
{{- if or (not (kindIs "float64" $v)) (le (float64 $v) 0.0) -}}
{{- fail (printf "global.pickspin.services[%d].%s: must be a number > 0, got %v" $i $key $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of a service (model × backend), the name of all its objects. */}}
{{- define "pickspin-keda.serviceName" -}}
{{- printf "%s-%s" .model .backend -}}
{{- end -}}

{{/* Find a model or backend by name: (dict "items" list "name" string). */}}
{{- define "pickspin-keda.find" -}}
{{- $found := dict -}}
{{- range .items -}}{{- if eq .name $.name -}}{{- $found = . -}}{{- end -}}{{- end -}}
{{- toJson $found -}}
{{- end -}}

{{/*
The ScaledObject numbers of one service under the active profile, as JSON
(dict "root" $ "svc" $svc). Mirrors pickspin.core.policy.scaling_for.
*/}}
{{- define "pickspin-keda.scaling" -}}
{{- $ps := include "pickspin-keda.pickspin" .root | fromJson -}}
{{- $scaling := (index $ps.profiles $ps.defaultProfile).scaling | default dict -}}
{{- $model := include "pickspin-keda.find" (dict "items" $ps.models "name" .svc.model) | fromJson -}}
{{- $max := int .svc.maxReplicas -}}
{{- $pools := include "pickspin-keda.warmPools" .root | fromJson -}}
{{- $pool := int (index $pools (include "pickspin-keda.serviceName" .svc)) -}}
{{- /* defaults as in pickspin.core.settings.Scaling */ -}}
{{- $utilization := float64 (ternary $scaling.targetUtilization 0.8 (hasKey $scaling "targetUtilization")) -}}
{{- $cooldown := int (ternary $scaling.cooldownSeconds 300 (hasKey $scaling "cooldownSeconds")) -}}
{{- $window := int (ternary $scaling.scaleDownStabilizationSeconds 120 (hasKey $scaling "scaleDownStabilizationSeconds")) -}}
{{- dict
    "min" (min $pool $max)
    "max" $max
    "threshold" (round (mulf (float64 .svc.concurrency) $utilization) 3)
    "cooldown" $cooldown
    "stabilization" $window
    | toJson -}}
{{- end -}}

{{/*
Warm replicas (minReplicaCount) per service under the active profile, as JSON. Mirrors
pickspin.core.warmpool.warm_pools: with `warmPoolScope: tier` (default) warmPool[tier] replicas
fill the tier's services in the order of a sort key (strongest model: abilityOffset, then
mean quality; then the fastest warm prior; then the name), each up to its maxReplicas, and
the rest of the tier scales to zero; with `service` every service of the tier keeps
warmPool[tier].
*/}}
{{- define "pickspin-keda.warmPools" -}}
{{- $ps := include "pickspin-keda.pickspin" . | fromJson -}}
{{- $scaling := (index $ps.profiles $ps.defaultProfile).scaling | default dict -}}
{{- include "pickspin-keda.fill" (dict "root" . "wanted" ($scaling.warmPool | default dict)) -}}
{{- end -}}

{{/*
Replicas per service for `wanted` replicas per tier (dict "root" $ "wanted" dict), as JSON:
the placement of pickspin.core.warmpool._fill (see warmPools).
*/}}
{{- define "pickspin-keda.fill" -}}
{{- $ps := include "pickspin-keda.pickspin" .root | fromJson -}}
{{- $scaling := (index $ps.profiles $ps.defaultProfile).scaling | default dict -}}
{{- $wanted := .wanted -}}
{{- $perTier := eq ($scaling.warmPoolScope | default "tier") "tier" -}}
{{- $budget := dict -}}
{{- range $ps.services -}}{{- $_ := set $budget (include "pickspin-keda.serviceName" .) (int .maxReplicas) -}}{{- end -}}
{{- $out := dict -}}
{{- range $tier := list "small" "medium" "large" -}}
{{- $keys := list -}}
{{- range $svc := $ps.services -}}
{{- $model := include "pickspin-keda.find" (dict "items" $ps.models "name" $svc.model) | fromJson -}}
{{- if eq $model.tier $tier -}}
{{- $q := $model.quality -}}
{{- $mean := divf (addf (float64 $q.low) (float64 $q.medium) (float64 $q.high)) 3 -}}
{{- $offset := float64 ($model.abilityOffset | default 0) -}}
{{- $keys = append $keys (printf "%08.4f/%.6f/%011.4f/%s" (subf 10 $offset) (subf 1 $mean) (float64 $svc.priors.latencySeconds) (include "pickspin-keda.serviceName" $svc)) -}}
{{- end -}}
{{- end -}}
{{- $left := int (index $wanted $tier | default 0) -}}
{{- range $key := sortAlpha $keys -}}
{{- $name := last (splitList "/" $key) -}}
{{- $take := min $left (index $budget $name) -}}
{{- $_ := set $out $name $take -}}
{{- if $perTier -}}{{- $left = sub $left $take -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
The cron triggers of one service under the active profile (dict "root" $ "svc" $svc), as a
JSON list of {start, end, replicas, timezone}: each scheduled pool that keeps the service
warm, its tiers placed as warmPool is and its named services on them (the larger where both
count), within maxReplicas. Mirrors pickspin.core.warmpool.scheduled_pools; "HH:MM" becomes
the daily cron time "M H * * *".
*/}}
{{- define "pickspin-keda.crons" -}}
{{- $ps := include "pickspin-keda.pickspin" .root | fromJson -}}
{{- $scaling := (index $ps.profiles $ps.defaultProfile).scaling | default dict -}}
{{- $name := include "pickspin-keda.serviceName" .svc -}}
{{- $out := list -}}
{{- range $entry := $scaling.schedule | default list -}}
{{- $pools := include "pickspin-keda.fill" (dict "root" $.root "wanted" ($entry.warmPool | default dict)) | fromJson -}}
{{- $n := int (index $pools $name | default 0) -}}
{{- $named := int (index ($entry.services | default dict) $name | default 0) -}}
{{- $n = max $n (min $named (int $.svc.maxReplicas)) -}}
{{- if gt $n 0 -}}
{{- $start := splitList ":" $entry.start -}}
{{- $end := splitList ":" $entry.end -}}
{{- $out = append $out (dict
      "start" (printf "%d %d * * *" (atoi (index $start 1)) (atoi (index $start 0)))
      "end" (printf "%d %d * * *" (atoi (index $end 1)) (atoi (index $end 0)))
      "replicas" $n
      "timezone" ($scaling.timezone | default "UTC")) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Common labels: (dict "root" $ "svc" $svc). */}}
{{- define "pickspin-keda.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pickspin
{{ include "pickspin-keda.selectorLabels" . }}
pickspin.io/model: {{ .svc.model | quote }}
pickspin.io/backend: {{ .svc.backend | quote }}
{{- end -}}

{{/* Selector labels: (dict "root" $ "svc" $svc). */}}
{{- define "pickspin-keda.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pickspin-keda.serviceName" .svc }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: backend
{{- end -}}

{{/* Name of the Secret with the Hugging Face token. */}}
{{- define "pickspin-keda.hfSecretName" -}}
{{- .Values.huggingface.existingSecret | default (printf "%s-hf-token" .Release.Name) -}}
{{- end -}}

{{/* The TensorRT-LLM options ConfigMap, the folder it is mounted at and its file name. */}}
{{- define "pickspin-keda.trtllmOptionsName" -}}
{{- printf "%s-trtllm-options" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "pickspin-keda.trtllmOptionsDir" -}}/etc/trtllm{{- end -}}
{{- define "pickspin-keda.trtllmOptionsFile" -}}extra-llm-api-options.yaml{{- end -}}

{{/* Name of a model's weights PVC, shared by every service of the model. */}}
{{- define "pickspin-keda.weightsClaim" -}}
{{- printf "%s-weights" .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The models that some service uses, each once, in the order of the models list. */}}
{{- define "pickspin-keda.usedModels" -}}
{{- $ps := include "pickspin-keda.pickspin" . | fromJson -}}
{{- $used := list -}}
{{- range $ps.services -}}{{- $used = append $used .model -}}{{- end -}}
{{- $models := list -}}
{{- range $ps.models -}}{{- if has .name $used -}}{{- $models = append $models . -}}{{- end -}}{{- end -}}
{{- toJson $models -}}
{{- end -}}

{{/*
Rate window of the recording rules: 4 × global.prometheus.scrapeInterval, as a Prometheus
duration. rate() needs two samples in its window; four leave room for a missed scrape.
*/}}
{{- define "pickspin-keda.rateWindow" -}}
{{- printf "%ds" (mul 4 (include "pickspin-keda.scrapeInterval" . | int)) -}}
{{- end -}}

{{/* Seconds between two scrapes (global.prometheus.scrapeInterval, default 30). */}}
{{- define "pickspin-keda.scrapeInterval" -}}
{{- $prom := .Values.global.prometheus | default dict -}}
{{- $s := int (ternary $prom.scrapeInterval 30 (hasKey $prom "scrapeInterval")) -}}
{{- if le $s 0 -}}
{{- fail (printf "global.prometheus.scrapeInterval: must be a number of seconds > 0, got %v" $prom.scrapeInterval) -}}
{{- end -}}
{{- $s -}}
{{- end -}}

{{/* Is the Prometheus Operator in use (global.prometheus.operator, default true)? "true" or "". */}}
{{- define "pickspin-keda.operator" -}}
{{- $prom := .Values.global.prometheus | default dict -}}
{{- if ternary $prom.operator true (hasKey $prom "operator") -}}true{{- end -}}
{{- end -}}

{{/* `recordingRules.kind: auto` picks a PrometheusRule: "true" or "". */}}
{{- define "pickspin-keda.operatorRules" -}}
{{- if or (include "pickspin-keda.operator" .) (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/* Directory of a model's weights inside the volume: (dict "root" $ "model" $model). */}}
{{- define "pickspin-keda.modelDir" -}}
{{- printf "%s/%s" (.root.Values.weights.mountPath | trimSuffix "/") (.model.hfId | default .model.name) -}}
{{- end -}}

{{/*
Server command and arguments per backend kind: (dict "root" $ "svc" $svc "backend" $b "model" $m).
vLLM: `vllm serve`; TGI: the image's `text-generation-launcher` entrypoint; TensorRT-LLM:
`trtllm-serve` (PyTorch backend) with the mounted `extra_llm_api_options` file; llama.cpp: the `llama-server` image entrypoint with the
model's GGUF file. Concurrency caps the batch, GPUs set tensor parallelism.
*/}}
{{- define "pickspin-keda.serverCommand" -}}
{{- $dir := include "pickspin-keda.modelDir" (dict "root" .root "model" .model) -}}
{{- $port := toString (int .backend.port) -}}
{{- $gpus := toString (int .svc.gpus) -}}
{{- $conc := toString (int .svc.concurrency) -}}
{{- $extra := index .root.Values.server.extraArgs .backend.kind | default list -}}
{{- if eq .backend.kind "vllm" -}}
command: ["vllm", "serve"]
args: {{ concat (list $dir "--served-model-name" .model.name "--host" "0.0.0.0" "--port" $port "--tensor-parallel-size" $gpus "--max-num-seqs" $conc) $extra | toJson }}
{{- else if eq .backend.kind "tgi" -}}
args: {{ concat (list "--model-id" $dir "--hostname" "0.0.0.0" "--port" $port "--num-shard" $gpus "--max-concurrent-requests" $conc) $extra | toJson }}
{{- else if eq .backend.kind "trtllm" -}}
{{- $options := printf "%s/%s" (include "pickspin-keda.trtllmOptionsDir" .root) (include "pickspin-keda.trtllmOptionsFile" .root) -}}
command: ["trtllm-serve"]
args: {{ concat (list $dir "--host" "0.0.0.0" "--port" $port "--backend" "pytorch" "--tp_size" $gpus "--max_batch_size" $conc "--extra_llm_api_options" $options) $extra | toJson }}
{{- else if eq .backend.kind "llamacpp" -}}
{{- $file := required (printf "global.pickspin.models: model %q needs a GGUF `file` for llama.cpp" .model.name) .model.file -}}
args: {{ concat (list "--model" (printf "%s/%s" $dir $file) "--alias" .model.name "--host" "0.0.0.0" "--port" $port "--parallel" $conc "--n-gpu-layers" "999" "--metrics") $extra | toJson }}
{{- else -}}
{{- fail (printf "global.pickspin.backends: unknown kind %q for backend %q (vllm, tgi, trtllm or llamacpp)" .backend.kind .backend.name) -}}
{{- end -}}
{{- end -}}
