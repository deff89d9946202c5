{{/* The release's full name, at most 63 characters. */}}
{{- define "sessiongate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The namespace the gateway serves (--namespace). */}}
{{- define "sessiongate.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end -}}

{{/* The namespace of the leader election Lease. */}}
{{- define "sessiongate.leaseNamespace" -}}
{{- default (include "sessiongate.namespace" .) .Values.leaderElection.namespace -}}
{{- end -}}

{{- define "sessiongate.serviceAccountName" -}}
{{- default (include "sessiongate.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "sessiongate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sessiongate.labels" -}}
{{ include "sessiongate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The Role or ClusterRole of the generated config/rbac/role.yaml (a copy
in files/, kept equal by internal/chart's tests), by kind. */}}
{{- define "sessiongate.generatedRules" -}}
{{- $kind := .kind -}}
{{- $rules := list -}}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.root.Files.Get "files/role.yaml") -1 -}}
{{- $o := fromYaml $doc -}}
{{- if eq (get $o "kind") $kind -}}
{{- $rules = $o.rules -}}
{{- end -}}
{{- end -}}
{{- if not $rules -}}
{{- fail (printf "files/role.yaml has no %s" $kind) -}}
{{- end -}}
{{- toYaml $rules -}}
{{- end -}}

{{/* An address on every interface, or on loopback only. */}}
{{- define "sessiongate.metricsAddress" -}}
{{- if eq (int .Values.ports.metrics) 0 -}}
0
{{- else if .Values.metrics.secure -}}
:{{ .Values.ports.metrics }}
{{- else -}}
127.0.0.1:{{ .Values.ports.metrics }}
{{- end -}}
{{- end -}}

{{/* Whether the metrics port is reachable from outside the pod. */}}
{{- define "sessiongate.metricsExposed" -}}
{{- if and .Values.metrics.secure (ne (int .Values.ports.metrics) 0) -}}true{{- end -}}
{{- end -}}
