"""`make image-test`: the image `make image` built, run as the chart runs it, against a real Kafka broker.

Not part of `make test` (it needs a Docker engine and the built image). Figures (image size, each service's
cold start) are collected here and printed at the end of the run.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import yaml

from tests.chart.chartlib import CHART
from tests.harness.containers import docker_available

FIGURES: list[tuple[str, str]] = []


def image_name() -> str:
    tag = os.environ.get("TAG") or yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    return f"{os.environ.get('IMAGE') or 'quantumedge'}:{tag}"


def docker(*args: str, check: bool = True, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout_s, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:4])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


@pytest.fixture(scope="session")
def image() -> str:
    if not docker_available():
        pytest.fail("make image-test needs a Docker engine (make docker-up starts the project's own)", pytrace=False)
    name = image_name()
    if docker("image", "inspect", name, check=False).returncode != 0:
        pytest.fail(f"{name} is not built: run make image", pytrace=False)
    return name


@pytest.fixture(scope="session")
def network(image: str) -> Iterator[str]:
    """A bridge network of this run's own: the containers reach each other by name, nothing else."""
    name = f"qe-image-test-{uuid.uuid4().hex[:8]}"
    docker("network", "create", "--driver", "bridge", name)
    try:
        yield name
    finally:
        docker("network", "rm", name, check=False)


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("image figures")
        for what, value in FIGURES:
            terminalreporter.write_line(f"  {what:58} {value}")
