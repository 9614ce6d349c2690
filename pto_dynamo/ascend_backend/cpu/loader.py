"""Loader: shared libraries from the private cache only, each loaded once per process.

`load_library(source, name)` builds (compiler.py) if needed and returns a `NativeLibrary`; the
in-process table maps the content hash to the loaded library, so a second request for the same
source costs one dict lookup. Libraries are opened with RTLD_LOCAL: kernels of two libraries never
see each other's symbols; OpenMP binds to the libgomp already in the process (torch's).
"""
from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path

# torch first: its bundled libgomp is then the process's OpenMP runtime, and the kernels' DT_NEEDED
# libgomp.so.1 resolves to it (torch.set_num_threads governs their blocks).
import torch  # noqa: F401  (imported for its side effect)

from pto_dynamo.ascend_backend.cpu import compiler

_loaded: dict[str, "NativeLibrary"] = {}
_loaded_guard = threading.Lock()


class NativeLoadError(RuntimeError):
    """A library could not be loaded (or is not in the private cache)."""


@dataclass(frozen=True)
class NativeLibrary:
    """A loaded shared library: where it came from and its ctypes handle."""

    path: Path
    key: str
    cdll: ctypes.CDLL

    def symbol(self, name: str):
        """A fresh ctypes function object for `name` (its restype/argtypes are the caller's own);
        NativeLoadError if the library does not define it."""
        try:
            return self.cdll[name]
        except AttributeError:
            raise NativeLoadError(f"pto cpu: symbol {name!r} not found in {self.path}") from None


def _open_private(path: Path) -> ctypes.CDLL:
    native = compiler.native_dir().resolve()
    real = path.resolve()
    if real.parent != native:
        raise NativeLoadError(f"pto cpu: refusing to load {real}: shared libraries are loaded only from {native}")
    return ctypes.CDLL(str(real), mode=os.RTLD_LOCAL | os.RTLD_NOW)


def load_library(source: str, name: str = "pto") -> NativeLibrary:
    """Build `source` if needed and load it (once per process per content hash)."""
    key = compiler.source_key(source)
    lib = _loaded.get(key)
    if lib is not None:
        return lib
    with _loaded_guard:
        lib = _loaded.get(key)
        if lib is not None:
            return lib
        path = compiler.build_library(source, name)
        try:
            cdll = _open_private(path)
        except OSError:
            # A corrupt or foreign cache entry is rebuilt, never trusted.
            path = compiler.build_library(source, name, force=True)
            try:
                cdll = _open_private(path)
            except OSError as exc:
                raise NativeLoadError(f"pto cpu: cannot load {path}: {exc}") from exc
        lib = NativeLibrary(path=path, key=key, cdll=cdll)
        _loaded[key] = lib
        return lib
