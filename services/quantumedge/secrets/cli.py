"""`quantumedge secrets {init,check,rotate}` — non-interactive Vault bootstrap, access check and rotation.

Key material comes from environment variables or stdin, never from arguments (arguments end up in shell
history and `ps`). Nothing prompts: stdin must be a pipe, and a missing input is an error naming it.
The CLI authenticates with the `vault` settings (QE_VAULT_ADDR + QE_VAULT_TOKEN, or AppRole as "operator").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions

from quantumedge.secrets import errors, paths
from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.masking import register_secret
from quantumedge.secrets.settings import VaultSettings
from quantumedge.secrets.store import SecretStore

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_POLICIES_DIR = REPO_ROOT / "deploy" / "vault" / "policies"
OPERATOR_TOKEN_ENV = "QE_OPERATOR_TOKEN"  # noqa: S105 - the name of an env var
K8S_REVIEWER_JWT_ENV = "QE_VAULT_K8S_REVIEWER_JWT"


class CliError(Exception):
    """A usage problem or missing input; printed as one line, exit code 2."""


# ---- inputs -----------------------------------------------------------------------------------------------


def _read_stdin(what: str) -> str:
    stream = sys.stdin
    if stream is None or stream.closed or stream.isatty():
        raise CliError(f"{what}: stdin is not a pipe; pipe the value in (nothing here prompts)")
    text = stream.read().strip()
    if not text:
        raise CliError(f"{what}: stdin was empty")
    return text


def _operator_token(use_stdin: bool) -> str:
    token = _read_stdin("operator token") if use_stdin else os.environ.get(OPERATOR_TOKEN_ENV, "")
    if not token:
        raise CliError(
            f"operator token missing: set {OPERATOR_TOKEN_ENV} or pipe it with --operator-token-stdin "
            "(or pass --no-operator-token to skip)"
        )
    if len(token) < 24:
        raise CliError("operator token too short: use at least 24 characters (e.g. `openssl rand -hex 32`)")
    register_secret(token)
    return token


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _secret_from_inputs(args: argparse.Namespace) -> dict[str, str]:
    values: dict[str, str] = {}
    for spec in args.from_env or []:
        key, sep, env = spec.partition("=")
        if not sep or not key or not env:
            raise CliError(f"--from-env wants KEY=ENV_VAR_NAME, got {spec!r}")
        value = os.environ.get(env)
        if not value:
            raise CliError(f"--from-env {key}={env}: environment variable {env} is not set or empty")
        values[key] = value
    if args.stdin_json:
        try:
            data = json.loads(_read_stdin("--stdin-json"))
        except json.JSONDecodeError as exc:
            raise CliError(f"--stdin-json: not a JSON object ({exc.msg} at position {exc.pos})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise CliError("--stdin-json: want a JSON object of string values")
        values.update(data)
    if args.stdin_key:
        values[args.stdin_key] = _read_stdin(f"--stdin-key {args.stdin_key}")
    if not values:
        raise CliError("nothing to write: give --from-env KEY=ENV_VAR, --stdin-json or --stdin-key KEY")
    for value in values.values():
        register_secret(value)
    return values


# ---- vault access -----------------------------------------------------------------------------------------


def _vault_settings(args: argparse.Namespace) -> VaultSettings:
    from quantumedge.shared.config import load_settings  # late: keeps `secrets --help` light

    base = load_settings(args.config).vault
    update: dict[str, Any] = {}
    for name in ("addr", "kv_mount", "approle_mount", "kubernetes_mount", "policy_prefix"):
        value = getattr(args, name, None)
        if value:
            update[name] = value
    return VaultSettings.model_validate(base.model_dump() | update)


def _admin_client(vs: VaultSettings) -> hvac.Client:
    store = SecretStore(vs, "operator")
    try:
        store.login()
    except SecretUnavailable as exc:
        raise CliError(f"cannot log in to vault: {exc.reason}") from None
    return store.client


def _vault_call(what: str, fn: Any, *a: Any, **kw: Any) -> Any:
    try:
        return fn(*a, **kw)
    except Exception as exc:
        _kind, reason = errors.classify(exc, "")
        raise CliError(f"{what}: {reason}") from None


# ---- init -------------------------------------------------------------------------------------------------


def render_policy(text: str, vs: VaultSettings) -> str:
    """The repo's HCL files are written for mounts secret/, auth/approle/, auth/kubernetes/: rewrite them."""
    return (
        text.replace('"secret/', f'"{vs.kv_mount}/')
        .replace('"auth/approle/', f'"auth/{vs.approle_mount}/')
        .replace('"auth/kubernetes/', f'"auth/{vs.kubernetes_mount}/')
    )


