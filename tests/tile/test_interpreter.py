"""The reference interpreter against torch: every instruction family, tails, both distributions,
16-bit storage with fp32 math, TLOAD padding, and the errors it reports."""
from __future__ import annotations

import pytest
import torch

from pto_dynamo.lowering.tile import (A2A3_CAPACITY, BF16, F32, I32, Distribution, InterpreterError, KernelBuilder,
                                      Layout, TileLoc, ceil_div, emin, interpret, interpret_region)
from pto_dynamo.lowering.tile import handbuilt as hb
from pto_dynamo.lowering.tile.region import single_kernel_region

Vec, ColMajor = TileLoc.Vec, Layout.ColMajor
R, C = 8, 16


def _map_kernel(body, n_in=1, dtype=F32, out_dtype=None, out_cols=None, distribution=Distribution.CYCLIC):
    """z[rows, C] = body(tiles of inputs x0..) over 8-row tiles; body(kb, vr) emits on tiles
    in0.. (loaded) and must leave its result in tile `o`."""
    kb = KernelBuilder("pto_vec_map_0")
    rows = kb.scalar("rows")
    for i in range(n_in):
        kb.tensor(f"x{i}", dtype, (rows, C), (C, 1))
    oc = out_cols or C
    kb.tensor("z", out_dtype or dtype, (rows, oc), (oc, 1), output=True)
    with kb.tile_loop("t", ceil_div(rows, R), distribution) as t:
        vr = kb.let("vr", emin(R, rows - R * t))
        for i in range(n_in):
            kb.tile(f"in{i}", Vec, dtype, R, C, vr, C)
            kb.emit("TLOAD", f"in{i}", kb.view(f"x{i}", R * C * t, vr, C, C))
        body(kb, vr)
        kb.emit("TSTORE", kb.view("z", R * oc * t, vr, oc, oc), "o")
    return kb.build(A2A3_CAPACITY)


def _run(program, *inputs, out_dtype=None, out_cols=None, block_num=3):
    rows = inputs[0].shape[0]
    dtype = out_dtype or inputs[0].dtype
    z = torch.full((rows, out_cols or C), float("nan") if dtype.is_floating_point else -1, dtype=dtype)
    interpret(program, [*inputs, z], [rows], block_num)
    return z


BINARY = {"TADD": torch.add, "TSUB": torch.sub, "TMUL": torch.mul, "TDIV": torch.div, "TMAX": torch.maximum,
          "TMIN": torch.minimum, "TPOW": torch.pow}


@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary(op):
    def body(kb, vr):
        kb.tile("o", Vec, F32, R, C, vr, C)
        kb.emit(op, "o", "in0", "in1")
    a, b = torch.rand(13, C) + 0.5, torch.rand(13, C) + 0.5
    torch.testing.assert_close(_run(_map_kernel(body, 2), a, b), BINARY[op](a, b))


SCALAR = {"TADDS": lambda x: x + 1.5, "TSUBS": lambda x: x - 1.5, "TMULS": lambda x: x * 1.5,
          "TDIVS": lambda x: x / 1.5, "TMAXS": lambda x: x.clamp_min(1.5), "TMINS": lambda x: x.clamp_max(1.5),
          "TPOWS": lambda x: x ** 1.5}


@pytest.mark.parametrize("op", sorted(SCALAR))
def test_scalar(op):
    def body(kb, vr):
        kb.tile("o", Vec, F32, R, C, vr, C)
        kb.emit(op, "o", "in0", 1.5)
    a = torch.rand(13, C) * 3
    torch.testing.assert_close(_run(_map_kernel(body), a), SCALAR[op](a))


UNARY = {"TEXP": torch.exp, "TLOG": torch.log, "TSQRT": torch.sqrt, "TRSQRT": torch.rsqrt, "TRECIP": torch.reciprocal,
         "TABS": torch.abs, "TNEG": torch.neg, "TRELU": torch.relu, "TSIGMOID": torch.sigmoid, "TTANH": torch.tanh,
         "TERF": torch.erf, "TGELU": torch.nn.functional.gelu, "TSILU": torch.nn.functional.silu,
         "TFLOOR": torch.floor, "TCEIL": torch.ceil, "TTRUNC": torch.trunc, "TROUND": torch.round, "TSIGN": torch.sign,
         "TLOG1P": torch.log1p, "TEXPM1": torch.expm1, "TSIN": torch.sin, "TCOS": torch.cos}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op):
    def body(kb, vr):
        kb.tile("o", Vec, F32, R, C, vr, C)
        kb.emit(op, "o", "in0")
    a = torch.rand(13, C) * 4 + 0.1
    if op in ("TABS", "TNEG", "TRELU", "TSIGN", "TFLOOR", "TCEIL", "TTRUNC", "TROUND"):
        a = a - 2
    torch.testing.assert_close(_run(_map_kernel(body), a), UNARY[op](a))


