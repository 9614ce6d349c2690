"""V-ops fused with the row reduction, conversion or add that reads their result
(lowering/tile/fuse.py, the cpu target's <pto/cpu/fused.hpp>): which pairs fuse, and the fused
program computes what the pairs compute, on the interpreter and on the cpu target, over partial
tiles, -inf and NaN rows; the bf16 probabilities' exp is within a bf16 rounding of torch's."""
from __future__ import annotations

import pytest
import torch

from pto_dynamo.lowering.tile import A2A3_CAPACITY, BF16, F32, I32, KernelBuilder, Layout, TileLoc, ceil_div, emin
from pto_dynamo.lowering.tile.fuse import fuse_vops
from pto_dynamo.lowering.tile.interpreter import interpret
from tests.tile._helpers import build_region

Vec = TileLoc.Vec
R, C = 8, 64
SCALE = 0.375


def _program(variant: str, dtype=F32):
    """An online-softmax step over n x m (m <= C) rows of x, one R-row tile at a time:
    s = x * SCALE; mx = rowmax(s); p = exp(s - mx); l = rowsum(p); z = p in bf16; w = l;
    o = x * l + x. `variant`: "fused" as written; "read_after": s is also stored after the
    conversion (z2 = p in f32); "apart": an instruction between the scale and the row max."""
    kb = KernelBuilder(f"pto_vec_fuse_{variant}_{dtype.name}_0", pass_name="test", description="online softmax step")
    n, m = kb.scalar("n"), kb.scalar("m")
    kb.tensor("x", dtype, (n, C), (C, 1))
    kb.tensor("z", BF16, (n, C), (C, 1), output=True)
    kb.tensor("z2", dtype, (n, C), (C, 1), output=True)
    kb.tensor("w", dtype, (n, 1), (1, 1), output=True)
    kb.tensor("o", dtype, (n, C), (C, 1), output=True)
    with kb.tile_loop("t", ceil_div(n, R)) as t:
        vr = kb.let("vr", emin(R, n - R * t))
        for name in ("x_t", "s", "tmp", "o_t"):
            kb.tile(name, Vec, dtype, R, C, vr, m)
        kb.tile("p", Vec, BF16, R, C, vr, m)
        for name in ("mx", "l"):
            kb.tile(name, Vec, dtype, R, 1, vr, 1, Layout.ColMajor)
        kb.emit("TLOAD", "x_t", kb.view("x", R * t * C, vr, m, C))
        kb.emit("TMULS", "s", "x_t", SCALE)
        if variant == "apart":
            kb.emit("TADD", "o_t", "x_t", "x_t")
        kb.emit("TROWMAX", "mx", "s", "tmp")
        kb.emit("TROWEXPANDSUB", "s", "s", "mx")
        kb.emit("TEXP", "s", "s")
        kb.emit("TROWSUM", "l", "s", "tmp")
        kb.emit("TCVT", "p", "s", round="CAST_RINT")
        kb.emit("TSTORE", kb.view("z", R * t * C, vr, m, C), "p")
        kb.emit("TSTORE", kb.column_view("w", R * t, vr, 1), "l")
        if variant == "read_after":
            kb.emit("TSTORE", kb.view("z2", R * t * C, vr, m, C), "s")
        kb.emit("TROWEXPANDMUL", "o_t", "x_t", "l")
        kb.emit("TADD", "o_t", "o_t", "x_t")
        kb.emit("TSTORE", kb.view("o", R * t * C, vr, m, C), "o_t")
    return kb


def _ops(program) -> list[str]:
    return [i.op for i in program.instructions() if i.op not in ("TLOAD", "TSTORE")]


def _expected(x: torch.Tensor):
    s = x * SCALE
    p = torch.exp(s - s.amax(1, keepdim=True))
    l = p.sum(1, keepdim=True)
    return p, l, x * l + x


FUSED = {
    "fused": ["TMULS_ROWMAX", "TROWEXPANDEXPDIF_ROWSUM", "TROWEXPANDMUL_ADD"],
    # p is read again: the exp keeps writing it, and the rounding stays its own pass
    "read_after": ["TMULS_ROWMAX", "TROWEXPANDEXPDIF_ROWSUM", "TCVT", "TROWEXPANDMUL_ADD"],
    # the scale and the max are not adjacent
    "apart": ["TMULS", "TADD", "TROWMAX", "TROWEXPANDEXPDIF_ROWSUM", "TROWEXPANDMUL_ADD"],
}


