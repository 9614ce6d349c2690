"""TSTORE AtomicAdd, TLOAD pad values, TCVT to int32, fp16 V-ops, DN loads into ColMajor tiles,
TMOV with conversion and TEXPANDS on the CPU target, against torch."""
from __future__ import annotations

import pytest
import torch

from pto_dynamo.ascend_backend.cpu import load_region
from tests.cpu_runtime.conftest import build_kernels


@pytest.fixture(scope="module")
def lib(cache_dir):
    return build_kernels("misc")


@pytest.mark.parametrize("block_num", [1, 3, 64])
def test_tstore_atomic_add(lib, num_threads, block_num):
    n = 8 * 40
    x = torch.randint(-4, 5, (n, 64)).float()       # small integers: the sum is exact in any order
    out = torch.ones(8, 64)
    load_region(lib, "region_atomic", block_num)([x, out], [n])
    assert torch.equal(out, 1 + x.view(-1, 8, 64).sum(0))


@pytest.mark.parametrize("pad,fill", [(0, 0.0), (1, float("inf")), (2, -float("inf"))])
def test_tload_pad_value(lib, pad, fill):
    vr, vc = 5, 37
    x = torch.randn(vr, vc)
    out = torch.empty(8, 64)
    load_region(lib, "region_pad", 1)([x, out], [vr, vc, pad])
    expected = torch.full((8, 64), fill)
    expected[:vr, :vc] = x
    assert torch.equal(out, expected)


@pytest.mark.parametrize("mode,ref", [
    (1, torch.round),                                            # CAST_RINT: half to even
    (2, lambda x: torch.sign(x) * torch.floor(x.abs() + 0.5)),   # CAST_ROUND: half away from zero
    (3, torch.floor), (4, torch.ceil), (5, torch.trunc)])
def test_tcvt_float_to_int32(lib, mode, ref):
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -1.7, 1.7, 3.2, -3.2, 0.0, 1e6 + 0.5, 7.49, -7.51])
    out = torch.empty(x.shape, dtype=torch.int32)
    load_region(lib, "region_cvt_i32", 1)([x, out], [x.numel(), mode])
    assert torch.equal(out, ref(x).to(torch.int32))


def test_half_ops(lib):
    rows, cols = 37, 64
    x, y = (torch.randn(rows, cols) * 0.5).half(), (torch.randn(rows, cols) * 0.5).half()
    out = torch.empty_like(x)
    load_region(lib, "region_half", 3)([x, y, out], [rows, cols])
    expected = (torch.exp((x.float() + y.float()).half().float()).half().float() * 0.5).half()   # rounds per instruction
    assert torch.equal(out, expected)


@pytest.mark.parametrize("rows,cols", [(16, 32), (5, 7)])
def test_dn_load_colmajor_tile_and_tmov(lib, rows, cols):
    x = torch.randn(cols, rows)            # row-major cols x rows, viewed as rows x cols through DN
    out = torch.empty(rows, cols, dtype=torch.bfloat16)
    out2 = torch.empty(rows, cols)
    load_region(lib, "region_dn_mov", 1)([x, out, out2], [rows, cols])
    assert torch.equal(out, x.t().bfloat16())
    assert torch.equal(out2, torch.full((rows, cols), 3.0))


def test_int32_vops_and_static_tassign(lib):
    n = 45
    x = torch.randint(-50, 50, (n,), dtype=torch.int32)
    y = torch.randint(-50, 50, (n,), dtype=torch.int32)
    out = torch.empty_like(x)
    load_region(lib, "region_int_ops", 1)([x, y, out], [n])
    assert torch.equal(out, torch.clamp(x + y, min=3) * 2 - x)


@pytest.mark.parametrize("M,K,N", [(32, 64, 32), (5, 17, 9)])
def test_matmul_bias(lib, M, K, N):
    a, b, bias = torch.randn(M, K), torch.randn(K, N), torch.randn(N)
    out = torch.empty(M, N)
    load_region(lib, "region_matmul_bias", 1)([a, b, bias, out], [M, K, N])
    torch.testing.assert_close(out, a @ b + bias, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("hint", [0, 1, 2, 3])
@pytest.mark.parametrize("rows,cols,offset", [(9, 2048, 0), (9, 2048, 1), (6, 1000, 3), (5, 300, 5), (3, 17, 1)])
def test_cache_hinted_tload_tstore(lib, num_threads, dtype, hint, rows, cols, offset):
    """TLOAD(..., LoadHint::PrefetchNext) and TSTORE(..., StoreHint::Stream) copy exactly, whatever
    the row length (streamed or not), destination alignment (offset elements) and element size;
    neighbours of the destination rows stay untouched."""
    ld_out, ld_x = cols + 2 * offset + 3, cols + offset
    x = torch.randn(rows, ld_x).to(dtype)[:, offset:]
    buf = torch.full((rows * ld_out + 64,), 7.0).to(dtype)
    out = buf[offset:offset + rows * ld_out].view(rows, ld_out)[:, :cols]
    name = "region_hinted_copy_f32" if dtype == torch.float32 else "region_hinted_copy_bf16"
    load_region(lib, name, 3)([x, out], [rows, cols, ld_out, ld_x, hint])
    assert torch.equal(out, x)
    untouched = torch.ones_like(buf, dtype=torch.bool)
    untouched[offset:offset + rows * ld_out].view(rows, ld_out)[:, :cols] = False
    assert bool((buf[untouched] == 7.0).all())
