{{/* The operator's settings (MODEL_GARDEN_OPERATOR_*, model_garden/operator/settings.py). */}}
{{- define "mg.operatorEnv" -}}
{{- $w := .Values.workloads -}}
- name: MODEL_GARDEN_OPERATOR_TRAINER_IMAGE
  value: {{ include "mg.trainerImage" . | quote }}
- name: MODEL_GARDEN_OPERATOR_SERVER_IMAGE
  value: {{ include "mg.serverImage" . | quote }}
- name: MODEL_GARDEN_OPERATOR_DEFAULT_COUNTRY
  value: {{ .Values.carbon.defaultCountry | quote }}
{{- with .Values.carbon.defaultRegion }}
- name: MODEL_GARDEN_OPERATOR_DEFAULT_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.carbon.budgets }}
{{- with .namespaces }}
- name: MODEL_GARDEN_OPERATOR_NAMESPACE_BUDGETS_KG
  value: {{ toJson . | quote }}
{{- end }}
{{- with .experiments }}
- name: MODEL_GARDEN_OPERATOR_EXPERIMENT_BUDGETS_KG
  value: {{ toJson . | quote }}
{{- end }}
- name: MODEL_GARDEN_OPERATOR_BUDGET_ACTION
  value: {{ .action | default "wait" | quote }}
{{- end }}
{{- with .Values.carbon.gridOverrides }}
- name: MODEL_GARDEN_OPERATOR_GRID_OVERRIDES
  value: {{ toJson . | quote }}
{{- end }}
{{- with .Values.carbon.provider }}
{{- if .name }}
{{- $dir := "/etc/model-garden/grid-provider" }}
{{- $p := dict "name" .name "zones" (.zones | default dict) "timeoutSeconds" .timeoutSeconds "cacheSeconds" .cacheSeconds }}
{{- with .url }}{{ $_ := set $p "url" . }}{{ end }}
{{- if .existingSecret }}
{{- $_ := set $p "apiKeyFile" (printf "%s/apiKey" $dir) }}
{{- $_ := set $p "usernameFile" (printf "%s/username" $dir) }}
{{- $_ := set $p "passwordFile" (printf "%s/password" $dir) }}
{{- end }}
- name: MODEL_GARDEN_OPERATOR_GRID_PROVIDER
  value: {{ toJson $p | quote }}
{{- end }}
{{- end }}
{{- with .Values.carbon.scheduling }}
- name: MODEL_GARDEN_OPERATOR_CARBON_MAX_DEFERRAL_SECONDS
  value: {{ .maxDeferralSeconds | quote }}
- name: MODEL_GARDEN_OPERATOR_CARBON_MAX_PAUSE_SECONDS
  value: {{ .maxPauseSeconds | quote }}
{{- end }}
{{- with .Values.carbon.kepler }}
{{- if .prometheusUrl }}
- name: MODEL_GARDEN_OPERATOR_CARBON_KEPLER_PROMETHEUS_URL
  value: {{ .prometheusUrl | quote }}
- name: MODEL_GARDEN_OPERATOR_CARBON_KEPLER_TIMEOUT_SECONDS
  value: {{ .timeoutSeconds | default 5 | quote }}
{{- end }}
{{- end }}
{{- with .Values.autoscaling }}
{{- if .prometheusUrl }}
- name: MODEL_GARDEN_OPERATOR_AUTOSCALING_PROMETHEUS_URL
  value: {{ .prometheusUrl | quote }}
{{- end }}
- name: MODEL_GARDEN_OPERATOR_KEDA_HTTP_SCALER_ADDRESS
  value: {{ .httpScalerAddress | quote }}
- name: MODEL_GARDEN_OPERATOR_DISCOVERY_SECONDS
  value: {{ .discoverySeconds | quote }}
{{- end }}
{{- with .Values.traffic.gateway }}
- name: MODEL_GARDEN_OPERATOR_TRAFFIC_GATEWAY
  value: {{ toJson . | quote }}
{{- end }}
- name: MODEL_GARDEN_OPERATOR_MAX_RUNNING_PER_NAMESPACE
  value: {{ $w.maxRunningPerNamespace | quote }}
- name: MODEL_GARDEN_OPERATOR_TRAINER_CPU
  value: {{ $w.trainer.cpu | quote }}
- name: MODEL_GARDEN_OPERATOR_TRAINER_MEMORY
  value: {{ $w.trainer.memory | quote }}
{{- with $w.trainer.serviceAccountName }}
- name: MODEL_GARDEN_OPERATOR_TRAINER_SERVICE_ACCOUNT
  value: {{ . | quote }}
{{- end }}
- name: MODEL_GARDEN_OPERATOR_SERVER_CPU
  value: {{ $w.server.cpu | quote }}
- name: MODEL_GARDEN_OPERATOR_SERVER_MEMORY
  value: {{ $w.server.memory | quote }}
- name: MODEL_GARDEN_OPERATOR_VERIFY_CPU
  value: {{ $w.verify.cpu | quote }}
- name: MODEL_GARDEN_OPERATOR_VERIFY_MEMORY
  value: {{ $w.verify.memory | quote }}
- name: MODEL_GARDEN_OPERATOR_POLICY_NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: MODEL_GARDEN_OPERATOR_POLICY_CONFIG_MAP
  value: {{ .Values.policy.configMapName | quote }}
- name: MODEL_GARDEN_OPERATOR_OPERATOR_NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: MODEL_GARDEN_OPERATOR_OPERATOR_POD_LABELS
  value: {{ include "mg.operatorSelector" . | fromYaml | toJson | quote }}
- name: MODEL_GARDEN_OPERATOR_NAMESPACES
  value: {{ include "mg.watchNamespaces" . | quote }}
{{- /* GPU pods whose spec names no nodes/tolerations get these (each field on its own). */}}
- name: MODEL_GARDEN_OPERATOR_GPU_NODE_SELECTOR
  value: {{ .Values.gpu.nodeSelector | default dict | toJson | quote }}
- name: MODEL_GARDEN_OPERATOR_GPU_TOLERATIONS
  value: {{ .Values.gpu.tolerations | default list | toJson | quote }}
{{- /* Besides the operator, these peers may reach each InferenceDeployment's meter port. */}}
- name: MODEL_GARDEN_OPERATOR_METRICS_SCRAPER_PEERS
  value: {{ .Values.monitoring.meterScrapers | default list | toJson | quote }}
- name: MODEL_GARDEN_OPERATOR_METRICS_PORT
  value: {{ .Values.operator.ports.metrics | quote }}
- name: MODEL_GARDEN_OPERATOR_HEALTH_PORT
  value: {{ .Values.operator.ports.health | quote }}
{{- end -}}
