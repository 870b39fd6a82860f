"""Process plumbing shared by the local Kafka broker and the local OpenBao server.

Everything here has a timeout: a harness that hangs is worse than one that fails loudly.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"

_PR_SET_PDEATHSIG = 1
_OWNER_FILE = "owner.pid"


class HarnessError(RuntimeError):
    """A real component (Kafka, Vault) could not be fetched, started or stopped; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it; a small race with other processes remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_pair(host: str = "127.0.0.1", attempts: int = 50) -> int:
    """A port P such that P and P+1 are both free (OpenBao's dev server binds its cluster port at P+1)."""
    for _ in range(attempts):
        port = free_port(host)
        if port < 65535 and port_is_free(port + 1, host):
            return port
    raise HarnessError("could not find two adjacent free TCP ports on 127.0.0.1")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_is_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def tail(path: Path | None, lines: int = 40) -> str:
    """The last lines of a log file, for error messages ("" when there is none yet)."""
    if path is None or not path.exists():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        text = fh.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask Linux to SIGTERM the child when the parent
    # (the pytest process) dies, so a killed test run never leaves an orphaned broker behind.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str],
    *,
    output: Path | None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    detach: bool = False,
    discard_stdout: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a server process with stdout+stderr appended to `output` (or /dev/null).

    discard_stdout: only stderr goes to `output` (for servers that print secrets on stdout).
    detach=False: the child dies with this process (tests). detach=True: a new session that
    outlives this process (the `up` commands).
    """
    out = output.open("ab") if output is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if discard_stdout else out,
            stderr=out if discard_stdout else subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            # preexec_fn only calls prctl (no locks), so it is safe even with threads around.
            preexec_fn=None if detach else _die_with_parent,
        )
    except OSError as exc:
        raise HarnessError(f"could not execute {argv[0]}: {exc}") from exc
    finally:
        if output is not None:
            out.close()  # type: ignore[union-attr]


def wait_until(
    check: Callable[[], bool],
    *,
    timeout_s: float,
    interval_s: float = 0.2,
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Poll `check` until it returns True. `alive` returns a reason string when the process died.

    Raises TimeoutError or HarnessError(reason); the caller adds the component name and log tail.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if alive is not None and (reason := alive()) is not None:
            raise HarnessError(reason)
        if check():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not ready after {timeout_s:.0f} s")
        time.sleep(interval_s)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def terminate(pid: int, *, grace_s: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> bool:
    """SIGTERM, wait up to grace_s, then SIGKILL. Returns True when it had to kill."""
    if not pid_alive(pid):
        _reap(process)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(process)
        if not pid_alive(pid):
            return False
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and pid_alive(pid):
        _reap(process)
        time.sleep(0.05)
    _reap(process)
    return True


def _reap(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None:
        with contextlib.suppress(Exception):
            process.poll()


def exit_reason(process: subprocess.Popen[bytes]) -> str | None:
    """None while the process runs; otherwise a short description of how it ended."""
    code = process.poll()
    if code is None:
        return None
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"process exited on signal {signal.Signals(-code).name}"
    return f"process exited with code {code}"


def write_pidfile(path: Path, info: dict[str, Any]) -> None:
    """Write a pidfile atomically (JSON: pid, ports, dirs — never a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_pidfile(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def make_temp_dir(prefix: str) -> Path:
    """A fresh temp dir tagged with this process's pid, after removing such dirs whose owner has died
    (a killed test run cannot clean up after itself; the next one does)."""
    root = Path(tempfile.gettempdir())
    for old in root.glob(f"{prefix}*"):
        try:
            owner = int((old / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if not pid_alive(owner):
            shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / _OWNER_FILE).write_text(f"{os.getpid()}\n")
    return path
