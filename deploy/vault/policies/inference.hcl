# Role "inference": its own optional config secret, and the operator token hashes its gRPC interceptor checks
# changing calls against (hashes, not tokens). No exchange keys.
# KV v2: values live under <mount>/data/..., versions (for rotation watches) under <mount>/metadata/...

path "secret/data/quantumedge/config/inference" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/config/inference" {
  capabilities = ["read"]
}

path "secret/data/quantumedge/operator/token-hashes" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/operator/token-hashes" {
  capabilities = ["read"]
}

# Its own Kafka identity (SASL username/password, the cluster CA, optional client cert/key): no other service's.
path "secret/data/quantumedge/kafka/inference" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/kafka/inference" {
  capabilities = ["read"]
}
