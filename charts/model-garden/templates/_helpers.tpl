{{/* Names, labels and images shared by every template. */}}

{{- define "mg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mg.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "mg.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "mg.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mg.operatorName" -}}
{{- printf "%s-operator" (include "mg.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mg.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: model-garden
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The operator's pods. app.kubernetes.io/name matches the operator's default
operator_pod_labels; both labels are passed to it (NetworkPolicies let these pods in). */}}
{{- define "mg.operatorSelector" -}}
app.kubernetes.io/name: model-garden-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mg.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag (tag defaults to appVersion) or repository@digest. Argument: (list $ image). */}}
{{- define "mg.image" -}}
{{- $root := index . 0 -}}
{{- $img := index . 1 -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (toString ($img.tag | default $root.Chart.AppVersion)) -}}
{{- end -}}
{{- end -}}

{{- define "mg.trainerImage" -}}
{{- if eq .Values.images.runtime "cpu" -}}
{{- include "mg.image" (list . .Values.images.cpu) -}}
{{- else -}}
{{- include "mg.image" (list . .Values.images.trainer) -}}
{{- end -}}
{{- end -}}

{{- define "mg.serverImage" -}}
{{- if eq .Values.images.runtime "cpu" -}}
{{- include "mg.image" (list . .Values.images.cpu) -}}
{{- else -}}
{{- include "mg.image" (list . .Values.images.server) -}}
{{- end -}}
{{- end -}}

{{/* The namespaces the operator watches: none means the whole cluster. */}}
{{- define "mg.watchNamespaces" -}}
{{- if eq .Values.rbac.scope "namespaced" -}}
{{- $ns := .Values.rbac.watchNamespaces | default (list .Release.Namespace) -}}
{{- toJson (uniq $ns) -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/* Namespaces where per-namespace objects go (claims, LocalQueues) when none are listed:
the watched namespaces, else the release namespace. */}}
{{- define "mg.workNamespaces" -}}
{{- $watched := include "mg.watchNamespaces" . | fromJsonArray -}}
{{- if $watched -}}
{{- toJson $watched -}}
{{- else -}}
{{- toJson (list .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{- define "mg.metricsServiceName" -}}
{{- printf "%s-metrics" (include "mg.operatorName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Prometheus Operator's kinds are rendered only where the cluster serves them. */}}
{{- define "mg.hasPrometheusOperator" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- end -}}

{{/* Kueue's API: v1beta2 where served (Kueue 0.15+), else v1beta1 (served by every release). */}}
{{- define "mg.kueueApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "kueue.x-k8s.io/v1beta2" -}}
kueue.x-k8s.io/v1beta2
{{- else -}}
kueue.x-k8s.io/v1beta1
{{- end -}}
{{- end -}}

{{/* mg.labels plus the operator's name label (mg.labels already holds the instance). */}}
{{- define "mg.operatorLabels" -}}
{{ include "mg.labels" . }}
app.kubernetes.io/name: model-garden-operator
app.kubernetes.io/component: operator
{{- end -}}

{{/* checkov suppressions shared by every pod of the chart, each with its reason. */}}
{{- define "mg.checkovImageSkips" -}}
# Images are pinned by release tag (tag defaults to appVersion); images.*.digest pins a digest
# where the registry's digests are known (they are not before the images are published).
checkov.io/skip1: CKV_K8S_43=Pinned by release tag; images.*.digest pins a digest when set
# IfNotPresent: release tags are immutable, and images loaded into kind/containerd are never pulled.
checkov.io/skip2: CKV_K8S_15=Release tags are immutable; kind and air-gapped nodes load images locally
# uid 1000 owns the files in the images (images/); a uid of 10000+ could not write /tmp caches
# they prepare. Pods still run non-root with every capability dropped.
checkov.io/skip3: CKV_K8S_40=uid 1000 is the images' own non-root user; runAsNonRoot and drop ALL hold
{{- end -}}
