"""The cpu runtime: build once per source, compile errors, launch counting, block identity,
workspace, error codes, and the OpenMP pool shared with torch."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import pto_dynamo
from pto_dynamo.ascend_backend import cpu
from pto_dynamo.ascend_backend.cpu import NativeBuildError, load_library, load_region
from pto_dynamo.ascend_backend.cpu import loader
from tests.cpu_runtime.conftest import build_kernels


@pytest.fixture(scope="module")
def lib(cache_dir):
    return build_kernels("runtime")


@pytest.mark.parametrize("block_num", [1, 3, 24, 64, 1000])
def test_every_block_runs_once_with_its_index(lib, num_threads, block_num):
    idx = torch.full((block_num,), -1, dtype=torch.int32)
    num, sub = torch.zeros_like(idx), torch.zeros_like(idx)
    load_region(lib, "region_block_ids")([idx, num, sub], [], block_num=block_num)
    assert torch.equal(idx, torch.arange(block_num, dtype=torch.int32))
    assert (num == block_num).all()
    assert (sub == 1).all()   # get_subblockid() == 0, get_subblockdim() == 1


def test_launches_are_counted(lib):
    pto_dynamo.reset_stats()
    x = torch.randn(1000)
    out = torch.empty_like(x)
    region = load_region(lib, "region_workspace", 3)
    region([x, out], [x.numel()])
    region([x, out], [x.numel()])
    assert pto_dynamo.stats()["launches"] == 4
    torch.testing.assert_close(out, x * 2 + 1)


def test_workspace_grows(lib):
    region = load_region(lib, "region_workspace", 3)
    for n in (10, 100000, 50, 300000):
        x = torch.randn(n)
        out = torch.empty_like(x)
        region([x, out], [n])
        torch.testing.assert_close(out, x * 2 + 1)


def test_negative_return_raises(lib):
    pto_dynamo.reset_stats()
    with pytest.raises(cpu.RegionError, match="region_fail.*error code -3"):
        load_region(lib, "region_fail")([], [])
    assert pto_dynamo.stats()["launches"] == 0


def test_default_block_num_and_override(lib):
    region = load_region(lib, "region_block_ids")
    assert region.block_num == cpu.DEFAULT_BLOCK_NUM
    idx = torch.full((cpu.DEFAULT_BLOCK_NUM,), -1, dtype=torch.int32)
    region([idx, torch.zeros_like(idx), torch.zeros_like(idx)], [])
    assert torch.equal(idx, torch.arange(cpu.DEFAULT_BLOCK_NUM, dtype=torch.int32))
    with pytest.raises(ValueError):
        load_region(lib, "region_block_ids", 0)


def test_unknown_symbol(lib):
    with pytest.raises(cpu.NativeLoadError, match="no_such_region"):
        load_region(lib, "no_such_region")


TINY = """#include <cstdint>
#include <pto/pto-runtime.hpp>
extern "C" __global__ AICORE void mark(int32_t* out, int32_t block_num) { out[get_block_idx()] = get_block_idx(); }
extern "C" int64_t region_mark(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(mark, bn, static_cast<int32_t*>(t[0]));
  return 1;
}
"""


def test_build_once_per_source(cache_dir, monkeypatch):
    source = TINY + "// build-once variant\n"
    pto_dynamo.reset_stats()
    first = load_library(source, "once")
    assert load_library(source, "once") is first             # in-process table
    monkeypatch.setattr(loader, "_loaded", {})                 # a new process: found on disk
    again = load_library(source, "once")
    assert again.path == first.path
    assert pto_dynamo.stats()["native_builds"] == 1
    load_library(source + "// changed\n", "once")             # another source: another build
    assert pto_dynamo.stats()["native_builds"] == 2
    assert oct(first.path.parent.stat().st_mode & 0o777) == "0o700"
    # no temporary file of these builds is left (another xdist worker may be mid-build of its own)
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith("once") and p.name.endswith(".tmp")]


def test_corrupt_cache_entry_is_rebuilt(cache_dir, monkeypatch):
    source = TINY + "// corrupt variant\n"
    path = cpu.compiler.library_path(source, "corrupt")
    path.write_bytes(b"not an ELF file")
    path.chmod(0o700)
    pto_dynamo.reset_stats()
    lib2 = load_library(source, "corrupt")
    assert pto_dynamo.stats()["native_builds"] == 1
    idx = torch.full((5,), -1, dtype=torch.int32)
    load_region(lib2, "region_mark", 5)([idx], [])
    assert torch.equal(idx, torch.arange(5, dtype=torch.int32))


def test_compile_error_message_has_source_and_command(cache_dir):
    source = '#include <pto/pto-inst.hpp>\nextern "C" void broken() { this_is_not_declared(1); }\n'
    with pytest.raises(NativeBuildError) as info:
        load_library(source, "broken")
    message = str(info.value)
    src_path = info.value.source
    assert str(src_path) in message and src_path.exists()
    assert "this_is_not_declared" in message                  # the compiler's stderr
    assert info.value.command in message
    # The command is copy-pasteable: running it reproduces the error.
    rerun = subprocess.run(info.value.command, shell=True, capture_output=True, text=True)
    assert rerun.returncode != 0 and "this_is_not_declared" in rerun.stderr


def test_openmp_pool_is_torchs(lib):
    """The library binds to torch's libgomp, so torch.set_num_threads governs its blocks."""
    before = torch.get_num_threads()
    out = torch.zeros(2, dtype=torch.int32)
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            load_region(lib, "region_omp_threads")([out], [])
            assert out[0].item() == n
            assert 1 <= out[1].item() <= n
    finally:
        torch.set_num_threads(before)
    gomps = {line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line}
    assert len(gomps) == 1, gomps


def test_stream_triad_runs(cache_dir):
    from pto_dynamo.ascend_backend.cpu import stream
    gbps = stream.triad_gbps(n=1 << 20, threads=1, repeats=3)
    assert 0.1 < gbps < 10000


CONTRACT_VIOLATION = """#include <cstdint>
#include <pto/pto-inst.hpp>
#include <pto/pto-runtime.hpp>
using namespace pto;
extern "C" __global__ AICORE void bad_load(float* x, int32_t block_num) {
  Tile<TileType::Vec, float, 8, 64, BLayout::RowMajor, DYNAMIC, DYNAMIC> t(4, 64);
  TASSIGN(t, 0);
  GlobalTensor<float, Shape<1, 1, 1, DYNAMIC, DYNAMIC>, Stride<1, 1, 1, DYNAMIC, 1>> g(x, {5, 64}, {64});
  TLOAD(t, g);   // GM shape 5 x 64 != tile valid region 4 x 64
}
extern "C" int64_t region_bad(void* const* t, const int64_t*, int32_t bn) {
  PTO_LAUNCH(bad_load, bn, static_cast<float*>(t[0]));
  return 1;
}
"""


def test_contract_violation_aborts_with_message(cache_dir):
    """A kernel that breaks the TLOAD contract stops the process with a message naming it."""
    script = (
        "import torch\n"
        "from pto_dynamo.ascend_backend.cpu import load_library, load_region\n"
        f"lib = load_library({CONTRACT_VIOLATION!r}, 'bad')\n"
        "load_region(lib, 'region_bad', 1)([torch.zeros(8, 64)], [])\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PTO_CACHE_DIR": str(cache_dir)})
    assert proc.returncode != 0
    assert "TLOAD/TSTORE (ND): GM shape" in proc.stderr
