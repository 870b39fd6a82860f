"""What `quantumedge secrets init` and `issue-secret-id` do in Vault: engines, policies, roles, secret-ids.

Least privilege, as the roles are made:
- one Vault role per service, and per venue for execution (execution / execution-testnet / execution-live);
  a venue role carries the base execution policy plus its venue's key policy, never both keys;
- AppRole secret-ids are short-lived and bounded: a TTL and a number of uses are required (0 = unbounded is
  refused), and secret-ids and tokens may be bound to CIDRs;
- secret-ids are only ever handed out response-wrapped: the output holds a single-use wrapping token, and
  the secret-id itself is seen only by the process that unwraps it (quantumedge.secrets.credentials).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions

from quantumedge.secrets import errors, paths
from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.settings import VaultSettings
from quantumedge.secrets.store import SecretStore
from quantumedge.shared.logs import register_secret

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
K8S_REVIEWER_JWT_ENV = "QE_VAULT_K8S_REVIEWER_JWT"


class CliError(Exception):
    """A usage problem or missing input; printed as one line, exit code 2."""


def vault_call(what: str, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
    try:
        return fn(*a, **kw)
    except Exception as exc:
        _kind, reason = errors.classify(exc, "")
        raise CliError(f"{what}: {reason}") from None


def bounded_duration(value: str, what: str) -> str:
    """A Vault duration ("90s", "10m", "1h", "3600") that is not 0: 0 means 'never expires' to Vault."""
    match = _DURATION.match(value.strip())
    if not match:
        raise CliError(f"{what}: {value!r} is not a duration like 300s, 10m or 1h")
    if int(match.group(1)) == 0:
        raise CliError(f"{what}: 0 means no expiry; give a bounded duration such as 1h")
    return value.strip()


def cidr_list(spec: str, what: str) -> list[str]:
    """Comma-separated CIDRs ("" = none); each must parse as an IP network."""
    import ipaddress

    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise CliError(f"{what}: {item!r} is not a CIDR such as 10.0.0.0/8 or 192.0.2.7/32") from None
    return out


@dataclass(frozen=True)
class AppRoleLimits:
    """How long and how often an AppRole secret-id may be used, from where, and what its tokens get."""

    token_ttl: str
    token_max_ttl: str
    secret_id_ttl: str
    secret_id_num_uses: int
    bound_cidrs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bounded_duration(self.secret_id_ttl, "--secret-id-ttl")
        if self.secret_id_num_uses < 1:
            raise CliError("--secret-id-num-uses: 0 means unlimited logins; give a bound such as 10")


def render_policy(text: str, vs: VaultSettings) -> str:
    """The repo's HCL files are written for mounts secret/, auth/approle/, auth/kubernetes/: rewrite them."""
    return (
        text.replace('"secret/', f'"{vs.kv_mount}/')
        .replace('"auth/approle/', f'"auth/{vs.approle_mount}/')
        .replace('"auth/kubernetes/', f'"auth/{vs.kubernetes_mount}/')
    )


def setup_roles(services: Sequence[str], venues: Iterable[str]) -> list[str]:
    """The Vault roles init makes: the services, plus execution's venue roles for the venues asked for."""
    roles = list(services)
    if "execution" in services:
        roles += [paths.vault_role("execution", venue) for venue in venues]
    return roles


def policy_files(policies_dir: Path, roles: Iterable[str]) -> dict[str, Path]:
    """Policy name -> HCL file for these roles and the operator; raises naming every missing file."""
    names = sorted({name for role in (*roles, "operator") for name in paths.policies_of(role)})
    files = {name: policies_dir / f"{name}.hcl" for name in names}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise CliError(f"policy files missing: {', '.join(missing)}")
    return files


