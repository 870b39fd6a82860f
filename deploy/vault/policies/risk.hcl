# Role "risk": its own optional config secret, and the operator token hashes its gRPC interceptor checks
# changing calls against (hashes, not tokens). No exchange keys.
# KV v2: values live under <mount>/data/..., versions (for rotation watches) under <mount>/metadata/...

path "secret/data/quantumedge/config/risk" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/config/risk" {
  capabilities = ["read"]
}

path "secret/data/quantumedge/operator/token-hashes" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/operator/token-hashes" {
  capabilities = ["read"]
}

# Risk's Ed25519 signing keyring (lane: signed decisions and control records). Risk alone reads the private key
# it signs decisions and halt/limits records with; it reads the public keys to verify control records and to
# switch to a rotated key only once verifiers can know it. Versions are watched, so rotation needs no restart.
path "secret/data/quantumedge/signing/private" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/signing/private" {
  capabilities = ["read"]
}

path "secret/data/quantumedge/signing/public" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/signing/public" {
  capabilities = ["read"]
}

# The optional LLM risk moderator's API key (risk.moderator.api_key_path): read only when the moderator is enabled.
path "secret/data/quantumedge/moderator/api-key" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/moderator/api-key" {
  capabilities = ["read"]
}

# Its own Kafka identity (SASL username/password, the cluster CA, optional client cert/key): no other service's.
path "secret/data/quantumedge/kafka/risk" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/kafka/risk" {
  capabilities = ["read"]
}