@pytest.mark.parametrize("variant", sorted(FUSED))
def test_pairs_fuse_and_compute_what_the_pairs_compute(variant):
    kb = _program(variant)
    planned = kb.build(A2A3_CAPACITY)
    assert _ops(planned) == FUSED[variant]
    n, m = 13, 50                                  # a partial last tile, 50 of 64 columns valid
    x = torch.randn(n, C) * 4
    x[3, :] = float("-inf")                        # a row of -inf: max -inf, exp NaN, as the pair
    x[5, 7] = float("nan")                         # a NaN propagates through max, exp and sum
    want_p, want_l, want_o = _expected(x[:, :m])
    for run in ("interpreter", "cpu"):
        outs = {k: torch.full(shape, 7.0, dtype=dt) for k, shape, dt in
                (("z", (n, C), torch.bfloat16), ("z2", (n, C), torch.float32), ("w", (n, 1), torch.float32),
                 ("o", (n, C), torch.float32))}
        if run == "interpreter":
            interpret(planned, {"x": x, **outs}, {"n": n, "m": m}, block_num=2)
        else:
            _, call = build_region(planned, f"fuse_{variant}")
            call([x, outs["z"], outs["z2"], outs["w"], outs["o"]], [n, m], 3)
        torch.testing.assert_close(outs["z"][:, :m], want_p.to(torch.bfloat16), equal_nan=True)
        torch.testing.assert_close(outs["w"], want_l, equal_nan=True, rtol=2e-6, atol=0)
        torch.testing.assert_close(outs["o"][:, :m], want_o, equal_nan=True, rtol=2e-6, atol=1e-5)
        assert (outs["z"][:, m:] == 7).all() and (outs["o"][:, m:] == 7).all()   # nothing past the valid columns
        if variant == "read_after":
            torch.testing.assert_close(outs["z2"][:, :m], want_p, equal_nan=True)


def test_only_float_tiles_fuse():
    program = _program("fused", dtype=I32).build()
    assert fuse_vops(program) is program


def test_bf16_probabilities_are_torchs_exp_rounded():
    """exp(s - max) rounded to bf16 by the fused op (a shorter polynomial than vexp's) against
    torch's exp rounded to bf16: at most one bf16 step apart, equal almost everywhere; row sums
    of the f32 values; exp below the normal floats gives 0 where torch gives a denormal."""
    kb = _program("fused")
    planned = kb.build(A2A3_CAPACITY)
    _, call = build_region(planned, "fuse_sweep")
    n = 4096
    x = -torch.rand(n, C) * (100 / SCALE)          # s in (-100, 0], one 0 per row: max 0
    x[:, 0] = 0.0
    z, z2, w, o = torch.empty(n, C, dtype=torch.bfloat16), torch.empty(n, C), torch.empty(n, 1), torch.empty(n, C)
    call([x, z, z2, w, o], [n, C], 2)
    p = torch.exp(x * SCALE)
    want = p.to(torch.bfloat16)
    tiny = torch.finfo(torch.float32).tiny
    normal = p >= 1.001 * tiny
    steps = (z.view(torch.int16).int() - want.view(torch.int16).int()).abs()
    assert steps[normal].max() <= 1
    assert (steps[normal] == 0).float().mean() > 0.995
    assert (z[p < tiny] == 0).all() and (z[~normal].float() <= 1.001 * tiny).all()
    assert normal.any() and (~normal).any()
    torch.testing.assert_close(w, p.sum(1, keepdim=True), rtol=2e-6, atol=0)