@pytest.mark.parametrize("op,fn", [("TROWSUM", lambda x: x.sum(1)), ("TROWMAX", lambda x: x.amax(1)),
                                   ("TROWMIN", lambda x: x.amin(1))])
def test_row_reductions_then_row_expand(op, fn):
    def body(kb, vr):
        kb.tile("s", Vec, F32, R, 1, vr, 1, ColMajor)
        kb.tile("tmp", Vec, F32, R, C, vr, C)
        kb.tile("o", Vec, F32, R, C, vr, C)
        kb.emit(op, "s", "in0", "tmp")
        kb.emit("TROWEXPAND", "o", "s")
    a = torch.randn(13, C)
    torch.testing.assert_close(_run(_map_kernel(body), a), fn(a)[:, None].expand(13, C))


@pytest.mark.parametrize("op,fn", [("TCOLSUM", lambda x: x.sum(0)), ("TCOLMAX", lambda x: x.amax(0)),
                                   ("TCOLMIN", lambda x: x.amin(0))])
def test_column_reductions_per_tile(op, fn):
    def body(kb, vr):
        kb.tile("c", Vec, F32, 1, C, 1, C)
        kb.tile("o", Vec, F32, R, C, vr, C)
        kb.emit(op, "c", "in0")
        kb.emit("TCOLEXPAND", "o", "c")
    a = torch.randn(13, C)
    expected = torch.cat([fn(a[:8]).expand(8, C), fn(a[8:]).expand(5, C)])
    torch.testing.assert_close(_run(_map_kernel(body), a), expected)


@pytest.mark.parametrize("suffix,fn", [("ADD", torch.add), ("SUB", torch.sub), ("MUL", torch.mul),
                                       ("DIV", torch.div), ("MAX", torch.maximum), ("MIN", torch.minimum)])
def test_expand_binaries(suffix, fn):
    def body(kb, vr):
        kb.tile("s", Vec, F32, R, 1, vr, 1, ColMajor)
        kb.tile("c", Vec, F32, 1, C, 1, C)
        kb.tile("tmp", Vec, F32, R, C, vr, C)
        kb.tile("o", Vec, F32, R, C, vr, C)
        kb.emit("TROWMAX", "s", "in1", "tmp")
        kb.emit("TCOLMIN", "c", "in1")
        kb.emit(f"TROWEXPAND{suffix}", "o", "in0", "s")
        kb.emit(f"TCOLEXPAND{suffix}", "o", "o", "c")
    a, b = torch.rand(8, C) + 1, torch.rand(8, C) + 1
    expected = fn(fn(a, b.amax(1, keepdim=True)), b.amin(0, keepdim=True))
    torch.testing.assert_close(_run(_map_kernel(body, 2), a, b), expected)


def test_cvt_rounding_modes_to_int():
    x = torch.tensor([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.7, -2.7] * 2] * 8)
    expected = {"CAST_RINT": torch.round(x), "CAST_ROUND": torch.sign(x) * torch.floor(x.abs() + 0.5),
                "CAST_FLOOR": torch.floor(x), "CAST_CEIL": torch.ceil(x), "CAST_TRUNC": torch.trunc(x)}
    for mode, want in expected.items():
        def body(kb, vr, mode=mode):
            kb.tile("o", Vec, I32, R, C, vr, C)
            kb.emit("TCVT", "o", "in0", round=mode)
        got = _run(_map_kernel(body, out_dtype=I32), x, out_dtype=torch.int32)
        assert torch.equal(got, want.to(torch.int32)), mode


