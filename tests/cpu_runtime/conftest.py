"""Fixtures of the cpu runtime tests: a private temporary cache, and libraries built once per module."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

KERNELS = Path(__file__).resolve().parent / "kernels"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A fresh PTO_CACHE_DIR for the module (module-scoped so built libraries are shared)."""
    path = tmp_path_factory.mktemp("pto_cache")
    path.chmod(0o700)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PTO_CACHE_DIR", str(path))
        yield path


def build_kernels(name: str):
    """Load tests/cpu_runtime/kernels/<name>.cpp through the runtime (built once per cache)."""
    from pto_dynamo.ascend_backend.cpu import load_library
    return load_library((KERNELS / f"{name}.cpp").read_text(), name)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def num_threads(request):
    """Run a test with torch (and so the kernels' OpenMP pool) at 1 and 2 threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)