def _ensure_kv2(client: hvac.Client, mount: str, out: list[str]) -> None:
    mounts = _vault_call("list secret engines", client.sys.list_mounted_secrets_engines)
    mounts = mounts.get("data", mounts)
    entry = mounts.get(f"{mount}/")
    if entry is None:
        _vault_call(
            f"enable kv-v2 at {mount}", client.sys.enable_secrets_engine, "kv", path=mount, options={"version": "2"}
        )
        out.append(f"enabled kv-v2 at {mount}/")
    elif entry.get("type") != "kv":
        raise CliError(f"mount {mount}/ exists with type {entry.get('type')!r}, not kv")
    elif (entry.get("options") or {}).get("version") != "2":
        _vault_call(f"upgrade {mount} to kv-v2", client.sys.tune_mount_configuration, mount, options={"version": "2"})
        out.append(f"upgraded {mount}/ to kv-v2")
    else:
        out.append(f"kv-v2 at {mount}/ already enabled")


def _ensure_auth(client: hvac.Client, method: str, mount: str, out: list[str]) -> None:
    methods = _vault_call("list auth methods", client.sys.list_auth_methods)
    methods = methods.get("data", methods)
    entry = methods.get(f"{mount}/")
    if entry is None:
        _vault_call(f"enable {method} auth", client.sys.enable_auth_method, method, path=mount)
        out.append(f"enabled {method} auth at auth/{mount}/")
    elif entry.get("type") != method:
        raise CliError(f"auth mount {mount}/ exists with type {entry.get('type')!r}, not {method}")
    else:
        out.append(f"{method} auth at auth/{mount}/ already enabled")


