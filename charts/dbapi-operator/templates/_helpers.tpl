{{/* The release's full name, as every object is named. */}}
{{- define "dbapi-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The recommended labels, on every object. */}}
{{- define "dbapi-operator.labels" -}}
{{ include "dbapi-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: dbapi
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "dbapi-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dbapi-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dbapi-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
What the operator does to the objects it manages: exactly the verbs its code
uses, as operator/permissions.yaml lists them (found by operator/tests/rbac.rs
from the requests the operator makes); scripts/chart-check.sh fails when these
grant less or more. `delete` comes with every child the operator applies, as
they name their DatabaseApi as owner: with the OwnerReferencesPermissionEnforcement
admission plugin, setting an owner reference needs delete on the object.
*/}}
{{- define "dbapi-operator.rules" -}}
- apiGroups: [dbapi.dev]
  resources: [databaseapis]
  verbs: [list, watch]
- apiGroups: [dbapi.dev]
  resources: [databaseapis/status]
  verbs: [patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [list, watch, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
