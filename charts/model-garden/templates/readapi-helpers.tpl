{{/* Names, labels and the artifacts claim of the read API (readapi-*.yaml). Only definitions:
this file renders nothing. */}}

{{- define "mg.readapiName" -}}
{{- printf "%s-readapi" (include "mg.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Its own name label: the operator's NetworkPolicies and Services never select it. */}}
{{- define "mg.readapiSelector" -}}
app.kubernetes.io/name: model-garden-readapi
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mg.readapiLabels" -}}
{{ include "mg.labels" . }}
app.kubernetes.io/name: model-garden-readapi
app.kubernetes.io/component: readapi
{{- end -}}

{{- define "mg.readapiServiceAccountName" -}}
{{- $sa := .Values.readapi.serviceAccount -}}
{{- if $sa.create -}}
{{- default (include "mg.readapiName" .) $sa.name -}}
{{- else -}}
{{- required "readapi.serviceAccount.name is required when readapi.serviceAccount.create is false" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* The claim the read API mounts: readapi.artifacts.claimName, else storage.claimName where the
chart creates that claim in the release namespace, else "" (none). */}}
{{- define "mg.readapiClaim" -}}
{{- if .Values.readapi.artifacts.claimName -}}
{{- .Values.readapi.artifacts.claimName -}}
{{- else if .Values.storage.create -}}
{{- $namespaces := .Values.storage.namespaces | default (include "mg.workNamespaces" . | fromJsonArray) -}}
{{- if has .Release.Namespace $namespaces -}}
{{- .Values.storage.claimName -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* What the read API's watch cache reads: the three kinds and the events about them. */}}
{{- define "mg.readapiReadRules" -}}
- apiGroups: ["modelgarden.dev"]
  resources: ["finetunejobs", "modelversions", "inferencedeployments"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["get", "list", "watch"]
{{- end -}}