def cmd_init(args: argparse.Namespace) -> int:
    vs = _vault_settings(args)
    methods = sorted(set(args.auth or ["approle"]))
    roles = _roles(args.roles)
    if "kubernetes" in methods and not args.kubernetes_host:
        raise CliError("--auth kubernetes needs --kubernetes-host (the API server Vault sends TokenReviews to)")
    token = None if args.no_operator_token else _operator_token(args.operator_token_stdin)
    policies_dir = Path(args.policies_dir)
    policy_files = {role: policies_dir / f"{role}.hcl" for role in (*roles, "operator")}
    missing = [str(p) for p in policy_files.values() if not p.is_file()]
    if missing:
        raise CliError(f"policy files missing: {', '.join(missing)}")

    client = _admin_client(vs)
    out: list[str] = []
    _ensure_kv2(client, vs.kv_mount, out)
    for role, file in policy_files.items():
        name = vs.policy_name(role)
        policy = render_policy(file.read_text(), vs)
        _vault_call(f"write policy {name}", client.sys.create_or_update_policy, name, policy)
        out.append(f"policy {name} <- {file.name}")

    if "approle" in methods:
        _ensure_auth(client, "approle", vs.approle_mount, out)
        for role in (*roles, "operator"):
            operator = role == "operator"
            ttl = args.operator_token_ttl if operator else args.token_ttl
            max_ttl = args.operator_token_ttl if operator else args.token_max_ttl
            _vault_call(
                f"approle role {role}",
                client.auth.approle.create_or_update_approle,
                role,
                token_policies=[vs.policy_name(role)],
                token_ttl=ttl,
                token_max_ttl=max_ttl,
                secret_id_ttl=args.secret_id_ttl,
                secret_id_num_uses=0,
                mount_point=vs.approle_mount,
            )
            role_id = _vault_call(
                f"role-id of {role}", client.auth.approle.read_role_id, role, mount_point=vs.approle_mount
            )["data"]["role_id"]
            out.append(f"approle role {role}: policy {vs.policy_name(role)}, role_id {role_id}")

    if "kubernetes" in methods:
        _ensure_auth(client, "kubernetes", vs.kubernetes_mount, out)
        ca_pem = Path(args.kubernetes_ca_file).read_text() if args.kubernetes_ca_file else None
        reviewer = os.environ.get(K8S_REVIEWER_JWT_ENV) or None
        if reviewer:
            register_secret(reviewer)
        _vault_call(
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
            account = args.kubernetes_service_account.format(service=role)
            _vault_call(
                f"kubernetes role {role}",
                client.auth.kubernetes.create_role,
                role,
                bound_service_account_names=[account],
                bound_service_account_namespaces=namespaces,
                policies=[vs.policy_name(role)],
                ttl=args.token_ttl,
                max_ttl=args.token_max_ttl,
                audience=args.kubernetes_audience or None,
                mount_point=vs.kubernetes_mount,
            )
            out.append(f"kubernetes role {role}: service account {','.join(namespaces)}/{account}")

    if token is not None:
        version = _merge_secret(client, vs, vs.operator_token_path, {args.operator_name: token_sha256(token)})
        out.append(f"operator token sha256 for {args.operator_name!r} -> {vs.operator_token_path} (version {version})")
    print("\n".join(out))
    return 0


# ---- rotate -----------------------------------------------------------------------------------------------


def _merge_secret(client: hvac.Client, vs: VaultSettings, path: str, values: dict[str, str]) -> int:
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
        resp = _vault_call(f"write {path}", kv.create_or_update_secret, path, values, mount_point=vs.kv_mount)
    except Exception as exc:
        raise CliError(f"write {path}: {errors.classify(exc, vs.addr)[1]}") from None
    return int(resp["data"]["version"])


def cmd_rotate(args: argparse.Namespace) -> int:
    vs = _vault_settings(args)
    if args.operator_token:
        if args.path or args.from_env or args.stdin_json or args.stdin_key:
            raise CliError("--operator-token takes no PATH and no --from-env/--stdin-json/--stdin-key")
        token = _operator_token(args.operator_token_stdin)
        client = _admin_client(vs)
        version = _merge_secret(client, vs, vs.operator_token_path, {args.operator_name: token_sha256(token)})
        print(f"wrote operator token sha256 for {args.operator_name!r} to {vs.operator_token_path} version {version}")
        return 0
    if not args.path:
        raise CliError("rotate needs a PATH (e.g. quantumedge/exchange/binance-testnet) or --operator-token")
    values = _secret_from_inputs(args)
    client = _admin_client(vs)
    if args.merge:
        version = _merge_secret(client, vs, args.path, values)
    else:
        resp = _vault_call(
            f"write {args.path}",
            client.secrets.kv.v2.create_or_update_secret,
            args.path,
            values,
            mount_point=vs.kv_mount,
        )
        version = int(resp["data"]["version"])
    print(f"wrote {args.path} version {version} (keys: {', '.join(sorted(values))})")
    return 0


# ---- check ------------------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    role: str
    path: str
    expect: str  # "read" | "optional" | "denied"
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.role:<10} {self.expect:<8} {self.path}: {self.detail}"


