"""The README and docs stand alone: no link leaves the repository, and every command of the README's
"Operating it" section runs, as written, against a running `quantumedge up` (the documented default ports
are swapped for free ones, since this machine is shared)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from quantumedge.shared.config import Ports
from tests.support.procs import ROOT, free_port

SKIP_DIRS = {".git", ".venv", ".cache", ".pytest_cache", ".ruff_cache", "node_modules", "var"}
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<([a-z][a-z0-9+.-]*:[^>\s]+)>", re.IGNORECASE)


def markdown_files() -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        out += [Path(dirpath, f) for f in filenames if f.endswith(".md")]
    return sorted(out)


def test_no_link_leaves_the_repository() -> None:
    files = markdown_files()
    assert ROOT / "README.md" in files and any(p.parent == ROOT / "docs" for p in files)
    problems = []
    for path in files:
        text = path.read_text()
        if "../shared" in text:
            problems.append(f"{path.relative_to(ROOT)}: mentions ../shared (outside the repository)")
        for match in LINK.finditer(FENCE.sub("", text)):
            target = match.group(1) or match.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith(("/", "//")):
                problems.append(f"{path.relative_to(ROOT)}: links outside the repository: {target}")
                continue
            file_part = target.split("#", 1)[0]
            if not file_part:
                continue  # an anchor in the same file
            resolved = (path.parent / file_part).resolve()
            if not resolved.is_relative_to(ROOT):
                problems.append(f"{path.relative_to(ROOT)}: {target} resolves outside the repository")
            elif not resolved.exists():
                problems.append(f"{path.relative_to(ROOT)}: {target} does not exist")
    assert not problems, "\n".join(problems)


def operating_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Operating it")
    end = readme.index("\n## ", start + 1)
    section = readme[start:end]
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL):
        joined = re.sub(r"\\\n\s*", "", block)
        commands += [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return commands


def test_the_operating_section_has_the_commands_an_operator_needs() -> None:
    text = "\n".join(operating_commands())
    for needed in (
        ".venv/bin",
        "quantumedge up",
        "quantumedge status",
        "-emit-defaults",
        "RiskService/Halt",
        "quantumedge halt",
        "quantumedge resume",
        "quantumedge explain",
        "/metrics",
    ):
        assert needed in text, needed
    readme = (ROOT / "README.md").read_text()
    for documented in ("QE_PORTS__", "RUN_ARGS", "-emit-defaults", ".venv/bin/grpcurl"):
        assert documented in readme, documented


@pytest.mark.slow
def test_every_operating_command_runs_against_a_running_up(tmp_path: Path) -> None:
    commands = operating_commands()
    defaults = Ports()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QE_")}
    script = []
    mapping: dict[str, str] = {}
    for name in type(defaults).model_fields:
        port = free_port()
        env[f"QE_PORTS__{name.upper()}"] = str(port)
        mapping[f"localhost:{getattr(defaults, name)}"] = f"127.0.0.1:{port}"
    for command in commands:
        for old, new in mapping.items():
            command = re.sub(rf"{re.escape(old)}\b", new, command)
        script.append(command)
    env |= {
        "TMPDIR": str(tmp_path),
        "QE_GRPC_HOST": "127.0.0.1",
        "QE_DATA_DIR": str(tmp_path / "var"),
        "QE_INGEST__SYNTHETIC_SPEED": "3",
    }
    # A failing command ends the script early: the trap stops the background `up` by its pid (jobs -p).
    cleanup = "trap 'for p in $(jobs -p); do kill \"$p\" 2>/dev/null || true; done; wait' EXIT\n"
    (tmp_path / "operate.sh").write_text("set -euo pipefail\n" + cleanup + "set -x\n" + "\n".join(script) + "\n")
    result = subprocess.run(
        ["bash", str(tmp_path / "operate.sh")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=420,
    )
    log = (tmp_path / "qe-up.log").read_text() if (tmp_path / "qe-up.log").exists() else ""
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}\n--- up.log\n{log[-3000:]}"
    traced = [line for line in result.stderr.splitlines() if line.startswith("+ ")]
    assert len(traced) >= len(commands), result.stderr[-3000:]
    out = result.stdout
    assert "QuantumEdge status" in out and "SERVING" in out
    assert "trading HALTED: manual halt" in out and "trading ACTIVE: checked" in out
    assert '"halted": false' in out, "-emit-defaults did not show Resume's answer"
    assert re.search(r"^qe_risk_equity_quote\{.*\} [0-9.e+]+$", out, re.MULTILINE)
    assert "decision " in out and "daily_loss_limit" in out
    assert "ticks in" in log, "up did not end with its summary"
