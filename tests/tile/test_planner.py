"""Tile placement: offsets within the target's capacities, aligned, sharing bytes only between
tiles whose live ranges do not overlap."""
from __future__ import annotations

import dataclasses

import pytest

from pto_dynamo.lowering.tile import (A2A3_CAPACITY, F32, KernelBuilder, Layout, PlanningError, TargetCapacity,
                                      TileLoc, TileVerificationError, ceil_div, emin, verify_program)
from pto_dynamo.lowering.tile import handbuilt as hb
from pto_dynamo.lowering.tile.planner import in_place_pairs, live_ranges

Vec = TileLoc.Vec


def test_offsets_are_aligned_and_disjoint_while_live():
    p = hb.broadcasts()
    offsets, decls, ranges = p.offsets(), p.tile_decls(), live_ranges(p.body)
    assert all(o % 32 == 0 for o in offsets.values())
    names = sorted(offsets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if offsets[a] < offsets[b] + decls[b].nbytes and offsets[b] < offsets[a] + decls[a].nbytes:
                (a0, a1), (b0, b1) = ranges[a], ranges[b]
                assert a1 < b0 or b1 < a0, (a, b)
    # xt's last use (the store of out1) comes before e's first write: e takes xt's bytes
    assert offsets["e"] == offsets["xt"]


def test_dead_tiles_share_bytes():
    # online softmax: pass-2 tile yt reuses the bytes of pass-1 tiles that are dead by then
    p = hb.online_row_softmax()
    offsets = p.offsets()
    assert offsets["yt"] < offsets["xt"]
    verify_program(p, A2A3_CAPACITY)        # and the verifier agrees it is legal


def test_tiles_declared_outside_a_loop_stay_live_through_it():
    p = hb.online_row_softmax()
    ranges = live_ranges(p.body)
    assert ranges["m"][1] >= ranges["yt"][1]          # m is read in pass 2
    offsets, decls = p.offsets(), p.tile_decls()
    m0, m1 = offsets["m"], offsets["m"] + decls["m"].nbytes
    y0, y1 = offsets["yt"], offsets["yt"] + decls["yt"].nbytes
    assert m1 <= y0 or y1 <= m0


def test_aliases_get_no_bytes_of_their_own():
    p = hb.row_reduce("sum")
    assert "acc_row" not in p.offsets() and "acc" in p.offsets()


def test_capacity_is_a_parameter():
    small = TargetCapacity("tiny", ((Vec, 8 * 1024),), alignment=64)
    p = hb.elementwise_chain(capacity=small)
    assert all(o % 64 == 0 for o in p.offsets().values())
    with pytest.raises(PlanningError, match=r"tile b \(16x64 f32, 4096 B\) does not fit Vec \(UB, 4096 B on tiny\)"):
        hb.elementwise_chain(capacity=TargetCapacity("tiny", ((Vec, 4096),)))
    with pytest.raises(KeyError, match="has no Mat"):
        kb = KernelBuilder("pto_cube_0")
        kb.tile("m", TileLoc.Mat, F32, 16, 16, 16, 16)
        kb.build(small)


def test_rmsnorm_rows_per_tile_fit_ub():
    p = hb.residual_rmsnorm(4096)
    decls, offsets = p.tile_decls(), p.offsets()
    assert decls["xt"].rows == 3
    assert max(offsets[n] + decls[n].nbytes for n in offsets) <= 192 * 1024


def _chain(reuse_a: bool):
    """e = (a + b) * 2 (+ a when reuse_a): a, b, e all 8 x 64 f32 tiles."""
    kb = KernelBuilder("pto_vec_inplace_0", pass_name="test")
    n = kb.scalar("n")
    for name in ("x", "y"):
        kb.tensor(name, F32, (n, 64), (64, 1))
    kb.tensor("z", F32, (n, 64), (64, 1), output=True)
    with kb.tile_loop("t", ceil_div(n, 8)) as t:
        vr = kb.let("vr", emin(8, n - 8 * t))
        for name in ("a", "b", "s", "e"):
            kb.tile(name, Vec, F32, 8, 64, vr, 64)
        kb.emit("TLOAD", "a", kb.view("x", 8 * 64 * t, vr, 64, 64))
        kb.emit("TLOAD", "b", kb.view("y", 8 * 64 * t, vr, 64, 64))
        kb.emit("TADD", "s", "a", "b")
        kb.emit("TMULS", "e", "s", 2.0)
        if reuse_a:
            kb.emit("TADD", "e", "e", "a")
        kb.emit("TSTORE", kb.view("z", 8 * 64 * t, vr, 64, 64), "e")
    return kb.build(A2A3_CAPACITY)


def test_an_elementwise_result_takes_the_bytes_of_a_source_it_reads_last():
    offsets = _chain(reuse_a=False).offsets()
    assert offsets["s"] == offsets["a"]          # TADD s <- a, b: a's last use
    assert offsets["e"] == offsets["s"]          # TMULS e <- s: s's last use
    assert offsets["b"] != offsets["a"]
    offsets = _chain(reuse_a=True).offsets()     # a is read again after the TADD: s gets b's bytes
    assert offsets["s"] == offsets["b"] and offsets["a"] not in (offsets["s"], offsets["e"])


def test_the_verifier_takes_exactly_the_in_place_overlap():
    program = _chain(reuse_a=False)
    verify_program(program, A2A3_CAPACITY)
    off = dict(program.offsets())
    shifted = dict(off, s=off["a"] + 1024)       # half over a: a's elements read after s's writes
    with pytest.raises(TileVerificationError, match="tiles a and s.*live at the same time but placed at overlapping"):
        verify_program(dataclasses.replace(program, placement=tuple(sorted(shifted.items()))), A2A3_CAPACITY)
    # reductions and broadcasts do not read each element where they write it: no pairs
    kb = KernelBuilder("pto_vec_rowsum_0", pass_name="test")
    kb.tensor("x", F32, (8, 64), (64, 1))
    kb.tensor("z", F32, (8, 64), (64, 1), output=True)
    kb.tile("a", Vec, F32, 8, 64, 8, 64)
    kb.tile("tmp", Vec, F32, 8, 64, 8, 64)
    kb.tile("m", Vec, F32, 8, 1, 8, 1, Layout.ColMajor)
    kb.tile("e", Vec, F32, 8, 64, 8, 64)
    kb.emit("TLOAD", "a", kb.view("x", 0, 8, 64, 64))
    kb.emit("TROWMAX", "m", "a", "tmp")
    kb.emit("TROWEXPAND", "e", "m")
    kb.emit("TSTORE", kb.view("z", 0, 8, 64, 64), "e")
    assert in_place_pairs(kb.build(A2A3_CAPACITY)) == set()
    assert in_place_pairs(program) == {("a", "s"), ("b", "s"), ("s", "e")}
