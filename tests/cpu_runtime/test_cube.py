"""TMATMUL GEMM (pto_isa.md §4 shape, ragged), MGATHER and MSCATTER on the CPU target, against torch."""
from __future__ import annotations

import pytest
import torch

from pto_dynamo.ascend_backend.cpu import load_region
from tests.cpu_runtime.conftest import build_kernels


@pytest.fixture(scope="module")
def lib(cache_dir):
    return build_kernels("cube")


@pytest.mark.parametrize("M,K,N", [(32, 64, 32), (1, 1, 1), (45, 70, 33), (100, 130, 97), (7, 200, 64)])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("block_num", [1, 3, 64])
def test_gemm_f32(lib, num_threads, M, K, N, trans_b, block_num):
    a = torch.randn(M, K)
    b = torch.randn(N, K) if trans_b else torch.randn(K, N)
    c = torch.full((M, N), float("nan"))
    load_region(lib, "region_gemm_f32", block_num)([a, b, c], [M, K, N, trans_b])
    expected = a @ (b.t() if trans_b else b)
    torch.testing.assert_close(c, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("M,K,N", [(1, 70, 33), (3, 200, 64), (5, 40, 7), (45, 70, 33), (100, 130, 97)])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gemm_in_place_operands(lib, num_threads, M, K, N, trans_b, dtype):
    """TLOAD with LoadHint::InPlace: the Mat tiles keep views of a and b, TEXTRACT of K panels at
    an offset passes them on, TMATMUL reads through them (b^T by columns: the copying kernel's
    result bit for bit; b by rows: other kernels, eager's result within rounding)."""
    a = torch.randn(M, K).to(dtype)
    b = (torch.randn(N, K) if trans_b else torch.randn(K, N)).to(dtype)
    name = "f32" if dtype == torch.float32 else "bf16"
    results = []
    for kernel in (f"region_gemm_in_place_{name}", f"region_gemm_{name}"):
        c = torch.full((M, N), float("nan"), dtype=dtype)
        load_region(lib, kernel, 3)([a, b, c], [M, K, N, trans_b])
        results.append(c)
    if trans_b:
        assert torch.equal(results[0], results[1])
    expected = (a.float() @ (b.float().t() if trans_b else b.float())).to(dtype)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=8e-3, atol=2e-2)
    torch.testing.assert_close(results[0], expected, **tol)


@pytest.mark.parametrize("M,K,N", [(32, 16, 32), (64, 48, 96)])
def test_gemm_isa_example(lib, M, K, N):
    a, b = torch.randn(M, K), torch.randn(K, N)
    c = torch.empty(M, N)
    load_region(lib, "region_gemm_isa_example", 3)([a, b, c], [M, K, N])
    torch.testing.assert_close(c, a @ b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("M,K,N", [(64, 64, 64), (37, 90, 50)])
def test_gemm_bf16_accumulates_in_fp32(lib, M, K, N):
    a, b = torch.randn(M, K).bfloat16(), torch.randn(K, N).bfloat16()
    c = torch.empty(M, N, dtype=torch.bfloat16)
    load_region(lib, "region_gemm_bf16", 3)([a, b, c], [M, K, N, 0])
    expected = (a.float() @ b.float()).bfloat16()   # fp32 accumulate, one rounding
    torch.testing.assert_close(c, expected, rtol=8e-3, atol=1e-2)


@pytest.mark.parametrize("n,width", [(1, 8), (37, 64), (50, 20)])
def test_mgather(lib, n, width):
    table_rows = 23
    table = torch.randn(table_rows, width)
    idx = torch.randint(0, table_rows, (n,), dtype=torch.int32)
    idx2 = torch.randint(-5, table_rows * width + 5, (n, width), dtype=torch.int32)   # out of range: clamped
    out, out2 = torch.empty(n, width), torch.empty(n, width)
    load_region(lib, "region_gather", 3)([table, idx, idx2, out, out2], [n, table_rows, width])
    assert torch.equal(out, table[idx.long()])
    assert torch.equal(out2, table.flatten()[idx2.long().clamp(0, table_rows * width - 1)])


@pytest.mark.parametrize("block_num", [1, 64])
def test_mscatter_add(lib, num_threads, block_num):
    n, table_rows, width = 300, 7, 40
    table = torch.randn(table_rows, width)
    src = torch.randn(n, width)
    idx = torch.randint(0, table_rows, (n,), dtype=torch.int32)
    expected = table.index_add(0, idx.long(), src)
    load_region(lib, "region_scatter_add", block_num)([table, src, idx], [n, table_rows, width])
    torch.testing.assert_close(table, expected, rtol=1e-5, atol=1e-4)
