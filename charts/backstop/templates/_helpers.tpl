{{/* The chart's name, at most 63 characters (a label value). */}}
{{- define "backstop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' full name: the release name, with the chart's unless it already holds it;
at most 63 characters (a DNS label). */}}
{{- define "backstop.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "backstop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* What selects the controller's pods: stable across upgrades. */}}
{{- define "backstop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backstop.name" . }}-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "backstop.labels" -}}
helm.sh/chart: {{ include "backstop.chart" . }}
{{ include "backstop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: backstop
{{- end }}

{{- define "backstop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "backstop.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest, or repository:tag (the appVersion by default). */}}
{{- define "backstop.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "backstop.workerImage" -}}
{{- default (include "backstop.image" .) .Values.worker.image }}
{{- end }}
