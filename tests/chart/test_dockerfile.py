"""The image: its Dockerfile passes hadolint and keeps the runtime contract (no Docker engine here, so the image
itself is not built in these tests; the Dockerfile and its build context are checked instead)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.chart.chartlib import CHART, COMPONENTS, PORTS, REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, args = pending.partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def test_hadolint_passes(tools) -> None:
    result = subprocess.run(
        [str(tools.hadolint), "--no-color", "--config", str(REPO_ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_live_and_rejects_an_unpinned_root_image(tools, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install gcc\nUSER root\nCMD python app.py\n")
    result = subprocess.run(
        [str(tools.hadolint), "--no-color", "--config", str(REPO_ROOT / ".hadolint.yaml"), str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3008" in result.stdout  # unpinned apt package


def test_multi_stage_with_a_pinned_slim_python_base(dockerfile: str) -> None:
    args = dict(a.split("=", 1) for k, a in instructions(dockerfile) if k == "ARG" and "=" in a)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base), base
    built = stages(dockerfile)
    assert len(built) >= 2
    # The runtime is FROM scratch plus what the builder collected: no shell, no package manager.
    assert [s[0][1] for s in built] == ["${PYTHON_IMAGE} AS builder", "scratch AS runtime"]
    assert "digest" in dockerfile  # the comment on pinning by digest


def test_builds_offline_on_any_debian_python_base(dockerfile: str) -> None:
    # A `# syntax=` line makes BuildKit pull a frontend image: impossible where no registry is reachable.
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.MULTILINE | re.IGNORECASE)
    # python:3.11-slim has /usr/local/bin/python3.11, Debian's package /usr/bin/python3.11: only the name.
    assert "/usr/local/bin/python3.11" not in dockerfile and "/usr/bin/python3.11" not in dockerfile
    builder = " ".join(args for keyword, args in stages(dockerfile)[0] if keyword in ("RUN", "COPY"))
    assert "python3.11 -m venv" in builder and "--python python3.11" in builder
    # A CA bundle for uv and pip behind a TLS-re-signing proxy, only in the builder stage.
    assert "ca-bundle.pe[m]" in builder and "SSL_CERT_FILE=/src/ca-bundle.pem" in builder
    runtime = " ".join(args for _, args in stages(dockerfile)[-1])
    assert "ca-bundle" not in runtime


def test_runtime_stage_contract(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    by_keyword: dict[str, list[str]] = {}
    for keyword, args in runtime:
        by_keyword.setdefault(keyword, []).append(args)
    (user,) = by_keyword["USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0, "a numeric non-root user, so runAsNonRoot can be verified"
    assert int(uid) == values["default"]["podSecurityContext"]["runAsUser"]
    assert int(gid) == values["default"]["podSecurityContext"]["runAsGroup"]
    assert json.loads(by_keyword["ENTRYPOINT"][0]) == ["quantumedge"]
    assert json.loads(by_keyword["CMD"][0]) == ["serve", "ingest"]
    assert by_keyword["STOPSIGNAL"] == ["SIGTERM"]
    env = " ".join(by_keyword["ENV"])
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "QE_MODELS_DIR=/app/models" in env
    assert sorted(int(p) for p in by_keyword["EXPOSE"][0].split()) == sorted(PORTS.values())
    # From the build context the runtime stage takes only the models; the code comes from the builder's venv.
    context_copies = [a for a in by_keyword["COPY"] if "--from=" not in a]
    assert context_copies == ["models /app/models"]
    # Everything else is the root filesystem tools/image/rootfs.py collected in the builder.
    assert [a for a in by_keyword["COPY"] if "--from=" in a] == ["--from=builder /rootfs /"]
    # No shell in the image: the runtime stage's RUN steps are exec-form smoke tests of the commands.
    for run in by_keyword.get("RUN", []):
        argv = json.loads(run)
        assert argv[0].startswith("/opt/venv/bin/"), run
    for tool in ("apt-get", "gcc", "build-essential", "uv ", "pip install"):
        assert tool not in " ".join(by_keyword.get("RUN", [])), f"{tool!r} in the runtime stage"


def test_no_secret_in_build_arguments_or_environment(dockerfile: str) -> None:
    for keyword, args in instructions(dockerfile):
        if keyword in ("ARG", "ENV", "LABEL"):
            assert not re.search(r"secret|password|token|api_?key", args, re.IGNORECASE), args


def test_builder_installs_the_locked_package_without_dev_extras(dockerfile: str) -> None:
    builder = " ".join(args for keyword, args in stages(dockerfile)[0] if keyword == "RUN")
    assert "--require-hashes" in builder and "requirements.lock" in builder
    assert "install --python /opt/venv/bin/python --no-deps ." in builder
    assert "[dev]" not in dockerfile and "[train]" not in dockerfile and "-e " not in builder


def test_requirements_lock_pins_every_runtime_dependency() -> None:
    lock = REPO_ROOT / "requirements.lock"
    assert lock.is_file(), "requirements.lock is missing: uv pip compile pyproject.toml --universal --generate-hashes"
    text = lock.read_text()
    pinned = {m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.MULTILINE)}
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        assert name in pinned, f"{name} is not pinned in requirements.lock"
    assert "--hash=sha256:" in text
    for dev_only in ("pytest", "ruff", "xgboost", "grpcio-tools"):
        assert dev_only not in pinned, f"{dev_only} (dev/train extra) must not be in the image"


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a match on a parent directory covers its contents."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern((pattern[1:] if negate else pattern).rstrip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_local_state_out_and_the_copied_files_in(dockerfile: str) -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for path in (".venv", ".cache", "var", "tests", ".git", ".env", "tests/chart/conftest.py", ".venv/bin/python"):
        assert _dockerignore_excludes(patterns, path), path
    for path in ("services/quantumedge/__pycache__/cli.cpython-311.pyc", "services/quantumedge.egg-info"):
        assert _dockerignore_excludes(patterns, path), path
    sources = []
    for keyword, args in instructions(dockerfile):
        if keyword == "COPY" and "--from=" not in args:
            sources += args.split()[:-1]
    assert sources
    for source in sources:
        source = source.replace("[m]", "m")  # the optional CA bundle: a glob that may match nothing
        assert not _dockerignore_excludes(patterns, source.rstrip("/")), f"{source} is copied but ignored"
    for path in ("build/other-file", "tools/local_kafka.py", "tools/image/build.sh"):
        assert _dockerignore_excludes(patterns, path), path
    assert not _dockerignore_excludes(patterns, "services/quantumedge/cli.py")


@pytest.mark.parametrize(
    "source",
    [
        "pyproject.toml",
        "README.md",
        "services",
        "models",
        "requirements.lock",
        "tools/image/slim.py",
        "tools/image/rootfs.py",
    ],
)
def test_every_copied_path_exists(dockerfile: str, source: str) -> None:
    copied = [
        s.rstrip("/")
        for keyword, args in instructions(dockerfile)
        if keyword == "COPY" and "--from=" not in args
        for s in args.split()[:-1]
    ]
    assert source in copied
    assert (REPO_ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"


def test_the_image_command_is_the_console_script_with_every_service() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["quantumedge"] == "quantumedge.cli:main"
    from quantumedge.cli import _parser

    for component in COMPONENTS:
        args = _parser().parse_args(["serve", component])
        assert (args.command, args.service) == ("serve", component)
