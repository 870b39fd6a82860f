# Role "operator" (people and CI running `quantumedge secrets rotate|check`): writes new secret versions but
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

# check: log in as each service role with a single-use secret-id and try its paths. This lets an operator
# act as a service role; drop these three blocks and run `secrets check` with an admin token if that is too much.
path "auth/approle/role/+/role-id" {
  capabilities = ["read"]
}

path "auth/approle/role/+/secret-id" {
  capabilities = ["create", "update"]
}

path "auth/approle/role/+/secret-id-accessor/destroy" {
  capabilities = ["create", "update"]
}
