"""Process-wide counters (DESIGN.md "Conventions"): what the backend received, compiled, built and ran.

Tests assert on them so that a backend failure that silently falls back to eager fails a test.
"""
from __future__ import annotations

import copy
import threading
from typing import Any

_COUNTER_NAMES = (
    "graphs_received",      # graphs Dynamo (or aot for training) handed to the backend
    "signatures_compiled",  # dynamic-shape signatures compiled from scratch
    "native_builds",        # native library builds (C++ compiler runs; the shared precompiled header is not one)
    "memory_hits",          # signatures found in the in-memory cache
    "disk_hits",            # signatures found in the on-disk cache
    "launches",             # SPMD kernel launches executed
)

_lock = threading.Lock()
_counters: dict[str, Any] = {}


def reset_stats() -> None:
    """Zero every counter."""
    with _lock:
        _counters.clear()
        _counters.update({name: 0 for name in _COUNTER_NAMES})
        _counters["backend_seconds"] = 0.0   # wall time spent inside the backend (tracing included)
        _counters["host_nodes"] = {}   # graph name -> ops that run on the host (runtime checks excluded)
        _counters["fallback_regions"] = {}   # graph name -> device regions run by ATen (lowering failed)


def bump(name: str, amount: int = 1) -> None:
    """Add `amount` to counter `name`."""
    with _lock:
        _counters[name] += amount


def record_host_nodes(graph_name: str, count: int, fallback_regions: int = 0) -> None:
    """Record how many nodes of compiled graph `graph_name` stay on the host, and how many of its
    device regions run on the ATen reference runner because their lowering failed."""
    with _lock:
        _counters["host_nodes"][graph_name] = count
        _counters["fallback_regions"][graph_name] = fallback_regions


def stats() -> dict[str, Any]:
    """A snapshot of the counters: graphs_received, signatures_compiled, native_builds,
    memory_hits, disk_hits, launches, host_nodes (graph name -> host node count),
    fallback_regions (graph name -> device regions on the ATen fallback) and backend_seconds
    (wall time spent inside the backend)."""
    with _lock:
        return copy.deepcopy(_counters)


reset_stats()
