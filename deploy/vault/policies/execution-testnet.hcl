# Policy "execution-testnet": the testnet exchange key, nothing else. `quantumedge secrets init` gives role
# "execution-testnet" this policy plus the base "execution" policy; the live key is never readable with it.
# KV v2: values live under <mount>/data/..., versions (for rotation watches) under <mount>/metadata/...

path "secret/data/quantumedge/exchange/binance-testnet" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/exchange/binance-testnet" {
  capabilities = ["read"]
}
