"""Render hand-built TilePrograms, build them with the CPU runtime, run them, and compare with the
reference interpreter and with torch: ragged tails, dynamic sizes, block_num 1/3/64, 1 and 2 threads."""
from __future__ import annotations

import pytest
import torch

from pto_dynamo.lowering.tile import BF16, F32, Distribution, interpret_region
from pto_dynamo.lowering.tile import handbuilt as hb

from ._helpers import build_region

BLOCK_NUMS = [1, 3, 64]


def _run_both(program, inputs: dict, outputs: dict, scalars: list[int], block_num: int):
    """Run the native region and the interpreter on copies; returns (native outs, interp outs)."""
    region, call = build_region(program)
    order = [t.name for t in region.tensors]
    native = {**inputs, **{k: torch.full_like(v, float("nan")) if v.is_floating_point() else v.clone()
                           for k, v in outputs.items()}}
    oracle = {**inputs, **{k: torch.full_like(v, float("nan")) if v.is_floating_point() else v.clone()
                           for k, v in outputs.items()}}
    call([native[n] for n in order], scalars, block_num)
    launches = interpret_region(region, [oracle[n] for n in order], scalars, block_num)
    assert launches == 1
    return {k: native[k] for k in outputs}, {k: oracle[k] for k in outputs}


def _close(a, b, **kw):
    torch.testing.assert_close(a, b, equal_nan=False, **kw)


@pytest.mark.parametrize("block_num", BLOCK_NUMS)
@pytest.mark.parametrize("rows,cols", [(37, 100), (1, 1), (64, 128), (5, 300)])
def test_elementwise_chain_f32(rows, cols, block_num, num_threads):
    g = torch.Generator().manual_seed(rows * 1000 + cols)
    base_x = torch.randn(rows, cols + 7, generator=g)
    x = base_x[:, :cols]                         # a strided input: x_ld = cols + 7
    y = torch.randn(rows, cols, generator=g)
    z = torch.empty(rows, cols)
    native, oracle = _run_both(hb.elementwise_chain(), {"x": x, "y": y}, {"z": z},
                               [rows, cols, x.stride(0), y.stride(0), z.stride(0)], block_num)
    expected = torch.nn.functional.silu(x * y + 0.5) - 2 * torch.sqrt(x.abs())
    _close(native["z"], oracle["z"], rtol=2e-6, atol=2e-6)
    _close(native["z"], expected)


@pytest.mark.parametrize("block_num", BLOCK_NUMS)
def test_elementwise_chain_bf16(block_num, num_threads):
    rows, cols = 19, 130
    x = torch.randn(rows, cols).to(torch.bfloat16)
    y = torch.randn(rows, cols).to(torch.bfloat16)
    z = torch.empty(rows, cols, dtype=torch.bfloat16)
    native, oracle = _run_both(hb.elementwise_chain(BF16), {"x": x, "y": y}, {"z": z},
                               [rows, cols, cols, cols, cols], block_num)
    xf, yf = x.float(), y.float()
    expected = (torch.nn.functional.silu(xf * yf + 0.5) - 2 * torch.sqrt(xf.abs())).to(torch.bfloat16)
    _close(native["z"].float(), oracle["z"].float(), rtol=8e-3, atol=8e-3)
    _close(native["z"].float(), expected.float(), rtol=1.6e-2, atol=1e-2)


