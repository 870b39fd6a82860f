{{/*
Names, labels and the per-component view of the values.
*/}}

{{/* The four services, in pipeline order. One name everywhere: folder, `serve` argument, component key,
OTEL_SERVICE_NAME, consumer group, Vault role. */}}
{{- define "quantumedge.componentNames" -}}
ingest inference risk execution
{{- end -}}

{{/* Components that may run more than one replica. Ingest would publish every event twice, two
executors could both place orders, and two risk pods would each hold half the portfolio, so portfolio-wide
limits (exposure, daily loss, drawdown) would each see only their half: those three are single writers. */}}
{{- define "quantumedge.scalableComponents" -}}
inference
{{- end -}}

{{- define "quantumedge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "quantumedge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "quantumedge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name of a component: <fullname>-<component>. Args: dict "root" $ "name" <component>. */}}
{{- define "quantumedge.componentFullname" -}}
{{- printf "%s-%s" (include "quantumedge.fullname" .root | trunc 50 | trimSuffix "-") .name -}}
{{- end -}}

{{/* Selector labels: name + instance + component only (immutable in a Deployment; nothing that changes per release). */}}
{{- define "quantumedge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "quantumedge.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}
{{- end -}}

{{/* Standard labels. Args: dict "root" $ "name" <component or "">. */}}
{{- define "quantumedge.labels" -}}
helm.sh/chart: {{ include "quantumedge.chart" .root }}
{{ include "quantumedge.selectorLabels" . }}
app.kubernetes.io/version: {{ include "quantumedge.imageTag" .root | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "quantumedge.name" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata.annotations block content for commonAnnotations (+ extra dict). Args: dict "root" $ "extra" dict. */}}
{{- define "quantumedge.annotations" -}}
{{- $all := merge (deepCopy (default dict .extra)) (deepCopy (default dict .root.Values.commonAnnotations)) -}}
{{- if $all }}
annotations:
  {{- toYaml $all | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "quantumedge.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "quantumedge.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "quantumedge.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/*
Deep merge where the override always wins, including an explicit false, 0, "" or null
(sprig's mergeOverwrite skips such "empty" values, so `enabled: false` could never switch a default off).
Args: dict "base" map "override" map. Returns YAML.
*/}}
{{- define "quantumedge.deepMerge" -}}
{{- $out := deepCopy (default dict .base) -}}
{{- range $key, $value := (default dict .override) -}}
{{- $current := get $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := set $out $key (fromYaml (include "quantumedge.deepMerge" (dict "base" $current "override" $value))) -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
The effective settings of one component: `default` deep-merged with `components.<name>`, plus its name.
Args: dict "root" $ "name" <component>. Returns YAML (use with fromYaml).
*/}}
{{- define "quantumedge.component" -}}
{{- $own := index .root.Values.components .name | default dict -}}
{{- $merged := fromYaml (include "quantumedge.deepMerge" (dict "base" .root.Values.default "override" $own)) -}}
{{- $_ := set $merged "name" .name -}}
{{- $_ := set $merged "fullname" (include "quantumedge.componentFullname" .) -}}
{{- $_ := set $merged "grpcService" (printf "quantumedge.v1.%sService" (title .name)) -}}
{{- $_ := set $merged "scalable" (has .name (splitList " " (include "quantumedge.scalableComponents" .root))) -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* Fail early on combinations the schema cannot see (they depend on the merge of default + component). */}}
{{- define "quantumedge.validateComponent" -}}
{{- $c := .component -}}
{{- if not $c.scalable -}}
{{- if ne $c.autoscaling.mode "none" -}}
{{- fail (printf "components.%s.autoscaling.mode must be none: %s is a single writer (only inference scales)" $c.name $c.name) -}}
{{- end -}}
{{- if gt (int $c.replicaCount) 1 -}}
{{- fail (printf "components.%s.replicaCount must be 0 or 1: %s is a single writer" $c.name $c.name) -}}
{{- end -}}
{{- end -}}
{{- /* Risk never scales to zero while deployed: with no risk nothing is approved and no halt is enforced. */ -}}
{{- if and (eq $c.name "risk") (ne (int $c.replicaCount) 1) -}}
{{- fail "components.risk.replicaCount must be 1: risk is the single writer of decisions and halts and never scales to zero (components.risk.enabled=false removes it)" -}}
{{- end -}}
{{- if and (eq $c.autoscaling.mode "hpa") (lt (int $c.autoscaling.minReplicas) 1) -}}
{{- fail (printf "components.%s.autoscaling.minReplicas must be >= 1 with mode hpa (only keda scales to zero)" $c.name) -}}
{{- end -}}
{{- if gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas) -}}
{{- fail (printf "components.%s.autoscaling.minReplicas must not exceed maxReplicas" $c.name) -}}
{{- end -}}
{{- if and (eq $c.autoscaling.mode "hpa") (not (or $c.autoscaling.targetCPUUtilizationPercentage $c.autoscaling.targetMemoryUtilizationPercentage)) -}}
{{- fail (printf "components.%s.autoscaling: mode hpa needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" $c.name) -}}
{{- end -}}
{{- if and $c.pdb.create (not (kindIs "invalid" $c.pdb.minAvailable)) (not (kindIs "invalid" $c.pdb.maxUnavailable)) -}}
{{- fail (printf "components.%s.pdb: set minAvailable or maxUnavailable, not both (null the other)" $c.name) -}}
{{- end -}}
{{- end -}}

{{/* The PriorityClass a component's pods use: its own setting, else the chart's PriorityClass when created. */}}
{{- define "quantumedge.priorityClassName" -}}
{{- if .component.priorityClassName -}}
{{- .component.priorityClassName -}}
{{- else if .root.Values.priorityClass.create -}}
{{- include "quantumedge.priorityClassFullname" .root -}}
{{- end -}}
{{- end -}}

{{- define "quantumedge.priorityClassFullname" -}}
{{- default (include "quantumedge.fullname" .) .Values.priorityClass.name -}}
{{- end -}}

{{/* Components that check the operator token on changing calls (quantumedge.secrets.paths.OPERATOR_HASH_READERS). */}}
{{- define "quantumedge.operatorHashReaders" -}}
inference risk execution
{{- end -}}

{{- define "quantumedge.serviceAccountName" -}}
{{- if .component.serviceAccount.create -}}
{{- default .component.fullname .component.serviceAccount.name -}}
{{- else -}}
{{- default "default" .component.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The executor lease's Lease name (executorLease.name, else <fullname>-execution). */}}
{{- define "quantumedge.leaseName" -}}
{{- default (printf "%s-execution" (include "quantumedge.fullname" .)) .Values.executorLease.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A topic's physical name (QE_KAFKA__TOPIC_PREFIX + name). Args: dict "root" $ "topic" name. */}}
{{- define "quantumedge.topic" -}}
{{- printf "%s%s" .root.Values.kafka.topicPrefix .topic -}}
{{- end -}}

{{/* Topics whose consumer lag drives a component's scaling. Args: dict "root" $ "component" $c. */}}
{{- define "quantumedge.lagTopics" -}}
{{- $topics := .component.autoscaling.keda.topics -}}
{{- if not $topics -}}
{{- $inputs := dict "inference" (list "ingest.trades.v1" "ingest.book.v1" "ingest.depth.v1") "risk" (list "inference.signals.v1") -}}
{{- $topics = get $inputs .component.name | default list -}}
{{- end -}}
{{- $out := list -}}
{{- range $topics -}}
{{- $out = append $out (include "quantumedge.topic" (dict "root" $.root "topic" .)) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* settings map -> env vars: {key: v} -> PREFIX<KEY>=v; lists and maps as JSON (pydantic-settings parses them). */}}
{{- define "quantumedge.settingsEnv" -}}
{{- range $key, $value := .settings }}
- name: {{ printf "%s%s" $.prefix (upper $key) }}
  {{- if or (kindIs "map" $value) (kindIs "slice" $value) }}
  value: {{ toJson $value | quote }}
  {{- else if kindIs "invalid" $value }}
  value: ""
  {{- else if kindIs "float64" $value }}
  value: {{ toJson $value | quote }}
  {{- else }}
  value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Kafka environment shared by the services and the topic Job. */}}
{{- define "quantumedge.kafkaEnv" -}}
- name: QE_BUS
  value: kafka
- name: QE_KAFKA__BOOTSTRAP
  value: {{ .Values.kafka.bootstrap | quote }}
- name: QE_KAFKA__SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
- name: QE_KAFKA__ALLOW_PLAINTEXT
  value: {{ .Values.kafka.allowPlaintext | toString | quote }}
- name: QE_KAFKA__SASL_MECHANISM
  value: {{ .Values.kafka.saslMechanism | quote }}
- name: QE_KAFKA__CREDENTIALS_PATH
  value: {{ .Values.kafka.credentialsPath | quote }}
- name: QE_KAFKA__SSL_CHECK_HOSTNAME
  value: {{ .Values.kafka.sslCheckHostname | toString | quote }}
- name: QE_KAFKA__PRINCIPAL_TEMPLATE
  value: {{ .Values.kafka.users.nameTemplate | quote }}
- name: QE_KAFKA__TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: QE_KAFKA__PARTITIONS
  value: {{ .Values.kafka.topics.partitions | int | quote }}
- name: QE_KAFKA__REPLICATION_FACTOR
  value: {{ .Values.kafka.topics.replicationFactor | int | quote }}
{{- end -}}

{{/* The container environment of a component. Args: dict "root" $ "component" $c. */}}
{{- define "quantumedge.env" -}}
{{- $root := .root -}}
{{- $c := .component -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{ include "quantumedge.kafkaEnv" $root }}
- name: QE_SYMBOLS
  value: {{ toJson $root.Values.config.symbols | quote }}
- name: QE_LOG_LEVEL
  value: {{ $root.Values.config.logLevel | quote }}
- name: QE_MODELS_DIR
  value: {{ $root.Values.config.modelsDir | quote }}
- name: QE_DATA_DIR
  value: {{ ternary "/data" "/tmp/data" (eq $c.name "ingest") | quote }}
{{- if $c.port }}
- name: {{ printf "QE_PORTS__%s" (upper $c.name) }}
  value: {{ $c.port | int | quote }}
{{- end }}
{{- if eq $c.name "execution" }}
- name: QE_EXECUTION__VENUE
  value: {{ $c.venue | quote }}
- name: QE_EXECUTION__ALLOW_LIVE
  value: {{ $c.allowLive | toString | quote }}
{{- $l := $root.Values.executorLease }}
{{- if and (eq $l.backend "vault") (not $root.Values.vault.enabled) }}
{{- fail "executorLease.backend=vault needs vault.enabled=true: use executorLease.backend=kubernetes (no Vault needed)" }}
{{- end }}
- name: QE_EXECUTION__LEASE
  value: {{ $l.backend | quote }}
{{- if ne $l.backend "none" }}
- name: QE_EXECUTION__LEASE_DURATION_S
  value: {{ $l.durationSeconds | toString | quote }}
- name: QE_EXECUTION__LEASE_RENEW_S
  value: {{ $l.renewSeconds | toString | quote }}
- name: QE_EXECUTION__LEASE_MARGIN_S
  value: {{ $l.marginSeconds | toString | quote }}
{{- end }}
{{- if eq $l.backend "kubernetes" }}
- name: QE_EXECUTION__LEASE_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: QE_EXECUTION__LEASE_NAME
  value: {{ include "quantumedge.leaseName" $root | quote }}
{{- end }}
{{- $risk := include "quantumedge.component" (dict "root" $root "name" "risk") | fromYaml }}
{{- if $risk.enabled }}
{{- /* SubmitOrder asks risk to review a manual order over gRPC. */}}
- name: QE_EXECUTION__RISK_ADDRESS
  value: {{ printf "%s:%d" $risk.fullname ($risk.port | int) | quote }}
{{- end }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ $c.name | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ include "quantumedge.otelResourceAttributes" (dict "root" $root "component" $c) | quote }}
{{- if $root.Values.otel.enabled }}
- name: QE_TELEMETRY__TRACES
  value: {{ ternary "otlp" "none" $root.Values.otel.traces | quote }}
- name: QE_TELEMETRY__METRICS
  value: {{ ternary "otlp" "none" $root.Values.otel.metrics | quote }}
- name: QE_TELEMETRY__OTLP_ENDPOINT
  value: {{ $root.Values.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.otel.endpoint | quote }}
{{- else }}
- name: QE_TELEMETRY__TRACES
  value: "none"
- name: QE_TELEMETRY__METRICS
  value: "none"
{{- end }}
{{- if and $root.Values.operatorToken.existingSecret (has $c.name (splitList " " (include "quantumedge.operatorHashReaders" $root))) }}
{{- /* The hash of the operator token (not the token): from a Secret, so paper installs without Vault can halt. */}}
- name: QE_VAULT__OPERATOR_TOKEN_SHA256
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.operatorToken.existingSecret }}
      key: {{ $root.Values.operatorToken.key }}
{{- end }}
{{- if $root.Values.vault.enabled }}
- name: QE_VAULT__ADDR
  value: {{ $root.Values.vault.addr | quote }}
- name: QE_VAULT__AUTH_METHOD
  value: {{ $root.Values.vault.authMethod | quote }}
- name: QE_VAULT__ROLE
  value: {{ default (include "quantumedge.vaultRole" $c) $c.vaultRole | quote }}
- name: QE_VAULT__KUBERNETES_MOUNT
  value: {{ $root.Values.vault.kubernetesMount | quote }}
- name: QE_VAULT__KUBERNETES_JWT_FILE
  value: "/var/run/secrets/vault/token"
- name: QE_VAULT__KV_MOUNT
  value: {{ $root.Values.vault.kvMount | quote }}
- name: QE_VAULT__NAMESPACE
  value: {{ $root.Values.vault.namespace | quote }}
- name: QE_VAULT__OPERATOR_TOKEN_PATH
  value: {{ $root.Values.vault.operatorTokenPath | quote }}
{{- if $root.Values.vault.caCert.configMap }}
- name: QE_VAULT__CA_CERT
  value: "/etc/quantumedge/vault-ca/ca.crt"
{{- end }}
{{- end }}
{{- if and (not $root.Values.vault.enabled) (has $c.name (list "risk" "execution")) }}
{{- /* Without Vault: risk's public keys for both, its private key (from a Secret) for risk only. */}}
{{- with $root.Values.signing.publicKeys }}
- name: QE_SIGNING__PUBLIC_KEYS
  value: {{ . | quote }}
{{- end }}
{{- if and (eq $c.name "risk") $root.Values.signing.privateKeySecret }}
- name: QE_SIGNING__PRIVATE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.signing.privateKeySecret | quote }}
      key: {{ $root.Values.signing.privateKeySecretKey | quote }}
- name: QE_SIGNING__ALLOW_ENV_KEY
  value: "true"
{{- end }}
{{- end }}
{{- include "quantumedge.settingsEnv" (dict "prefix" "QE_" "settings" $root.Values.config.settings) }}
{{- include "quantumedge.settingsEnv" (dict "prefix" (printf "QE_%s__" (upper $c.name)) "settings" $c.settings) }}
{{- with $c.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The Vault role a component logs in as by default: execution's is per venue (execution-testnet reads only
the testnet key, execution-live only the live one; paper reads none). Args: the component. */}}
{{- define "quantumedge.vaultRole" -}}
{{- if and (eq .name "execution") (has .venue (list "testnet" "live")) -}}
{{- printf "execution-%s" .venue -}}
{{- else -}}
{{- .name -}}
{{- end -}}
{{- end -}}

