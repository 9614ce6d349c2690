"""The matmul family on the device (cube kernels): mm, bmm, addmm, baddbmm, linear and matmul with
batch broadcasting, in f32, bf16 and f16, with transposed operands read in place, ragged tails
over several tiles and K steps, a dynamic M, and empty products."""
import re

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import VERIFY, compiled_graphs

MATMULS = {torch.ops.aten.mm.default, torch.ops.aten.bmm.default, torch.ops.aten.addmm.default,
           torch.ops.aten.baddbmm.default}
TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-4}, torch.bfloat16: {"rtol": 1.6e-2, "atol": 5e-2},
       torch.float16: {"rtol": 1e-3, "atol": 1e-2}}

# (fn, input shapes): sizes above the cpu target's tiles (256 x 256 x 512; 16-bit K steps of 256
# where A's rows are not 2 KiB x n apart) with ragged tails, so several output tiles and K steps run.
CASES = {
    "mm": (lambda a, b: a @ b, [(37, 64), (64, 50)]),
    "mm_ragged_multi_tile": (lambda a, b: a @ b, [(300, 700), (700, 530)]),
    "linear_odd_k_ragged_packed": (lambda x, w: F.linear(x, w), [(260, 301), (75, 301)]),
    "linear_transposed_weight": (lambda x, w: F.linear(x, w), [(45, 300), (70, 300)]),
    "linear_bias_3d_input": (lambda x, w, b: F.linear(x, w, b).relu(), [(2, 9, 40), (24, 40), (24,)]),
    "transposed_left": (lambda a, b: a.t() @ b, [(60, 33), (60, 20)]),
    "bmm": (lambda a, b: torch.bmm(a, b), [(3, 17, 40), (3, 40, 29)]),
    "bmm_kt_attention_scores": (lambda q, k: q @ k.transpose(-1, -2), [(4, 19, 32), (4, 23, 32)]),
    "matmul_broadcast_batch": (lambda a, b: (a @ b).contiguous(), [(2, 3, 11, 16), (16, 7)]),
    "addmm_alpha_beta": (lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2.0), [(9, 12), (9, 20), (20, 12)]),
    "baddbmm": (lambda c, a, b: torch.baddbmm(c, a, b), [(2, 5, 6), (2, 5, 7), (2, 7, 6)]),
    "empty_k": (lambda a, b: a @ b, [(5, 0), (0, 4)]),
    "empty_m": (lambda a, b: a @ b, [(0, 8), (8, 4)]),
}
NO_HOST_NODE = {"mm", "mm_ragged_multi_tile", "transposed_left", "bmm", "addmm_alpha_beta", "baddbmm", "empty_k",
                "empty_m"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name", list(CASES))
def test_matmul_on_the_device(fresh, name, dtype):
    fn, shapes = CASES[name]
    args = [torch.randn(s).to(dtype) for s in shapes]
    out = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args)
    expected = fn(*args)
    torch.testing.assert_close(out, expected, **TOL[dtype])
    s = fresh.stats()
    assert all(n == 0 for n in s["fallback_regions"].values()), s
    (c,) = compiled_graphs()
    host = {c.graph.node_by_name[n].target for n, _ in c.partition.host_reasons}
    assert not host & MATMULS, host
    if name in NO_HOST_NODE:     # the others return a view of the product, a free host view
        assert all(n == 0 for n in s["host_nodes"].values()), s


def test_bf16_addmm_rounds_once(fresh):
    """addmm keeps the product in f32 until the bias is added: eager's single rounding."""
    x, w, b = torch.randn(33, 64).bfloat16(), torch.randn(48, 64).bfloat16(), torch.randn(48).bfloat16()
    out = torch.compile(lambda x, w, b: F.linear(x, w, b), backend="pto", fullgraph=True, options=VERIFY)(x, w, b)
    exact = (x.float() @ w.float().t() + b.float()).bfloat16()
    assert (out != exact).sum() <= 2, (out.float() - exact.float()).abs().max()


