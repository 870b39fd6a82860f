"""Fixtures of the chart and image tests: the tools (installed by tools/chart_tools.py, cached) and rendering.

The tools are installed when collection ends, before any test starts, so a cold helm build (a few minutes
on 2 cores, once) is not charged to one test's timeout. A failed install fails every test that needs the
tool, with the installer's message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chartlib import CHART, NAMESPACE, RELEASE, Rendered, run_helm, values_args
from tools import chart_tools

_installed: dict[str, Any] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    if _installed or not any(Path(str(item.fspath)).is_relative_to(Path(__file__).parent) for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def log(message: str) -> None:
        if reporter is not None:
            reporter.write_line(message)

    try:
        _installed["tools"] = chart_tools.ensure_all(log=log)
    except chart_tools.ToolError as exc:
        _installed["error"] = str(exc)


@dataclass(frozen=True)
class Tools:
    helm: Path
    hadolint: Path
    keda_models: Path  # a folder to put on sys.path (kept out of the venv on purpose)


@pytest.fixture(scope="session")
def tools() -> Tools:
    if "error" in _installed:
        pytest.fail(f"chart tools could not be installed: {_installed['error']}", pytrace=False)
    paths = _installed.get("tools") or chart_tools.ensure_all()
    return Tools(helm=paths["helm"], hadolint=paths["hadolint"], keda_models=paths["keda_models"])


@pytest.fixture(scope="session")
def render(tools: Tools) -> Callable[..., Rendered]:
    """helm template the chart (hooks included) and parse every object; NOTES.txt is rendered separately."""
    cache: dict[tuple, Rendered] = {}

    def _render(
        values_files: Sequence[str | Path] = (),
        set_values: Sequence[str] = (),
        release: str = RELEASE,
        namespace: str = NAMESPACE,
    ) -> Rendered:
        key = (tuple(map(str, values_files)), tuple(set_values), release, namespace)
        if key not in cache:
            common = [release, str(CHART), "--namespace", namespace, *values_args(values_files, set_values)]
            out = run_helm(tools.helm, "template", *common).stdout
            objects = [doc for doc in yaml.safe_load_all(out) if doc]
            # NOTES.txt is only rendered by install; client-side dry run talks to no cluster.
            installed = run_helm(tools.helm, "install", *common, "--dry-run=client").stdout
            notes = installed.split("\nNOTES:\n", 1)[1] if "\nNOTES:\n" in installed else ""
            cache[key] = Rendered(objects=objects, notes=notes)
        return cache[key]

    return _render
