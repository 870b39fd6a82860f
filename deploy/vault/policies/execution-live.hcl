# Policy "execution-live": the live exchange key, nothing else. `quantumedge secrets init` gives role
# "execution-live" this policy plus the base "execution" policy; the testnet key is never readable with it.
# KV v2: values live under <mount>/data/..., versions (for rotation watches) under <mount>/metadata/...

path "secret/data/quantumedge/exchange/binance-live" {
  capabilities = ["read"]
}

path "secret/metadata/quantumedge/exchange/binance-live" {
  capabilities = ["read"]
}
