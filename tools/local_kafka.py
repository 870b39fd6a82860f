#!/usr/bin/env python3
"""Start, stop or inspect a local single-node Apache Kafka 3.9.1 broker (KRaft) for development and tests.

    .venv/bin/python tools/local_kafka.py up [--port 9092]     # fetch jars if missing, start, wait until ready
    .venv/bin/python tools/local_kafka.py up --sasl            # SASL_SSL + ACLs; credentials go to Vault
    .venv/bin/python tools/local_kafka.py status [--port 9092]
    .venv/bin/python tools/local_kafka.py down [--port 9092]   # all local brokers when --port is omitted

The jars come from Maven Central (tools/kafka/pom.xml) into .cache/kafka/libs; the broker's data, logs and
pidfile live in .cache/kafka/local-<port>/. Every `up` starts a fresh, empty cluster.

A plain `up` is a PLAINTEXT development broker: the services refuse it unless QE_KAFKA__ALLOW_PLAINTEXT=true
(printed with the exports). `up --sasl` starts it as production runs Kafka instead (SASL_SSL with SCRAM-SHA-512,
a CA made for it, ACLs enforced; tools/harness/kafka_secure.py) and writes each service's credentials and the
admin's to Vault at quantumedge/kafka/<service|admin> (QE_VAULT_ADDR + QE_VAULT_TOKEN, e.g. from
`make vault-up`); no password is printed or written to a file here.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools.harness.kafka import KAFKA_CACHE, KAFKA_VERSION, LocalKafka, kafka_is_ready  # noqa: E402
from tools.harness.kafka_secure import ADMIN, SaslSslKafka  # noqa: E402
from tools.harness.process import (  # noqa: E402
    HarnessError,
    pid_alive,
    pid_cmdline,
    port_is_open,
    read_pidfile,
    terminate,
    write_pidfile,
)

DEFAULT_PORT = 9092
PIDFILE_NAME = "broker.pid"


def work_dir(port: int) -> Path:
    return KAFKA_CACHE / f"local-{port}"


def _ours(info: dict) -> bool:
    """The pid still belongs to the broker we started (pids get reused)."""
    cmdline = pid_cmdline(info["pid"])
    return pid_alive(info["pid"]) and "kafka.Kafka" in cmdline and str(info.get("work_dir", "")) in cmdline


def _pidfiles(port: int | None) -> list[Path]:
    if port is not None:
        path = work_dir(port) / PIDFILE_NAME
        return [path] if path.exists() else []
    return sorted(KAFKA_CACHE.glob(f"local-*/{PIDFILE_NAME}"))


def cmd_up(args: argparse.Namespace) -> int:
    pidfile = work_dir(args.port) / PIDFILE_NAME
    info = read_pidfile(pidfile)
    if info is not None and _ours(info):
        print(f"Kafka broker already running on 127.0.0.1:{args.port} (pid {info['pid']})")
        extra = (
            "QE_KAFKA__SECURITY_PROTOCOL=SASL_SSL"
            if info.get("protocol") == "SASL_SSL"
            else "QE_KAFKA__ALLOW_PLAINTEXT=true"
        )
        print(f"export QE_KAFKA_BOOTSTRAP=127.0.0.1:{args.port} {extra}")
        return 0
    pidfile.unlink(missing_ok=True)
    if args.sasl:
        try:
            vault = _vault_for_credentials()
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        users = [f"quantumedge-{service}" for service in SERVICES]
        broker: LocalKafka = SaslSslKafka(
            users, port=args.port, work_dir=work_dir(args.port), detach=True, start_timeout_s=args.timeout
        )
    else:
        broker = LocalKafka(args.port, work_dir=work_dir(args.port), detach=True, start_timeout_s=args.timeout)
    try:
        broker.start()
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if isinstance(broker, SaslSslKafka):
        _store_credentials(broker, *vault)
    assert broker.pid is not None
    write_pidfile(
        pidfile,
        {
            "pid": broker.pid,
            "port": broker.port,
            "controller_port": broker.controller_port,
            "work_dir": str(broker.work_dir),
            "log": str(broker.log_path),
            "kafka_version": KAFKA_VERSION,
            "protocol": "SASL_SSL" if isinstance(broker, SaslSslKafka) else "PLAINTEXT",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    print(
        f"Kafka {KAFKA_VERSION} broker ready on {broker.bootstrap} (pid {broker.pid}; "
        f"jars {broker.fetch_seconds:.1f} s, start {broker.start_seconds:.1f} s; log {broker.log_path})"
    )
    if isinstance(broker, SaslSslKafka):
        print("credentials of admin and the four services written to Vault at quantumedge/kafka/<service|admin>")
        print(f"export QE_KAFKA_BOOTSTRAP={broker.bootstrap} QE_KAFKA__SECURITY_PROTOCOL=SASL_SSL")
        print("then, once: .venv/bin/quantumedge topics --acls      # topics and ACLs, as the Kafka admin")
    else:
        print(
            f"export QE_KAFKA_BOOTSTRAP={broker.bootstrap} QE_KAFKA__ALLOW_PLAINTEXT=true "
            f"QE_TEST_KAFKA_BOOTSTRAP={broker.bootstrap}"
        )
    return 0


SERVICES = ("ingest", "inference", "risk", "execution")


def _vault_for_credentials() -> tuple[object, str]:
    """An hvac client on QE_VAULT_ADDR with QE_VAULT_TOKEN and the KV mount, checked before the broker starts."""
    import hvac

    from quantumedge.settings import load_settings

    vault = load_settings().vault
    token = vault.token.get_secret_value()
    if not (vault.addr and token):
        raise RuntimeError("--sasl writes the Kafka credentials to Vault: set QE_VAULT_ADDR and QE_VAULT_TOKEN")
    client = hvac.Client(url=vault.addr, token=token, timeout=10)
    if not client.is_authenticated():
        raise RuntimeError(f"QE_VAULT_TOKEN is not a valid token on {vault.addr}")
    return client, vault.kv_mount


def _store_credentials(broker: SaslSslKafka, client: object, mount: str) -> None:
    from quantumedge.secrets import paths

    for identity in (*SERVICES, paths.KAFKA_ADMIN_IDENTITY):
        user = ADMIN if identity == paths.KAFKA_ADMIN_IDENTITY else f"quantumedge-{identity}"
        secret = {"username": user, "password": broker.password(user), "ca_pem": broker.ca_pem}
        client.secrets.kv.v2.create_or_update_secret(paths.kafka_path(identity), secret, mount_point=mount)  # type: ignore[attr-defined]


def cmd_down(args: argparse.Namespace) -> int:
    pidfiles = _pidfiles(args.port)
    if not pidfiles:
        print("no local Kafka broker is running" + (f" on port {args.port}" if args.port else ""))
        return 0
    for pidfile in pidfiles:
        info = read_pidfile(pidfile)
        if info is not None and _ours(info):
            killed = terminate(info["pid"], grace_s=args.timeout)
            shutil.rmtree(pidfile.parent / "data", ignore_errors=True)  # throwaway cluster; logs stay for reading
            print(f"stopped Kafka broker on 127.0.0.1:{info['port']} (pid {info['pid']}{', killed' if killed else ''})")
        elif info is not None:
            print(f"Kafka broker on port {info.get('port')} was not running (stale pidfile removed)")
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
        if info.get("protocol") == "SASL_SSL":  # answering needs credentials this tool does not keep
            ready, reason = port_is_open(info["port"]), "nothing listens on its port"
        else:
            ready, reason = kafka_is_ready(f"127.0.0.1:{info['port']}", timeout_s=3.0)
        state = "ready" if ready else f"running but not answering ({reason})"
        print(f"Kafka broker 127.0.0.1:{info['port']} pid {info['pid']}: {state}; log {info.get('log')}")
        running += ready
    if not pidfiles:
        print("no local Kafka broker is running" + (f" on port {args.port}" if args.port else ""))
    return 0 if running else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a broker (no-op when one already runs on that port)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"client port (default {DEFAULT_PORT})")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness (default 180)")
    up.add_argument("--sasl", action="store_true", help="SASL_SSL with ACLs; credentials to Vault (QE_VAULT_*)")
    up.set_defaults(func=cmd_up)
    for name, func, helptext in (
        ("down", cmd_down, "stop the broker (SIGTERM, then SIGKILL)"),
        ("status", cmd_status, "show whether the broker runs and answers"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--port", type=int, default=None, help="only this broker (default: every local broker)")
        cmd.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for a graceful stop")
        cmd.set_defaults(func=func)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