@pytest.mark.parametrize("kind", ["sum", "max"])
@pytest.mark.parametrize("block_num", BLOCK_NUMS)
@pytest.mark.parametrize("rows,cols", [(37, 100), (1, 3), (16, 64), (40, 257)])
def test_row_reduce(kind, rows, cols, block_num, num_threads):
    x = torch.randn(rows, cols)
    out = torch.empty(rows)
    native, oracle = _run_both(hb.row_reduce(kind), {"x": x}, {"out": out}, [rows, cols, cols], block_num)
    expected = x.sum(dim=1) if kind == "sum" else x.amax(dim=1)
    _close(native["out"], oracle["out"], rtol=1e-5, atol=1e-5)
    _close(native["out"], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block_num", BLOCK_NUMS)
@pytest.mark.parametrize("rows,cols", [(37, 100), (1, 1), (8, 256), (13, 255)])
def test_row_softmax_one_tile_row(rows, cols, block_num, num_threads):
    x = torch.randn(rows, cols) * 4
    out = torch.empty(rows, cols)
    native, oracle = _run_both(hb.row_softmax(), {"x": x}, {"out": out}, [rows, cols, cols], block_num)
    _close(native["out"], oracle["out"], rtol=1e-5, atol=1e-6)
    _close(native["out"], torch.softmax(x, dim=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("block_num", BLOCK_NUMS)
@pytest.mark.parametrize("rows,cols", [(37, 100), (1, 1), (9, 64), (20, 513)])
def test_online_row_softmax(rows, cols, block_num, num_threads):
    x = torch.randn(rows, cols) * 4
    out = torch.empty(rows, cols)
    native, oracle = _run_both(hb.online_row_softmax(), {"x": x}, {"out": out}, [rows, cols, cols], block_num)
    _close(native["out"], oracle["out"], rtol=1e-5, atol=1e-6)
    _close(native["out"], torch.softmax(x, dim=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("block_num", BLOCK_NUMS)
@pytest.mark.parametrize("rows,cols", [(37, 100), (1, 1), (16, 64)])
def test_cast_f32_bf16_roundtrip(rows, cols, block_num, num_threads):
    x = torch.randn(rows, cols) * 100
    x[0, 0] = 1.00390625                      # a tie: rounds to even (1.0) in bf16
    out = torch.empty(rows, cols, dtype=torch.bfloat16)
    native, oracle = _run_both(hb.cast(F32, BF16), {"x": x}, {"out": out}, [rows, cols], block_num)
    assert torch.equal(native["out"], x.to(torch.bfloat16))
    assert torch.equal(native["out"], oracle["out"])
    back = torch.empty(rows, cols)
    native2, _ = _run_both(hb.cast(BF16, F32), {"x": native["out"]}, {"out": back}, [rows, cols], block_num)
    assert torch.equal(native2["out"], x.to(torch.bfloat16).float())


@pytest.mark.parametrize("block_num", BLOCK_NUMS)
@pytest.mark.parametrize("rows,cols", [(37, 100), (1, 1), (16, 64), (3, 200)])
def test_row_and_col_broadcasts(rows, cols, block_num, num_threads):
    x, rv, cw = torch.randn(rows, cols), torch.randn(rows), torch.randn(cols)
    outs = {f"out{i}": torch.empty(rows, cols) for i in (1, 2, 3)}
    native, oracle = _run_both(hb.broadcasts(), {"x": x, "rv": rv, "cw": cw}, outs, [rows, cols], block_num)
    expected = {"out1": (x - rv[:, None]) * cw[None, :], "out2": rv[:, None] + cw[None, :],
                "out3": cw[None, :] * rv[:, None]}
    for k in outs:
        _close(native[k], oracle[k])
        _close(native[k], expected[k])


def _rmsnorm_ref(x, r, w, eps):
    y = x + r
    return y, y * torch.rsqrt(y.pow(2).mean(dim=1, keepdim=True) + eps) * w


@pytest.mark.parametrize("block_num", BLOCK_NUMS)
@pytest.mark.parametrize("T", [1, 5, 37])
def test_residual_rmsnorm_static_hidden(T, block_num, num_threads):
    D = 4096
    x, r, w = torch.randn(T, D), torch.randn(T, D), torch.randn(D)
    outs = {"y": torch.empty(T, D), "out": torch.empty(T, D)}
    native, oracle = _run_both(hb.residual_rmsnorm(D), {"x": x, "r": r, "w": w}, outs, [T], block_num)
    y, out = _rmsnorm_ref(x, r, w, 1e-6)
    _close(native["y"], y)
    _close(native["out"], oracle["out"], rtol=1e-5, atol=1e-5)
    _close(native["out"], out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block_num", [1, 3])
@pytest.mark.parametrize("T,D", [(7, 200), (2, 256), (33, 8)])
def test_residual_rmsnorm_dynamic_hidden(T, D, block_num, num_threads):
    x, r, w = torch.randn(T, D), torch.randn(T, D), torch.randn(D)
    outs = {"y": torch.empty(T, D), "out": torch.empty(T, D)}
    program = hb.residual_rmsnorm(None, cols_capacity=256, rows_per_tile=4)
    native, oracle = _run_both(program, {"x": x, "r": r, "w": w}, outs, [T, D], block_num)
    y, out = _rmsnorm_ref(x, r, w, 1e-6)
    _close(native["out"], oracle["out"], rtol=1e-5, atol=1e-5)
    _close(native["out"], out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block_num", [1, 3])
@pytest.mark.parametrize("T,D,static", [(37, 4096, True), (5, 4096, True), (7, 1000, False), (9, 300, False)])
def test_residual_rmsnorm_cache_hints(T, D, static, block_num, num_threads):
    """Streaming TSTOREs and prefetching TLOADs change no bit of the results: rows of 1000 and 300
    floats give unaligned row starts and tails (and 1200-byte rows stay below the streaming size)."""
    x, r, w = torch.randn(T, D), torch.randn(T, D), torch.randn(D)
    outs = {"y": torch.empty(T, D), "out": torch.empty(T, D)}
    plain = hb.residual_rmsnorm(D, rows_per_tile=2, distribution=Distribution.CHUNKED) if static else \
        hb.residual_rmsnorm(None, cols_capacity=1024, rows_per_tile=2, distribution=Distribution.CHUNKED)
    hinted = hb.residual_rmsnorm(D if static else None, cols_capacity=None if static else 1024, rows_per_tile=2,
                                 distribution=Distribution.CHUNKED, stream_stores=True, prefetch_next=True)
    scalars = [T] if static else [T, D]
    native, _ = _run_both(hinted, {"x": x, "r": r, "w": w}, outs, scalars, block_num)
    reference, _ = _run_both(plain, {"x": x, "r": r, "w": w}, outs, scalars, block_num)
    assert torch.equal(native["y"], reference["y"]) and torch.equal(native["out"], reference["out"])
    y, out = _rmsnorm_ref(x, r, w, 1e-6)
    _close(native["y"], y)
    _close(native["out"], out, rtol=1e-5, atol=1e-5)


def _matmul_program():
    """c[M, N] = a[M, K] @ b[K, N]: 16 x 16 output tiles over blocks, K panels of 16; the first
    panel is peeled (TMATMUL overwrites the accumulator, later panels TMATMUL_ACC)."""
    from pto_dynamo.lowering.tile import A2A3_CAPACITY, KernelBuilder, TileLoc, emod, floor_div
    M, K, N, B = 32, 48, 32, 16
    kb = KernelBuilder("pto_cube_mm_0", kind="cube", pass_name="handbuilt", description="c = a @ b")
    kb.tensor("a", F32, (M, K), (K, 1))
    kb.tensor("b", F32, (K, N), (N, 1))
    kb.tensor("c", F32, (M, N), (N, 1), output=True)
    with kb.tile_loop("t", (M // B) * (N // B)) as t:
        m0, n0 = kb.let("m0", floor_div(t, N // B) * B), kb.let("n0", emod(t, N // B) * B)
        kb.tile("acc", TileLoc.Acc, F32, B, B, B, B)
        kb.tile("l", TileLoc.Left, F32, B, B, B, B)
        kb.tile("r", TileLoc.Right, F32, B, B, B, B)
        kb.tile("ma", TileLoc.Mat, F32, B, B, B, B)
        kb.tile("mb", TileLoc.Mat, F32, B, B, B, B)

        def panel(k0, first):
            kb.emit("TLOAD", "ma", kb.view("a", m0 * K + k0, B, B, K))
            kb.emit("TLOAD", "mb", kb.view("b", k0 * N + n0, B, B, N))
            kb.emit("TMOV", "l", "ma")
            kb.emit("TMOV", "r", "mb")
            if first:
                kb.emit("TMATMUL", "acc", "l", "r")
            else:
                kb.emit("TMATMUL_ACC", "acc", "acc", "l", "r")
        panel(0, True)
        with kb.serial_loop("k", 1, K // B) as k:
            panel(k * B, False)
        kb.emit("TSTORE", kb.view("c", m0 * N + n0, B, B, N), "acc")
    return kb.build(A2A3_CAPACITY), (M, K, N)


@pytest.mark.parametrize("block_num", [1, 3])
def test_cube_matmul(block_num):
    """The cube path: GM -> Mat (TLOAD) -> Left/Right (TMOV) -> Acc (TMATMUL/TMATMUL_ACC) -> GM."""
    program, (M, K, N) = _matmul_program()
    a, b, c = torch.randn(M, K), torch.randn(K, N), torch.empty(M, N)
    native, oracle = _run_both(program, {"a": a, "b": b}, {"c": c}, [], block_num)
    _close(native["c"], oracle["c"], rtol=1e-5, atol=1e-5)
    _close(native["c"], a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block_num", BLOCK_NUMS)
@pytest.mark.parametrize("rows,cols", [(37, 100), (1, 1), (16, 64), (3, 13)])
def test_compare_select(rows, cols, block_num, num_threads):
    x, y = torch.randn(rows, cols), torch.randn(rows, cols)
    x[0, 0] = 0.0                                   # the >= boundary
    native, oracle = _run_both(hb.compare_select(), {"x": x, "y": y}, {"z": torch.empty(rows, cols)},
                               [rows, cols], block_num)
    expected = torch.where(x > y, x, y) + torch.where(x >= 0, x, torch.tensor(-1.0))
    assert torch.equal(native["z"], oracle["z"])
    _close(native["z"], expected)


@pytest.mark.parametrize("mode", ["CAST_RINT", "CAST_TRUNC"])
def test_cast_to_bf16_rounding_modes(mode):
    import dataclasses
    from pto_dynamo.lowering.tile import TileInst
    program = hb.cast(F32, BF16)
    loop = program.body[0]
    body = tuple(dataclasses.replace(s, attrs=(("round", mode),)) if isinstance(s, TileInst) and s.op == "TCVT"
                 else s for s in loop.body)
    program = dataclasses.replace(program, name=f"pto_vec_cvt_f32_bf16_{mode.lower()}_0",
                                  body=(dataclasses.replace(loop, body=body),))
    x = torch.randn(9, 70) * 3
    native, oracle = _run_both(program, {"x": x}, {"out": torch.empty(9, 70, dtype=torch.bfloat16)}, [9, 70], 3)
    assert torch.equal(native["out"], oracle["out"])
    if mode == "CAST_RINT":
        assert torch.equal(native["out"], x.to(torch.bfloat16))


def _triangle_program(upper: bool):
    """z[i, j] = 1 where j <= i + d (lower) or j >= i + d (upper), else 0: TTRI per tile with the
    diagonal shifted by the tile's origin (r0 - c0 + d), as the causal attention steps use it."""
    from pto_dynamo.lowering.tile import A2A3_CAPACITY, KernelBuilder, TileLoc, ceil_div, emin, emod, floor_div
    R, C = 16, 64
    kb = KernelBuilder(f"pto_vec_tri_{int(upper)}_0", pass_name="test", description="triangle mask")
    rows, cols, d = kb.scalar("rows"), kb.scalar("cols"), kb.scalar("d")
    kb.tensor("z", F32, (rows, cols), (cols, 1), output=True)
    col_tiles = ceil_div(cols, C)
    with kb.tile_loop("t", ceil_div(rows, R) * col_tiles) as t:
        r0, c0 = kb.let("r0", floor_div(t, col_tiles) * R), kb.let("c0", emod(t, col_tiles) * C)
        vr, vc = kb.let("vr", emin(R, rows - r0)), kb.let("vc", emin(C, cols - c0))
        kb.tile("tri", TileLoc.Vec, F32, R, C, vr, vc)
        kb.emit("TTRI", "tri", r0 - c0 + d, upper=upper)
        kb.emit("TSTORE", kb.view("z", r0 * cols + c0, vr, vc, cols), "tri")
    return kb.build(A2A3_CAPACITY)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("rows,cols,d", [(37, 100, 0), (40, 130, -5), (3, 70, 1)])
def test_triangle(upper, rows, cols, d):
    native, oracle = _run_both(_triangle_program(upper), {}, {"z": torch.empty(rows, cols)}, [rows, cols, d], 3)
    i, j = torch.arange(rows).unsqueeze(1), torch.arange(cols).unsqueeze(0)
    expected = ((j >= i + d) if upper else (j <= i + d)).float()
    assert torch.equal(native["z"], oracle["z"])
    assert torch.equal(native["z"], expected)