def _rmsnorm_program(variant: str):
    """RMSNorm over n x m (m <= C): y = x + r; o = y * rsqrt(sum(y^2) / C + eps) * w, one R-row tile
    at a time. `variant`: "fused" as written (y scaled in place); "read_after": the row-scaled
    tile is stored too (q = y * rsqrt(..)), so the column scaling writes a tile of its own;
    "reshape_between": the per-row tile's TRESHAPE between the square and its row sum (it names
    no tile of the square's)."""
    kb = KernelBuilder(f"pto_vec_fuse_rms_{variant}_0", pass_name="test", description="rmsnorm")
    n, m = kb.scalar("n"), kb.scalar("m")
    for name in ("x", "r"):
        kb.tensor(name, F32, (n, C), (C, 1))
    kb.tensor("w", F32, (C,), (1,))
    kb.tensor("o", F32, (n, C), (C, 1), output=True)
    kb.tensor("q", F32, (n, C), (C, 1), output=True)
    kb.tile("wt", Vec, F32, 1, C, 1, m)
    kb.emit("TLOAD", "wt", kb.view("w", 0, 1, m, C))
    with kb.tile_loop("t", ceil_div(n, R)) as t:
        vr = kb.let("vr", emin(R, n - R * t))
        for name in ("y", "r_t", "sq", "tmp", "o_t"):
            kb.tile(name, Vec, F32, R, C, vr, m)
        kb.tile("ss", Vec, F32, R, 1, vr, 1, Layout.ColMajor)
        kb.tile("ss_row", Vec, F32, 1, R, 1, vr)      # its row-major view for the scalar ops
        if variant != "reshape_between":
            kb.emit("TRESHAPE", "ss_row", "ss")
        kb.emit("TLOAD", "y", kb.view("x", R * t * C, vr, m, C))
        kb.emit("TLOAD", "r_t", kb.view("r", R * t * C, vr, m, C))
        kb.emit("TADD", "y", "y", "r_t")
        kb.emit("TMUL", "sq", "y", "y")
        if variant == "reshape_between":           # as the vector lowering emits it
            kb.emit("TRESHAPE", "ss_row", "ss")
        kb.emit("TROWSUM", "ss", "sq", "tmp")
        kb.emit("TMULS", "ss_row", "ss_row", 1 / C)
        kb.emit("TADDS", "ss_row", "ss_row", 1e-6)
        kb.emit("TRSQRT", "ss_row", "ss_row")
        kb.emit("TROWEXPANDMUL", "y", "y", "ss")
        kb.emit("TCOLEXPANDMUL", "o_t" if variant == "read_after" else "y", "y", "wt")
        kb.emit("TSTORE", kb.view("o", R * t * C, vr, m, C), "o_t" if variant == "read_after" else "y")
        if variant == "read_after":
            kb.emit("TSTORE", kb.view("q", R * t * C, vr, m, C), "y")
    return kb


RMS_FUSED = {
    "fused": ["TRESHAPE", "TADD", "TMUL_ROWSUM", "TMULS", "TADDS", "TRSQRT", "TROWEXPANDMUL_COLEXPANDMUL"],
    "read_after": ["TRESHAPE", "TADD", "TMUL_ROWSUM", "TMULS", "TADDS", "TRSQRT", "TROWEXPANDMUL", "TCOLEXPANDMUL"],
    "reshape_between": ["TADD", "TRESHAPE", "TMUL_ROWSUM", "TMULS", "TADDS", "TRSQRT", "TROWEXPANDMUL_COLEXPANDMUL"],
}


@pytest.mark.parametrize("variant", sorted(RMS_FUSED))
def test_rmsnorm_pairs_fuse_and_compute_what_the_pairs_compute(variant):
    """The square and its row sum, the row and the column scaling: fused where nothing else reads
    the intermediate tile; the interpreter and the cpu target match torch over a partial tile, a
    NaN row and a row of zeros (0 * rsqrt(eps))."""
    planned = _rmsnorm_program(variant).build(A2A3_CAPACITY)
    assert _ops(planned) == RMS_FUSED[variant]
    n, m = 13, 40
    x, r, w = torch.randn(n, C) * 3, torch.randn(n, C), torch.randn(C)
    x[4, 9] = float("nan")
    x[6, :], r[6, :] = 1.0, -1.0                   # y = 0: mean 0, rsqrt(eps), o = 0
    y = (x + r)[:, :m]
    q_want = y * torch.rsqrt(y.square().sum(1, keepdim=True) / C + 1e-6)     # the kernel divides by C
    o_want = q_want * w[:m]
    for run in ("interpreter", "cpu"):
        o, q = torch.full((n, C), 7.0), torch.full((n, C), 7.0)
        if run == "interpreter":
            interpret(planned, {"x": x, "r": r, "w": w, "o": o, "q": q}, {"n": n, "m": m}, block_num=2)
        else:
            _, call = build_region(planned, f"fuse_rms_{variant}")
            call([x, r, w, o, q], [n, m], 3)
        torch.testing.assert_close(o[:, :m], o_want, equal_nan=True, rtol=2e-6, atol=1e-6)
        assert torch.isnan(o[4, :m]).all() and (o[6, :m] == 0).all()
        assert (o[:, m:] == 7).all()
        if variant == "read_after":
            torch.testing.assert_close(q[:, :m], q_want, equal_nan=True, rtol=2e-6, atol=1e-6)


