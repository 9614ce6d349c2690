"""Vec tiles loaded in place (TLOAD attr in_place=True; lowering/tile/in_place_loads.py, the cpu
target's LoadHint::InPlace): which loads get the hint, and that the cpu target computes what copies
compute, for windows it can point at (one row; rows exactly Cols apart) and windows it must copy,
including a tile loaded in place and then copied into again. Loads from a held gm-pipe slot read in
place while the slot is held."""
from __future__ import annotations

import pytest
import torch

from pto_dynamo.lowering.tile import A2A3_CAPACITY, F32, KernelBuilder, TileLoc, ceil_div, emin
from pto_dynamo.lowering.tile import handbuilt as hb
from pto_dynamo.lowering.tile.in_place_loads import _mark, eligible_tiles, read_inputs_in_place, slot_read_tiles
from pto_dynamo.lowering.tile.verifier import verify_program
from tests.tile._helpers import build_region, check_doubled_times_y, cube_slot_times_y, v2c_kernel

Vec = TileLoc.Vec


def _reload_program(rows_per_tile: int, cols: int, in_place: bool):
    """z = exp(x) * y + x, then z += y2 through a second load into x's tile (x, y, y2 only read).
    x and y have row stride x_ld / y_ld (runtime), z is contiguous; every tile is rows_per_tile x cols."""
    R, C = rows_per_tile, cols
    kb = KernelBuilder(f"pto_vec_exp_mul_add_{R}x{C}_{int(in_place)}_0", pass_name="test",
                       description="z = exp(x) * y + x + y2")
    n, x_ld, y_ld = kb.scalar("n"), kb.scalar("x_ld"), kb.scalar("y_ld")
    kb.tensor("x", F32, (n, C), (x_ld, 1))
    kb.tensor("y", F32, (n, C), (y_ld, 1))
    kb.tensor("y2", F32, (n, C), (y_ld, 1))
    kb.tensor("z", F32, (n, C), (C, 1), output=True)
    hint = {"in_place": True} if in_place else {}
    with kb.tile_loop("t", ceil_div(n, R)) as t:
        vr = kb.let("vr", emin(R, n - R * t))
        for name in ("a", "b", "e"):
            kb.tile(name, Vec, F32, R, C, vr, C)
        kb.emit("TLOAD", "a", kb.view("x", R * t * x_ld, vr, C, x_ld), **hint)
        kb.emit("TLOAD", "b", kb.view("y", R * t * y_ld, vr, C, y_ld), **hint)
        kb.emit("TEXP", "e", "a")
        kb.emit("TMUL", "e", "e", "b")
        kb.emit("TADD", "e", "e", "a")
        kb.emit("TLOAD", "a", kb.view("y2", R * t * y_ld, vr, C, y_ld), **hint)    # a, loaded again
        kb.emit("TADD", "e", "e", "a")
        kb.emit("TSTORE", kb.view("z", R * t * C, vr, C, C), "e")
    return kb.build(A2A3_CAPACITY)


@pytest.mark.parametrize("R,x_pad,y_pad", [
    (1, 0, 0),          # one row: always the window itself
    (4, 0, 0),          # rows C apart: the window itself
    (4, 0, 40),         # y's rows farther apart: x in place, y and y2 copied (a goes back to its storage)
    (4, 40, 0),         # x copied, y and y2 in place
])
@pytest.mark.parametrize("block_num", [1, 3])
def test_in_place_vec_loads_compute_what_copies_compute(R, x_pad, y_pad, block_num):
    C, n = 64, 13
    program = _reload_program(R, C, in_place=True)
    assert sum(i.attr("in_place", False) for i in program.instructions()) == 3
    x_full, y_full, y2_full = (torch.randn(n, C + pad) for pad in (x_pad, y_pad, y_pad))
    x, y, y2 = x_full[:, :C], y_full[:, :C], y2_full[:, :C]
    before = [t.clone() for t in (x_full, y_full, y2_full)]
    _, call = build_region(program, f"inplace_r{R}_{x_pad}_{y_pad}")
    z = torch.full((n, C), float("nan"))
    call([x, y, y2, z], [n, C + x_pad, C + y_pad], block_num)
    torch.testing.assert_close(z, torch.exp(x) * y + x + y2)
    for now, then in zip((x_full, y_full, y2_full), before):
        assert torch.equal(now, then)                    # inputs never written through a tile


