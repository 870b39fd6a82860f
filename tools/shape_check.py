#!/usr/bin/env python3
"""Fail on a function or a file that is too long (issue 13: no function over 60 lines, no file over 500).

    .venv/bin/python tools/shape_check.py                              # services/, the defaults below
    .venv/bin/python tools/shape_check.py --max-function 60 --max-file 500 services
    .venv/bin/python tools/shape_check.py some/dir other/file.py       # any paths

Each offender is printed as `path:line name length` (a file's line is 1 and its name `<file>`) and the exit
code is 1 when there is one. A function's length runs from its `def` (decorators excluded) to its last line,
so a nested function counts inside its parent and on its own. Generated code (the protobuf stubs in
services/quantumedge/v1) is excluded: its shape is protoc's, not ours.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ("services",)
# Relative to a scanned root or the repository: generated gRPC/protobuf code.
EXCLUDED_PARTS = (("quantumedge", "v1"),)
MAX_FUNCTION = 60
MAX_FILE = 500


@dataclass(frozen=True)
class Offender:
    path: str
    line: int
    name: str
    length: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.name} {self.length}"


def _excluded(path: Path) -> bool:
    parts = path.parts
    for excluded in EXCLUDED_PARTS:
        width = len(excluded)
        if any(parts[i : i + width] == excluded for i in range(len(parts) - width + 1)):
            return True
    return False


def python_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every .py file under the given paths, sorted, generated code left out."""
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            if path.suffix == ".py" and not _excluded(path):
                yield path


def _qualified_functions(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    # Walk with the enclosing names so `Class.method` and `outer.inner` say where the offender is.
    stack: list[tuple[str, ast.AST]] = [("", tree)]
    while stack:
        prefix, node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield name, child
                stack.append((f"{name}.", child))
            else:
                stack.append((prefix, child))


def check_file(path: Path, *, max_function: int, max_file: int, shown: str | None = None) -> list[Offender]:
    """The offenders in one file: the file itself when too long, then each too-long function by line."""
    source = path.read_text(encoding="utf-8")
    shown = shown or str(path)
    offenders: list[Offender] = []
    lines = len(source.splitlines())
    if lines > max_file:
        offenders.append(Offender(shown, 1, "<file>", lines))
    tree = ast.parse(source, filename=str(path))
    functions = []
    for name, node in _qualified_functions(tree):
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > max_function:
            functions.append(Offender(shown, node.lineno, name, length))
    offenders.extend(sorted(functions, key=lambda o: o.line))
    return offenders


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def check(paths: Iterable[Path], *, max_function: int = MAX_FUNCTION, max_file: int = MAX_FILE) -> list[Offender]:
    offenders: list[Offender] = []
    for path in python_files(paths):
        offenders.extend(check_file(path, max_function=max_function, max_file=max_file, shown=_shown(path)))
    return offenders


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, help="files or directories (default: services/)")
    parser.add_argument("--max-function", type=int, default=MAX_FUNCTION, help="longest function allowed, lines")
    parser.add_argument("--max-file", type=int, default=MAX_FILE, help="longest file allowed, lines")
    args = parser.parse_args(argv)
    paths = args.paths or [REPO_ROOT / p for p in DEFAULT_PATHS]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"shape_check: no such path: {', '.join(missing)}", file=sys.stderr)
        return 2
    offenders = check(paths, max_function=args.max_function, max_file=args.max_file)
    for offender in offenders:
        print(offender)
    if offenders:
        print(
            f"shape_check: {len(offenders)} over the limits "
            f"(functions > {args.max_function} lines, files > {args.max_file} lines)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