def _swiglu_program(variant: str):
    """The SwiGLU gate over n x m (m <= C) bf16 rows, as the vector lowering writes it: o =
    bf16(silu(f32(g)) * f32(u)), and ex = bf16(exp(f32(g))) (the 16-lane form reading and writing
    bf16 rows). `variant`: "fused" as written; "read_after": f32(g) is stored too (its TCVT
    stays); "trunc": o rounds toward zero (that TCVT stays); "scalar": a TMULS reads f32(u) (its
    scalar takes the source's type: no folding)."""
    kb = KernelBuilder(f"pto_vec_fuse_swiglu_{variant}_0", pass_name="test", description="swiglu gate")
    n, m = kb.scalar("n"), kb.scalar("m")
    for name in ("g", "u"):
        kb.tensor(name, BF16, (n, C), (C, 1))
    kb.tensor("o", BF16, (n, C), (C, 1), output=True)
    kb.tensor("gf", F32, (n, C), (C, 1), output=True)
    kb.tensor("ex", BF16, (n, C), (C, 1), output=True)
    with kb.tile_loop("t", ceil_div(n, R)) as t:
        vr = kb.let("vr", emin(R, n - R * t))
        for name in ("g_t", "u_t", "o_t", "sg16"):
            kb.tile(name, Vec, BF16, R, C, vr, m)
        for name in ("g32", "s", "u32", "p", "x32", "sg"):
            kb.tile(name, Vec, F32, R, C, vr, m)
        kb.emit("TLOAD", "g_t", kb.view("g", R * t * C, vr, m, C))
        kb.emit("TLOAD", "u_t", kb.view("u", R * t * C, vr, m, C))
        kb.emit("TCVT", "g32", "g_t", round="CAST_RINT")
        kb.emit("TSILU", "s", "g32")
        kb.emit("TCVT", "u32", "u_t", round="CAST_RINT")
        if variant == "scalar":
            kb.emit("TMULS", "u32", "u32", 0.5)
        kb.emit("TMUL", "p", "s", "u32")
        kb.emit("TCVT", "o_t", "p", round="CAST_TRUNC" if variant == "trunc" else "CAST_RINT")
        kb.emit("TSTORE", kb.view("o", R * t * C, vr, m, C), "o_t")
        kb.emit("TCVT", "x32", "g_t", round="CAST_RINT")
        kb.emit("TEXP", "sg", "x32")
        kb.emit("TCVT", "sg16", "sg", round="CAST_RINT")
        kb.emit("TSTORE", kb.view("ex", R * t * C, vr, m, C), "sg16")
        if variant == "read_after":
            kb.emit("TSTORE", kb.view("gf", R * t * C, vr, m, C), "g32")
    return kb


SWIGLU_FUSED = {
    "fused": ["TSILU", "TMUL", "TEXP"],
    "read_after": ["TCVT", "TSILU", "TMUL", "TEXP"],
    "trunc": ["TSILU", "TMUL", "TCVT", "TEXP"],
    "scalar": ["TSILU", "TCVT", "TMULS", "TMUL", "TEXP"],
}


