"""Fixtures of the cpu runtime tests: a private temporary cache, and libraries built once per module."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

KERNELS = Path(__file__).resolve().parent / "kernels"


@pytest.fixture(scope="session")
def shared_pch_root(request, tmp_path_factory):
    """Where the precompiled header of the run lives: the session's shared native folder when the
    top-level conftest provides one, else a folder of our own (the PCH is built once per run)."""
    try:
        return Path(request.getfixturevalue("_session_native_dir"))
    except pytest.FixtureLookupError:
        path = tmp_path_factory.mktemp("pto_pch")
        path.chmod(0o700)
        return path


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, shared_pch_root):
    """A fresh PTO_CACHE_DIR for the module (module-scoped so built libraries are shared); only its
    precompiled-header folder is the run's shared one (a symlink), so the PCH is built once."""
    from pto_dynamo.ascend_backend.cpu import toolchain
    path = tmp_path_factory.mktemp("pto_cache")
    path.chmod(0o700)
    (path / "native").mkdir(mode=0o700)
    pch = f"pch-{toolchain.fingerprint()[:24]}"
    (shared_pch_root / pch).mkdir(mode=0o700, exist_ok=True)
    (path / "native" / pch).symlink_to(shared_pch_root / pch, target_is_directory=True)
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