def check_role(client: hvac.Client, vs: VaultSettings, role: str, venue: str) -> list[CheckResult]:
    """Log in as `role` with a single-use AppRole secret-id and try what it must and must not read."""
    required = set(paths.required_paths(role, venue))
    if role in paths.OPERATOR_HASH_READERS and not vs.operator_token_sha256:
        required.add(vs.operator_token_path)
    readable = [*paths.readable_paths(role), *([vs.operator_token_path] if role in paths.OPERATOR_HASH_READERS else [])]
    mount = vs.approle_mount
    try:
        role_id = client.auth.approle.read_role_id(role, mount_point=mount)["data"]["role_id"]
        minted = client.adapter.post(f"/v1/auth/{mount}/role/{role}/secret-id", json={"num_uses": 1, "ttl": "300s"})
    except Exception as exc:
        reason = errors.classify(exc, vs.addr)[1]
        return [CheckResult(role, f"auth/{mount}/role/{role}", "login", False, f"cannot mint a secret-id: {reason}")]
    secret_id = minted["data"]["secret_id"]
    register_secret(secret_id)
    role_vs = VaultSettings.model_validate(
        vs.model_dump()
        | {"auth_method": "approle", "role": role, "approle_role_id": role_id, "approle_secret_id": secret_id}
    )
    store = SecretStore(role_vs, role)
    try:
        store.login()
    except SecretUnavailable as exc:
        return [CheckResult(role, store.login_path, "login", False, exc.reason)]
    results: list[CheckResult] = []
    try:
        for path in readable:
            expect = "read" if path in required else "optional"
            try:
                store.read(path)
                results.append(CheckResult(role, path, expect, True, "readable"))
            except SecretUnavailable as exc:
                ok = expect == "optional" and exc.kind == errors.NOT_FOUND
                detail = "allowed, not written yet" if ok else exc.reason
                results.append(CheckResult(role, path, expect, ok, detail))
        for path in paths.forbidden_paths(role):
            try:
                store.read(path)
                results.append(CheckResult(role, path, "denied", False, "LEAK: readable but must not be"))
            except SecretUnavailable as exc:
                ok = exc.kind == errors.PERMISSION_DENIED
                results.append(CheckResult(role, path, "denied", ok, "denied" if ok else exc.reason))
    finally:
        store.close()
    return results


def cmd_check(args: argparse.Namespace) -> int:
    vs = _vault_settings(args)
    client = _admin_client(vs)
    venue = args.venue
    results = [r for role in _roles(args.roles) for r in check_role(client, vs, role, venue)]
    for r in results:
        print(r.line())
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)}/{len(results)} checks passed" + (" — FAILED" if failed else ""))
    return 1 if failed else 0


# ---- entry ------------------------------------------------------------------------------------------------