def test_dynamic_m_one_compile(fresh):
    """A token-count M: one compile, one cube kernel, every T (1 uses the decode dot kernel)."""
    w = torch.randn(96, 200)
    fn = torch.compile(lambda x, w: F.linear(x, w), backend="pto", fullgraph=True, options=VERIFY)
    for T in [1, 2, 7, 300]:
        x = torch.randn(T, 200)
        fresh.mark_dynamic(x, 0, name="T")
        torch.testing.assert_close(fn(x, w), F.linear(x, w), rtol=1e-4, atol=1e-4)
    s = fresh.stats()
    assert s["graphs_received"] == 1 and s["signatures_compiled"] == 1, s
    assert all(n == 0 for n in s["host_nodes"].values()) and s["host_nodes"], s
    assert all(n == 0 for n in s["fallback_regions"].values()), s
    assert s["launches"] == 4, s                                  # one cube kernel per call
    (c,) = compiled_graphs()
    assert [k for k in c.kernels_of(0)] and all(k.startswith("pto_cube_mm") for k in c.kernels_of(0)), c.kernels_of(0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_every_row_count_of_the_small_m_kernels(fresh, dtype):
    """M from 1 to 13 (the decode dot kernels and their row-block tails) and 40 (packed), odd K."""
    w = torch.randn(37, 71).to(dtype)
    fn = torch.compile(lambda x, w: F.linear(x, w), backend="pto", fullgraph=True, options=VERIFY)
    for T in [*range(1, 14), 40]:
        x = torch.randn(T, 71).to(dtype)
        fresh.mark_dynamic(x, 0, name="T")
        expected = (x.float() @ w.float().t()).to(dtype)
        torch.testing.assert_close(fn(x, w), expected, **TOL[dtype])
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["fallback_regions"].values()), s


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_few_rows_tile_loop_around_its_threshold(fresh, dtype):
    """A dynamic M holds two tile loops (cube/tiling.py): narrow long-K tiles for M <= the
    few-rows limit (FEW_ROWS; 6 rows of bf16 on the cpu target) and the big tiles above it
    (bf16 from 5 rows on AMX, where the machine has it); exactly one runs. M on both sides of the
    threshold, K over several of the long K steps with a ragged tail, N over several narrow tiles
    with a ragged tail, the weight just over FEW_ROWS_MIN_BYTES. The weight (a kernel input, transposed: a DN view into Zn
    tiles) is read in place, and so is x."""
    from pto_dynamo.lowering.cube.tiling import FEW_ROWS_MIN_BYTES, few_rows_limit, few_rows_shape
    from pto_dynamo.lowering.tile import elem_type
    from pto_dynamo.lowering.tile.capacity import CPU_CAPACITY
    few = few_rows_limit(elem_type(dtype), CPU_CAPACITY)
    _, Nt, Kt = few_rows_shape(dtype.itemsize, CPU_CAPACITY)
    K = 2 * Kt + 37
    N = max(FEW_ROWS_MIN_BYTES // (K * dtype.itemsize), 3 * Nt) + 6
    w = torch.randn(N, K).to(dtype)
    fn = torch.compile(lambda x, w: F.linear(x, w), backend="pto", fullgraph=True, options=VERIFY)
    # f32 sums of K ~ 8000 products of magnitude ~1 (results ~90) differ by summation order ~1e-3
    tol = {"rtol": 1e-3, "atol": 1e-3} if dtype == torch.float32 else TOL[dtype]
    for T in [1, 5, few, few + 1, 40]:
        x = torch.randn(T, K).to(dtype)
        fresh.mark_dynamic(x, 0, name="T")
        expected = (x.float() @ w.float().t()).to(dtype)
        torch.testing.assert_close(fn(x, w), expected, **tol)
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and s["launches"] == 5, s
    assert all(n == 0 for n in s["host_nodes"].values()) and s["host_nodes"], s
    (c,) = compiled_graphs()
    source = c.runners[0].source
    assert "t_accd_count" in source and "t_count" in source, "the kernel has no few-rows tile loop"
    loads = re.findall(r"TLOAD\(\w+, \w+, ([^)]*)\);", source)
    assert len(loads) == 8 and all("LoadHint::InPlace" in hints for hints in loads), loads


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("transposed_a", [False, True])
def test_row_major_and_transposed_operands_in_place(fresh, dtype, transposed_a):
    """Every operand of a kernel input is loaded in place, whatever its layout: x @ w with a
    row-major w (an ND view, read by rows: the few-rows kernel for M <= 4, the packed kernel or
    BLAS above), and a transposed x (a DN view, copied into the Left tile by the matmul). Results
    as eager at token counts on both sides of those thresholds, one compile."""
    w = torch.randn(300, 70).to(dtype)
    fn = torch.compile((lambda x, w: x.t() @ w) if transposed_a else (lambda x, w: x @ w), backend="pto",
                       fullgraph=True, options=VERIFY)
    for T in [1, 3, 4, 5, 7, 40]:
        x = torch.randn(300, T).to(dtype) if transposed_a else torch.randn(T, 300).to(dtype)
        fresh.mark_dynamic(x, 1 if transposed_a else 0, name="T")
        xa = x.float().t() if transposed_a else x.float()
        torch.testing.assert_close(fn(x, w), (xa @ w.float()).to(dtype), **TOL[dtype])
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["host_nodes"].values()), s
    (c,) = compiled_graphs()
    loads = re.findall(r"TLOAD\((\w+), \w+(?:, ([^)]*))?\);", c.runners[0].source)
    hints = {tile.rstrip("0"): hint for tile, hint in loads}
    assert hints == {"ma": "LoadHint::InPlace", "mb": "LoadHint::InPlace"}, loads


