"""`quantumedge secrets {init,check,rotate,...}` — non-interactive Vault bootstrap, access check and rotation.

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
from pathlib import Path
from typing import Any

from quantumedge.secrets import paths
from quantumedge.secrets.access_check import CheckResult, check_role
from quantumedge.secrets.bootstrap import (
    K8S_REVIEWER_JWT_ENV,
    CliError,
    admin_client,
    approle_limits,
    bounded_duration,
    cidr_list,
    ensure_kv2,
    execution_venues,
    init_approle,
    init_kubernetes,
    issue_wrapped_secret_id,
    merge_secret,
    policy_files,
    render_policy,
    setup_roles,
    vault_call,
    wrapped_line,
    write_policies,
)
from quantumedge.secrets.masking import register_secret
from quantumedge.secrets.settings import VaultSettings
from quantumedge.shared.config import REPO_ROOT

__all__ = ["DEFAULT_POLICIES_DIR", "CheckResult", "CliError", "check_role", "render_policy", "secrets_main"]

DEFAULT_POLICIES_DIR = REPO_ROOT / "deploy" / "vault" / "policies"
OPERATOR_TOKEN_ENV = "QE_OPERATOR_TOKEN"  # noqa: S105 - the name of an env var


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
    from quantumedge.settings import load_settings  # late: keeps `secrets --help` light

    base = load_settings(args.config).vault
    update: dict[str, Any] = {}
    for name in ("addr", "kv_mount", "approle_mount", "kubernetes_mount", "policy_prefix"):
        value = getattr(args, name, None)
        if value:
            update[name] = value
    return VaultSettings.model_validate(base.model_dump() | update)


# ---- init -------------------------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    vs = _vault_settings(args)
    methods = sorted(set(args.auth or ["approle"]))
    roles = setup_roles(_roles(args.roles), execution_venues(args.execution_venues))
    if "kubernetes" in methods and not args.kubernetes_host:
        raise CliError("--auth kubernetes needs --kubernetes-host (the API server Vault sends TokenReviews to)")
    if "approle" in methods:
        for role in (*roles, "operator"):
            approle_limits(args, role)  # refuse unbounded secret-ids before anything is written
    if args.issue_secret_ids:
        bounded_duration(args.wrap_ttl, "--wrap-ttl")
        if "approle" not in methods:
            raise CliError("--issue-secret-ids needs --auth approle")
    token = None if args.no_operator_token else _operator_token(args.operator_token_stdin)
    files = policy_files(Path(args.policies_dir), roles)

    client = admin_client(vs)
    out: list[str] = []
    ensure_kv2(client, vs.kv_mount, out)
    write_policies(client, vs, files, out)
    if "approle" in methods:
        out += init_approle(client, vs, args, roles)
    if "kubernetes" in methods:
        out += init_kubernetes(client, vs, args, roles)
    if token is not None:
        version = merge_secret(client, vs, vs.operator_token_path, {args.operator_name: token_sha256(token)})
        out.append(f"operator token sha256 for {args.operator_name!r} -> {vs.operator_token_path} (version {version})")
    print("\n".join(out))
    return 0


def cmd_issue_secret_id(args: argparse.Namespace) -> int:
    """A new wrapped secret-id per role (before a start, or to replace one that expired or leaked)."""
    vs = _vault_settings(args)
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    unknown = [r for r in roles if r not in paths.ALL_ROLES]
    if unknown or not roles:
        raise CliError(
            f"--roles: unknown role(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(paths.ALL_ROLES)}"
        )
    cidrs = cidr_list(args.cidrs, "--cidrs")
    bounded_duration(args.wrap_ttl, "--wrap-ttl")
    client = admin_client(vs)
    for role in roles:
        role_id, token = issue_wrapped_secret_id(client, vs, role, args.wrap_ttl, cidrs)
        print(wrapped_line(role, role_id, token, args.wrap_ttl))
    return 0


# ---- rotate -----------------------------------------------------------------------------------------------


def cmd_rotate(args: argparse.Namespace) -> int:
    vs = _vault_settings(args)
    if args.signing_key or args.retire_signing_key:
        from quantumedge.secrets.signing_cli import rotate_signing_key

        return rotate_signing_key(args, vs)
    if args.operator_token:
        if args.path or args.from_env or args.stdin_json or args.stdin_key:
            raise CliError("--operator-token takes no PATH and no --from-env/--stdin-json/--stdin-key")
        token = _operator_token(args.operator_token_stdin)
        client = admin_client(vs)
        version = merge_secret(client, vs, vs.operator_token_path, {args.operator_name: token_sha256(token)})
        print(f"wrote operator token sha256 for {args.operator_name!r} to {vs.operator_token_path} version {version}")
        return 0
    if not args.path:
        raise CliError("rotate needs a PATH (e.g. quantumedge/exchange/binance-testnet) or --operator-token")
    values = _secret_from_inputs(args)
    client = admin_client(vs)
    if args.merge:
        version = merge_secret(client, vs, args.path, values)
    else:
        resp = vault_call(
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


def cmd_check(args: argparse.Namespace) -> int:
    vs = _vault_settings(args)
    client = admin_client(vs)
    venue = args.venue
    roles = [paths.vault_role(service, venue) for service in _roles(args.roles)]
    results = [r for role in roles for r in check_role(client, vs, role, venue)]
    for r in results:
        print(r.line())
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)}/{len(results)} checks passed" + (" — FAILED" if failed else ""))
    return 1 if failed else 0


def _signing_keygen(args: argparse.Namespace) -> int:
    from quantumedge.secrets.signing_cli import cmd_signing_keygen

    return cmd_signing_keygen(args)


# ---- entry ------------------------------------------------------------------------------------------------


def _roles(spec: str | None) -> list[str]:
    roles = [r.strip() for r in (spec or ",".join(paths.SERVICE_ROLES)).split(",") if r.strip()]
    unknown = [r for r in roles if r not in paths.SERVICE_ROLES]
    if unknown:
        raise CliError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(paths.SERVICE_ROLES)}")
    return roles


def add_secret_id_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret-id-ttl", default="1h", help="AppRole secret-id TTL (default 1h; 0 is refused)")
    parser.add_argument(
        "--secret-id-num-uses", type=int, default=10, help="logins one secret-id allows (default 10; 0 is refused)"
    )
    parser.add_argument(
        "--bound-cidrs",
        default="",
        help="CIDRs the service roles' secret-ids and tokens may be used from, comma separated (default: any)",
    )
    parser.add_argument("--operator-bound-cidrs", default="", help="the same for the operator role (default: any)")


def build_parser() -> argparse.ArgumentParser:
    # One builder per subcommand: each reads as that command's options, in the order `--help` lists them.
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="quantumedge secrets",
        description="Vault / OpenBao bootstrap, access check and rotation. Authenticates with QE_VAULT_ADDR + "
        "QE_VAULT_TOKEN (or vault.auth_method settings). Key material only from env vars or stdin.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_init(sub, common)
    _add_check(sub, common)
    _add_issue_secret_id(sub, common)
    _add_rotate(sub, common)
    _add_signing_keygen(sub)
    return parser


def _common_options() -> argparse.ArgumentParser:
    """Where Vault is and how it is laid out: shared by every subcommand that talks to Vault."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="YAML settings file (else QE_CONFIG_FILE / QE_ env vars)")
    common.add_argument("--addr", help="Vault address (default QE_VAULT_ADDR)")
    common.add_argument("--kv-mount", dest="kv_mount", help="KV v2 mount (default vault.kv_mount = secret)")
    common.add_argument("--approle-mount", dest="approle_mount", help="AppRole auth mount (default approle)")
    common.add_argument("--kubernetes-mount", dest="kubernetes_mount", help="Kubernetes auth mount")
    common.add_argument("--policy-prefix", dest="policy_prefix", help="policy name prefix (default quantumedge-)")
    return common


