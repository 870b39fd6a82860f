"""The real Binance captures, found in place (never copied into the repository).

The folder is, in order: `$QE_TEST_BINANCE_CAPTURES` when set; else `shared/data/binance-spot` under the
nearest ancestor of the repository that has one (the project's `../shared/...` from its root, and the
same folder from a clone one level deeper). When neither exists the test is skipped with a message
naming the variable, so a clone elsewhere still passes.

Fixture `binance_capture`: a `Capture` with `.dir`, `.files` (symbol -> path) and `.path(symbol)`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

CAPTURE_ENV = "QE_TEST_BINANCE_CAPTURES"
CAPTURE_SUBDIR = Path("shared") / "data" / "binance-spot"
# The files the folder's README lists, by the symbol each carries.
CAPTURE_FILES = {"BTCUSDT": "btcusdt_20240808.gz", "ETHUSDT": "ethusdt_20240808.gz"}
_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Capture:
    dir: Path
    files: dict[str, Path]

    def path(self, symbol: str) -> Path:
        return self.files[symbol.upper()]

    @property
    def symbols(self) -> list[str]:
        return sorted(self.files)


def find_capture_dir() -> tuple[Path | None, str]:
    """(folder, where it was looked for): the folder is None when it is absent."""
    configured = os.environ.get(CAPTURE_ENV, "").strip()
    if configured:
        path = Path(configured)
        return (path if path.is_dir() else None), f"{CAPTURE_ENV}={configured}"
    for parent in _REPO_ROOT.parents:
        candidate = parent / CAPTURE_SUBDIR
        if candidate.is_dir():
            return candidate, str(candidate)
    return None, f"../{CAPTURE_SUBDIR} (or set {CAPTURE_ENV})"


def load_capture() -> Capture | None:
    folder, _ = find_capture_dir()
    if folder is None:
        return None
    files = {sym: folder / name for sym, name in CAPTURE_FILES.items() if (folder / name).is_file()}
    return Capture(folder, files) if files else None


@pytest.fixture(scope="session")
def binance_capture() -> Capture:
    """The real Binance spot captures, read in place; skips with a message naming the setting when absent."""
    _, where = find_capture_dir()
    capture = load_capture()
    if capture is None:
        pytest.skip(f"real Binance captures not found at {where}; set {CAPTURE_ENV} to the folder holding them")
    return capture
