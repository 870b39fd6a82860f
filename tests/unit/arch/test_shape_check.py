"""tools/shape_check.py names every function over --max-function lines and every file over --max-file lines
(path:line name length, exit 1), leaves short code and generated code alone, and exits 0 on a clean tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.shape_check import check, main

REPO = Path(__file__).resolve().parents[3]


def _function(name: str, body_lines: int) -> str:
    return f"def {name}() -> int:\n" + "".join(f"    x{i} = {i}\n" for i in range(body_lines - 2)) + "    return 0\n"


def _plant(root: Path) -> None:
    pkg = root / "services" / "pkg"
    pkg.mkdir(parents=True)
    # 1 + 60 + 1 lines: 62 lines from `def` to the last line, over a 60-line limit.
    (pkg / "long_function.py").write_text(_function("too_long", 62) + "\n\n" + _function("short", 10))
    (pkg / "long_file.py").write_text("".join(f"VALUE_{i} = {i}\n" for i in range(501)))
    nested = "class Holder:\n    def method(self) -> None:\n" + "".join(f"        y{i} = {i}\n" for i in range(61))
    (pkg / "nested.py").write_text(nested)
    (pkg / "fine.py").write_text(_function("exactly_sixty", 60))
    generated = root / "services" / "quantumedge" / "v1"
    generated.mkdir(parents=True)
    (generated / "big_pb2.py").write_text("".join(f"G{i} = {i}\n" for i in range(900)))


def test_it_names_a_planted_long_function_and_a_long_file(tmp_path: Path) -> None:
    _plant(tmp_path)
    found = {(Path(o.path).name, o.line, o.name, o.length) for o in check([tmp_path / "services"])}
    assert found == {
        ("long_function.py", 1, "too_long", 62),
        ("long_file.py", 1, "<file>", 501),
        ("nested.py", 2, "Holder.method", 62),
    }


def test_the_cli_prints_path_line_name_length_and_exits_1(tmp_path: Path, capsys) -> None:
    _plant(tmp_path)
    code = main(["--max-function", "60", "--max-file", "500", str(tmp_path / "services")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert any(line.endswith("long_function.py:1 too_long 62") for line in lines)
    assert any(line.endswith("long_file.py:1 <file> 501") for line in lines)
    assert not any("big_pb2" in line or "exactly_sixty" in line or " short " in line for line in lines)


def test_the_limits_are_options_and_a_clean_tree_exits_0(tmp_path: Path) -> None:
    _plant(tmp_path)
    script = REPO / "tools" / "shape_check.py"
    loose = subprocess.run(
        [sys.executable, str(script), "--max-function", "100", "--max-file", "1000", str(tmp_path / "services")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loose.returncode == 0, loose.stdout + loose.stderr
    assert loose.stdout == ""
    strict = subprocess.run(
        [sys.executable, str(script), "--max-function", "5", str(tmp_path / "services" / "pkg" / "fine.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert strict.returncode == 1
    assert strict.stdout.strip().endswith("fine.py:1 exactly_sixty 60")