def _roles(spec: str | None) -> list[str]:
    roles = [r.strip() for r in (spec or ",".join(paths.SERVICE_ROLES)).split(",") if r.strip()]
    unknown = [r for r in roles if r not in paths.SERVICE_ROLES]
    if unknown:
        raise CliError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(paths.SERVICE_ROLES)}")
    return roles


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="YAML settings file (else QE_CONFIG_FILE / QE_ env vars)")
    common.add_argument("--addr", help="Vault address (default QE_VAULT_ADDR)")
    common.add_argument("--kv-mount", dest="kv_mount", help="KV v2 mount (default vault.kv_mount = secret)")
    common.add_argument("--approle-mount", dest="approle_mount", help="AppRole auth mount (default approle)")
    common.add_argument("--kubernetes-mount", dest="kubernetes_mount", help="Kubernetes auth mount")
    common.add_argument("--policy-prefix", dest="policy_prefix", help="policy name prefix (default quantumedge-)")

    parser = argparse.ArgumentParser(
        prog="quantumedge secrets",
        description="Vault / OpenBao bootstrap, access check and rotation. Authenticates with QE_VAULT_ADDR + "
        "QE_VAULT_TOKEN (or vault.auth_method settings). Key material only from env vars or stdin.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser(
        "init",
        parents=[common],
        help="enable KV v2 and auth methods, write policies and roles, store the operator token hash",
        description="Idempotent bootstrap; needs an admin token. The operator token comes from "
        f"{OPERATOR_TOKEN_ENV} or stdin (--operator-token-stdin); only its sha256 is stored.",
    )
    init.add_argument(
        "--auth", action="append", choices=["approle", "kubernetes"], help="auth method(s) to set up (default approle)"
    )
    init.add_argument("--roles", help="service roles, comma separated (default all four)")
    init.add_argument("--policies-dir", default=str(DEFAULT_POLICIES_DIR), help="directory of <role>.hcl files")
    init.add_argument("--token-ttl", default="1h", help="service token TTL (default 1h)")
    init.add_argument("--token-max-ttl", default="24h", help="service token max TTL; re-login after (default 24h)")
    init.add_argument("--operator-token-ttl", default="1h", help="operator AppRole token TTL (default 1h)")
    init.add_argument("--secret-id-ttl", default="0", help="AppRole secret-id TTL (default 0 = until destroyed)")
    init.add_argument("--kubernetes-host", help="API server URL for TokenReview (e.g. https://kubernetes.default.svc)")
    init.add_argument("--kubernetes-ca-file", help="PEM CA of the API server (public material)")
    init.add_argument("--kubernetes-namespace", default="quantumedge", help="allowed namespace(s), comma separated")
    init.add_argument(
        "--kubernetes-service-account",
        default="quantumedge-{service}",
        help="service account name pattern bound to each role (default quantumedge-{service})",
    )
    init.add_argument(
        "--kubernetes-audience", help="audience the service-account JWT must carry (chart: vault.tokenAudience)"
    )
    init.add_argument(
        "--kubernetes-disable-local-ca-jwt",
        action="store_true",
        help="do not use Vault's own pod service account for TokenReview (reviewer JWT from "
        f"{K8S_REVIEWER_JWT_ENV}, else the client's JWT)",
    )
    init.add_argument("--operator-token-stdin", action="store_true", help="read the operator token from stdin")
    init.add_argument("--operator-name", default="operator", help="subject recorded for this token (default operator)")
    init.add_argument("--no-operator-token", action="store_true", help="do not store an operator token hash")
    init.set_defaults(func=cmd_init)

    check = sub.add_parser(
        "check",
        parents=[common],
        help="log in as each service role (AppRole) and report per path OK or the reason",
    )
    check.add_argument("--roles", help="service roles, comma separated (default all four)")
    check.add_argument(
        "--venue",
        choices=["paper", "testnet", "live"],
        default="testnet",
        help="venue whose exchange key execution must be able to read (default testnet)",
    )
    check.set_defaults(func=cmd_check)

    rotate = sub.add_parser(
        "rotate",
        parents=[common],
        help="write a new version of a secret from env vars or stdin",
        description="Examples: QE_NEW_KEY=... QE_NEW_SECRET=... quantumedge secrets rotate "
        "quantumedge/exchange/binance-testnet --from-env api_key=QE_NEW_KEY --from-env api_secret=QE_NEW_SECRET; "
        "echo '{\"api_key\": ...}' | quantumedge secrets rotate PATH --stdin-json; "
        f"{OPERATOR_TOKEN_ENV}=... quantumedge secrets rotate --operator-token",
    )
    rotate.add_argument("path", nargs="?", help="path in the KV mount, e.g. quantumedge/exchange/binance-live")
    rotate.add_argument(
        "--from-env", action="append", metavar="KEY=ENV_VAR", help="take KEY's value from env var ENV_VAR (repeatable)"
    )
    rotate.add_argument("--stdin-json", action="store_true", help="read a JSON object of string values from stdin")
    rotate.add_argument("--stdin-key", metavar="KEY", help="read KEY's value from stdin")
    rotate.add_argument("--merge", action="store_true", help="keep keys not given (KV patch) instead of replacing")
    rotate.add_argument(
        "--operator-token", action="store_true", help=f"store the sha256 of {OPERATOR_TOKEN_ENV} (or stdin)"
    )
    rotate.add_argument("--operator-token-stdin", action="store_true", help="with --operator-token: read it from stdin")
    rotate.add_argument("--operator-name", default="operator", help="subject of the operator token (default operator)")
    rotate.set_defaults(func=cmd_rotate)
    return parser


def secrets_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `quantumedge secrets`; returns the exit code (0 ok, 1 check failed, 2 usage/input)."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"quantumedge secrets {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from quantumedge.shared.config import ConfigError

        if isinstance(exc, ConfigError):
            print(f"quantumedge secrets {args.command}: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(secrets_main())
