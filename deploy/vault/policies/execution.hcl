# Role "execution": the only role that reads exchange keys (binance-testnet, binance-live), plus its own
# optional config secret and the operator token hashes for its changing gRPC calls.
# KV v2: values live under <mount>/data/..., versions (for rotation watches) under <mount>/metadata/...

path "secret/data/quantumedge/exchange/binance-testnet" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/exchange/binance-testnet" {
  capabilities = ["read"]
}

path "secret/data/quantumedge/exchange/binance-live" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/exchange/binance-live" {
  capabilities = ["read"]
}

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
