"""Collect the runtime stage's whole root filesystem into one folder (run in the builder stage, stdlib only).

    python3.11 rootfs.py DEST VENV

The runtime stage is `FROM scratch` plus this folder: the interpreter and its standard library (without the
test suite, IDLE, tkinter, ensurepip and static libraries), the venv, every shared library they link
against (the `ldd` closure of the interpreter and of every extension module), the CA bundle, and a passwd
and group with the service user. No shell, no package manager, no compiler: nothing in the image can
install or build anything. The same script works on python:3.11-slim (/usr/local) and on Debian's python3.11
(/usr) because it asks the interpreter where it lives.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

UID = GID = 10001
# Standard-library parts no service imports; `config-3.11-*` holds libpython3.11.a (tens of MB).
STDLIB_SKIP = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "site-packages",
    "distutils",
    "sqlite3",
    "curses",
    "dbm",
}
STDLIB_SKIP_PREFIX = ("config-3",)
# Top-level modules no command imports (turtle needs tkinter; _pydecimal is the fallback of the C _decimal;
# pydoc stays: pyarrow.compute imports it).
STDLIB_SKIP_FILES = ("turtle", "_pydecimal", "doctest", "pdb", "mailbox", "imaplib", "nntplib")
# Extension modules of the standard library no service loads; without them their libraries (Berkeley DB,
# SQLite, ncurses, readline, NIS with Kerberos) are not in the ldd closure either.
DYNLOAD_SKIP_PREFIX = (
    "_dbm",
    "_gdbm",
    "_sqlite3",
    "_tkinter",
    "_curses",
    "readline",
    "nis",
    "_test",
    "_ctypes_test",
    "xxlimited",
    "xxsubtype",
    "_xxtestfuzz",
    "_crypt",
    "ossaudiodev",
    "audioop",
)
# glibc loads libgcc_s at thread cancellation and exit; never found by ldd.
ALWAYS = ("libgcc_s.so.1",)
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt",)


def copy_path(src: str, dest: Path) -> None:
    """Copy one file into dest at the same path, recreating every symlink met on the way (lib -> usr/lib, ...)."""
    current = Path("/")
    parts = Path(src).parts[1:]
    for i, part in enumerate(parts):
        here = current / part
        target = dest / here.relative_to("/")
        if here.is_symlink():
            link = os.readlink(here)
            if not target.is_symlink() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(link, target)
            resolved = (here.parent / link) if not os.path.isabs(link) else Path(link)
            rest = Path(*parts[i + 1 :]) if i + 1 < len(parts) else None
            copy_path(os.path.normpath(resolved / rest if rest else resolved), dest)
            return
        current = here
    target = dest / current.relative_to("/")
    if current.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    elif not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(current, target)


def copy_tree(root: Path, dest: Path, skip: set[str] = frozenset(), skip_prefix: tuple[str, ...] = ()) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in skip and not d.startswith(skip_prefix)]
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            # Optimised bytecode is never used (no -O); only the plain .pyc are kept.
            if ".opt-" in name and name.endswith(".pyc"):
                continue
            if Path(dirpath).name == "lib-dynload" and name.startswith(DYNLOAD_SKIP_PREFIX):
                continue
            if skip and name.split(".")[0] in STDLIB_SKIP_FILES and Path(dirpath) in (root, root / "__pycache__"):
                continue
            copy_path(str(Path(dirpath) / name), dest)


def shared_objects(paths: list[Path]) -> list[Path]:
    found = []
    for root in paths:
        for dirpath, _, filenames in os.walk(root):
            found += [Path(dirpath) / f for f in filenames if re.search(r"\.so(\.\d+)*$", f)]
    return found


def ldd_closure(binaries: list[Path]) -> set[str]:
    libs: set[str] = set()
    for binary in binaries:
        done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        if "not a dynamic executable" in done.stdout + done.stderr:
            continue
        for line in done.stdout.splitlines():
            if "not found" in line:
                raise SystemExit(f"rootfs: {binary} needs a library that is not installed: {line.strip()}")
            match = re.search(r"(/\S+)\s+\(0x", line)
            if match:
                libs.add(match.group(1))
    return libs


def find_library(name: str) -> str | None:
    """Where the dynamic linker finds `name` (from `ldconfig -p`: "\tname (libc6,x86-64) => /path")."""
    done = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.strip().startswith(f"{name} (") and "=>" in line:
            return line.rsplit("=>", 1)[-1].strip()
    return None


def write_accounts(dest: Path) -> None:
    etc = dest / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(
        f"root:x:0:0:root:/root:/usr/sbin/nologin\nquantumedge:x:{UID}:{GID}:quantumedge:/nonexistent:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\nquantumedge:x:{GID}:\nnogroup:x:65534:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")


def main(dest_arg: str, venv_arg: str) -> None:
    dest, venv = Path(dest_arg), Path(venv_arg)
    interpreter = Path(os.path.realpath(sys.executable))
    copy_path(sys.executable, dest)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    copy_tree(stdlib, dest, STDLIB_SKIP, STDLIB_SKIP_PREFIX)
    copy_tree(venv, dest)
    libdir = sysconfig.get_config_var("LIBDIR")
    dynload = [p for p in shared_objects([stdlib / "lib-dynload"]) if not p.name.startswith(DYNLOAD_SKIP_PREFIX)]
    binaries = [interpreter, *dynload, *shared_objects([venv])]
    libs = ldd_closure(binaries)
    libs |= {lib for name in ALWAYS if (lib := find_library(name))}
    for lib in sorted(libs):
        copy_path(lib, dest)
    for bundle in CA_BUNDLES:
        if os.path.exists(bundle):
            copy_path(bundle, dest)
    write_accounts(dest)
    for folder, mode, owner in (("tmp", 0o1777, 0), ("data", 0o755, UID), ("app", 0o755, 0)):
        path = dest / folder
        path.mkdir(exist_ok=True)
        os.chmod(path, mode)
        os.chown(path, owner, owner)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"rootfs: {len(libs)} shared libraries, interpreter {interpreter} (LIBDIR {libdir}), {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main(*sys.argv[1:3])
