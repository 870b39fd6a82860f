# Role "execution" (paper venue) and the base policy of the venue roles "execution-testnet" and
# "execution-live": its own optional config secret and the operator token hashes for its changing gRPC calls.
# No exchange key here: each venue's key is granted by its own policy (execution-testnet.hcl,
# execution-live.hcl), so no execution credential ever reads both testnet and live keys.
# KV v2: values live under <mount>/data/..., versions (for rotation watches) under <mount>/metadata/...

path "secret/data/quantumedge/config/execution" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/config/execution" {
  capabilities = ["read"]
}

path "secret/data/quantumedge/operator/token-hashes" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/operator/token-hashes" {
  capabilities = ["read"]
}

# The public half of risk's signing keyring only: execution verifies every decision and control record with it
# and can never sign one (no access to secret/data/quantumedge/signing/private).
path "secret/data/quantumedge/signing/public" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/signing/public" {
  capabilities = ["read"]
}

# Its own Kafka identity (SASL username/password, the cluster CA, optional client cert/key): no other service's.
path "secret/data/quantumedge/kafka/execution" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/kafka/execution" {
  capabilities = ["read"]
}

# The executor lease (execution.lease=vault): one active execution per account, written with check-and-set.
path "secret/data/quantumedge/leases/execution" {
  capabilities = ["create", "update", "read"]
}
