"""The precompiled umbrella header (compiler.py): built once per toolchain, used, never a failure."""
from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
import torch

import pto_dynamo
from pto_dynamo.ascend_backend import cpu
from pto_dynamo.ascend_backend.cpu import compiler, load_library, load_region, toolchain

TINY = """// a comment before the umbrella include keeps the PCH usable
#include <pto/pto-all.hpp>
using namespace pto;
extern "C" __global__ AICORE void mark(int32_t* out, int32_t block_num) { out[get_block_idx()] = get_block_idx() + %d; }
extern "C" int64_t region_mark(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(mark, bn, static_cast<int32_t*>(t[0]));
  return 1;
}
"""


@pytest.fixture(autouse=True)
def _pch_enabled(monkeypatch):
    monkeypatch.delenv("PTO_CPU_PCH", raising=False)


def _check(lib, offset: int) -> None:
    idx = torch.full((3,), -1, dtype=torch.int32)
    load_region(lib, "region_mark", 3)([idx], [])
    assert torch.equal(idx, torch.arange(3, dtype=torch.int32) + offset)


def _fresh_cache(tmp_path: Path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("PTO_CACHE_DIR", str(cache))
    return cache


def _pch_used(pch_dir: Path, tmp_path: Path) -> bool:
    """GCC's -H trace marks a PCH it loads with '!' (and one it rejects with 'x')."""
    src = tmp_path / "probe.cpp"
    src.write_text(TINY % 0)
    cmd = toolchain.compile_command(src, tmp_path / "probe.so", pch_dir) + ["-H", "-fsyntax-only"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "invalid-pch" not in proc.stderr
    return f"! {compiler._pch_file(pch_dir)}" in proc.stderr


def test_umbrella_detection():
    assert compiler.uses_umbrella(TINY)
    assert compiler.uses_umbrella("/* c */\n\n  #include <pto/pto-all.hpp>\n")
    assert not compiler.uses_umbrella("#include <cstdint>\n#include <pto/pto-all.hpp>\n")
    assert not compiler.uses_umbrella('int x;\n#include <pto/pto-all.hpp>\n')


def test_pch_shared_built_once_and_used(cache_dir, tmp_path):
    """The module caches share one PCH (conftest): it exists after a build, and GCC loads it."""
    lib = load_library(TINY % 1, "pch_used")
    _check(lib, 1)
    folder = compiler.ensure_pch()
    assert folder is not None and compiler._pch_file(folder).is_file()
    assert _pch_used(folder, tmp_path)
    before = compiler.pch_stats()["pch_builds"]
    pto_dynamo.reset_stats()
    _check(load_library(TINY % 2, "pch_used"), 2)
    assert pto_dynamo.stats()["native_builds"] == 1           # the library only, never the PCH
    assert compiler.pch_stats()["pch_builds"] == before       # reused, not rebuilt


def test_parallel_threads_share_the_pch(cache_dir):
    errors: list[BaseException] = []
    libs: dict[int, object] = {}

    def build(k: int) -> None:
        try:
            libs[k] = load_library(TINY % (10 + k), f"pch_thread{k}")
        except BaseException as exc:   # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(2):
        _check(libs[k], 10 + k)


def test_two_builders_race_for_the_pch(tmp_path, monkeypatch):
    """Two builders start on an empty cache (threads calling the builder directly, past the
    in-process lock: only the cross-process flock orders them, as for two processes): one builds
    the PCH, the other waits and uses it."""
    _fresh_cache(tmp_path, monkeypatch)
    folder = compiler.pch_dir()
    before = compiler.pch_stats()["pch_builds"]
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(compiler._build_pch(folder))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [folder, folder]
    assert compiler.pch_stats()["pch_builds"] == before + 1
    assert [p.name for p in compiler._pch_file(folder).parent.iterdir()] == ["pto-all.hpp.gch"]   # no .tmp
    assert _pch_used(folder, tmp_path)
    for k in range(2):
        _check(load_library(TINY % (20 + k), f"race{k}"), 20 + k)


def _planted(tmp_path, monkeypatch, data: bytes) -> Path:
    """A fresh cache whose PCH file holds `data`; this process has not used it yet."""
    _fresh_cache(tmp_path, monkeypatch)
    gch = compiler._pch_file(compiler.pch_dir())
    gch.parent.mkdir(mode=0o700, parents=True)
    gch.write_bytes(data)
    return gch


@pytest.mark.parametrize("damage", ["too_short", "truncated"])
def test_corrupt_pch_falls_back(cache_dir, tmp_path, monkeypatch, damage):
    """GCC warns (-Winvalid-pch) about a too-short file and fails on a truncated one: either way
    the library is built from the headers, the bad file is deleted and the process stops using it."""
    good = compiler._pch_file(compiler.ensure_pch())
    with good.open("rb") as f:
        data = b"garbage" if damage == "too_short" else f.read(1 << 20)
    gch = _planted(tmp_path, monkeypatch, data)
    fallbacks = compiler.pch_stats()["pch_fallbacks"]
    pto_dynamo.reset_stats()
    offset = 30 if damage == "too_short" else 31          # distinct sources: loader's table is per process
    _check(load_library(TINY % offset, "pch_" + damage), offset)
    assert compiler.pch_stats()["pch_fallbacks"] == fallbacks + 1
    assert pto_dynamo.stats()["native_builds"] == (1 if damage == "too_short" else 2)   # + the plain retry
    assert not gch.exists()
    assert compiler.ensure_pch() is None                      # this process builds plainly from now on


def test_pch_build_failure_falls_back(tmp_path, monkeypatch):
    _fresh_cache(tmp_path, monkeypatch)
    monkeypatch.setattr(toolchain, "pch_command", lambda out: ["false"])
    fallbacks = compiler.pch_stats()["pch_fallbacks"]
    pto_dynamo.reset_stats()
    _check(load_library(TINY % 40, "pch_absent"), 40)
    assert compiler.pch_stats()["pch_fallbacks"] == fallbacks + 1
    assert pto_dynamo.stats()["native_builds"] == 1
    assert not compiler._pch_file(compiler.pch_dir()).exists()


def test_compile_error_with_pch_repro_command_works(cache_dir):
    """A real error in an umbrella source: the message's command (without the PCH) reproduces it."""
    source = '#include <pto/pto-all.hpp>\nextern "C" void broken() { not_declared_either(1); }\n'
    with pytest.raises(cpu.NativeBuildError) as info:
        load_library(source, "broken_pch")
    assert "not_declared_either" in str(info.value) and info.value.command in str(info.value)
    rerun = subprocess.run(info.value.command, shell=True, capture_output=True, text=True)
    assert rerun.returncode != 0 and "not_declared_either" in rerun.stderr
    assert compiler.ensure_pch() is not None                  # a source error does not disable the PCH