def wait_kv2_ready(client: hvac.Client, mount: str, timeout_s: float = 30.0) -> None:
    """A fresh kv-v2 mount refuses writes ("Upgrading from non-versioned to versioned data") for a moment:
    wait until its configuration reads, so the first write after enabling it does not fail."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.secrets.kv.v2.read_configuration(mount_point=mount)
            client.secrets.kv.v2.list_secrets(path="", mount_point=mount)
            return
        except hvac.exceptions.InvalidPath:
            return  # an empty mount lists nothing, and says so only once it is ready
        except hvac.exceptions.VaultError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def ensure_kv2(client: hvac.Client, mount: str, out: list[str]) -> None:
    mounts = vault_call("list secret engines", client.sys.list_mounted_secrets_engines)
    mounts = mounts.get("data", mounts)
    entry = mounts.get(f"{mount}/")
    if entry is None:
        vault_call(
            f"enable kv-v2 at {mount}", client.sys.enable_secrets_engine, "kv", path=mount, options={"version": "2"}
        )
        vault_call(f"wait for kv-v2 at {mount}", wait_kv2_ready, client, mount)
        out.append(f"enabled kv-v2 at {mount}/")
    elif entry.get("type") != "kv":
        raise CliError(f"mount {mount}/ exists with type {entry.get('type')!r}, not kv")
    elif (entry.get("options") or {}).get("version") != "2":
        vault_call(f"upgrade {mount} to kv-v2", client.sys.tune_mount_configuration, mount, options={"version": "2"})
        out.append(f"upgraded {mount}/ to kv-v2")
    else:
        out.append(f"kv-v2 at {mount}/ already enabled")


def ensure_auth(client: hvac.Client, method: str, mount: str, out: list[str]) -> None:
    methods = vault_call("list auth methods", client.sys.list_auth_methods)
    methods = methods.get("data", methods)
    entry = methods.get(f"{mount}/")
    if entry is None:
        vault_call(f"enable {method} auth", client.sys.enable_auth_method, method, path=mount)
        out.append(f"enabled {method} auth at auth/{mount}/")
    elif entry.get("type") != method:
        raise CliError(f"auth mount {mount}/ exists with type {entry.get('type')!r}, not {method}")
    else:
        out.append(f"{method} auth at auth/{mount}/ already enabled")


def write_policies(client: hvac.Client, vs: VaultSettings, files: dict[str, Path], out: list[str]) -> None:
    for name, file in files.items():
        policy = vs.policy_name(name)
        vault_call(
            f"write policy {policy}", client.sys.create_or_update_policy, policy, render_policy(file.read_text(), vs)
        )
        out.append(f"policy {policy} <- {file.name}")


def role_policies(vs: VaultSettings, role: str) -> list[str]:
    return [vs.policy_name(name) for name in paths.policies_of(role)]


def write_approle(client: hvac.Client, vs: VaultSettings, role: str, limits: AppRoleLimits) -> str:
    """Create or update one AppRole role with bounded secret-ids; returns its role-id (not a secret)."""
    cidrs = list(limits.bound_cidrs)
    vault_call(
        f"approle role {role}",
        client.auth.approle.create_or_update_approle,
        role,
        token_policies=role_policies(vs, role),
        token_ttl=limits.token_ttl,
        token_max_ttl=limits.token_max_ttl,
        secret_id_ttl=limits.secret_id_ttl,
        secret_id_num_uses=limits.secret_id_num_uses,
        # An empty list clears a binding an earlier init set; None would leave it in place.
        secret_id_bound_cidrs=cidrs,
        token_bound_cidrs=cidrs,
        mount_point=vs.approle_mount,
    )
    resp = vault_call(f"role-id of {role}", client.auth.approle.read_role_id, role, mount_point=vs.approle_mount)
    return str(resp["data"]["role_id"])


def issue_wrapped_secret_id(
    client: hvac.Client, vs: VaultSettings, role: str, wrap_ttl: str, cidrs: Sequence[str] = ()
) -> tuple[str, str]:
    """(role-id, wrapping token) for a new secret-id of `role`. The secret-id itself is never seen here."""
    wrap_ttl = bounded_duration(wrap_ttl, "--wrap-ttl")
    role_id = vault_call(f"role-id of {role}", client.auth.approle.read_role_id, role, mount_point=vs.approle_mount)
    resp = vault_call(
        f"secret-id of {role}",
        client.auth.approle.generate_secret_id,
        role,
        cidr_list=list(cidrs) or None,
        mount_point=vs.approle_mount,
        wrap_ttl=wrap_ttl,
    )
    wrap = (resp or {}).get("wrap_info") or {}
    token = str(wrap.get("token") or "")
    if not token or (resp or {}).get("data"):
        raise CliError(f"secret-id of {role}: Vault did not answer with a wrapped response")
    register_secret(token)
    return str(role_id["data"]["role_id"]), token


def wrapped_line(role: str, role_id: str, token: str, wrap_ttl: str) -> str:
    return (
        f"approle {role}: role_id {role_id}, wrapped secret_id {token} (single use, unwrap within {wrap_ttl}: "
        "hand it to the service as QE_VAULT__APPROLE_SECRET_ID_WRAPPED or ..._WRAPPED_FILE)"
    )


def write_kubernetes_role(
    client: hvac.Client,
    vs: VaultSettings,
    role: str,
    *,
    account: str,
    namespaces: list[str],
    token_ttl: str,
    token_max_ttl: str,
    audience: str | None,
) -> None:
    vault_call(
        f"kubernetes role {role}",
        client.auth.kubernetes.create_role,
        role,
        bound_service_account_names=[account],
        bound_service_account_namespaces=namespaces,
        policies=role_policies(vs, role),
        ttl=token_ttl,
        max_ttl=token_max_ttl,
        audience=audience,
        mount_point=vs.kubernetes_mount,
    )


# ---- init's steps, from the parsed command line ------------------------------------------------------------


def approle_limits(args: argparse.Namespace, role: str) -> AppRoleLimits:
    operator = role == "operator"
    return AppRoleLimits(
        token_ttl=args.operator_token_ttl if operator else args.token_ttl,
        token_max_ttl=args.operator_token_ttl if operator else args.token_max_ttl,
        secret_id_ttl=args.secret_id_ttl,
        secret_id_num_uses=args.secret_id_num_uses,
        bound_cidrs=tuple(
            cidr_list(args.operator_bound_cidrs, "--operator-bound-cidrs")
            if operator
            else cidr_list(args.bound_cidrs, "--bound-cidrs")
        ),
    )


def init_approle(client: hvac.Client, vs: VaultSettings, args: argparse.Namespace, roles: list[str]) -> list[str]:
    out: list[str] = []
    ensure_auth(client, "approle", vs.approle_mount, out)
    limits = {role: approle_limits(args, role) for role in (*roles, "operator")}  # validate all before writing
    for role, limit in limits.items():
        role_id = write_approle(client, vs, role, limit)
        binding = f", bound to {','.join(limit.bound_cidrs)}" if limit.bound_cidrs else ""
        out.append(
            f"approle role {role}: policies {','.join(role_policies(vs, role))}, role_id {role_id}, "
            f"secret-ids live {limit.secret_id_ttl} for {limit.secret_id_num_uses} logins{binding}"
        )
    if args.issue_secret_ids:
        for role in limits:
            role_id, token = issue_wrapped_secret_id(client, vs, role, args.wrap_ttl)
            out.append(wrapped_line(role, role_id, token, args.wrap_ttl))
    return out


def init_kubernetes(client: hvac.Client, vs: VaultSettings, args: argparse.Namespace, roles: list[str]) -> list[str]:
    out: list[str] = []
    ensure_auth(client, "kubernetes", vs.kubernetes_mount, out)
    ca_pem = Path(args.kubernetes_ca_file).read_text() if args.kubernetes_ca_file else None
    reviewer = os.environ.get(K8S_REVIEWER_JWT_ENV) or None
    if reviewer:
        register_secret(reviewer)
    vault_call(
        "configure kubernetes auth",
        client.auth.kubernetes.configure,
        kubernetes_host=args.kubernetes_host,
        kubernetes_ca_cert=ca_pem,
        token_reviewer_jwt=reviewer,
        disable_local_ca_jwt=args.kubernetes_disable_local_ca_jwt,
        mount_point=vs.kubernetes_mount,
    )
    namespaces = [n for n in args.kubernetes_namespace.split(",") if n]
    for role in roles:
        account = args.kubernetes_service_account.format(service=paths.service_of(role))
        write_kubernetes_role(
            client,
            vs,
            role,
            account=account,
            namespaces=namespaces,
            token_ttl=args.token_ttl,
            token_max_ttl=args.token_max_ttl,
            audience=args.kubernetes_audience or None,
        )
        out.append(f"kubernetes role {role}: service account {','.join(namespaces)}/{account}")
    return out


def execution_venues(spec: str) -> list[str]:
    venues = [v.strip() for v in spec.split(",") if v.strip()]
    unknown = [v for v in venues if v not in paths.KEYED_VENUES]
    if unknown:
        raise CliError(
            f"--execution-venues: unknown venue(s) {', '.join(unknown)}; known: {', '.join(paths.KEYED_VENUES)}"
        )
    return venues


def admin_client(vs: VaultSettings) -> hvac.Client:
    """An operator-role client for the admin commands (init, rotate, issue-secret-id); CliError when login fails."""
    store = SecretStore(vs, "operator")
    try:
        store.login()
    except SecretUnavailable as exc:
        raise CliError(f"cannot log in to vault: {exc.reason}") from None
    return store.client


def merge_secret(client: hvac.Client, vs: VaultSettings, path: str, values: dict[str, str]) -> int:
    """Merge `values` into the secret at `path` (creating it); the new version."""
    kv = client.secrets.kv.v2
    try:
        # KV v2's server-side PATCH needs only the "patch" capability; hvac's kv.patch() reads the values first.
        resp = client.adapter.request(
            "patch",
            f"/v1/{vs.kv_mount}/data/{path}",
            json={"data": values},
            headers={"Content-Type": "application/merge-patch+json"},
        )
    except hvac.exceptions.InvalidPath:  # nothing there yet: patch needs an existing secret
        resp = vault_call(f"write {path}", kv.create_or_update_secret, path, values, mount_point=vs.kv_mount)
    except Exception as exc:
        raise CliError(f"write {path}: {errors.classify(exc, vs.addr)[1]}") from None
    return int(resp["data"]["version"])
