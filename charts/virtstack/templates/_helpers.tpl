{{/* The chart's name, and the release-qualified name every object carries (63 characters at most). */}}
{{- define "virtstack.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "virtstack.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "virtstack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "virtstack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "virtstack.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "virtstack.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: virtstack
{{- end }}

{{- define "virtstack.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The liveness endpoint: kopf's --liveness server, backed by the operator's @kopf.on.probe checks. */}}
{{- define "virtstack.healthPort" -}}8080{{- end }}

{{/*
The operator's configuration file: the settings plus the values that shape the process.
The ConfigMap holds exactly this; the Deployment carries its checksum so a change rolls out.
*/}}
{{- define "virtstack.config" -}}
{{- $config := deepCopy .Values.settings }}
{{- $_ := set $config "watchNamespaces" .Values.watchNamespaces }}
{{- $_ := set $config "logFormat" .Values.logFormat }}
{{- $_ := set $config "metrics" .Values.metrics }}
{{- toYaml $config }}
{{- end }}

{{/* Restricted Pod Security for every container of the chart (operator and helm test). */}}
{{- define "virtstack.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "virtstack.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}
