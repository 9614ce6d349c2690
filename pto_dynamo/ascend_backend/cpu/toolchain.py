"""The C++ toolchain of the cpu target: compiler, flags, include directory, and its fingerprint.

The fingerprint enters every build's content hash: the compiler's version, the flags, the CPU ISA
that `-march=native` selects on this machine, and the text of every header under `include/`.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

INCLUDE_DIR = Path(__file__).resolve().parent / "include"

# docs/device_abi.md: the flags every kernel and orchestration source is built with.
# -fno-math-errno is not value-changing (it only drops errno updates) and lets GCC vectorise sqrt.
# -fno-trapping-math is not value-changing either (nothing here reads or traps on the FP exception
# flags); without it GCC will not if-convert a select between computed floats on AVX2 (no masked
# lanes there), so vexp/vlog/vtanh and every kernel using them stayed scalar on AVX2-only CPUs.
# -mprefer-vector-width=512: GCC's tuning for recent Intel cores vectorises loops 256 bits wide
# even where AVX-512 is there; 512 bits run the V-ops' loops faster (Sapphire Rapids, 1 thread:
# exp of a 64 x 64 tile 0.51 -> 0.30 ns per element, rmsnorm [256, 4096] f32 0.67x the time).
# Without AVX-512 it changes nothing.
CXX_FLAGS: tuple[str, ...] = (
    "-std=c++20", "-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno",
    "-fno-trapping-math", "-mprefer-vector-width=512",
    "-D__CPU_SIM", "-DPTO_TARGET_CPU",
)


class ToolchainError(RuntimeError):
    """No usable C++ compiler."""


@functools.lru_cache(maxsize=None)
def compiler() -> str:
    """The C++ compiler: $CXX, else g++ (absolute path)."""
    name = os.environ.get("CXX") or "g++"
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"pto cpu: C++ compiler {name!r} not found on PATH; install g++ (>= 12) or set CXX")
    return path


# The umbrella header every generated translation unit includes first (docs/device_abi.md); the
# compiler driver serves it from a precompiled header (compiler.py).
UMBRELLA = "pto/pto-all.hpp"
UMBRELLA_INCLUDE = f"<{UMBRELLA}>"


def compile_command(source: Path, output: Path, pch_dir: Path | None = None) -> list[str]:
    """The full compiler command that builds `source` into the shared library `output`.

    `pch_dir`: a directory holding `pto/pto-all.hpp.gch` (built by `pch_command`), searched before
    the include directory, so GCC loads the PCH for a source whose first include is the umbrella
    header. `-Winvalid-pch` makes GCC say when it finds the file but cannot use it.
    """
    pch = [f"-I{pch_dir}", "-Winvalid-pch"] if pch_dir is not None else []
    return [compiler(), *CXX_FLAGS, *pch, f"-I{INCLUDE_DIR}", str(source), "-o", str(output)]


def pch_command(output: Path) -> list[str]:
    """The command that precompiles the umbrella header into `output` with exactly the flags of
    `compile_command` (GCC rejects a PCH built with other code-generation flags)."""
    return [compiler(), *CXX_FLAGS, f"-I{INCLUDE_DIR}", "-x", "c++-header", str(INCLUDE_DIR / UMBRELLA),
            "-o", str(output)]


def _run(args: list[str]) -> str:
    return subprocess.run(args, capture_output=True, encoding="utf-8", errors="replace", check=False).stdout


@functools.lru_cache(maxsize=None)
def native_isa() -> str:
    """The target options -march=native enables here (`-Q --help=target`, enabled entries)."""
    out = _run([compiler(), "-march=native", "-Q", "--help=target"])
    keep = [line.split() for line in out.splitlines() if "[enabled]" in line or line.strip().startswith("-march=")]
    return " ".join(" ".join(parts) for parts in keep)


def _headers_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(INCLUDE_DIR.rglob("*.hpp")):
        digest.update(str(path.relative_to(INCLUDE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def fingerprint() -> str:
    """Hash of compiler version, flags, native ISA and header contents (computed once per process)."""
    digest = hashlib.sha256()
    for part in (_run([compiler(), "--version"]), _run([compiler(), "-dumpfullversion"]),
                 " ".join(CXX_FLAGS), native_isa(), _headers_digest()):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()
