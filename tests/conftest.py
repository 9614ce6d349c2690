"""Shared test fixtures: a private temporary PTO_CACHE_DIR, fresh Dynamo state and counters."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))          # `examples.*` models


def pytest_collection_modifyitems(config, items):
    """The tests marked slow run first, the whole-model ones (the longest) first of all: on two
    xdist workers the long ones start at once and the short ones fill in around them (the run
    ends when its last test does)."""
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, "tests/models/" not in item.nodeid))


@pytest.fixture(scope="session")
def _session_native_dir(tmp_path_factory):
    """The run's native/ folder: one per run, shared by pytest-xdist's workers (`make test` runs
    two), whose builds publish atomically and whose PCH build takes a file lock."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent                 # the workers' common basetemp
    native = base / "pto_native"
    native.mkdir(mode=0o700, exist_ok=True)
    return native


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, _session_native_dir, monkeypatch):
    """A private temporary PTO_CACHE_DIR per test (graph entries never leak between tests) whose
    native/ folder is shared by the session, so a kernel source is compiled once per run."""
    cache = tmp_path_factory.mktemp("pto_cache")
    cache.chmod(0o700)
    (cache / "native").symlink_to(_session_native_dir, target_is_directory=True)
    monkeypatch.setenv("PTO_CACHE_DIR", str(cache))
    monkeypatch.delenv("PTO_DEBUG_DIR", raising=False)


@pytest.fixture
def fresh():
    """Reset Dynamo, the in-memory cache and the counters; returns pto_dynamo."""
    import pto_dynamo
    from pto_dynamo.cache import MEMORY_CACHE
    torch._dynamo.reset()
    MEMORY_CACHE.clear()
    pto_dynamo.reset_stats()
    yield pto_dynamo
    torch._dynamo.reset()


VERIFY = {"verify": True}


def compiled_graphs():
    """Every CompiledGraph in the in-memory cache (oldest first)."""
    from pto_dynamo.cache import MEMORY_CACHE
    return MEMORY_CACHE.values()


def check_dynamic(fresh, fn, make, Ts=(1, 5, 33), tol=None, exact=False, signatures=1, name=None):
    """Compile `fn` once and call it at every T in Ts with `make(T)`'s inputs (dim 0 of each marked
    dynamic, all with `name` when given: then they are one dim); compare every output with eager
    (dtype, shape, values: `exact`, or `tol`); assert `signatures` compiles and no host node or
    fallback region. Returns the stats."""
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in Ts:
        args = make(T)
        for a in args:
            fresh.mark_dynamic(a, 0, name=name)
        with torch.no_grad():
            got, want = compiled(*args), fn(*args)
        for g, w in zip(*(o if isinstance(o, tuple) else (o,) for o in (got, want))):
            assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, w.dtype, g.shape, w.shape)
            if exact:
                torch.testing.assert_close(g, w, rtol=0, atol=0, equal_nan=True)
            else:
                torch.testing.assert_close(g, w, equal_nan=True, **(tol or {}))
    s = fresh.stats()
    assert s["graphs_received"] >= 1 and s["signatures_compiled"] == signatures, s
    assert_on_device(s)
    return s


def assert_on_device(s: dict) -> None:
    """`stats()` say every compiled graph ran with no host node and no region on the ATen fallback."""
    assert all(n == 0 for n in s["host_nodes"].values()), s
    assert all(n == 0 for n in s["fallback_regions"].values()), s
