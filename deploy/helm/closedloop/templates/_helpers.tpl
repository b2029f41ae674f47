{{/* Names, labels and the per-service configuration every template shares. */}}

{{- define "closedloop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "closedloop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Resource name of one service: (list $ "identity") */}}
{{- define "closedloop.serviceName" -}}
{{- printf "%s-%s" (include "closedloop.fullname" (index . 0)) (index . 1) -}}
{{- end -}}

{{- define "closedloop.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "closedloop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: closedloop
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one service: (list $ "identity") */}}
{{- define "closedloop.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "closedloop.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "closedloop.labels" -}}
{{ include "closedloop.commonLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/*
A service's configuration: `defaults` deep-merged with its `services.<name>` entry, as YAML.
Use: {{ $svc := include "closedloop.config" (list $ "identity") | fromYaml }}
Sprig's merge ignores false/0/"" in the override, so scalars and lists of the entry (top level and
one level down) are set explicitly afterwards: `autoscaling.enabled: false` on a service wins.
*/}}
{{- define "closedloop.config" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $entry := index $root.Values.services $name | default dict -}}
{{- $cfg := mustMergeOverwrite (deepCopy $root.Values.defaults) (deepCopy $entry) -}}
{{- range $key, $value := $entry -}}
{{- if kindIs "map" $value -}}
{{- range $key2, $value2 := $value -}}
{{- if not (kindIs "map" $value2) -}}
{{- $_ := set (get $cfg $key) $key2 $value2 -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- $_ := set $cfg $key $value -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cfg "name" $name -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Names of the enabled services, sorted, as a YAML list under `names`. */}}
{{- define "closedloop.enabledServices" -}}
{{- $names := list -}}
{{- range $name, $entry := .Values.services -}}
{{- if ne (toString (dig "enabled" true $entry)) "false" -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- dict "names" (sortAlpha $names) | toYaml -}}
{{- end -}}

{{/* Image of one service: (list $ $svc) */}}
{{- define "closedloop.image" -}}
{{- $root := index . 0 -}}
{{- $svc := index . 1 -}}
{{- $image := $svc.image | default dict -}}
{{- $repo := $image.repository | default (printf "%s/%s%s" $root.Values.image.registry $root.Values.image.prefix $svc.name) -}}
{{- $tag := $image.tag | default $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* terminationGracePeriodSeconds that fits the drain: preStop + gRPC drain + worker drain +
outbox flush (each up to CLOSEDLOOP_SHUTDOWN_GRACE_S) + HTTP drain (5 s) + margin. */}}
{{- define "closedloop.terminationGrace" -}}
{{- $svc := . -}}
{{- add (int $svc.preStopSleepSeconds) (mul 3 (int $svc.shutdownGraceSeconds)) 5 (int $svc.terminationExtraSeconds) -}}
{{- end -}}

{{/* Public origin of the HTTP edges: publicBaseUrl, else the Ingress host; empty when neither. */}}
{{- define "closedloop.publicBaseUrl" -}}
{{- if .Values.publicBaseUrl -}}
{{- .Values.publicBaseUrl | trimSuffix "/" -}}
{{- else if .Values.ingress.enabled -}}
{{- printf "%s://%s" (ternary "https" "http" (not (empty .Values.ingress.tlsSecret))) .Values.ingress.host -}}
{{- end -}}
{{- end -}}

{{/* The migration command of one service, as the hook Job and the init container run it. */}}
{{- define "closedloop.migrateCommand" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $wait := index . 2 -}}
{{- if $wait -}}
{{- list "closedloop" "migrate" $name "--wait" (toString (int $root.Values.migrations.waitSeconds)) | toJson -}}
{{- else -}}
{{- list "closedloop" "migrate" $name | toJson -}}
{{- end -}}
{{- end -}}

{{- define "closedloop.natsUrl" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s-nats:4222" .Release.Name -}}
{{- else -}}
{{- .Values.externalNats.url -}}
{{- end -}}
{{- end -}}

{{/* The environment every service container and migration Job gets from Secrets: (list $ $svc) */}}
{{- define "closedloop.secretEnv" -}}
{{- $root := index . 0 -}}
{{- $svc := index . 1 -}}
{{- if $root.Values.postgresql.enabled }}
- name: CLOSEDLOOP_POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.postgresql.auth.existingSecret | default (printf "%s-postgresql" $root.Release.Name) }}
      key: postgres-password
- name: CLOSEDLOOP_DATABASE_URL
  value: {{ printf "postgresql+asyncpg://postgres:$(CLOSEDLOOP_POSTGRES_PASSWORD)@%s-postgresql:5432/closedloop_{service}" $root.Release.Name | quote }}
{{- else }}
- name: CLOSEDLOOP_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $svc.databaseSecret | default $root.Values.externalDatabase.existingSecret }}
      key: {{ $root.Values.externalDatabase.urlKey }}
{{- end }}
{{- if $root.Values.apiToken.existingSecret }}
- name: CLOSEDLOOP_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.apiToken.existingSecret }}
      key: {{ $root.Values.apiToken.key }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress rules shared by the services, the migration Jobs and the test pod. */}}
{{- define "closedloop.egressDns" -}}
# DNS
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  to:
    - namespaceSelector: {}
      podSelector:
        matchLabels:
          k8s-app: kube-dns
{{- end -}}

{{- define "closedloop.egressDatabase" -}}
# PostgreSQL
- ports:
    - port: {{ .Values.externalDatabase.port | int }}
      protocol: TCP
  {{- if .Values.postgresql.enabled }}
  to:
    - podSelector:
        matchLabels:
          app.kubernetes.io/name: postgresql
          app.kubernetes.io/instance: {{ .Release.Name }}
  {{- else if .Values.networkPolicy.databaseTo }}
  to:
    {{- toYaml .Values.networkPolicy.databaseTo | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* Where the API key Secret is mounted (CLOSEDLOOP_API_KEYS_FILE is api-keys.json in it). */}}
{{- define "closedloop.apiKeysDir" -}}
/etc/closedloop/api-keys
{{- end -}}