{{- define "quantumedge.otelResourceAttributes" -}}
{{- $attrs := list (printf "service.namespace=%s" (include "quantumedge.fullname" .root)) "service.instance.id=$(POD_NAME)" "k8s.pod.name=$(POD_NAME)" "k8s.namespace.name=$(POD_NAMESPACE)" (printf "service.version=%s" (include "quantumedge.imageTag" .root)) -}}
{{- range $key, $value := .root.Values.otel.resourceAttributes -}}
{{- $attrs = append $attrs (printf "%s=%s" $key (toString $value)) -}}
{{- end -}}
{{- join "," $attrs -}}
{{- end -}}

{{/* Who calls whom over gRPC inside the release (the code's call graph: execution's SubmitOrder asks risk's
ReviewOrder). NetworkPolicies open a service's port to its callers' pods only, and a caller's egress to its
callees only. Keep in step with the code when a service starts calling another. */}}
{{- define "quantumedge.grpcCallers" -}}
risk: [execution]
{{- end -}}

{{- define "quantumedge.grpcCallees" -}}
execution: [risk]
{{- end -}}

{{/* Egress every service needs: DNS, Kafka, and Vault / the collector when they are on. A YAML list. */}}
{{- define "quantumedge.commonEgress" -}}
{{- $np := .Values.networkPolicy -}}
{{- $rules := list -}}
{{- if $np.egress.dns.enabled -}}
{{- $rules = append $rules (dict "to" $np.egress.dns.to "ports" $np.egress.dns.ports) -}}
{{- end -}}
{{- $rules = append $rules (dict "to" $np.egress.kafka.to "ports" $np.egress.kafka.ports) -}}
{{- if .Values.vault.enabled -}}
{{- $rules = append $rules (dict "to" $np.egress.vault.to "ports" $np.egress.vault.ports) -}}
{{- end -}}
{{- if .Values.otel.enabled -}}
{{- $rules = append $rules (dict "to" $np.egress.otel.to "ports" $np.egress.otel.ports) -}}
{{- end -}}
{{- toYaml $rules -}}
{{- end -}}

