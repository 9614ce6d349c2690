"""Compiled graphs keyed by their dynamic-shape signature (DESIGN.md "Cache").

Signature = canonical graph text (symbols by name) + every input's dtype, shape pattern and stride
pattern (both in the canonical text) + options + versions (a hash of pto_dynamo's own sources,
torch's version). Calls that differ only in the values of dynamic dims share one signature.
"""
from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

import torch

from pto_dynamo.graph.ir import Graph, TensorMeta
from pto_dynamo.graph.printer import canonical_text, format_value
from pto_dynamo.options import PtoOptions

FORMAT_VERSION = 1


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """sha256 over pto_dynamo's own source files (Python and C++ headers)."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".hpp", ".h") and p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def signature(graph: Graph, options: PtoOptions) -> str:
    """The dynamic-shape signature of `graph` compiled with `options` (hex sha256)."""
    strides = ";".join(format_value(i.meta.stride) if isinstance(i.meta, TensorMeta) else "-" for i in graph.inputs)
    text = "\n".join([f"format={FORMAT_VERSION}", f"pto={source_hash()}", f"torch={torch.__version__}",
                      f"options={options.cache_key()}", f"strides={strides}", canonical_text(graph)])
    return hashlib.sha256(text.encode()).hexdigest()


class MemoryCache:
    """signature -> compiled artifact, for the life of the process."""

    def __init__(self) -> None:
        self._table: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            return self._table.get(key)

    def put(self, key: str, value) -> None:
        with self._lock:
            self._table[key] = value

    def values(self) -> list:
        with self._lock:
            return list(self._table.values())

    def clear(self) -> None:
        with self._lock:
            self._table.clear()


MEMORY_CACHE = MemoryCache()
