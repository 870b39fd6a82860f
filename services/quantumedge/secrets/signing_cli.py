"""`quantumedge secrets rotate --signing-key | --retire-signing-key KID` and `secrets signing-keygen`.

Risk's Ed25519 keyring in Vault (quantumedge.secrets.paths): SIGNING_PUBLIC holds {key_id: base64 public key
or "retired", "active": key_id}, readable by risk and execution; SIGNING_PRIVATE holds {key_id, private_key}
(the raw seed, base64), readable by risk only. Services watch both, so a rotation needs no restart.
"""

from __future__ import annotations

import argparse

import hvac

from quantumedge.secrets import errors, paths
from quantumedge.secrets.bootstrap import CliError, admin_client, merge_secret, vault_call
from quantumedge.secrets.masking import register_secret
from quantumedge.secrets.settings import VaultSettings


def rotate_signing_key(args: argparse.Namespace, vs: VaultSettings) -> int:
    """--signing-key: a new Ed25519 key, public half first (verifiers know it before anything is signed with it),
    then risk's private key; the previous key stays valid until retired. --retire-signing-key KID: refuse it."""
    from quantumedge.shared.signing import ACTIVE, RETIRED, KeyringError, SigningKey, check_key_id, new_key_id

    if args.path or args.from_env or args.stdin_json or args.stdin_key or args.operator_token:
        raise CliError("--signing-key / --retire-signing-key take no PATH and no other input")
    client = admin_client(vs)
    if args.retire_signing_key:
        key_id = args.retire_signing_key
        public = _read_public_keyring(client, vs)
        if key_id not in public or public[key_id] == RETIRED:
            raise CliError(f"signing key {key_id!r} is not a valid key in {paths.SIGNING_PUBLIC}")
        if public.get(ACTIVE) == key_id:
            raise CliError(f"signing key {key_id!r} is the one risk signs with: rotate first (--signing-key)")
        version = merge_secret(client, vs, paths.SIGNING_PUBLIC, {key_id: RETIRED})
        print(
            f"retired signing key {key_id} in {paths.SIGNING_PUBLIC} version {version}: records it signed are refused"
        )
        return 0
    try:
        key = SigningKey.generate(check_key_id(args.key_id) if args.key_id else new_key_id())
    except KeyringError as exc:
        raise CliError(str(exc)) from None
    seed = key.seed_b64()
    register_secret(seed)
    public_version = merge_secret(client, vs, paths.SIGNING_PUBLIC, {key.key_id: key.public_b64(), ACTIVE: key.key_id})
    resp = vault_call(
        f"write {paths.SIGNING_PRIVATE}",
        client.secrets.kv.v2.create_or_update_secret,
        paths.SIGNING_PRIVATE,
        {"key_id": key.key_id, "private_key": seed},
        mount_point=vs.kv_mount,
    )
    print(
        f"signing key {key.key_id}: public half in {paths.SIGNING_PUBLIC} version {public_version}, private key in "
        f"{paths.SIGNING_PRIVATE} version {resp['data']['version']}; risk switches without a restart. Retire the "
        "previous key with --retire-signing-key KEY_ID once no record it signed is still in flight."
    )
    return 0


def _read_public_keyring(client: hvac.Client, vs: VaultSettings) -> dict[str, str]:
    try:
        resp = client.secrets.kv.v2.read_secret_version(
            path=paths.SIGNING_PUBLIC, mount_point=vs.kv_mount, raise_on_deleted_version=True
        )
    except Exception as exc:
        raise CliError(f"read {paths.SIGNING_PUBLIC}: {errors.classify(exc, vs.addr)[1]}") from None
    return dict(resp["data"]["data"])


def cmd_signing_keygen(args: argparse.Namespace) -> int:
    """A key pair as QE_SIGNING__* export lines, for a local run on Kafka without Vault (`eval "$(...)"`)."""
    from quantumedge.shared.signing import SigningKey, new_key_id

    key = SigningKey.generate(new_key_id("local"))
    print(f"export QE_SIGNING__PUBLIC_KEYS={key.key_id}:{key.public_b64()}")
    print(f"export QE_SIGNING__PRIVATE_KEY={key.key_id}:{key.seed_b64()}")
    print("export QE_SIGNING__ALLOW_ENV_KEY=true")
    return 0