{{/* Who writes and who reads each topic: quantumedge.shared.topics WRITERS and READERS (tests/chart checks the
rendered ACLs against the code's plan). */}}
{{- define "quantumedge.topicAccess" -}}
{
  "ingest.trades.v1": {"write": ["ingest"], "read": ["inference", "execution"]},
  "ingest.book.v1": {"write": ["ingest"], "read": ["inference", "risk", "execution"]},
  "ingest.depth.v1": {"write": ["ingest"], "read": ["inference", "risk", "execution"]},
  "inference.signals.v1": {"write": ["inference"], "read": ["risk"]},
  "inference.shadow_signals.v1": {"write": ["inference"], "read": []},
  "risk.decisions.v1": {"write": ["risk"], "read": ["execution"]},
  "execution.reports.v1": {"write": ["execution"], "read": ["risk", "notify"]},
  "execution.state.v1": {"write": ["execution"], "read": ["execution"]},
  "risk.checkpoint.v1": {"write": ["risk"], "read": ["risk"]},
  "control.v1": {"write": ["risk"], "read": ["risk", "execution", "notify"]},
  "dlq.v1": {"write": ["ingest", "inference", "risk", "execution", "notify"], "read": []},
  "audit.v1": {"write": ["ingest", "inference", "risk", "execution"], "read": []}
}
{{- end -}}