@pytest.mark.parametrize("variant", sorted(SWIGLU_FUSED))
def test_conversions_fold_into_the_op_next_to_them(variant, monkeypatch):
    """A bf16 -> f32 TCVT folds into the op that reads its result, an f32 -> bf16 one (nearest
    even) into the op that writes its source: the folded program's elements are the pairs', bit
    for bit, on the interpreter and on the cpu target (the 16-lane TSILU and TEXP reading and
    writing bf16 rows), over a partial tile, NaN, infinities, silu's overflow of exp, bf16
    denormals in and out, and rounding ties."""
    from pto_dynamo.lowering.tile import fuse
    planned = _swiglu_program(variant).build(A2A3_CAPACITY)
    assert _ops(planned) == SWIGLU_FUSED[variant]
    kept = {k: v for k, v in fuse.FUSE_RULES.items() if "TCVT" not in k}
    monkeypatch.setattr(fuse, "FUSE_RULES", kept)
    unfolded = _swiglu_program(variant).build(A2A3_CAPACITY)
    assert _ops(unfolded).count("TCVT") == 5
    n, m = 13, 50                                  # a partial last tile, 50 of 64 columns valid
    g, u = torch.randn(n, C) * 4, torch.randn(n, C) * 4
    g[2, :8] = torch.tensor([float("nan"), float("inf"), -float("inf"), -100.0, -88.5, 1e-39, -3e-39, 0.0])
    u[3, :4] = torch.tensor([float("inf"), -float("inf"), 1e-39, float("nan")])
    u[4, :] = 1.0 + 2.0 ** -8                       # silu(g) * u near bf16 ties
    g[5, :] = torch.linspace(-95.0, -80.0, C)       # exp(g): f32 denormals, rounded to bf16 ones
    g, u = g.to(torch.bfloat16), u.to(torch.bfloat16)
    scale = 0.5 if variant == "scalar" else 1.0
    want = torch.nn.functional.silu(g[:, :m].float()) * (u[:, :m].float() * scale)
    want_ex = torch.exp(g[:, :m].float()).to(torch.bfloat16)
    results = {}
    for label, program in (("folded", planned), ("pairs", unfolded)):
        for run in ("interpreter", "cpu"):
            o, gf = torch.full((n, C), 7.0, dtype=torch.bfloat16), torch.full((n, C), 7.0)
            ex = torch.full((n, C), 7.0, dtype=torch.bfloat16)
            if run == "interpreter":
                interpret(program, {"g": g, "u": u, "o": o, "gf": gf, "ex": ex}, {"n": n, "m": m}, block_num=2)
            else:
                _, call = build_region(program, f"fuse_swiglu_{variant}_{label}")
                call([g, u, o, gf, ex], [n, m], 3)
            assert (o[:, m:] == 7).all() and (ex[:, m:] == 7).all()
            torch.testing.assert_close(ex[:, :m], want_ex, equal_nan=True, atol=1e-38, rtol=2 ** -8)
            if variant == "trunc":
                torch.testing.assert_close(o[:, :m].float(), want, equal_nan=True, rtol=2 ** -7, atol=1e-38)
            else:
                torch.testing.assert_close(o[:, :m], want.to(torch.bfloat16), equal_nan=True, atol=1e-38, rtol=2 ** -8)
            if variant == "read_after":
                torch.testing.assert_close(gf[:, :m], g[:, :m].float(), rtol=0, atol=0, equal_nan=True)
            results[label, run] = torch.cat([o, ex]).view(torch.int16)
    for run in ("interpreter", "cpu"):
        assert torch.equal(results["folded", run], results["pairs", run])


def test_mixed_float_operands_verify_and_integer_mixes_do_not():
    """The verifier takes binary and unary ops over f32 and bf16 tiles (the folded forms) and
    still asks for a TCVT between an integer and a float tile."""
    from pto_dynamo.lowering.tile.verifier import TileVerificationError, verify_program
    for dtypes, ok in (((BF16, F32, BF16), True), ((F32, BF16, F32), True), ((I32, F32, F32), False)):
        kb = KernelBuilder(f"pto_vec_mixed_{ok}_{dtypes[0].name}_0", pass_name="test", description="mixed")
        kb.tensor("a", dtypes[1], (R, C), (C, 1))
        kb.tensor("b", dtypes[2], (R, C), (C, 1))
        kb.tensor("o", dtypes[0], (R, C), (C, 1), output=True)
        for name, dt in zip(("o_t", "a_t", "b_t"), dtypes):
            kb.tile(name, Vec, dt, R, C, R, C)
        kb.emit("TLOAD", "a_t", kb.view("a", 0, R, C, C))
        kb.emit("TLOAD", "b_t", kb.view("b", 0, R, C, C))
        kb.emit("TMUL", "o_t", "a_t", "b_t")
        kb.emit("TSTORE", kb.view("o", 0, R, C, C), "o_t")
        if ok:
            verify_program(kb.build(A2A3_CAPACITY), A2A3_CAPACITY)
        else:
            with pytest.raises(TileVerificationError, match="insert a TCVT"):
                kb.build(A2A3_CAPACITY)


