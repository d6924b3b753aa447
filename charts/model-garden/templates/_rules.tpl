{{/* The operator's least-privilege rules: the same as deploy/rbac/clusterrole.yaml (a test
checks they stay equal). No wildcards, no Secrets: tokens and keys reach pods by secretKeyRef. */}}
{{- define "mg.operatorRules" -}}
# Its resources: watch them; patch kopf's finalizer/annotations and ModelVersion finalizers.
- apiGroups: ["modelgarden.dev"]
  resources: ["finetunejobs", "inferencedeployments"]
  verbs: ["get", "list", "watch", "patch"]
# ModelVersions are also created by the operator when a FineTuneJob succeeds.
- apiGroups: ["modelgarden.dev"]
  resources: ["modelversions"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["modelgarden.dev"]
  resources: ["finetunejobs/status", "modelversions/status", "inferencedeployments/status"]
  verbs: ["get", "patch"]
# ownerReferences with blockOwnerDeletion on children need update on the owner's finalizers.
- apiGroups: ["modelgarden.dev"]
  resources: ["finetunejobs/finalizers", "modelversions/finalizers", "inferencedeployments/finalizers"]
  verbs: ["update"]
# Children: trainer and verification Jobs.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Serving Deployments (server-side apply: create + patch; a merge patch of replicas when an
# autoscaler hands them back); delete: a version's Deployment once spec.traffic dropped it.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# ConfigMaps: a trainer's config (deleted with its Job when a budget-stopped job resumes or a
# carbon-scheduled one pauses; the run's config is made again) and the admin policy (read).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Services of InferenceDeployments.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# One NetworkPolicy per InferenceDeployment (deleted when spec.networkPolicy.enabled is false).
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Read-only: pod status (termination messages, pod IPs to poll) and claims (access modes).
- apiGroups: [""]
  resources: ["pods", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch"]
# InferenceDeployment autoscalers (spec.autoscaling) and the HTTPRoute of spec.traffic, of
# the kinds API discovery finds served (discovery itself needs no rule): read by name (get),
# server-side apply (create + patch), delete when the spec stops using them. No list/watch.
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["http.keda.sh"]
  resources: ["httpscaledobjects"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "create", "patch", "delete"]
# Multi-node FineTuneJobs (spec.nodes above 1) run as a Kubeflow Trainer TrainJob, else a
# JobSet, of the kind discovery finds served: read by name (get), create, patch (spec.suspend),
# delete (a pause, a resumption, a hopeless run). No list/watch: their node Jobs and pods carry
# our labels and are watched as batch Jobs and pods.
- apiGroups: ["trainer.kubeflow.org"]
  resources: ["trainjobs"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["jobset.x-k8s.io"]
  resources: ["jobsets"]
  verbs: ["get", "create", "patch", "delete"]
# Events on our resources (the executor posts them; kopf's own posting is off).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
