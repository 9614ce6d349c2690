"""Instruction pairs merged into the ISA's one instruction (lowering/tile/peephole.py): a row's (or
column's) difference fed to TEXP becomes TROWEXPANDEXPDIF (TCOLEXPANDEXPDIF) when nothing else reads
the difference; the merged program computes what the pair computes, on the interpreter and on the
cpu target; the softmax and flash attention kernels use it. Exact conversion round trips (bf16 ->
f32 -> bf16) go, so a bf16 copy kernel is a load and a store."""
from __future__ import annotations

import pytest
import torch

from pto_dynamo.lowering.tile import A2A3_CAPACITY, BF16, F16, F32, I32, KernelBuilder, Layout, TileLoc, ceil_div, emin
from pto_dynamo.lowering.tile.interpreter import interpret
from pto_dynamo.lowering.tile.peephole import drop_round_trips, merge_pairs
from tests.conftest import check_dynamic
from tests.tile._helpers import build_region

Vec = TileLoc.Vec
R, C = 8, 64


def _program(form: str, shape: str, dtype=F32):
    """z = exp(x - m) with m the row max (form "row") or the column max ("col"), the difference in
    its own tile ("separate"), computed in place ("in_place"), or also added to z ("reused")."""
    kb = KernelBuilder(f"pto_vec_expdif_{form}_{shape}_0", pass_name="test", description="z = exp(x - max)")
    n = kb.scalar("n")
    kb.tensor("x", dtype, (n, C), (C, 1))
    kb.tensor("z", dtype, (n, C), (C, 1), output=True)
    rows = R if form == "row" else None
    with kb.tile_loop("t", ceil_div(n, R) if form == "row" else 1) as t:
        vr = kb.let("vr", emin(R, n - R * t)) if form == "row" else n
        kb.tile("x_t", Vec, dtype, R if rows else 16, C, vr, C)
        kb.emit("TLOAD", "x_t", kb.view("x", R * t * C if rows else 0, vr, C, C))
        if form == "row":
            kb.tile("m", Vec, dtype, R, 1, vr, 1, Layout.ColMajor)
            kb.tile("tmp", Vec, dtype, R, C, vr, C)
            kb.emit("TROWMAX", "m", "x_t", "tmp")
        else:
            kb.tile("m", Vec, dtype, 1, C, 1, C)
            kb.emit("TCOLMAX", "m", "x_t")
        expand = "TROWEXPANDSUB" if form == "row" else "TCOLEXPANDSUB"
        if shape == "in_place":
            kb.emit(expand, "x_t", "x_t", "m")
            kb.emit("TEXP", "x_t", "x_t")
            out = "x_t"
        else:
            kb.tile("d", Vec, dtype, R if rows else 16, C, vr, C)
            kb.emit(expand, "d", "x_t", "m")
            kb.tile("e", Vec, dtype, R if rows else 16, C, vr, C)
            kb.emit("TEXP", "e", "d")
            out = "e"
            if shape == "reused":
                kb.emit("TADD", "e", "e", "d")
        kb.emit("TSTORE", kb.view("z", R * t * C if rows else 0, vr, C, C), out)
    return kb


def _ops(program) -> list[str]:
    return [i.op for i in program.instructions() if i.op not in ("TLOAD", "TSTORE")]


def _expected(x: torch.Tensor, form: str, shape: str) -> torch.Tensor:
    d = x - (x.amax(1, keepdim=True) if form == "row" else x.amax(0, keepdim=True))
    return torch.exp(d) + d if shape == "reused" else torch.exp(d)


@pytest.mark.parametrize("form", ["row", "col"])
@pytest.mark.parametrize("shape", ["separate", "in_place", "reused"])
def test_a_difference_only_exp_reads_merges_into_expdif(form, shape):
    kb = _program(form, shape)
    unplanned = kb.build()
    merged = merge_pairs(unplanned)
    expdif = "TROWEXPANDEXPDIF" if form == "row" else "TCOLEXPANDEXPDIF"
    reduce = "TROWMAX" if form == "row" else "TCOLMAX"
    if shape == "reused":              # the difference is read again: the pair stays
        assert merged is unplanned
        assert _ops(merged) == [reduce, expdif.replace("EXPDIF", "SUB"), "TEXP", "TADD"]
    else:
        assert _ops(merged) == [reduce, expdif]
        assert "d" not in merged.tile_decls()          # the difference's tile is gone
    planned = kb.build(A2A3_CAPACITY)                   # build() merges before planning
    assert _ops(planned) == _ops(merged)
    n = 13 if form == "row" else 9
    x = torch.randn(n, C) * 3
    z = torch.full((n, C), float("nan"))
    interpret(planned, {"x": x, "z": z}, {"n": n}, block_num=2)
    torch.testing.assert_close(z, _expected(x, form, shape))
    _, call = build_region(planned, f"expdif_{form}_{shape}")
    z_cpu = torch.full((n, C), float("nan"))
    call([x, z_cpu], [n], 3)
    torch.testing.assert_close(z_cpu, _expected(x, form, shape))