def test_only_tiles_that_are_only_read_from_inputs_get_the_hint():
    program = _reload_program(4, 64, in_place=False)
    assert eligible_tiles(program) == {"a", "b"}
    marked = read_inputs_in_place(program)
    verify_program(marked, A2A3_CAPACITY)
    assert [i.attr("in_place", False) for i in marked.instructions() if i.op == "TLOAD"] == [True, True, True]
    # hand-built kernels that compute into their loaded tiles keep their copies
    for built in (hb.row_softmax(), hb.elementwise_chain()):
        assert eligible_tiles(built) == set()
        assert read_inputs_in_place(built) is built
    assert eligible_tiles(hb.residual_rmsnorm()) == {"wt"}          # x and r are computed into; w only read


def test_the_vector_lowering_reads_inputs_in_place(fresh):
    from pto_dynamo.cache import MEMORY_CACHE
    fn = lambda a, b, w: (torch.nn.functional.silu(a) * b, torch.softmax(a + w, -1))   # noqa: E731
    compiled = torch.compile(fn, backend="pto", fullgraph=True)
    for T in (3, 40):
        a, b, w = torch.randn(T, 96), torch.randn(T, 96), torch.randn(96)
        fresh.mark_dynamic(a, 0)
        fresh.mark_dynamic(b, 0)
        got, want = compiled(a, b, w), fn(a, b, w)
        for g, e in zip(got, want):
            torch.testing.assert_close(g, e)
    s = fresh.stats()
    assert s["signatures_compiled"] == 1, s
    assert all(v == 0 for v in s["host_nodes"].values()) and all(v == 0 for v in s["fallback_regions"].values()), s
    (compiled_graph,) = MEMORY_CACHE.values()
    loads = [line.strip() for r in compiled_graph.runners for line in r.source.splitlines()
             if line.strip().startswith("TLOAD(")]
    assert loads and all("LoadHint::InPlace" in line for line in loads), loads


@pytest.mark.parametrize("R", [1, 3])
def test_handbuilt_rmsnorm_reading_in_place(R):
    """The hand-built residual + RMSNorm with x, r, w read where they lie (bench_tile_rmsnorm.py)."""
    D, T, eps = 256, 7, 1e-6
    program = hb.residual_rmsnorm(D, eps=eps, rows_per_tile=R, read_in_place=True)
    assert sorted(i.outs[0] for i in program.instructions() if i.attr("in_place", False)) == ["rt", "wt", "xt"]
    _, call = build_region(program, f"rmsnorm_in_place_{R}")
    x, r, w = torch.randn(T, D), torch.randn(T, D), torch.randn(D)
    y, out = torch.empty(T, D), torch.empty(T, D)
    call([x, r, w, y, out], [T], 3)
    want_y = x + r
    torch.testing.assert_close(y, want_y)
    torch.testing.assert_close(out, want_y * torch.rsqrt(want_y.pow(2).mean(-1, keepdim=True) + eps) * w)


