"""Compiler driver: C++ source -> shared library in the private cache, once per content hash.

`build_library(source)` hashes the source with the toolchain fingerprint (toolchain.py), and if
`<cache_root>/native/<name>-<hash>.so` is missing compiles it: the source is written next to it,
the compiler writes a temporary file in the same directory and `os.replace` publishes it, so a
concurrent process never sees a half-written library. A failed compile raises `NativeBuildError`
with the source path, a copy-pasteable command (the plain one, without the PCH: it reproduces the
error on its own) and the compiler's stderr.

Precompiled header. Parsing the headers is most of a build (~1.6 of ~1.7 s CPU), so a source
whose first include is `#include <pto/pto-all.hpp>` (what the renderers emit; comments may come
before it) is built against a GCC PCH of that umbrella header:
`native_dir()/pch-<fingerprint>/pto/pto-all.hpp.gch`, passed as `-I<that dir>` ahead of the
include directory, with `-Winvalid-pch`. The PCH is built lazily, once per toolchain fingerprint
(compiler version, flags, -march=native ISA, header contents: a header edit makes a new one and
stale `pch-*` folders are removed), with exactly the library flags (`toolchain.pch_command`).
Publication is atomic: GCC writes a temporary name in the same folder, `os.link` publishes it
(never overwriting). Within a process a lock, across processes an `flock` on `pch-*/lock`,
make one builder at a time; whoever comes second finds the file and uses it.
Fallbacks, never failures: if the PCH build fails, or GCC warns that the PCH is invalid, or a
build with the PCH fails (a damaged file is a fatal GCC error) but the same build without it
succeeds, this process stops using the PCH (a rejected file is deleted, so a later process
rebuilds it) and builds plainly. `PTO_CPU_PCH=0` disables the PCH.

Counters: `stats()["native_builds"]` counts compiler invocations that build a library (a plain
retry after a build with the PCH failed counts again). Building the PCH is not a library build
and is not counted there; it is counted in `pch_stats()["pch_builds"]` (with `pch_fallbacks`,
the times this process gave up on the PCH), so `native_builds` stays "libraries compiled".
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from pto_dynamo.stats import bump as _bump_counter
from pto_dynamo.cache_dir import cache_root, check_private_dir
from pto_dynamo.ascend_backend.cpu import toolchain

_log = logging.getLogger(__name__)

_build_locks: dict[str, threading.Lock] = {}
_build_locks_guard = threading.Lock()

# fingerprint -> the folder holding pto/pto-all.hpp.gch, or None: no PCH in this process.
_pch_dirs: dict[str, Path | None] = {}
_pch_guard = threading.Lock()
_pch_counts = {"pch_builds": 0, "pch_fallbacks": 0}

# The umbrella include as the first directive of a source (comments and blank lines before it).
_UMBRELLA_FIRST = re.compile(
    r"\A(?:\s+|//[^\n]*|/\*.*?\*/)*#[ \t]*include[ \t]*" + re.escape(toolchain.UMBRELLA_INCLUDE), re.S)


class NativeBuildError(RuntimeError):
    """The C++ compiler rejected a generated source."""

    def __init__(self, message: str, source: Path, command: str, stderr: str) -> None:
        super().__init__(message)
        self.source = source
        self.command = command
        self.stderr = stderr


def native_dir() -> Path:
    """`cache_root()/native`, created private (0700) if missing."""
    path = cache_root() / "native"
    path.mkdir(mode=0o700, exist_ok=True)
    check_private_dir(path)
    return path


def source_key(source: str) -> str:
    """Content hash of a source under the current toolchain (hex, 24 chars)."""
    digest = hashlib.sha256()
    digest.update(toolchain.fingerprint().encode())
    digest.update(b"\0")
    digest.update(source.encode())
    return digest.hexdigest()[:24]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name)[:48] or "lib"


def library_path(source: str, name: str = "pto") -> Path:
    """Where the library built from `source` lives in the cache (it may not exist yet)."""
    return native_dir() / f"{_safe_name(name)}-{source_key(source)}.so"


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _lock_for(key: str) -> threading.Lock:
    with _build_locks_guard:
        return _build_locks.setdefault(key, threading.Lock())


def pch_stats() -> dict[str, int]:
    """PCH counters of this process: `pch_builds` (umbrella header precompiled), `pch_fallbacks`
    (times the PCH was given up and builds went plain)."""
    with _pch_guard:
        return dict(_pch_counts)


def uses_umbrella(source: str) -> bool:
    """Whether the first directive of `source` includes the umbrella header (so a PCH applies)."""
    return _UMBRELLA_FIRST.match(source) is not None


def pch_dir() -> Path:
    """The folder that holds `pto/pto-all.hpp.gch` for the current toolchain (it may not exist)."""
    return native_dir() / f"pch-{toolchain.fingerprint()[:24]}"


def _pch_file(folder: Path) -> Path:
    return folder / (toolchain.UMBRELLA + ".gch")


def ensure_pch() -> Path | None:
    """The PCH folder for the current toolchain, building the PCH if missing; None when the PCH is
    disabled (`PTO_CPU_PCH=0`) or unusable in this process."""
    if os.environ.get("PTO_CPU_PCH", "1") == "0":
        return None
    folder = pch_dir()
    key = str(folder)
    with _pch_guard:
        if key in _pch_dirs and (_pch_dirs[key] is None or _pch_file(folder).is_file()):
            return _pch_dirs[key]
        try:                                       # first use here, or the file vanished: (re)build
            _pch_dirs[key] = _build_pch(folder)
        except (OSError, subprocess.SubprocessError, _PchError) as exc:
            _log.warning("pto cpu: precompiled header unavailable, building without it: %s", exc)
            _pch_counts["pch_fallbacks"] += 1
            _pch_dirs[key] = None
        return _pch_dirs[key]


class _PchError(RuntimeError):
    pass


def _build_pch(folder: Path) -> Path:
    gch = _pch_file(folder)
    if gch.is_file():
        return folder
    gch.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(folder / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # one builder at a time across processes
        if gch.is_file():                          # another process built it meanwhile
            return folder
        fd, tmp = tempfile.mkstemp(dir=gch.parent, prefix=gch.name + ".", suffix=".tmp")
        os.close(fd)
        try:
            proc = subprocess.run(toolchain.pch_command(Path(tmp)), capture_output=True, encoding="utf-8",
                                  errors="replace", check=False)
            if proc.returncode != 0:
                raise _PchError(f"precompiling {toolchain.UMBRELLA} failed (exit {proc.returncode}): "
                                f"{proc.stderr.strip()[-2000:]}")
            _pch_counts["pch_builds"] += 1
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, gch)                  # atomic, never replaces a published file
            except FileExistsError:
                pass
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    _prune_stale_pch(folder)
    return folder


def _prune_stale_pch(keep: Path) -> None:
    """Remove the PCH folders of other fingerprints (78 MB each; a header edit makes a new one)."""
    for other in keep.parent.glob("pch-*"):
        if other != keep and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)


def _reject_pch(folder: Path, why: str) -> None:
    """Stop using the PCH in this process and delete the file (a later process rebuilds it)."""
    _log.warning("pto cpu: GCC rejected the precompiled header %s, building without it: %s",
                 _pch_file(folder), why.strip()[-2000:])
    with _pch_guard:
        _pch_dirs[str(folder)] = None
        _pch_counts["pch_fallbacks"] += 1
    try:
        os.unlink(_pch_file(folder))
    except OSError:
        pass


def _compile(cmd: list[str]) -> subprocess.CompletedProcess:
    _bump_counter("native_builds")
    return subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", check=False)


def build_library(source: str, name: str = "pto", *, force: bool = False) -> Path:
    """Compile `source` unless a library for its content hash is already cached; return its path.

    `name` only makes the file name readable (e.g. the graph and region). `force` rebuilds even if
    the cached file exists (used when a cached file fails to load).
    """
    so_path = library_path(source, name)
    with _lock_for(so_path.name):
        if so_path.exists() and not force:
            return so_path
        src_path = so_path.with_suffix(".cpp")
        _write_atomic(src_path, source.encode())
        fd, tmp = tempfile.mkstemp(dir=so_path.parent, prefix=so_path.name + ".", suffix=".tmp")
        os.close(fd)
        try:
            pch = ensure_pch() if uses_umbrella(source) else None
            proc = _compile(toolchain.compile_command(src_path, Path(tmp), pch))
            if pch is not None and proc.returncode == 0 and "-Winvalid-pch" in proc.stderr:
                _reject_pch(pch, proc.stderr)      # built correctly from the headers, PCH unused
            elif pch is not None and proc.returncode != 0:
                plain = _compile(toolchain.compile_command(src_path, Path(tmp)))
                if plain.returncode == 0:          # the PCH was at fault (e.g. a damaged file)
                    _reject_pch(pch, proc.stderr)
                proc = plain
            if proc.returncode != 0:
                repro = shlex.join(toolchain.compile_command(src_path, so_path))
                raise NativeBuildError(
                    f"pto cpu: C++ compilation failed (exit {proc.returncode}) for source {src_path}\n"
                    f"reproduce with:\n  {repro}\n\ncompiler output:\n{proc.stderr.strip()}",
                    src_path, repro, proc.stderr)
            os.chmod(tmp, 0o700)
            os.replace(tmp, so_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return so_path


def build_libraries(items: Sequence[tuple[str, str]]) -> list[Path]:
    """`build_library(source, name)` for each item, one compiler process per core at a time (a
    graph's regions are independent translation units); the first failure raises."""
    if len(items) <= 1:
        return [build_library(source, name) for source, name in items]
    if any(uses_umbrella(source) for source, _ in items):
        ensure_pch()                               # once, before the builds that share it
    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda item: build_library(*item), items))
