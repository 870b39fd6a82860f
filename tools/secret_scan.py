#!/usr/bin/env python3
"""Fail on any committed secret: gitleaks over the working tree and over the whole git history.

    .venv/bin/python tools/secret_scan.py                 # tree + history of this repository; exit 1 on a finding
    .venv/bin/python tools/secret_scan.py --root DIR      # another repository (the same detectors)
    .venv/bin/python tools/secret_scan.py --no-history    # the tree only

gitleaks (built once with `go install` into .cache/bin by tools/chart_tools.py) runs with .gitleaks.toml:
gitleaks' own rules plus detectors for bare Binance keys, Vault tokens (hvs./hvb./hvr./s./b.), OpenAI keys
(sk-, sk-proj-, ...), PEM private keys including encrypted ones, and AppRole secret-ids. The tree scan covers
what a commit could contain (tracked plus untracked-not-ignored files); the history scan every commit of
every ref, so a key deleted later still fails until history is rewritten and the key rotated.

Allowlisting is reviewed, never automatic: a fixture line that must look like a key carries
`# pragma: allowlist secret`; anything broader is an entry with a reason in .gitleaks.toml, and a finding
in old history that was reviewed is a fingerprint with a comment in .gitleaksignore.
Findings are printed as place and rule only (gitleaks runs with --redact): never the value.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / ".gitleaks.toml"
IGNORE_FILE = ".gitleaksignore"
MAX_MEGABYTES = 5


class ScanError(RuntimeError):
    """gitleaks could not run or its report could not be read; the message says why."""


@dataclass(frozen=True, order=True)
class Finding:
    where: str  # "tree" | "history"
    file: str
    line: int
    rule: str
    commit: str = ""

    def __str__(self) -> str:
        at = f" (commit {self.commit[:12]})" if self.commit else ""
        return f"{self.where}: {self.file}:{self.line}: {self.rule}{at}"


def gitleaks_binary() -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from tools import chart_tools

    try:
        return chart_tools.ensure_gitleaks(log=lambda msg: print(msg, file=sys.stderr))
    except chart_tools.ToolError as exc:
        raise ScanError(str(exc)) from None


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.decode(errors="replace")


def candidate_files(root: Path) -> set[str] | None:
    """Tracked plus untracked-but-not-ignored files (what a commit could contain); None outside git."""
    out = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return None if out is None else {name for name in out.split("\0") if name}


def has_history(root: Path) -> bool:
    return _git(root, "rev-parse", "--verify", "--quiet", "HEAD") is not None


def _run(gitleaks: Path, mode: str, root: Path, config: Path, extra: list[str]) -> list[dict]:
    command = [
        str(gitleaks), mode, "--config", str(config), "--no-banner", "--no-color", "--redact",
        "--log-level", "error", "--report-format", "json", "--report-path", "-", "--exit-code", "0",
        "--max-target-megabytes", str(MAX_MEGABYTES), *extra,
    ]  # fmt: skip
    ignore = root / IGNORE_FILE
    if ignore.is_file():
        command += ["--gitleaks-ignore-path", str(ignore)]
    done = subprocess.run([*command, str(root)], capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ScanError(f"gitleaks {mode} failed (exit {done.returncode}): {tail}")
    try:
        report = json.loads(done.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise ScanError(f"gitleaks {mode}: unreadable report ({exc.msg})") from None
    return report or []


def _relative(root: Path, name: str) -> str:
    path = Path(name)
    if path.is_absolute():
        try:
            return str(path.relative_to(root))
        except ValueError:
            return name
    return str(path).removeprefix("./")


def scan_tree(root: Path, config: Path = CONFIG, gitleaks: Path | None = None) -> list[Finding]:
    """Findings in the files a commit could contain (every file when root is not a git work tree)."""
    report = _run(gitleaks or gitleaks_binary(), "dir", root, config, [])
    wanted = candidate_files(root)
    found = {Finding("tree", _relative(root, item["File"]), int(item["StartLine"]), item["RuleID"]) for item in report}
    return sorted(f for f in found if wanted is None or f.file in wanted)


def scan_history(root: Path, config: Path = CONFIG, gitleaks: Path | None = None) -> list[Finding]:
    """Findings in every commit reachable from any ref (nothing when there is no history yet)."""
    if not has_history(root):
        return []
    report = _run(gitleaks or gitleaks_binary(), "git", root, config, ["--log-opts=--all"])
    found = {
        Finding("history", item["File"], int(item["StartLine"]), item["RuleID"], item.get("Commit", ""))
        for item in report
    }
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(REPO_ROOT), help="repository to scan (default: this repo)")
    parser.add_argument("--config", default=str(CONFIG), help="gitleaks config (default: this repo's .gitleaks.toml)")
    parser.add_argument("--no-history", action="store_true", help="scan the working tree only")
    args = parser.parse_args(argv)
    root, config = Path(args.root).resolve(), Path(args.config).resolve()
    try:
        gitleaks = gitleaks_binary()
        findings = scan_tree(root, config, gitleaks)
        if not args.no_history:
            findings += scan_history(root, config, gitleaks)
    except ScanError as exc:
        print(f"secret scan: {exc}", file=sys.stderr)
        return 2
    scope = "tree" if args.no_history else "tree and git history"
    if findings:
        print(f"secret scan: {len(findings)} potential secret(s) in the {scope} of {root}:", file=sys.stderr)
        for finding in findings:
            print(f"  {finding}", file=sys.stderr)
        print(
            "Remove the secret and rotate it (a key that was ever committed is burnt, even if deleted later), "
            "or for a harmless test fixture add `# pragma: allowlist secret` on that line.",
            file=sys.stderr,
        )
        return 1
    print(f"secret scan: no secrets found in the {scope} (gitleaks, {config.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