def _slot_reader(case: str):
    """A mixed kernel: the cube stage stores x into a pipe slot, the vector stage loads it into `a`
    and stores a + a. `case`: "ok" (read before TFREE), "after_free" (the add after TFREE),
    "written" (a is also computed into)."""
    from pto_dynamo.lowering.tile import CPU_CAPACITY, GmView, Role
    kb = KernelBuilder(f"pto_mixed_slot_{case}", kind="mixed")
    kb.tensor("x", F32, (16, 16), (16, 1))
    kb.tensor("z", F32, (16, 16), (16, 1), output=True)
    pipe = kb.pipe("pipe0", F32, 256)
    with kb.tile_loop("t", 1):
        with kb.stage(Role.CUBE):
            kb.tile("m", TileLoc.Mat, F32, 16, 16, 16, 16)
            kb.emit("TLOAD", "m", kb.view("x", 0, 16, 16, 16))
            kb.emit("TALLOC", pipe="pipe0")
            kb.emit("TSTORE", GmView(pipe.slot(Role.CUBE), 0, 16, 16, 16), "m")
            kb.emit("TPUSH", pipe="pipe0")
        with kb.stage(Role.VECTOR):
            kb.tile("a", Vec, F32, 16, 16, 16, 16)
            kb.tile("e", Vec, F32, 16, 16, 16, 16)
            kb.emit("TPOP", pipe="pipe0")
            kb.emit("TLOAD", "a", GmView(pipe.slot(Role.VECTOR), 0, 16, 16, 16))
            if case == "after_free":
                kb.emit("TFREE", pipe="pipe0")
            if case == "written":
                kb.emit("TADDS", "a", "a", 1.0)
            kb.emit("TADD", "e", "a", "a")
            if case != "after_free":
                kb.emit("TFREE", pipe="pipe0")
            kb.emit("TSTORE", kb.view("z", 0, 16, 16, 16), "e")
    return kb, CPU_CAPACITY


@pytest.mark.parametrize("case, in_place", [("ok", True), ("after_free", False), ("written", False)])
def test_slot_loads_read_in_place_only_while_the_slot_is_held(case, in_place):
    kb, capacity = _slot_reader(case)
    assert slot_read_tiles(kb.build()) == ({"a"} if in_place else set())
    program = kb.build(capacity)                     # build() marks the loads it may
    (load,) = [i for i in program.instructions() if i.op == "TLOAD" and i.outs[0] == "a"]
    assert load.attr("in_place", False) is in_place
    x = torch.randn(16, 16)
    z = torch.full((16, 16), float("nan"))
    _, call = build_region(program, f"slot_reader_{case}")
    call([x, z], [], 2)
    torch.testing.assert_close(z, 2 * (x + 1) if case == "written" else 2 * x)


def _slot_operand(case: str):
    """z = (2 x) @ y for 16 x 16 f32: the vector stage doubles x into a V2C slot, the cube stage
    loads it as the Left operand. `ok`: the slot is freed after the TMATMUL; `freed_first`: before."""
    from pto_dynamo.lowering.tile import CPU_CAPACITY, GmView, Role
    kb, pipe = v2c_kernel(f"pto_mixed_operand_{case}")
    with kb.tile_loop("t", 1):
        with kb.stage(Role.VECTOR):
            kb.tile("v", TileLoc.Vec, F32, 16, 16, 16, 16)
            kb.emit("TLOAD", "v", kb.view("x", 0, 16, 16, 16))
            kb.emit("TADD", "v", "v", "v")
            kb.emit("TALLOC", pipe="pipe0")
            kb.emit("TSTORE", GmView(pipe.slot(Role.VECTOR), 0, 16, 16, 16), "v")
            kb.emit("TPUSH", pipe="pipe0")
        cube_slot_times_y(kb, pipe, free_first=case == "freed_first")
    return kb, CPU_CAPACITY


@pytest.mark.parametrize("case, in_place", [("ok", True), ("freed_first", False)])
def test_matmul_operands_read_in_the_slot_only_while_it_is_held(case, in_place):
    """A Mat tile loaded from a held V2C slot keeps a view of it (its TMOV passes the view to the
    TMATMUL) only when the TMATMUL comes before the TFREE; the verifier rejects the mark otherwise."""
    kb, capacity = _slot_operand(case)
    assert slot_read_tiles(kb.build()) == ({"pm"} if in_place else set())
    program = kb.build(capacity)
    (load,) = [i for i in program.instructions() if i.op == "TLOAD" and i.outs[0] == "pm"]
    assert load.attr("in_place", False) is in_place
    check_doubled_times_y(program, f"slot_operand_{case}", 2)
    if not in_place:                                 # marked anyway: the verifier says why not
        forced = _mark(kb.build(), {"pm"})
        with pytest.raises(Exception, match="read after it is freed"):
            verify_program(forced, capacity)
