{{/*
_helpers.tpl -- names, labels and the pieces of the bridge config shared by
several templates.
*/}}

{{/* The chart name, or nameOverride. 63 characters: a DNS label. */}}
{{- define "expiry-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified app name: "<release>-<chart>", or just the release name
when it already contains the chart name; fullnameOverride replaces it.
*/}}
{{- define "expiry-bridge.fullname" -}}
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

{{/* The sample consumer's name: "<fullname>-consumer", within 63 characters. */}}
{{- define "expiry-bridge.consumerFullname" -}}
{{- printf "%s-consumer" (include "expiry-bridge.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "expiry-bridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "expiry-bridge.labels" -}}
helm.sh/chart: {{ include "expiry-bridge.chart" . }}
{{ include "expiry-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: expiry-bridge
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of the bridge pods: everything but helm.sh/chart, so that a chart
version bump that changes nothing in the pod does not roll it (a restart is
a subscription gap).
*/}}
{{- define "expiry-bridge.podLabels" -}}
{{ include "expiry-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: expiry-bridge
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the bridge. Immutable in a Deployment once created: never
add to them.
*/}}
{{- define "expiry-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "expiry-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: bridge
{{- end }}

{{/* Labels of the sample consumer's objects. */}}
{{- define "expiry-bridge.consumerLabels" -}}
helm.sh/chart: {{ include "expiry-bridge.chart" . }}
{{ include "expiry-bridge.consumerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: expiry-bridge
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "expiry-bridge.consumerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "expiry-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: consumer
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "expiry-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "expiry-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "expiry-bridge.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where the ConfigMap is mounted (a directory) and the file in it. */}}
{{- define "expiry-bridge.configDir" -}}/etc/expiry-bridge{{- end }}
{{- define "expiry-bridge.configFile" -}}config.yaml{{- end }}

{{/*
Secrets. Each secret value comes either from an existing Secret (preferred)
or from an inline value, which the chart stores in its own Secret (named
like the release) under a fixed key. Setting both is an error: which one
wins would be a guess.
*/}}
{{- define "expiry-bridge.secretName" -}}
{{- include "expiry-bridge.fullname" . }}
{{- end }}

{{/* "true" when the Redis password is configured at all. */}}
{{- define "expiry-bridge.redisPasswordEnabled" -}}
{{- if and .Values.redis.existingSecret .Values.redis.password }}
{{- fail "redis: set either existingSecret or password, not both (prefer existingSecret)" }}
{{- end }}
{{- if or .Values.redis.existingSecret .Values.redis.password }}true{{ end }}
{{- end }}

{{/* "true" when the sentinels' own password is configured. */}}
{{- define "expiry-bridge.sentinelPasswordEnabled" -}}
{{- $sn := .Values.redis.sentinel }}
{{- if and $sn.existingSecret $sn.password }}
{{- fail "redis.sentinel: set either existingSecret or password, not both (prefer existingSecret)" }}
{{- end }}
{{- if or $sn.existingSecret $sn.password }}true{{ end }}
{{- end }}

{{/* "true" when Kafka SASL is enabled; checks its settings. */}}
{{- define "expiry-bridge.kafkaSaslEnabled" -}}
{{- $s := .Values.kafka.sasl }}
{{- if $s.enabled }}
{{- if and $s.existingSecret $s.password }}
{{- fail "kafka.sasl: set either existingSecret or password, not both (prefer existingSecret)" }}
{{- end }}
{{- if not (or $s.existingSecret $s.password) }}
{{- fail "kafka.sasl.enabled needs kafka.sasl.existingSecret (preferred) or kafka.sasl.password" }}
{{- end }}
{{- $_ := required "kafka.sasl.enabled needs kafka.sasl.username" $s.username }}
{{- range $k := list "security.protocol" "sasl.mechanisms" "sasl.username" "sasl.password" }}
{{- if hasKey $.Values.kafka.client $k }}
{{- fail (printf "kafka.client.%s is managed by kafka.sasl; set it there instead" $k) }}
{{- end }}
{{- end }}
{{- print "true" }}
{{- end }}
{{- end }}

{{/* "true" when the consumer's PostgreSQL password is configured. */}}
{{- define "expiry-bridge.consumerPasswordEnabled" -}}
{{- $c := .Values.consumer }}
{{- if and $c.existingSecret $c.password }}
{{- fail "consumer: set either existingSecret or password, not both (prefer existingSecret)" }}
{{- end }}
{{- if or $c.existingSecret $c.password }}true{{ end }}
{{- end }}

{{/* Inline secret values the chart must store: a dict key -> value. */}}
{{- define "expiry-bridge.inlineSecrets" -}}
{{- $d := dict }}
{{- if and (not .Values.redis.existingSecret) .Values.redis.password }}
{{- $_ := set $d "redis-password" .Values.redis.password }}
{{- end }}
{{- if and (not .Values.redis.sentinel.existingSecret) .Values.redis.sentinel.password }}
{{- $_ := set $d "sentinel-password" .Values.redis.sentinel.password }}
{{- end }}
{{- if and .Values.kafka.sasl.enabled (not .Values.kafka.sasl.existingSecret) .Values.kafka.sasl.password }}
{{- $_ := set $d "kafka-sasl-password" .Values.kafka.sasl.password }}
{{- end }}
{{- if and .Values.consumer.enabled (not .Values.consumer.existingSecret) .Values.consumer.password }}
{{- $_ := set $d "postgres-password" .Values.consumer.password }}
{{- end }}
{{- toJson $d }}
{{- end }}

{{/*
An env entry reading a secret: (dict "name" ENV "existing" SECRET "key" KEY
"chartKey" KEY_IN_CHART_SECRET "root" $).
*/}}
{{- define "expiry-bridge.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      {{- if .existing }}
      name: {{ .existing | quote }}
      key: {{ .key | quote }}
      {{- else }}
      name: {{ include "expiry-bridge.secretName" .root | quote }}
      key: {{ .chartKey | quote }}
      {{- end }}
{{- end }}

{{/* The bridge container's environment: secret references, then extraEnv. */}}
{{- define "expiry-bridge.env" -}}
{{- if include "expiry-bridge.redisPasswordEnabled" . }}
{{ include "expiry-bridge.secretEnv" (dict "name" "REDIS_PASSWORD" "existing" .Values.redis.existingSecret "key" .Values.redis.existingSecretPasswordKey "chartKey" "redis-password" "root" .) }}
{{- end }}
{{- if include "expiry-bridge.sentinelPasswordEnabled" . }}
{{ include "expiry-bridge.secretEnv" (dict "name" "SENTINEL_PASSWORD" "existing" .Values.redis.sentinel.existingSecret "key" .Values.redis.sentinel.existingSecretPasswordKey "chartKey" "sentinel-password" "root" .) }}
{{- end }}
{{- if include "expiry-bridge.kafkaSaslEnabled" . }}
{{ include "expiry-bridge.secretEnv" (dict "name" "KAFKA_SASL_PASSWORD" "existing" .Values.kafka.sasl.existingSecret "key" .Values.kafka.sasl.existingSecretPasswordKey "chartKey" "kafka-sasl-password" "root" .) }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
A scalar as the string librdkafka expects. Values arrive from YAML as
float64 (Helm reads values through JSON), and toString of 1000000.0 is
"1e+06": whole numbers are printed as integers.
*/}}
{{- define "expiry-bridge.scalarString" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}{{ int64 . }}
{{- else }}{{ toString . }}
{{- end }}
{{- end }}

{{/* An IntOrString field: numbers unquoted, "50%" quoted. */}}
{{- define "expiry-bridge.intOrString" -}}
{{- if kindIs "string" . }}{{ quote . }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/*
A duration ("250ms", "20s", "5m", "1h") in whole seconds, rounded up. The
schema guarantees the format.
*/}}
{{- define "expiry-bridge.seconds" -}}
{{- $d := toString . }}
{{- $n := regexReplaceAll "^([0-9]+)(ms|s|m|h)$" $d "${1}" | atoi }}
{{- $u := regexReplaceAll "^([0-9]+)(ms|s|m|h)$" $d "${2}" }}
{{- if eq $u "ms" }}{{ div (add $n 999) 1000 }}
{{- else if eq $u "m" }}{{ mul $n 60 }}
{{- else if eq $u "h" }}{{ mul $n 3600 }}
{{- else }}{{ $n }}
{{- end }}
{{- end }}

{{/*
A duration in milliseconds, as the bridge reads it: (dict "name" VALUE_PATH
"value" DURATION). The schema guarantees the format; the bridge holds a
duration in 32 bits, so one longer than 2147483647ms (about 24.8 days) fails
here instead of in the pod's reload.
*/}}
{{- define "expiry-bridge.milliseconds" -}}
{{- $d := toString .value }}
{{- $n := regexReplaceAll "^0*([0-9]+)(ms|s|m|h)$" $d "${1}" }}
{{- $u := regexReplaceAll "^0*([0-9]+)(ms|s|m|h)$" $d "${2}" }}
{{- $tooLong := printf "%s (%s) is too long: the bridge takes durations up to 2147483647ms (about 24.8 days)" .name $d }}
{{- if gt (len $n) 10 }}{{ fail $tooLong }}{{ end }}
{{- $ms := atoi $n | int64 }}
{{- if eq $u "s" }}{{ $ms = mul $ms 1000 }}
{{- else if eq $u "m" }}{{ $ms = mul $ms 60000 }}
{{- else if eq $u "h" }}{{ $ms = mul $ms 3600000 }}
{{- end }}
{{- if gt $ms 2147483647 }}{{ fail $tooLong }}{{ end }}
{{- $ms }}
{{- end }}

{{/*
The Redis target, as JSON: {"url", "topology" (standalone, sentinel or
cluster), "tls" (bool), "db" (bool: the URL selects one database)}. It is
where the Redis values are checked against each other, after `tpl`, so
that the chart never renders a file the bridge refuses: a setting of one
topology (or of TLS) given with another is an error that names both.
*/}}
{{- define "expiry-bridge.redisTarget" -}}
{{- $r := .Values.redis }}
{{- $url := tpl (required "redis.url is required" $r.url) . }}
{{- if regexMatch "^[a-zA-Z][-a-zA-Z0-9+.]*://[^/@]*:[^/@]*@" $url }}
{{- fail "redis.url carries a password, which would land in the ConfigMap: keep the user name there if you like and put the password in a Secret (redis.existingSecret)" }}
{{- end }}
{{- $scheme := regexFind "^rediss?(-sentinel|-cluster)?://" $url | trimSuffix "://" }}
{{- if not $scheme }}
{{- fail (printf "redis.url (%s) must start with redis:// (standalone), redis-sentinel:// (Sentinel) or redis-cluster:// (Cluster), or rediss... for TLS" $url) }}
{{- end }}
{{- $topology := "standalone" }}
{{- if hasSuffix "-sentinel" $scheme }}{{ $topology = "sentinel" }}
{{- else if hasSuffix "-cluster" $scheme }}{{ $topology = "cluster" }}
{{- end }}
{{- $tls := hasPrefix "rediss" $scheme }}
{{- $db := or (regexMatch "^rediss?://[^/]*/[0-9]+/?$" $url) (regexMatch "^rediss?-sentinel://[^/]*/[^/]+/[0-9]+/?$" $url) }}
{{- $s := $r.sentinel }}
{{- if and (ne $topology "sentinel") (or $s.username $s.existingSecret $s.password) }}
{{- fail (printf "redis.sentinel is for redis-sentinel:// URLs (the sentinels' own credentials); redis.url is a %s:// URL: leave redis.sentinel empty" $scheme) }}
{{- end }}
{{- $t := $r.tls }}
{{- if not $tls }}
{{- range $k := list "existingSecret" "certKey" "keyKey" "serverName" "insecureSkipVerify" }}
{{- if get $t $k }}
{{- fail (printf "redis.tls.%s needs a TLS URL (rediss://, rediss-sentinel:// or rediss-cluster://); redis.url is a %s:// URL" $k $scheme) }}
{{- end }}
{{- end }}
{{- end }}
{{- if ne (not $t.certKey) (not $t.keyKey) }}
{{- fail "redis.tls: set both certKey and keyKey (a client certificate and its key) or neither" }}
{{- end }}
{{- if and $t.certKey (not $t.existingSecret) }}
{{- fail "redis.tls.certKey and keyKey name keys of redis.tls.existingSecret, which is empty" }}
{{- end }}
{{- if and $t.existingSecret (not $t.caKey) (not $t.certKey) }}
{{- fail "redis.tls.existingSecret is set but neither caKey nor certKey/keyKey name a key of it" }}
{{- end }}
{{- if kindIs "slice" $r.databases }}
{{- if $db }}
{{- fail (printf "redis.url selects one database and redis.databases lists %s: give the databases in one place only (leave redis.databases at \"all\", or drop the /N from the URL)" (toJson $r.databases)) }}
{{- end }}
{{- if and (eq $topology "cluster") (ne (toJson $r.databases) "[0]") }}
{{- fail (printf "redis.databases is %s, but Redis Cluster has only database 0: use \"all\" or [0]" (toJson $r.databases)) }}
{{- end }}
{{- end }}
{{- dict "url" $url "topology" $topology "tls" $tls "db" $db | toJson }}
{{- end }}

{{/* Where the Redis TLS Secret is mounted, and the file names in it. */}}
{{- define "expiry-bridge.redisTlsDir" -}}/etc/expiry-bridge-tls/redis{{- end }}

{{/*
The coordination settings, as JSON with the chart's defaults filled in
(group and topic named after the release), or {} when coordination is off.
Checks what the bridge would refuse, and replicas without coordination.
*/}}
{{- define "expiry-bridge.coordination" -}}
{{- $co := .Values.coordination }}
{{- if and (gt (int .Values.replicaCount) 1) (not $co.enabled) }}
{{- fail (printf "replicaCount is %d but coordination.enabled is false: without the coordination group every replica reads every notification and forwards it, so each event would be produced %d times. Set coordination.enabled: true (the replicas then split the units, one owner each), or replicaCount: 1" (int .Values.replicaCount) (int .Values.replicaCount)) }}
{{- end }}
{{- if $co.enabled }}
{{- $session := include "expiry-bridge.milliseconds" (dict "name" "coordination.sessionTimeout" "value" $co.sessionTimeout) | atoi }}
{{- $heartbeat := include "expiry-bridge.milliseconds" (dict "name" "coordination.heartbeatInterval" "value" $co.heartbeatInterval) | atoi }}
{{- $_ := include "expiry-bridge.milliseconds" (dict "name" "coordination.handoverGrace" "value" $co.handoverGrace) }}
{{- if lt $session (mul 3 $heartbeat) }}
{{- fail (printf "coordination.sessionTimeout (%s) must be at least three coordination.heartbeatInterval (%s): a replica must be able to miss a heartbeat without losing its units" $co.sessionTimeout $co.heartbeatInterval) }}
{{- end }}
{{- $name := printf "%s.%s" .Release.Namespace (include "expiry-bridge.fullname" .) }}
{{- dict "enabled" true
      "group" ($co.group | default (printf "expiry-bridge.%s" $name))
      "topic" ($co.topic | default (printf "expiry-bridge.units.%s" $name))
      "session_timeout" $co.sessionTimeout
      "heartbeat_interval" $co.heartbeatInterval
      "handover_grace" $co.handoverGrace | toJson }}
{{- else }}{}
{{- end }}
{{- end }}

{{/*
kafka.client as the bridge gets it (JSON): the passthrough properties as
strings, plus the SASL settings. Shared by the config and, with
coordination, the restart checksum.
*/}}
{{- define "expiry-bridge.kafkaClient" -}}
{{- $k := .Values.kafka }}
{{- $client := dict }}
{{- range $key, $val := $k.client }}
{{- $_ := set $client $key (include "expiry-bridge.scalarString" $val) }}
{{- end }}
{{- if include "expiry-bridge.kafkaSaslEnabled" . }}
{{- $_ := set $client "security.protocol" $k.sasl.securityProtocol }}
{{- $_ := set $client "sasl.mechanisms" $k.sasl.mechanism }}
{{- $_ := set $client "sasl.username" $k.sasl.username }}
{{- $_ := set $client "sasl.password" "${KAFKA_SASL_PASSWORD}" }}
{{- end }}
{{- toJson $client }}
{{- end }}

{{/*
The bridge config, part 1: connections, queue, HTTP server. The bridge
applies these on reload too (a changed Redis or Kafka is reconnected: the
new Redis connection overlaps the old one, a replaced producer drains), so
a change here does not roll the pods either.
Strings go through toJson: a JSON string is a valid YAML scalar, so no value
can break the document.
*/}}
{{- define "expiry-bridge.config.restart" -}}
{{- $r := .Values.redis -}}
{{- $k := .Values.kafka -}}
{{- $target := include "expiry-bridge.redisTarget" . | fromJson -}}
{{- $t := $r.tls -}}
{{- $tlsDir := include "expiry-bridge.redisTlsDir" . -}}
redis:
  url: {{ $target.url | toJson }}
  {{- with $r.username }}
  username: {{ toJson . }}
  {{- end }}
  {{- if include "expiry-bridge.redisPasswordEnabled" . }}
  password: "${REDIS_PASSWORD}"
  {{- end }}
  {{- if kindIs "slice" $r.databases }}
  databases: {{ toJson $r.databases }}
  {{- end }}
  configure_notifications: {{ $r.configureNotifications }}
  {{- with $r.source }}
  source: {{ toJson . }}
  {{- end }}
  connect_timeout: {{ toJson $r.connectTimeout }}
  heartbeat_interval: {{ toJson $r.heartbeatInterval }}
  heartbeat_timeout: {{ toJson $r.heartbeatTimeout }}
  reconnect_min: {{ toJson $r.reconnectMin }}
  reconnect_max: {{ toJson $r.reconnectMax }}
  topology_interval: {{ toJson $r.topologyInterval }}
  {{- if and (eq $target.topology "sentinel") (or $r.sentinel.username (include "expiry-bridge.sentinelPasswordEnabled" .)) }}
  sentinel:
    {{- with $r.sentinel.username }}
    username: {{ toJson . }}
    {{- end }}
    {{- if include "expiry-bridge.sentinelPasswordEnabled" . }}
    password: "${SENTINEL_PASSWORD}"
    {{- end }}
  {{- end }}
  {{- if $target.tls }}
  tls:
    {{- if and $t.existingSecret $t.caKey }}
    ca_file: {{ printf "%s/ca.crt" $tlsDir | toJson }}
    {{- end }}
    {{- if $t.certKey }}
    cert_file: {{ printf "%s/tls.crt" $tlsDir | toJson }}
    key_file: {{ printf "%s/tls.key" $tlsDir | toJson }}
    {{- end }}
    {{- with $t.serverName }}
    server_name: {{ toJson . }}
    {{- end }}
    insecure_skip_verify: {{ $t.insecureSkipVerify }}
  {{- end }}
  read_ahead:
    max_events: {{ int64 $r.readAhead.maxEvents }}
    max_bytes: {{ toJson $r.readAhead.maxBytes }}
kafka:
  brokers: {{ tpl (required "kafka.brokers is required" $k.brokers) . | toJson }}
  {{- $client := include "expiry-bridge.kafkaClient" . | fromJson }}
  {{- if $client }}
  client:
    {{- range $key := keys $client | sortAlpha }}
    {{ toJson $key }}: {{ get $client $key | toJson }}
    {{- end }}
  {{- end }}
  queue:
    max_events: {{ int64 $k.queue.maxEvents }}
    max_bytes: {{ toJson $k.queue.maxBytes }}
  drain_timeout: {{ toJson $k.drainTimeout }}
{{- $co := include "expiry-bridge.coordination" . | fromJson }}
{{- if $co }}
coordination:
  {{- range $key := list "enabled" "group" "topic" "session_timeout" "heartbeat_interval" "handover_grace" }}
  {{ $key }}: {{ get $co $key | toJson }}
  {{- end }}
{{- end }}
http:
  listen: {{ printf "%s:%d" (ternary (printf "[%s]" .Values.metrics.bindAddress) .Values.metrics.bindAddress (contains ":" .Values.metrics.bindAddress)) (int .Values.metrics.port) | toJson }}
{{- end }}

{{/*
The bridge config, part 2: routes, unrouted keys, the deadline ledger, logging.
One key a line in a fixed order (the known keys first, any others sorted),
values through toJson: readable, and the same text whatever YAML library
the Helm version uses.
*/}}
{{- define "expiry-bridge.config.reloadable" -}}
{{- $seen := dict }}
{{- range .Values.routes }}
{{- if hasKey $seen (toString .name) }}
{{- fail (printf "routes: route name %q is used twice; names must be unique" .name) }}
{{- end }}
{{- $_ := set $seen (toString .name) true }}
{{- end -}}
{{- $order := list "name" "match" "events" "topic" "key" "format" "headers" "ledger" "payload" -}}
routes:
{{- range $route := .Values.routes }}
{{- $first := true }}
{{- $keys := $order }}
{{- range $k := keys $route | sortAlpha }}
{{- if not (has $k $order) }}{{ $keys = append $keys $k }}{{ end }}
{{- end }}
{{- range $k := $keys }}
{{- if hasKey $route $k }}
  {{ if $first }}- {{ else }}  {{ end }}{{ $k }}: {{ get $route $k | toJson }}
{{- $first = false }}
{{- end }}
{{- end }}
{{- else }} []
{{- end }}
unrouted: {{ toJson .Values.unrouted }}
{{- $l := .Values.ledger }}
{{- $interval := include "expiry-bridge.milliseconds" (dict "name" "ledger.sweepInterval" "value" $l.sweepInterval) | atoi }}
{{- $grace := include "expiry-bridge.milliseconds" (dict "name" "ledger.sweepGrace" "value" $l.sweepGrace) | atoi }}
{{- $_ := include "expiry-bridge.milliseconds" (dict "name" "ledger.claimTtl" "value" $l.claimTtl) }}
{{- $_ := include "expiry-bridge.milliseconds" (dict "name" "ledger.rememberDelivered" "value" $l.rememberDelivered) }}
{{- if ge $grace $interval }}
{{- fail (printf "ledger.sweepGrace (%s) must be shorter than ledger.sweepInterval (%s): the bridge refuses the config otherwise" $l.sweepGrace $l.sweepInterval) }}
{{- end }}
ledger:
  key_prefix: {{ toJson $l.keyPrefix }}
  sweep_interval: {{ toJson $l.sweepInterval }}
  sweep_grace: {{ toJson $l.sweepGrace }}
  sweep_batch: {{ int64 $l.sweepBatch }}
  claim_ttl: {{ toJson $l.claimTtl }}
  remember_delivered: {{ toJson $l.rememberDelivered }}
  buckets: {{ int64 $l.buckets }}
log:
  level: {{ toJson .Values.log.level }}
  stats_interval: {{ toJson .Values.log.statsInterval }}
{{- end }}

{{/*
Everything whose change needs a restart, hashed into the pod annotation.
The bridge reloads its config file live, so what remains is what a
process reads only at start: its environment, which carries the secrets
(${REDIS_PASSWORD}, ${SENTINEL_PASSWORD}, ${KAFKA_SASL_PASSWORD}) and any
extra variables; and, with coordination, the coordination settings and the
Kafka connection the group was made with (src/daemon/reload.c builds the
group from the first file only). A rollout of replicas with coordination
hands each pod's units over before it stops, so it costs no gap. Secret
references and extra env already change the pod spec; the inline secret
values do not (the Secret object changes, not the pod), so they are what
this hash is really for. A change to an existingSecret's content is
invisible to the chart: restart the Deployment yourself. Only toJson goes
in, never toYaml output, so the hash does not depend on the YAML library of
the Helm version.
*/}}
{{- define "expiry-bridge.restartChecksum" -}}
{{- $refs := dict
      "redis" (pick .Values.redis "existingSecret" "existingSecretPasswordKey")
      "sentinel" (pick .Values.redis.sentinel "existingSecret" "existingSecretPasswordKey")
      "kafkaSasl" (pick .Values.kafka.sasl "enabled" "existingSecret" "existingSecretPasswordKey")
      "extraEnv" .Values.extraEnv
      "extraEnvFrom" .Values.extraEnvFrom -}}
{{- $parts := list (toJson $refs) (include "expiry-bridge.inlineSecrets" .) -}}
{{- $co := include "expiry-bridge.coordination" . -}}
{{- if ne $co "{}" -}}
{{- $kafka := dict "brokers" (tpl .Values.kafka.brokers .) "client" (include "expiry-bridge.kafkaClient" . | fromJson) -}}
{{- $parts = append $parts (printf "coordination %s kafka %s" $co (toJson $kafka)) -}}
{{- end -}}
{{- join "\n---\n" $parts | sha256sum -}}
{{- end }}
