# Role "operator" (people and CI running `quantumedge secrets rotate`): writes new secret versions but
# never reads exchange keys or service config back. Bootstrap (`secrets init`) needs an admin token instead.
# KV v2: values live under <mount>/data/..., versions under <mount>/metadata/...

# rotate: write a new version (create/update), or merge keys into it (patch).
path "secret/data/quantumedge/*" {
  capabilities = ["create", "update", "patch"]
}

# Versions and key listing, never values.
path "secret/metadata/quantumedge/*" {
  capabilities = ["read", "list"]
}

# Token hashes are not secret; reading them lets rotate merge a new operator in.
path "secret/data/quantumedge/operator/token-hashes" {
  capabilities = ["create", "update", "patch", "read"]
}

# Never act as a service: no reading of role-ids, no minting of secret-ids (that would hand out the live
# exchange key), no changing of role bindings. Explicit deny, so a broader policy attached by mistake cannot
# grant it either. `secrets init`, `secrets issue-secret-id` and `secrets check` need an admin token.
path "auth/approle/role/*" {
  capabilities = ["deny"]
}

path "auth/kubernetes/role/*" {
  capabilities = ["deny"]
}

# Signing-key rotation (`secrets rotate --signing-key` / `--retire-signing-key`) writes both keyring paths through
# the rule above; it reads the public keyring (public keys, not secret) so it never retires the key in use.
path "secret/data/quantumedge/signing/public" {
  capabilities = ["create", "update", "patch", "read"]
}