# What `add_subparsers()` returns (argparse keeps the class private; ops/commands.py types it the same way).
_Subparsers = argparse._SubParsersAction


def _add_init(sub: _Subparsers, common: argparse.ArgumentParser) -> None:
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
    init.add_argument(
        "--execution-venues",
        default="testnet",
        help="venues execution gets a Vault role for (execution-<venue>, reading only that venue's key); "
        "comma separated, default testnet: live only when asked for",
    )
    init.add_argument("--policies-dir", default=str(DEFAULT_POLICIES_DIR), help="directory of <role>.hcl files")
    init.add_argument("--token-ttl", default="1h", help="service token TTL (default 1h)")
    init.add_argument("--token-max-ttl", default="24h", help="service token max TTL; re-login after (default 24h)")
    init.add_argument("--operator-token-ttl", default="1h", help="operator AppRole token TTL (default 1h)")
    add_secret_id_limits(init)
    init.add_argument(
        "--issue-secret-ids",
        action="store_true",
        help="also issue one secret-id per AppRole role, response-wrapped (a single-use wrapping token is printed)",
    )
    init.add_argument("--wrap-ttl", default="10m", help="how long a wrapping token can be unwrapped (default 10m)")
    _add_init_kubernetes(init)
    init.add_argument("--operator-token-stdin", action="store_true", help="read the operator token from stdin")
    init.add_argument("--operator-name", default="operator", help="subject recorded for this token (default operator)")
    init.add_argument("--no-operator-token", action="store_true", help="do not store an operator token hash")
    init.set_defaults(func=cmd_init)


