# Role "ingest": market data needs no keys. Only its own optional config secret.
# KV v2: values live under <mount>/data/..., versions (for rotation watches) under <mount>/metadata/...
# `quantumedge secrets init` writes this as policy "quantumedge-ingest" (rewriting "secret/" to the configured mount).

path "secret/data/quantumedge/config/ingest" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/config/ingest" {
  capabilities = ["read"]
}

# Its own Kafka identity (SASL username/password, the cluster CA, optional client cert/key): no other service's.
path "secret/data/quantumedge/kafka/ingest" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/kafka/ingest" {
  capabilities = ["read"]
}
