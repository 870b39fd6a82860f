"""The import rules of pyproject.toml ([tool.importlinter]) hold on the tree, and each one fails, naming the
offending import, when a forbidden import is planted in a copy of the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.skip(
            f"lint-imports missing next to {sys.executable}: run `make venv` (import-linter is a dev dependency)"
        )
    env = {**os.environ, "PYTHONPATH": f"{root / 'services'}{os.pathsep}{root}", "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), str(root / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_every_import_rule() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, "import rules broken (pyproject.toml [tool.importlinter]):\n" + result.stdout


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("services", "tests", "tools"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")


# (contract name as printed, file to plant in, the import planted, what the report must name)
PLANTS = [
    (
        "Domain modules are pure",
        "services/quantumedge/risk/domain/limits.py",
        "import grpc",
        "quantumedge.risk.domain.limits -> grpc",
    ),
    (
        "Domain modules are pure",
        "services/quantumedge/risk/domain/policy.py",
        "import time",
        "quantumedge.risk.domain.policy -> time",
    ),
    (
        "A service never imports another service",
        "services/quantumedge/risk/domain/market.py",
        "import quantumedge.execution.domain.orders",
        "quantumedge.risk.domain.market -> quantumedge.execution.domain.orders",
    ),
    (
        "shared never imports a service",
        "services/quantumedge/shared/bounds.py",
        "import quantumedge.risk.domain.reasons",
        "quantumedge.shared.bounds -> quantumedge.risk.domain.reasons",
    ),
    (
        "tools never import tests",
        "tools/gen_proto.py",
        "import tests.support.signing",
        "tools.gen_proto -> tests.support.signing",
    ),
    (
        "integration, e2e and cluster tests never import tests.unit",
        "tests/integration/test_harness_origin.py",
        "import tests.unit.arch.test_import_rules",
        "tests.integration.test_harness_origin -> tests.unit.arch.test_import_rules",
    ),
]


@pytest.mark.slow
def test_a_planted_forbidden_import_breaks_its_rule_and_is_named(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    for _, rel, statement, _ in PLANTS:
        path = tmp_path / rel
        path.write_text(path.read_text() + f"\n{statement}  # planted\n")
    # A circle: shared.bounds -> shared.throttle and back.
    (tmp_path / "services/quantumedge/shared/throttle.py").write_text(
        (tmp_path / "services/quantumedge/shared/throttle.py").read_text() + "\nimport quantumedge.shared.bounds\n"
    )
    (tmp_path / "services/quantumedge/shared/bounds.py").write_text(
        (tmp_path / "services/quantumedge/shared/bounds.py").read_text() + "\nimport quantumedge.shared.throttle\n"
    )
    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout
    out = " ".join(result.stdout.split())  # rich wraps long lines
    for contract, _, _, named in PLANTS:
        assert f"{contract}" in out
        assert named in out, f"the report does not name {named!r}:\n{result.stdout}"
    assert "No cycles are allowed in quantumedge.shared" in out, result.stdout
