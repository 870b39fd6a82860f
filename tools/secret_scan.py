#!/usr/bin/env python3
"""Fail on any committed secret: detect-secrets over every git-tracked and untracked-not-ignored file.

    .venv/bin/python tools/secret_scan.py                  # exit 1 and list file:line:type on any finding
    .venv/bin/python tools/secret_scan.py --write-baseline # refresh .secrets.baseline's plugin settings

The baseline (.secrets.baseline) carries the plugin/filter settings. A result listed in it is accepted only
when a human audited it as a false positive (`detect-secrets audit .secrets.baseline` -> "is_secret": false);
an unaudited or true entry still fails, so the baseline can never whitelist a real key. For a test fixture
that must look like a key, prefer an inline `# pragma: allowlist secret` comment on that line.
Findings are printed as file, line and type only: never the value.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from detect_secrets.core import baseline as ds_baseline
from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import default_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
BASELINE = ".secrets.baseline"
# Binary or generated artefacts where a "secret" can only be noise; everything else is scanned.
SKIP_SUFFIXES = (
    ".onnx", ".parquet", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".gz", ".zip", ".tgz", ".jar", ".whl",
    ".pyc", ".so", ".bin", ".pb",
)  # fmt: skip
SKIP_PARTS = {".git", ".venv", ".cache", "node_modules", "__pycache__"}
MAX_BYTES = 5_000_000
# Lines that hold a sha256 digest and nothing else secret-like: checksums in models/manifest.json (as a key,
# or as the value of a *sha256 / *hash / *fingerprint / *checksum / *digest field). A digest is not a credential, and
# the pattern is narrow (lowercase hex, exactly 64, named field) so a real key still fails the scan.
DIGEST_LINES = [
    r'^\s*"[0-9a-f]{64}":\s*\{\s*$',
    r'^\s*"[a-z_]*(sha256|hash|fingerprint|checksum|digest)":\s*"[0-9a-f]{64}",?\s*$',
]


@dataclass(frozen=True)
class Finding:
    filename: str
    line: int
    type: str
    why: str = "not in the baseline"

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}: {self.type} ({self.why})"


def candidate_files(root: Path) -> list[str]:
    """Tracked plus untracked-but-not-ignored files (what a commit could contain), relative to root."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        # No git (e.g. an unpacked source tarball): walk the tree, skipping the usual generated folders.
        names = _walk(root)
    return sorted(n for n in names if _wanted(root, n))


def _walk(root: Path) -> list[str]:
    names = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_PARTS]
        names += [str(Path(folder, f).relative_to(root)) for f in files]
    return names


def _wanted(root: Path, name: str) -> bool:
    path = root / name
    if name == BASELINE or name.endswith(SKIP_SUFFIXES) or SKIP_PARTS.intersection(Path(name).parts):
        return False
    try:
        return path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_BYTES
    except OSError:
        return False


def _load_baseline(path: Path) -> dict | None:
    if not path.is_file():
        return None
    return ds_baseline.load_from_file(str(path))


def scan(root: Path, files: Iterable[str], baseline_path: Path | None = None) -> list[Finding]:
    """Findings in `files` (relative to root) that the baseline does not accept as audited false positives."""
    baseline = _load_baseline(baseline_path) if baseline_path else None
    accepted: set[tuple[str, str, str]] = set()
    problems: list[Finding] = []
    with default_settings():
        if baseline is not None:
            # Plugin and filter settings come from the baseline, so every run uses the same detectors.
            known = ds_baseline.load(baseline, str(baseline_path))
            for filename, secrets in known.data.items():
                for secret in secrets:
                    if secret.is_secret is False:
                        accepted.add((filename, secret.secret_hash, secret.type))
                    else:
                        why = "listed in the baseline but not audited as a false positive"
                        problems.append(Finding(filename, secret.line_number, secret.type, why))
        collection = SecretsCollection(root=str(root))
        for name in files:
            # One by one: the repo is small, and scan_files' process pool costs more than it saves here.
            collection.scan_file(name)
    found = [
        Finding(filename, secret.line_number, secret.type)
        for filename, secrets in collection.data.items()
        for secret in secrets
        if (filename, secret.secret_hash, secret.type) not in accepted
    ]
    return sorted(set(found) | set(problems), key=lambda f: (f.filename, f.line, f.type))


def write_baseline(root: Path, path: Path) -> None:
    """Write the plugin/filter settings with NO results: every finding must be fixed or allowlisted inline."""
    with default_settings():
        output = ds_baseline.format_for_output(SecretsCollection(root=str(root)), is_slim_mode=True)
    output["results"] = {}
    output["filters_used"] = [
        f for f in output["filters_used"] if f["path"] != "detect_secrets.filters.regex.should_exclude_line"
    ] + [{"path": "detect_secrets.filters.regex.should_exclude_line", "pattern": DIGEST_LINES}]
    path.write_text(json.dumps(output, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(REPO_ROOT), help="repository root (default: this repo)")
    parser.add_argument("--write-baseline", action="store_true", help="(re)write .secrets.baseline with no results")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    baseline_path = root / BASELINE
    if args.write_baseline:
        write_baseline(root, baseline_path)
        print(f"wrote {baseline_path} (settings only, no accepted results)")
        return 0
    files = candidate_files(root)
    findings = scan(root, files, baseline_path)
    if findings:
        print(f"secret scan: {len(findings)} potential secret(s) in {len(files)} files:", file=sys.stderr)
        for finding in findings:
            print(f"  {finding}", file=sys.stderr)
        print(
            "Remove the secret (rotate it if it was ever pushed), or for a harmless test fixture add "
            "`# pragma: allowlist secret` on that line.",
            file=sys.stderr,
        )
        return 1
    print(f"secret scan: {len(files)} files, no secrets found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