def _add_init_kubernetes(init: argparse.ArgumentParser) -> None:
    """init's Kubernetes auth options (TokenReview against the API server, one service account per role)."""
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


def _add_check(sub: _Subparsers, common: argparse.ArgumentParser) -> None:
    check = sub.add_parser(
        "check",
        parents=[common],
        help="log in as each service role (AppRole) and report per path OK or the reason (needs an admin token)",
        description="Mints a single-use secret-id per role (so it needs an admin token: the operator policy may "
        "not) and tries every path the role must, may and must not read. Execution is checked as the role of "
        "--venue (execution, execution-testnet or execution-live).",
    )
    check.add_argument("--roles", help="service roles, comma separated (default all four)")
    check.add_argument(
        "--venue",
        choices=["paper", "testnet", "live"],
        default="testnet",
        help="venue whose exchange key execution must be able to read (default testnet)",
    )
    check.set_defaults(func=cmd_check)


def _add_issue_secret_id(sub: _Subparsers, common: argparse.ArgumentParser) -> None:
    issue = sub.add_parser(
        "issue-secret-id",
        parents=[common],
        help="issue new AppRole secret-ids, response-wrapped (needs an admin token)",
        description="Prints each role's role_id and a single-use wrapping token of a new secret-id; the service "
        "unwraps it at login (QE_VAULT__APPROLE_SECRET_ID_WRAPPED or ..._WRAPPED_FILE).",
    )
    issue.add_argument("--roles", required=True, help=f"Vault roles, comma separated ({', '.join(paths.ALL_ROLES)})")
    issue.add_argument("--wrap-ttl", default="10m", help="how long the wrapping token can be unwrapped (default 10m)")
    issue.add_argument("--cidrs", default="", help="CIDRs this secret-id may log in from (within the role's binding)")
    issue.set_defaults(func=cmd_issue_secret_id)


def _add_rotate(sub: _Subparsers, common: argparse.ArgumentParser) -> None:
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
    rotate.add_argument(
        "--signing-key",
        action="store_true",
        help=f"new Ed25519 signing key for risk ({paths.SIGNING_PUBLIC}, {paths.SIGNING_PRIVATE}); the old stays valid",
    )
    rotate.add_argument("--key-id", help="with --signing-key: the new key's id (default ed25519-<random>)")
    rotate.add_argument("--retire-signing-key", metavar="KEY_ID", help="refuse records signed with KEY_ID from now on")
    rotate.set_defaults(func=cmd_rotate)


def _add_signing_keygen(sub: _Subparsers) -> None:
    keygen = sub.add_parser(
        "signing-keygen",
        help="print a signing key pair as QE_SIGNING__* exports (local runs without Vault only)",
        description='For `eval "$(quantumedge secrets signing-keygen)"` before `quantumedge serve` on a laptop. '
        "In a deployment the key lives in Vault: use `rotate --signing-key`.",
    )
    keygen.set_defaults(func=_signing_keygen)


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
