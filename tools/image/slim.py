"""Cut from the image's venv what no command of the image imports, and print what each cut saved.

    python slim.py /opt/venv /path/to/uv

Measured: pyarrow carries Arrow Flight (28 MB, never imported; Substrait stays, Acero links it), its C++
headers and Cython sources, a test suite and three byte-identical copies of each libarrow_python*.so; onnx
carries 15 MB of backend test data; numpy and others ship their tests; Pygments and markdown-it (rich's
syntax highlighting and Markdown) are not used by any command; the openai client carries every OpenAI API
family while the moderator makes chat-completions calls only (tools/image/openai_probe.py checks those after
the cut); onnx ships the C++ sources of its operator definitions. Third-party modules then keep only their
bytecode (see sourceless()).
Shared libraries are stripped of their symbol tables when `strip` is available (the builder's base decides)
and they still load afterwards. The build then imports every service and runs each command's --help in the
final stage, so a cut that broke an import fails the build.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

UNUSED_DISTRIBUTIONS = ("pygments", "markdown-it-py", "mdurl")
OPENAI_UNUSED_FAMILIES = (
    "admin",
    "audio",
    "beta",
    "containers",
    "conversations",
    "evals",
    "fine_tuning",
    "live",
    "realtime",
    "safety",
    "skills",
    "uploads",
    "vector_stores",
    "webhooks",
)
UNUSED_PATHS = (
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/tests",
    "pyarrow/_flight.*.so",
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/flight.py",
    "pyarrow/_pyarrow_cpp_tests.*.so",
    "pyarrow/*.pyx",
    "pyarrow/*.pxd",
    "pyarrow/*.pxi",
    "pyarrow/**/*.pxd",
    "onnx/backend/test",
    "onnx/*.proto",
    "onnx/*.proto3",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    # ONNX Runtime's C API library (35 MB) is for C/C++ callers: the Python binding links the runtime itself.
    "onnxruntime/capi/libonnxruntime.so*",
    "numpy/_core/_simd.*.so",
    "numpy/_core/_*_tests.*.so",
    "onnx/reference",
    "pydantic/v1",
    # Parquet encryption and Feather: not used by any command (CSV and JSON stay: pyarrow.dataset links them).
    "pyarrow/*parquet_encryption*",
    "pyarrow/_feather.*.so",
    "numpy/_core/include",
    "numpy/f2py",
    # Remote filesystems and ORC: imported by pyarrow only on demand, inside try/except ImportError.
    "pyarrow/_azurefs.*.so",
    "pyarrow/_gcsfs.*.so",
    "pyarrow/_hdfs.*.so",
    "pyarrow/_s3fs.*.so",
    "pyarrow/_orc.*.so",
    "pyarrow/_dataset_orc.*.so",
    # numpy.distutils is a build tool (deprecated, removed in numpy for Python >= 3.12): nothing imports it.
    "numpy/distutils",
    # C/C++ sources and headers shipped next to compiled modules (onnx's operator definitions, wrapt, ...):
    # nothing compiles in the image, and the compiled modules never read them.
    "**/*.c",
    "**/*.cc",
    "**/*.cpp",
    "**/*.h",
    "**/*.hpp",
    # The openai client's other API families: the moderator makes one chat-completions call, and importing
    # openai, building a client and calling chat.completions (200, 429, 500, refused connection) loads none of
    # these subpackages. tools/image/openai_probe.py repeats those calls in the build after the cut.
    *(f"openai/{part}/{family}" for part in ("resources", "types") for family in OPENAI_UNUSED_FAMILIES),
    # openai.types.responses stays: openai.types imports it.
    "openai/resources/responses",
    "openai/lib/beta",
    "openai/lib/live",
    "openai/lib/responses_websocket",
    # Loaded only on attribute access (numpy's lazy submodules) and used by no command, nor by pyarrow, onnx or
    # onnxruntime at run time.
    "numpy/fft",
    "numpy/polynomial",
    # ONNX Runtime's offline tools (model conversion, shape inference scripts): onnxruntime never imports them.
    "onnxruntime/tools",
    # kafka-python's command line and benchmarks (python -m kafka...): the services use the library only.
    "kafka/cli",
    "kafka/benchmarks",
    "kafka/__main__.py",
    "kafka/admin/__main__.py",
    "kafka/consumer/__main__.py",
    "kafka/producer/__main__.py",
    # Static libraries and the protobuf schemas' sources: nothing links or compiles in the image, and the
    # generated *_pb2 modules carry the descriptors they need.
    "**/*.a",
    "**/*.proto",
    "**/*.pyx",
    "**/*.pxd",
    "**/tests",
    "**/*.pyi",
)


def size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())


def drop(path: Path) -> int:
    freed = size(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    return freed


def duplicate_sonames(site: Path) -> int:
    """libX.so and libX.so.N.M.K next to the libX.so.N the loader asks for, byte for byte the same: keep libX.so.N."""
    freed = 0
    for keep in site.glob("*/lib*.so.[0-9]*"):
        if keep.name.count(".so.") != 1 or not keep.name.split(".so.")[1].isdigit():
            continue
        base = keep.name.split(".so.")[0]
        for other in [keep.parent / f"{base}.so", *keep.parent.glob(f"{base}.so.{keep.name.split('.so.')[1]}.*")]:
            if other.is_file() and not other.is_symlink() and filecmp.cmp(keep, other, shallow=False):
                freed += drop(other)
    return freed


def loads(python: Path, lib: Path) -> bool:
    """Can the dynamic linker load `lib` (in an interpreter, so extension modules find Python's symbols)?"""
    code = "import ctypes, sys; ctypes.CDLL(sys.argv[1])"
    return subprocess.run([str(python), "-c", code, str(lib)], capture_output=True, check=False).returncode == 0


def strip_libraries(site: Path, python: Path) -> int:
    """strip --strip-unneeded every shared library that still loads afterwards.

    Libraries that auditwheel vendored and patchelf rewrote (numpy.libs/*, ...) can come out of strip with
    segments the loader refuses ("ELF load command address/offset not page-aligned"): those stay unstripped.
    """
    strip = shutil.which("strip")
    if strip is None:
        return 0
    freed = 0
    for lib in [*site.rglob("*.so"), *site.rglob("*.so.[0-9]*")]:
        if lib.is_symlink() or not lib.is_file() or not loads(python, lib):
            continue
        before = lib.stat().st_size
        backup = lib.with_name(lib.name + ".unstripped")
        shutil.copy2(lib, backup)
        done = subprocess.run([strip, "--strip-unneeded", str(lib)], capture_output=True, check=False)
        if done.returncode != 0 or not loads(python, lib):
            backup.replace(lib)
            continue
        backup.unlink()
        freed += before - lib.stat().st_size
    return freed


def sourceless(site: Path, keep: tuple[str, ...] = ("quantumedge",)) -> int:
    """Third-party modules as bytecode only: X.py goes, its compiled __pycache__/X.cpython-311.pyc becomes X.pyc.

    The import system loads a .pyc that stands where its .py would (SourcelessFileLoader), so every import
    works as before and a cold start reads the same bytecode (uv compiled it at install, UV_COMPILE_BYTECODE).
    The price: a traceback through a third-party frame shows its file and line number but not the line's
    text, and inspect.getsource() fails for those modules (nothing the services run calls it). The project's
    own package keeps its sources, so its frames print in full. A module uv could not compile keeps its .py.
    """
    tag = sys.implementation.cache_tag
    freed = 0
    for source in list(site.rglob("*.py")):
        if source.relative_to(site).parts[0] in keep or ".dist-info" in source.parent.name:
            continue
        compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if compiled.is_file():
            freed += source.stat().st_size
            compiled.replace(source.with_suffix(".pyc"))
            source.unlink()
    for cache in list(site.rglob("__pycache__")):
        if cache.relative_to(site).parts[0] not in keep and not any(cache.iterdir()):
            cache.rmdir()
    return freed


def main(venv_arg: str, uv: str) -> None:
    venv = Path(venv_arg)
    (site,) = venv.glob("lib/python3*/site-packages")
    before = size(site)
    report: list[tuple[str, int]] = []
    for dist in UNUSED_DISTRIBUTIONS:
        if list(site.glob(f"{dist.replace('-', '_')}-*.dist-info")):
            was = size(site)
            # An uninstall by the installer (its RECORD), not a deletion behind its back.
            subprocess.run([uv, "pip", "uninstall", "--python", str(venv / "bin" / "python"), dist], check=True)
            report.append((f"distribution {dist}", was - size(site)))
    for pattern in UNUSED_PATHS:
        freed = sum(drop(p) for p in sorted(site.glob(pattern), reverse=True) if p.exists() or p.is_symlink())
        if freed:
            report.append((pattern, freed))
    report.append(("duplicate libX.so copies", duplicate_sonames(site)))
    report.append(("strip --strip-unneeded of *.so", strip_libraries(site, venv / "bin" / "python")))
    report.append(("third-party .py sources (their bytecode stays)", sourceless(site)))
    for what, freed in sorted(report, key=lambda r: -r[1]):
        print(f"slim: {freed / 1e6:7.1f} MB  {what}")
    print(f"slim: site-packages {before / 1e6:.0f} MB -> {size(site) / 1e6:.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