def test_bf16_tiles_compute_in_fp32_and_round_once():
    def body(kb, vr):
        kb.tile("o", Vec, BF16, R, C, vr, C)
        kb.emit("TMUL", "o", "in0", "in1")
        kb.emit("TADDS", "o", "o", 1 / 3)      # the scalar is rounded to bf16 first
    a, b = torch.randn(13, C).bfloat16(), torch.randn(13, C).bfloat16()
    got = _run(_map_kernel(body, 2, dtype=BF16), a, b)
    third = torch.tensor(1 / 3).bfloat16().float()
    assert torch.equal(got, ((a.float() * b.float()).bfloat16().float() + third).bfloat16())


def test_fill_move_extract():
    def body(kb, vr):
        kb.tile("f", Vec, F32, R, C, vr, C)
        kb.tile("o", Vec, F32, R, C, vr, C)
        kb.emit("TEXPANDS", "f", 7.0)
        kb.emit("TMOV", "o", "f")
        kb.emit("TEXTRACT", "o", "in0", row=0, col=0)
    a = torch.randn(13, C)
    torch.testing.assert_close(_run(_map_kernel(body), a), a)


def test_matmul_and_accumulate():
    kb = KernelBuilder("pto_cube_mm_0")
    kb.tensor("a", F32, (16, 16), (16, 1))
    kb.tensor("b", F32, (16, 16), (16, 1))
    kb.tensor("c", F32, (16, 16), (16, 1), output=True)
    for name, loc in (("ma", TileLoc.Mat), ("mb", TileLoc.Mat)):
        kb.tile(name, loc, F32, 16, 16, 16, 16)
    kb.tile("l", TileLoc.Left, F32, 16, 16, 16, 16)
    kb.tile("r", TileLoc.Right, F32, 16, 16, 16, 16)
    kb.tile("acc", TileLoc.Acc, F32, 16, 16, 16, 16)
    kb.emit("TLOAD", "ma", kb.view("a", 0, 16, 16, 16))
    kb.emit("TLOAD", "mb", kb.view("b", 0, 16, 16, 16))
    kb.emit("TMOV", "l", "ma")
    kb.emit("TMOV", "r", "mb")
    kb.emit("TMATMUL", "acc", "l", "r")
    kb.emit("TMATMUL_ACC", "acc", "acc", "l", "r")
    kb.emit("TSTORE", kb.view("c", 0, 16, 16, 16), "acc")
    p = kb.build(A2A3_CAPACITY)
    a, b, c = torch.randn(16, 16), torch.randn(16, 16), torch.empty(16, 16)
    interpret(p, [a, b, c], [], 1)
    torch.testing.assert_close(c, 2 * a @ b)


def test_tload_pads_with_zero_and_unwritten_tiles_read_nan():
    kb = KernelBuilder("pto_vec_pad_0")
    n = kb.scalar("n")
    kb.tensor("x", F32, (n, 8), (8, 1))
    kb.tensor("z", F32, (8, 8), (8, 1), output=True)
    kb.tensor("u", F32, (8, 8), (8, 1), output=True)
    kb.tile("a", Vec, F32, 8, 8, n, 8)
    kb.tile("full", Vec, F32, 8, 8, 8, 8)
    kb.tile("never", Vec, F32, 8, 8, 8, 8)
    kb.emit("TLOAD", "a", kb.view("x", 0, n, 8, 8))
    kb.emit("TRESHAPE", "full", "a")
    kb.emit("TSTORE", kb.view("z", 0, 8, 8, 8), "full")
    kb.emit("TSTORE", kb.view("u", 0, 8, 8, 8), "never")
    p = kb.build(A2A3_CAPACITY)
    x, z, u = torch.randn(3, 8), torch.empty(8, 8), torch.empty(8, 8)
    interpret(p, [x, z, u], [3], 1)
    assert torch.equal(z[:3], x) and torch.equal(z[3:], torch.zeros(5, 8))
    assert torch.isnan(u).all()


@pytest.mark.parametrize("distribution", list(Distribution))
@pytest.mark.parametrize("block_num", [1, 2, 5, 64])
def test_distributions_cover_every_tile_once(distribution, block_num):
    def body(kb, vr):
        kb.tile("o", Vec, F32, R, C, vr, C)
        kb.emit("TADDS", "o", "in0", 1.0)
    a = torch.randn(41, C)
    torch.testing.assert_close(_run(_map_kernel(body, distribution=distribution), a, block_num=block_num), a + 1)


