#!/usr/bin/env python3
"""The project's own Docker engine: `dockerd` on a socket under .cache/docker, never the system's socket.

    python tools/docker_engine.py up       # start it (Debian's docker.io; installs it with apt when missing)
    python tools/docker_engine.py status
    python tools/docker_engine.py down     # stop it by its pid
    python tools/docker_engine.py host     # print the DOCKER_HOST value of a running engine (exit 1 when none)
    python tools/docker_engine.py ensure   # print the DOCKER_HOST to use: $DOCKER_HOST or the system's engine
                                           # when one answers, else this project's (started when needed)

It never changes the host's kernel settings or firewall: `--ip-forward=false` (dockerd would otherwise turn
on net.ipv4.ip_forward), `--iptables=false --ip6tables=false` (no NAT rules, no br_netfilter settings), so
containers reach each other on their own bridge and the host only through ports published on 127.0.0.1
(`--ip 127.0.0.1`). Builds that need the package registries run with `--network host`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools.harness.process import HarnessError, pid_alive, pid_cmdline, spawn, terminate  # noqa: E402

ENGINE_DIR = REPO_ROOT / ".cache" / "docker"
SOCKET = ENGINE_DIR / "docker.sock"
PIDFILE = ENGINE_DIR / "docker.pid"
LOG = ENGINE_DIR / "dockerd.log"
HOST = f"unix://{SOCKET}"
# The bridge dockerd makes for its containers: a /24 of its own, unlikely to meet another engine's.
BRIDGE_CIDR = "172.29.213.1/24"
ADDRESS_POOL = "base=172.29.216.0/22,size=26"


def exec_root() -> Path:
    # containerd's sockets live under exec-root; unix socket paths are limited to 108 bytes, so it is short.
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:10]
    return Path("/tmp") / f"qe-docker-{digest}"


def engine_answers(host: str = HOST, timeout_s: float = 3.0) -> bool:
    """True when a Docker engine answers a ping on `host`."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run(
            [docker, "-H", host, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout_s + 5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def _running_pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) and "dockerd" in pid_cmdline(pid) else None


def ensure_installed() -> str:
    dockerd = shutil.which("dockerd") or ("/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").is_file() else None)
    if dockerd and shutil.which("docker"):
        return dockerd
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise HarnessError("Docker engine: `dockerd` is not installed (Debian: apt-get install -y docker.io)")
    print("docker engine: installing Debian's docker.io (apt-get)", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "docker.io"]):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise HarnessError(f"Docker engine: `{' '.join(argv)}` failed:\n{done.stderr[-1500:]}")
    return shutil.which("dockerd") or "/usr/sbin/dockerd"


def up(timeout_s: float = 60.0) -> str:
    """Start the engine unless it already answers; returns its DOCKER_HOST value."""
    if engine_answers():
        return HOST
    dockerd = ensure_installed()
    stale = _running_pid()
    if stale is not None:  # alive but not answering: stop it before starting a fresh one
        terminate(stale, grace_s=20.0)
    ENGINE_DIR.mkdir(parents=True, exist_ok=True)
    exec_root().mkdir(parents=True, exist_ok=True)
    argv = [
        dockerd,
        f"--data-root={ENGINE_DIR / 'root'}",
        f"--exec-root={exec_root()}",
        f"--host={HOST}",
        f"--pidfile={PIDFILE}",
        "--ip-forward=false",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--ip=127.0.0.1",
        f"--bip={BRIDGE_CIDR}",
        f"--default-address-pool={ADDRESS_POOL}",
        "--storage-driver=overlay2",
        "--log-level=warn",
    ]
    process = spawn(argv, output=LOG, cwd=ENGINE_DIR, detach=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if engine_answers(timeout_s=2.0):
            print(f"docker engine: up (pid {process.pid}) on {HOST}", file=sys.stderr, flush=True)
            return HOST
        if process.poll() is not None:
            break
        time.sleep(0.5)
    tail = "\n".join(LOG.read_text(errors="replace").splitlines()[-20:]) if LOG.exists() else ""
    terminate(process.pid, grace_s=10.0, process=process)
    raise HarnessError(f"Docker engine: dockerd did not answer on {HOST} within {timeout_s:.0f} s\n{tail}")


def ensure() -> str:
    """An engine that answers: the caller's DOCKER_HOST, the system's default socket, or the project's own."""
    given = os.environ.get("DOCKER_HOST", "").strip()
    if given:
        if not engine_answers(given):
            raise HarnessError(f"Docker engine: DOCKER_HOST={given} does not answer")
        return given
    if engine_answers("unix:///var/run/docker.sock"):
        return "unix:///var/run/docker.sock"
    return up()


def down() -> None:
    pid = _running_pid()
    if pid is None:
        print("docker engine: not running")
        remove_bridge()
        return
    # dockerd stops its containers and its containerd before it exits.
    terminate(pid, grace_s=60.0)
    print(f"docker engine: stopped (pid {pid})")
    remove_bridge()


def remove_bridge() -> None:
    """dockerd leaves its bridge behind: remove docker0 when it is ours (our address), never another's."""
    ip = shutil.which("ip")
    if ip is None:
        return
    shown = subprocess.run([ip, "-4", "addr", "show", "dev", "docker0"], capture_output=True, text=True, check=False)
    if shown.returncode == 0 and f"inet {BRIDGE_CIDR} " in shown.stdout:
        subprocess.run([ip, "link", "delete", "docker0"], capture_output=True, check=False)
        print("docker engine: removed its bridge docker0")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "host", "ensure"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up()
        elif args.command == "ensure":
            print(ensure())
        elif args.command == "down":
            down()
        elif args.command == "host":
            if not engine_answers():
                return 1
            print(HOST)
        else:
            pid = _running_pid()
            state = "answers" if engine_answers() else "does not answer"
            print(f"docker engine: pid {pid or '-'}, {HOST} {state}")
            return 0 if pid else 1
    except HarnessError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