def test_small_weight_has_one_tile_loop(fresh):
    """A B operand under FEW_ROWS_MIN_BYTES stays in the caches: no few-rows loop (compile time)."""
    w = torch.randn(70, 300)
    fn = torch.compile(lambda x, w: F.linear(x, w), backend="pto", fullgraph=True, options=VERIFY)
    for T in [1, 40]:
        x = torch.randn(T, 300)
        fresh.mark_dynamic(x, 0, name="T")
        torch.testing.assert_close(fn(x, w), F.linear(x, w), rtol=1e-4, atol=1e-4)
    (c,) = compiled_graphs()
    assert "t_count" in c.runners[0].source and "t_accd_count" not in c.runners[0].source


def test_operand_without_unit_stride_stays_on_the_host(fresh):
    fn = torch.compile(lambda a, b: a[:, ::2] @ b[::2, ::2], backend="pto", fullgraph=True, options=VERIFY)
    a, b = torch.randn(6, 10), torch.randn(10, 8)
    torch.testing.assert_close(fn(a, b), a[:, ::2] @ b[::2, ::2])
    (c,) = compiled_graphs()
    reasons = dict(c.partition.host_reasons)
    assert any("no unit stride" in r for r in reasons.values()), reasons


def test_f32_without_host_blas_uses_the_generic_kernel():
    """PTO_CPU_BLAS=0 (or a process without libtorch_cpu's sgemm_): the generic dot kernel (on an
    AVX2-only CPU the packed kernel, as always there), same results. A fresh process, since the
    BLAS lookup happens once per loaded library."""
    import os
    import subprocess
    import sys
    script = (
        "import torch, pto_dynamo\n"
        "a, b = torch.randn(70, 300), torch.randn(90, 300)\n"
        "f = torch.compile(lambda a, b: a @ b.t(), backend='pto', fullgraph=True)\n"
        "torch.testing.assert_close(f(a, b), a @ b.t(), rtol=1e-4, atol=1e-4)\n"
        "s = pto_dynamo.stats()\n"
        "assert all(n == 0 for n in s['host_nodes'].values()) and s['launches'] == 1, s\n"
        "print('ok')\n")
    env = dict(os.environ, PTO_CPU_BLAS="0")      # the test's private cache (conftest.py)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_two_returned_views_of_one_device_result(fresh):
    """Two reinterpreting views of one device result (`y.reshape(4, -1)` and `y.contiguous().view(-1)`
    of a transposed product): each asked whether the other stays on the host, and compiling
    recursed until Python's limit. Neither can be the result's buffer: both stay free host views."""
    def fn(x):
        y = (x * 2).transpose(0, 1)
        return y, y.reshape(4, -1), y.contiguous().view(-1)[:5]
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    x = torch.randn(3, 4, 6)
    for got, want in zip(compiled(x), fn(x)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert all(n == 0 for n in fresh.stats()["fallback_regions"].values())


@pytest.mark.parametrize("returns_both", [False, True])
def test_returned_views_of_device_results_cost_nothing(fresh, returns_both):
    """A graph returning a contiguous view of a device result (a 3-d linear's `[B, T, N]` view of
    its mm, a flattened activation) computes the result straight into the returned tensor: no
    host node, no copy kernel. When the result itself is returned too, it has a tensor of its own
    and the view of it stays a (free) host view."""
    w = torch.randn(24, 40)

    def fn(x):
        y = F.linear(x, w)
        r = y.relu()
        return (y, r, r.reshape(-1)) if returns_both else (y, r.reshape(-1))
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in [1, 9]:
        x = torch.randn(2, T, 40)
        fresh.mark_dynamic(x, 1, name="T")
        for got, want in zip(compiled(x), fn(x)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and s["host_nodes"], s
    assert all(n == (1 if returns_both else 0) for n in s["host_nodes"].values()), s
    (c,) = compiled_graphs()
    assert len(c.kernels_of(0)) == 2, c.kernels_of(0)           # mm, relu: no copy kernel


def test_bf16_products_interleaved_with_atens_in_one_thread(fresh):
    """bf16 TMATMULs run on AMX tiles where the machine has them and keep their tile configuration
    loaded between calls; ATen's bf16 kernels (oneDNN's brgemm, flash attention) configure the
    same tiles their own way in the same thread. Interleaved, each stays right."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(96, 256, generator=g).bfloat16(), torch.randn(256, 160, generator=g).bfloat16()
    q, k, v = (torch.randn(1, 2, 128, 64, generator=g).bfloat16() for _ in range(3))
    f = torch.compile(lambda a, b: a @ b, backend="pto", fullgraph=True, options=VERIFY)
    ref = x.float() @ w.float()
    ref_attn = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    for _ in range(3):
        torch.testing.assert_close(f(x, w).float(), ref, rtol=2e-2, atol=5e-2)
        torch.testing.assert_close((x @ w).float(), ref, rtol=2e-2, atol=5e-2)
        torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, is_causal=True).float(), ref_attn,
                                   rtol=2e-2, atol=2e-2)
    assert sum(fresh.stats()["fallback_regions"].values()) == 0


def test_bf16_k_steps_follow_the_row_stride_of_a():
    """16-bit products take K steps of 256 where A's rows lie a static number of bytes apart that
    is not a multiple of 2 KiB (the cpu target's spread_k_step: a 32-row block of A and the AMX
    kernel's B panel then stay in L1), 512 otherwise; f32 keeps 512."""
    from pto_dynamo.lowering.cube.tiling import tile_shape
    from pto_dynamo.lowering.tile import CPU_CAPACITY
    assert tile_shape(2, CPU_CAPACITY, a_row_bytes=2816 * 2) == (256, 256, 256)
    assert tile_shape(2, CPU_CAPACITY, a_row_bytes=300 * 2)[2] == 256
    assert tile_shape(2, CPU_CAPACITY, a_row_bytes=4096 * 2) == (256, 256, 512)
    assert tile_shape(2, CPU_CAPACITY, a_row_bytes=1024 * 2)[2] == 512
    assert tile_shape(2, CPU_CAPACITY)[2] == 512                      # unknown stride
    assert tile_shape(4, CPU_CAPACITY, a_row_bytes=2816 * 4)[2] == 512


@pytest.mark.parametrize("k,k_step", [(600, 256), (1024, 512)])
def test_bf16_linear_k_steps_in_the_kernel(fresh, k, k_step):
    """The kernel of a bf16 linear steps K by the stride rule (600 = 256 + 256 + a ragged 88;
    1024 = 2 x 512) and matches eager."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(70, k, generator=g).bfloat16(), torch.randn(40, k, generator=g).bfloat16()
    f = torch.compile(lambda a, b: F.linear(a, b), backend="pto", fullgraph=True, options=VERIFY)
    torch.testing.assert_close(f(x, w).float(), F.linear(x.float(), w.float()), **TOL[torch.bfloat16])
    (c,) = compiled_graphs()
    source = c.runners[0].source
    assert set(re.findall(r"k0 \+= (\d+)", source)) == {str(k_step)}, re.findall(r"k0 \+= \d+", source)
    assert sum(fresh.stats()["fallback_regions"].values()) == 0


@pytest.mark.parametrize("T", [5, 7, 16])
@pytest.mark.parametrize("N", [40, 300])
def test_bf16_products_of_5_to_16_rows(fresh, T, N):
    """bf16 products of 5-16 rows with a static M: on a tile of 64 or more columns the AMX kernel
    takes them where the machine has it (matmul.hpp's use_amx), on a narrower one the dot
    kernels; a K that is not a multiple of 32 (AMX pads A's rows with zeros). As eager."""
    K = 1000
    x, w = torch.randn(T, K).bfloat16(), torch.randn(N, K).bfloat16()
    fn = torch.compile(lambda x, w: F.linear(x, w), backend="pto", fullgraph=True, options=VERIFY)
    torch.testing.assert_close(fn(x, w), (x.float() @ w.float().t()).bfloat16(), **TOL[torch.bfloat16])
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["host_nodes"].values()), s
