"""tools/image/rootfs.py: the FROM-scratch runtime's files keep the symlinks the dynamic linker and Python
follow (lib -> usr/lib, libz.so.1 -> libz.so.1.2.13, a venv's python -> the interpreter)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tools.harness.process import REPO_ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tools" / "image" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rootfs = _load("rootfs")
slim = _load("slim")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "usr" / "lib").mkdir(parents=True)
    (src / "usr" / "lib" / "libz.so.1.2.13").write_bytes(b"ELF")
    os.symlink("libz.so.1.2.13", src / "usr" / "lib" / "libz.so.1")
    os.symlink("usr/lib", src / "lib")
    return src


def test_copy_path_recreates_directory_and_file_symlinks(tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    rootfs.copy_path(str(tree / "lib" / "libz.so.1"), dest)
    inside = dest / tree.relative_to("/")
    assert (inside / "lib").is_symlink() and os.readlink(inside / "lib") == "usr/lib"
    assert os.readlink(inside / "usr" / "lib" / "libz.so.1") == "libz.so.1.2.13"
    assert (inside / "usr" / "lib" / "libz.so.1.2.13").read_bytes() == b"ELF"
    assert (inside / "lib" / "libz.so.1").read_bytes() == b"ELF"  # resolves through both links


def test_copy_tree_skips_optimised_bytecode_and_unused_extension_modules(tmp_path: Path) -> None:
    std = tmp_path / "std"
    (std / "__pycache__").mkdir(parents=True)
    (std / "lib-dynload").mkdir()
    (std / "test").mkdir()
    for name in ("os.cpython-311.pyc", "os.cpython-311.opt-1.pyc"):
        (std / "__pycache__" / name).write_bytes(b"")
    for name in ("_ssl.cpython-311-x86_64-linux-gnu.so", "_sqlite3.cpython-311-x86_64-linux-gnu.so"):
        (std / "lib-dynload" / name).write_bytes(b"")
    (std / "test" / "test_os.py").write_text("")
    dest = tmp_path / "dest"
    rootfs.copy_tree(std, dest, rootfs.STDLIB_SKIP)
    inside = dest / std.relative_to("/")
    assert sorted(p.name for p in (inside / "__pycache__").iterdir()) == ["os.cpython-311.pyc"]
    assert sorted(p.name for p in (inside / "lib-dynload").iterdir()) == ["_ssl.cpython-311-x86_64-linux-gnu.so"]
    assert not (inside / "test").exists()


def test_duplicate_library_copies_keep_the_soname(tmp_path: Path) -> None:
    pkg = tmp_path / "site" / "pyarrow"
    pkg.mkdir(parents=True)
    for name in ("libarrow_python.so", "libarrow_python.so.2200", "libarrow_python.so.2200.0.0"):
        (pkg / name).write_bytes(b"same bytes")
    (pkg / "libother.so").write_bytes(b"different")
    (pkg / "libother.so.7").write_bytes(b"other bytes")
    freed = slim.duplicate_sonames(tmp_path / "site")
    assert freed == 2 * len(b"same bytes")
    assert sorted(p.name for p in pkg.iterdir()) == ["libarrow_python.so.2200", "libother.so", "libother.so.7"]
