"""`make cluster-test`: a real control plane on 127.0.0.1 (tools/cluster), the chart's helm lifecycle on it.

Not part of `make test`: the control plane is built from source once (20-40 minutes cold on 2 cores, then
cached in .cache/cluster/bin). Every step is timed and the table is printed at the end of the run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import chart_tools
from tools.cluster.control_plane import ControlPlane
from tools.cluster.tools import ensure_kubectl

STEPS: list[tuple[str, float, str]] = []


@pytest.fixture(scope="session")
def helm() -> Path:
    return chart_tools.ensure_helm()


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    ensure_kubectl()
    started = time.monotonic()
    with ControlPlane() as cp:
        STEPS.append(
            (
                "control plane up (etcd, apiserver, controller manager, scheduler, kwok node Ready)",
                time.monotonic() - started,
                "ok",
            )
        )
        yield cp


@pytest.fixture
def step() -> Iterator:
    """with step("helm install"): ...  -- timed, printed, and listed in the summary table."""

    @contextlib.contextmanager
    def timed(name: str) -> Iterator[None]:
        started = time.monotonic()
        outcome = "FAILED"
        try:
            yield
            outcome = "ok"
        finally:
            elapsed = time.monotonic() - started
            STEPS.append((name, elapsed, outcome))
            print(f"\n  [{elapsed:6.1f} s] {name}: {outcome}", flush=True)

    yield timed


def pytest_terminal_summary(terminalreporter) -> None:
    if not STEPS:
        return
    terminalreporter.section("cluster lifecycle: step times")
    for name, elapsed, outcome in STEPS:
        terminalreporter.write_line(f"  {elapsed:7.1f} s  {outcome:6}  {name}")
    terminalreporter.write_line(f"  {sum(s[1] for s in STEPS):7.1f} s  total")