{{/* A component's Kafka principal name (SASL user, KafkaUser name). Args: dict "root" $ "name" <component>. */}}
{{- define "quantumedge.kafkaUser" -}}
{{- .root.Values.kafka.users.nameTemplate | replace "{service}" .name -}}
{{- end -}}

{{/* A component's ACLs as a list of {type, name, operations} (physical names). Args: dict "root" $ "name" <component>. Returns JSON. */}}
{{- define "quantumedge.kafkaAcls" -}}
{{- $name := .name -}}
{{- $out := list -}}
{{- $reads := false -}}
{{- range $topic, $who := (include "quantumedge.topicAccess" .root | fromJson) -}}
{{- $ops := list -}}
{{- if has $name $who.read -}}{{- $ops = append $ops "Read" -}}{{- $reads = true -}}{{- end -}}
{{- if has $name $who.write -}}{{- $ops = append $ops "Write" -}}{{- end -}}
{{- if $ops -}}
{{- $out = append $out (dict "type" "topic" "name" (include "quantumedge.topic" (dict "root" $.root "topic" $topic)) "operations" $ops) -}}
{{- end -}}
{{- end -}}
{{- if $reads -}}
{{- $out = append $out (dict "type" "group" "name" (printf "%s%s" $.root.Values.kafka.topicPrefix $name) "operations" (list "Read")) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Kafka combinations the schema cannot phrase clearly. */}}
{{- define "quantumedge.validateKafka" -}}
{{- $k := .Values.kafka -}}
{{- if and (eq $k.topics.provisioner "job") (ne $k.securityProtocol "PLAINTEXT") -}}
{{- fail (printf "kafka.topics.provisioner=job runs `quantumedge topics` with no Kafka identity, so only against a PLAINTEXT development broker; with kafka.securityProtocol=%s use strimzi, or none and run `quantumedge topics --acls` with the Kafka admin's credentials" $k.securityProtocol) -}}
{{- end -}}
{{- if and (eq $k.users.provisioner "strimzi") (or (not (hasPrefix "SASL_" $k.securityProtocol)) (ne $k.saslMechanism "SCRAM-SHA-512")) -}}
{{- fail "kafka.users.provisioner=strimzi makes SCRAM-SHA-512 users: set kafka.securityProtocol=SASL_SSL and kafka.saslMechanism=SCRAM-SHA-512" -}}
{{- end -}}
{{- end -}}

{{/* Every Kafka identity the release deploys: the enabled components, and the notifier when it is on. */}}
{{- define "quantumedge.kafkaClients" -}}
{{- $out := list -}}
{{- range $name := splitList " " (include "quantumedge.componentNames" .) -}}
{{- if (include "quantumedge.component" (dict "root" $ "name" $name) | fromYaml).enabled -}}
{{- $out = append $out $name -}}
{{- end -}}
{{- end -}}
{{- if .Values.notify.enabled -}}
{{- $out = append $out "notify" -}}
{{- end -}}
{{- join " " $out -}}
{{- end -}}