def test_integer_differences_are_not_merged():
    program = _program("row", "separate", dtype=I32).build()
    assert merge_pairs(program) is program


def test_the_softmax_kernel_takes_exp_of_the_difference_in_one_instruction(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("PTO_DEBUG_DIR", str(tmp_path / "dbg"))
    check_dynamic(fresh, lambda x: torch.softmax(x * 2, -1), lambda T: (torch.randn(T, 96),), [1, 7, 33])
    tiles = "\n".join(p.read_text() for p in (tmp_path / "dbg").rglob("*_tile_*.txt"))
    assert "TROWEXPANDEXPDIF" in tiles
    assert "TEXP " not in tiles and "TROWEXPANDSUB" not in tiles


def test_flash_attention_kernel_uses_expdif(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("PTO_DEBUG_DIR", str(tmp_path / "dbg"))

    def fn(q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    compiled = torch.compile(fn, backend="pto", fullgraph=True)
    for T in (5, 40):
        # (a head dim no other test uses: the kernel is built here, not found in the run's shared
        # native folder, where test_attention_mixed counts its own builds)
        q, k, v = (torch.randn(1, 3, T, 24) for _ in range(3))
        for x in (q, k, v):
            fresh.mark_dynamic(x, 2, name="T")
        torch.testing.assert_close(compiled(q, k, v), fn(q, k, v))
    stats = fresh.stats()
    assert stats["signatures_compiled"] == 1 and sum(stats["fallback_regions"].values()) == 0, stats
    tiles = "\n".join(p.read_text() for p in (tmp_path / "dbg").rglob("*_tile_*.txt"))
    assert "kernel pto_mixed_attention" in tiles and "TROWEXPANDEXPDIF" in tiles


def _round_trips(dtype, trips: int, then_add: bool = False):
    """z = x converted to f32 and back `trips` times (then, `then_add`, plus the last f32 value)."""
    kb = KernelBuilder(f"pto_vec_round_trip_{dtype.name}_{trips}_{then_add:d}_0", pass_name="test", description="round trips")
    n = kb.scalar("n")
    kb.tensor("x", dtype, (n, C), (C, 1))
    kb.tensor("z", F32 if then_add else dtype, (n, C), (C, 1), output=True)
    with kb.tile_loop("t", ceil_div(n, R)) as t:
        vr = kb.let("vr", emin(R, n - R * t))
        kb.tile("x_t", Vec, dtype, R, C, vr, C)
        kb.emit("TLOAD", "x_t", kb.view("x", R * t * C, vr, C, C))
        cur = "x_t"
        for i in range(trips):
            kb.tile(f"w{i}", Vec, F32, R, C, vr, C)
            kb.emit("TCVT", f"w{i}", cur, round="CAST_RINT")
            kb.tile(f"n{i}", Vec, dtype, R, C, vr, C)
            kb.emit("TCVT", f"n{i}", f"w{i}", round="CAST_RINT")
            cur = f"n{i}"
        if then_add:
            kb.tile("s", Vec, F32, R, C, vr, C)
            kb.emit("TADD", "s", f"w{trips - 1}", f"w{trips - 1}")
            cur = "s"
        kb.emit("TSTORE", kb.view("z", R * t * C, vr, C, C), cur)
    return kb


@pytest.mark.parametrize("dtype", [BF16, F16], ids=lambda d: d.name)
def test_exact_round_trips_go(dtype):
    kb = _round_trips(dtype, 3)
    assert _ops(kb.build()) == ["TCVT"] * 6
    dropped = drop_round_trips(kb.build())
    assert _ops(dropped) == []
    (store,) = [i for i in dropped.instructions() if i.op == "TSTORE"]
    assert store.ins == ("x_t",)                    # the loaded tile is stored as it is
    assert set(dropped.tile_decls()) == {"x_t"}
    planned = kb.build(A2A3_CAPACITY)
    n = 13
    x = (torch.randn(n, C) * 3).to(dtype.torch_dtype)
    _, call = build_region(planned, f"round_trip_{dtype.name}")
    z = torch.zeros(n, C, dtype=dtype.torch_dtype)
    call([x, z], [n], 3)
    assert torch.equal(z, x)


def test_a_round_trip_whose_wide_value_is_read_again_stays():
    program = _round_trips(BF16, 1, then_add=True).build()
    assert drop_round_trips(program) is program
