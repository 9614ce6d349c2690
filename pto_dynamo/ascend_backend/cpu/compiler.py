"""Compiler driver: C++ source -> shared library in the private cache, once per content hash.

`build_library(source)` hashes the source with the toolchain fingerprint (toolchain.py), and if
`<cache_root>/native/<name>-<hash>.so` is missing compiles it: the source is written next to it,
the compiler writes a temporary file in the same directory and `os.replace` publishes it, so a
concurrent process never sees a half-written library. Every compiler invocation bumps
`stats()["native_builds"]`. A failed compile raises `NativeBuildError` with the source path, a
copy-pasteable command and the compiler's stderr.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import tempfile
import threading
from pathlib import Path

from pto_dynamo.stats import bump as _bump_counter
from pto_dynamo.cache_dir import cache_root, check_private_dir
from pto_dynamo.ascend_backend.cpu import toolchain

_build_locks: dict[str, threading.Lock] = {}
_build_locks_guard = threading.Lock()


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
            cmd = toolchain.compile_command(src_path, Path(tmp))
            _bump_counter("native_builds")
            proc = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", check=False)
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