def _rms_tail_program():
    """RMSNorm's last steps in bf16 as the vector lowering writes them (LLaMA's `(x * r).to(bf16)
    * w`): y = bf16(f32(x) * r(i)); o = bf16(f32(y) * w(j)), r per row and w per column in f32."""
    kb = KernelBuilder("pto_vec_fuse_rms_tail_0", pass_name="test", description="rmsnorm tail")
    n, m = kb.scalar("n"), kb.scalar("m")
    kb.tensor("x", BF16, (n, C), (C, 1))
    kb.tensor("r", F32, (n, 1), (1, 1))
    kb.tensor("w", F32, (C,), (1,))
    kb.tensor("o", BF16, (n, C), (C, 1), output=True)
    kb.tile("wt", Vec, F32, 1, C, 1, m)
    kb.emit("TLOAD", "wt", kb.view("w", 0, 1, m, C))
    with kb.tile_loop("t", ceil_div(n, R)) as t:
        vr = kb.let("vr", emin(R, n - R * t))
        for name in ("x_t", "y16", "o16"):
            kb.tile(name, Vec, BF16, R, C, vr, m)
        for name in ("x32", "y", "y32", "o_t"):
            kb.tile(name, Vec, F32, R, C, vr, m)
        kb.tile("r_t", Vec, F32, R, 1, vr, 1, Layout.ColMajor)
        kb.emit("TLOAD", "x_t", kb.view("x", R * t * C, vr, m, C))
        kb.emit("TLOAD", "r_t", kb.column_view("r", R * t, vr, 1))
        kb.emit("TCVT", "x32", "x_t", round="CAST_RINT")
        kb.emit("TROWEXPANDMUL", "y", "x32", "r_t")
        kb.emit("TCVT", "y16", "y", round="CAST_RINT")
        kb.emit("TCVT", "y32", "y16", round="CAST_RINT")
        kb.emit("TCOLEXPANDMUL", "o_t", "y32", "wt")
        kb.emit("TCVT", "o16", "o_t", round="CAST_RINT")
        kb.emit("TSTORE", kb.view("o", R * t * C, vr, m, C), "o16")
    return kb


def test_conversions_fold_into_row_and_column_scalings(monkeypatch):
    """The folds take the per-row and per-column broadcast ops too: RMSNorm's bf16 tail goes from
    five passes to two, bit for bit the pairs' on the interpreter and the cpu target, over a
    partial tile, a NaN, an infinity and bf16 ties."""
    from pto_dynamo.lowering.tile import fuse
    planned = _rms_tail_program().build(A2A3_CAPACITY)
    assert _ops(planned) == ["TROWEXPANDMUL", "TCOLEXPANDMUL"]
    monkeypatch.setattr(fuse, "FUSE_RULES", {k: v for k, v in fuse.FUSE_RULES.items() if "TCVT" not in k})
    unfolded = _rms_tail_program().build(A2A3_CAPACITY)
    assert _ops(unfolded) == ["TCVT", "TROWEXPANDMUL", "TCVT", "TCVT", "TCOLEXPANDMUL", "TCVT"]
    n, m = 13, 50
    x, r, w = (torch.randn(n, C) * 3).bfloat16(), torch.rand(n, 1) + 0.5, torch.randn(C)
    x[2, 3], x[4, 5] = float("nan"), float("inf")
    r[6, 0] = 1.0 + 2.0 ** -9                       # x * r next to bf16 ties
    want = ((x[:, :m].float() * r).bfloat16().float() * w[:m]).bfloat16()
    results = {}
    for label, program in (("folded", planned), ("pairs", unfolded)):
        for run in ("interpreter", "cpu"):
            o = torch.full((n, C), 7.0, dtype=torch.bfloat16)
            if run == "interpreter":
                interpret(program, {"x": x, "r": r, "w": w, "o": o}, {"n": n, "m": m}, block_num=2)
            else:
                _, call = build_region(program, f"fuse_rms_tail_{label}")
                call([x, r, w, o], [n, m], 3)
            assert (o[:, m:] == 7).all()
            torch.testing.assert_close(o[:, :m], want, equal_nan=True, rtol=0, atol=0)
            results[label, run] = o.view(torch.int16)
    for run in ("interpreter", "cpu"):
        assert torch.equal(results["folded", run], results["pairs", run])
