{{/*
Name of everything the chart creates: nameOverride, else the chart name (63 characters).
*/}}
{{- define "restate-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Operator version: the image tag and the app.kubernetes.io/version label.
*/}}
{{- define "restate-operator.version" -}}
{{- default .Chart.AppVersion .Values.version }}
{{- end }}

{{- define "restate-operator.image" -}}
{{ .Values.image.repository }}:{{ include "restate-operator.version" . }}
{{- end }}

{{- define "restate-operator.serviceAccountName" -}}
{{- default (include "restate-operator.name" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
Selector labels. `app` is the baseline chart's selector; a Deployment's selector is immutable,
so it stays exactly this for `helm upgrade` from earlier releases.
*/}}
{{- define "restate-operator.selectorLabels" -}}
app: {{ include "restate-operator.name" . }}
{{- end }}

{{/*
Labels on every object. The operator finds its own pods (its NetworkPolicy peer) by
app.kubernetes.io/name, see OPERATOR_LABEL_NAME in the Deployment.
*/}}
{{- define "restate-operator.labels" -}}
{{ include "restate-operator.selectorLabels" . }}
app.kubernetes.io/name: {{ include "restate-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "restate-operator.version" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Value combinations the schema cannot express; fail early with a clear message.
*/}}
{{- define "restate-operator.validate" -}}
{{- $le := .Values.leaderElection }}
{{- if and (gt (int .Values.replicaCount) 1) (not $le.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: operators without a Lease would reconcile the same clusters concurrently" }}
{{- end }}
{{- if and $le.enabled (ge (float64 $le.renewPeriod) (float64 $le.leaseDuration)) }}
{{- fail (printf "leaderElection.renewPeriod (%v) must be less than leaderElection.leaseDuration (%v)" $le.renewPeriod $le.leaseDuration) }}
{{- end }}
{{- end }}