def test_out_of_bounds_view_is_reported():
    def body(kb, vr):
        kb.tile("o", Vec, F32, R, C, vr, C)
        kb.emit("TMOV", "o", "in0")
    p = _map_kernel(body)
    x, z = torch.randn(13, C), torch.empty(13, C)
    with pytest.raises(InterpreterError, match="reaches element .* of a buffer of 208 elements"):
        interpret(p, [x, z], [14], 1)      # claims 14 rows, the tensors hold 13


def test_argument_checks():
    p = hb.cast(F32, BF16)
    with pytest.raises(InterpreterError, match="expected 2 scalars"):
        interpret(p, [torch.empty(2, 2), torch.empty(2, 2, dtype=torch.bfloat16)], [2], 1)
    with pytest.raises(InterpreterError, match="tensor out is torch.float32, expected torch.bfloat16"):
        interpret(p, [torch.empty(2, 2), torch.empty(2, 2)], [2, 2], 1)
    with pytest.raises(InterpreterError, match="block_num must be >= 1"):
        interpret(p, [torch.empty(2, 2), torch.empty(2, 2, dtype=torch.bfloat16)], [2, 2], 0)


@pytest.mark.parametrize("block_num", [1, 3])
def test_handbuilt_programs_match_torch(block_num):
    x = torch.randn(21, 70)
    out = torch.empty(21, 70)
    interpret(hb.online_row_softmax(), {"x": x, "out": out}, {"rows": 21, "cols": 70, "x_ld": 70}, block_num)
    torch.testing.assert_close(out, torch.softmax(x, 1))
    s = torch.empty(21)
    interpret(hb.row_reduce("max"), [x, s], [21, 70, 70], block_num)
    torch.testing.assert_close(s, x.amax(1))
    T, D = 5, 4096
    xs, r, w = torch.randn(T, D), torch.randn(T, D), torch.randn(D)
    y, o = torch.empty(T, D), torch.empty(T, D)
    region = single_kernel_region(hb.residual_rmsnorm_chunked(D))
    assert interpret_region(region, [xs, r, w, y, o], [T], block_num) == 1
    yy = xs + r
    torch.testing.assert_close(y, yy)
    torch.testing.assert_close(o, yy * torch.rsqrt(yy.pow(2).mean(1, keepdim=True) + 1e-6) * w, rtol=1e-5, atol=1e-5)


def test_compare_packs_bits_and_select_reads_them():
    from pto_dynamo.lowering.tile import U8
    kb = KernelBuilder("pto_vec_mask_0")
    kb.tensor("x", F32, (3, 16), (16, 1))
    kb.tensor("m", U8, (3, 32), (32, 1), output=True)
    kb.tensor("z", F32, (3, 16), (16, 1), output=True)
    kb.tile("a", Vec, F32, 8, 16, 3, 13)          # 13 valid columns: 2 mask bytes, 3 pad bits 0
    kb.tile("mask", Vec, U8, 8, 32, 3, 32)
    kb.tile("o", Vec, F32, 8, 16, 3, 13)
    kb.tile("tmp", Vec, F32, 1, 16, 1, 16)
    kb.emit("TLOAD", "a", kb.view("x", 0, 3, 13, 16))
    kb.emit("TEXPANDS", "mask", 0)
    kb.emit("TCMPS", "mask", "a", 0.0, mode="GT")
    kb.emit("TSTORE", kb.view("m", 0, 3, 32, 32), "mask")
    kb.emit("TSELS", "o", "mask", "a", 9.0, "tmp")
    kb.emit("TSTORE", kb.view("z", 0, 3, 13, 16), "o")
    p = kb.build(A2A3_CAPACITY)
    x = torch.randn(3, 16)
    m, z = torch.zeros(3, 32, dtype=torch.uint8), torch.zeros(3, 16)
    interpret(p, [x, m, z], [], 1)
    pos = (x[:, :13] > 0).to(torch.int64)
    expected = [[int(sum(int(pos[r, c]) << (c % 8) for c in range(8 * k, min(13, 8 * k + 8)))) for k in range(2)]
                for r in range(3)]
    assert m[:, :2].tolist() == expected and not m[:, 2:].any()
    torch.testing.assert_close(z[:, :13], torch.where(x[:, :13] > 0, x[:, :13], torch.tensor(9.0)))
