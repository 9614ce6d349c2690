"""Results stored into a held gm-pipe slot are computed there on the cpu target
(tile/slot_stores.py): the producer (a TMATMUL, a V-op) gets into=<the TSTORE's window>, the TSTORE
by_producer=True, only while the slot is held at the producer, the tile has no other reader and
its rows lie in the window as in the tile; the results are the same either way."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from pto_dynamo.lowering.tile import CPU_CAPACITY, F32, GmView, KernelBuilder, Role, TileLoc
from pto_dynamo.lowering.tile.ir import map_insts
from pto_dynamo.lowering.tile.slot_stores import store_results_in_slots
from tests.tile._helpers import build_region, check_doubled_times_y, cube_slot_times_y, v2c_kernel

Vec = TileLoc.Vec


def _cube_tiles(kb) -> None:
    """16 x 16 f32 Mat tiles a, b, Left l, Right r and Acc acc."""
    for name, loc in (("a", TileLoc.Mat), ("b", TileLoc.Mat), ("l", TileLoc.Left), ("r", TileLoc.Right),
                      ("acc", TileLoc.Acc)):
        kb.tile(name, loc, F32, 16, 16, 16, 16)


def _vector_doubles_the_slot_into_z(kb, pipe) -> None:
    """The vector stage: TPOP, z = 2 x (the 16 x 16 f32 slot), TFREE."""
    with kb.stage(Role.VECTOR):
        kb.tile("s", Vec, F32, 16, 16, 16, 16)
        kb.tile("e", Vec, F32, 16, 16, 16, 16)
        kb.emit("TPOP", pipe="pipe0")
        kb.emit("TLOAD", "s", GmView(pipe.slot(Role.VECTOR), 0, 16, 16, 16))
        kb.emit("TADD", "e", "s", "s")
        kb.emit("TFREE", pipe="pipe0")
        kb.emit("TSTORE", kb.view("z", 0, 16, 16, 16), "e")


def _product_through_a_slot(case: str):
    """z = 2 (x @ y) for 16 x 16 f32: the cube stage's product goes to the vector stage through a
    slot. `ok`: TALLOC, TMATMUL, TSTORE; `alloc_after`: the slot is taken after the TMATMUL;
    `read_again`: the Acc tile is stored to z as well."""
    kb = KernelBuilder(f"pto_mixed_product_{case}", kind="mixed")
    kb.tensor("x", F32, (16, 16), (16, 1))
    kb.tensor("y", F32, (16, 16), (16, 1))
    kb.tensor("z", F32, (16, 16), (16, 1), output=True)
    kb.tensor("w", F32, (16, 16), (16, 1), output=True)
    pipe = kb.pipe("pipe0", F32, 256)
    with kb.tile_loop("t", 1):
        with kb.stage(Role.CUBE):
            _cube_tiles(kb)
            kb.emit("TLOAD", "a", kb.view("x", 0, 16, 16, 16))
            kb.emit("TLOAD", "b", kb.view("y", 0, 16, 16, 16))
            kb.emit("TMOV", "l", "a")
            kb.emit("TMOV", "r", "b")
            if case != "alloc_after":
                kb.emit("TALLOC", pipe="pipe0")
            kb.emit("TMATMUL", "acc", "l", "r")
            if case == "alloc_after":
                kb.emit("TALLOC", pipe="pipe0")
            kb.emit("TSTORE", GmView(pipe.slot(Role.CUBE), 0, 16, 16, 16), "acc")
            kb.emit("TPUSH", pipe="pipe0")
            if case == "read_again":
                kb.emit("TSTORE", kb.view("w", 0, 16, 16, 16), "acc")
        _vector_doubles_the_slot_into_z(kb, pipe)
    return kb


@pytest.mark.parametrize("case, into", [("ok", True), ("alloc_after", False), ("read_again", False)])
def test_products_go_into_held_slots_only(case, into):
    kb = _product_through_a_slot(case)
    marked = store_results_in_slots(kb.build())
    (mm,) = [i for i in marked.instructions() if i.op == "TMATMUL"]
    (store,) = [i for i in marked.instructions() if i.op == "TSTORE" and i.ins[0] == "acc"
                and isinstance(i.outs[0], GmView) and i.outs[0].tensor.startswith("pipe0")]
    assert (mm.attr("into") is not None) is into
    assert store.attr("by_producer", False) is into
    if into:
        assert mm.attr("into") == store.outs[0]
    program = kb.build(CPU_CAPACITY)                 # build() marks the pairs it may
    assert ([i.attr("into") is not None for i in program.instructions() if i.op == "TMATMUL"] == [into])
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 16, generator=g), torch.randn(16, 16, generator=g)
    z, w = torch.full((16, 16), float("nan")), torch.full((16, 16), float("nan"))
    _, call = build_region(program, f"product_{case}")
    call([x, y, z, w], [], 3)
    torch.testing.assert_close(z, 2 * (x @ y))
    if case == "read_again":
        torch.testing.assert_close(w, x @ y)


def _accumulated_product_through_a_slot(case: str):
    """z = 2 (x @ y), x 16 x 48, y 48 x 16, over a K loop: TMATMUL of the first 16 columns, then
    TMATMUL_ACC of the next ones in a serial loop. `chain`: TALLOC before it all; `alloc_after`:
    the slot is taken after the K loop; `read_between`: acc is also stored to w between the
    TMATMUL and the loop."""
    kb = KernelBuilder(f"pto_mixed_chain_{case}", kind="mixed")
    kb.tensor("x", F32, (16, 48), (48, 1))
    kb.tensor("y", F32, (48, 16), (16, 1))
    kb.tensor("z", F32, (16, 16), (16, 1), output=True)
    kb.tensor("w", F32, (16, 16), (16, 1), output=True)
    pipe = kb.pipe("pipe0", F32, 256)

    def k_step(k0, first: bool):
        kb.emit("TLOAD", "a", kb.view("x", k0, 16, 16, 48))
        kb.emit("TLOAD", "b", kb.view("y", 16 * k0, 16, 16, 16))
        kb.emit("TMOV", "l", "a")
        kb.emit("TMOV", "r", "b")
        if first:
            kb.emit("TMATMUL", "acc", "l", "r")
        else:
            kb.emit("TMATMUL_ACC", "acc", "acc", "l", "r")

    with kb.tile_loop("t", 1):
        with kb.stage(Role.CUBE):
            _cube_tiles(kb)
            if case != "alloc_after":
                kb.emit("TALLOC", pipe="pipe0")
            k_step(0, True)
            if case == "read_between":
                kb.emit("TSTORE", kb.view("w", 0, 16, 16, 16), "acc")
            with kb.serial_loop("k0", 16, 48, 16) as k0:
                k_step(k0, False)
            if case == "alloc_after":
                kb.emit("TALLOC", pipe="pipe0")
            kb.emit("TSTORE", GmView(pipe.slot(Role.CUBE), 0, 16, 16, 16), "acc")
            kb.emit("TPUSH", pipe="pipe0")
        _vector_doubles_the_slot_into_z(kb, pipe)
    return kb


@pytest.mark.parametrize("case, into", [("chain", True), ("alloc_after", False), ("read_between", False)])
def test_accumulated_products_go_into_held_slots_only(case, into):
    """A K loop's products accumulate in the slot when the Acc tile is read by nothing but its
    TMATMUL_ACCs and the TSTORE (the tile pointed at the window, docs/device_abi.md)."""
    program = _accumulated_product_through_a_slot(case).build(CPU_CAPACITY)
    (mm,) = [i for i in program.instructions() if i.op == "TMATMUL"]
    (store,) = [i for i in program.instructions() if i.op == "TSTORE" and i.ins[0] == "acc"
                and isinstance(i.outs[0], GmView) and i.outs[0].tensor.startswith("pipe0")]
    assert (mm.attr("into") is not None) is into and mm.attr("chain", False) is into
    assert store.attr("by_producer", False) is into
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 48, generator=g), torch.randn(48, 16, generator=g)
    z, w = torch.full((16, 16), float("nan")), torch.full((16, 16), float("nan"))
    region, call = build_region(program, f"chain_{case}")
    if into:
        from pto_dynamo.ascend_backend.render import render_translation_unit
        assert "TASSIGN(acc, reinterpret_cast<uint64_t>(" in render_translation_unit(region)
    call([x, y, z, w], [], 3)
    torch.testing.assert_close(z, 2 * (x @ y))
    if case == "read_between":
        torch.testing.assert_close(w, x[:, :16] @ y[:16])


def _vector_result_through_a_slot(case: str):
    """z = (2 x) @ y for 16 x 16 f32: the vector stage computes 2x into a tile it stores into a V2C
    slot, the cube stage multiplies it. `ok`: TALLOC before the TMULS; `alloc_after`: after it;
    `wide_tile`: the tile's rows are 32 elements apart, the slot's 16 (not where the tile's lie)."""
    kb, pipe = v2c_kernel(f"pto_mixed_vec_result_{case}")
    with kb.tile_loop("t", 1):
        with kb.stage(Role.VECTOR):
            kb.tile("a", Vec, F32, 16, 16, 16, 16)
            kb.tile("p", Vec, F32, 16, 32 if case == "wide_tile" else 16, 16, 16)
            kb.emit("TLOAD", "a", kb.view("x", 0, 16, 16, 16))
            if case != "alloc_after":
                kb.emit("TALLOC", pipe="pipe0")
            kb.emit("TMULS", "p", "a", 2.0)
            if case == "alloc_after":
                kb.emit("TALLOC", pipe="pipe0")
            kb.emit("TSTORE", GmView(pipe.slot(Role.VECTOR), 0, 16, 16, 16), "p")
            kb.emit("TPUSH", pipe="pipe0")
        cube_slot_times_y(kb, pipe)
    return kb


@pytest.mark.parametrize("case, into", [("ok", True), ("alloc_after", False), ("wide_tile", False)])
def test_vector_results_go_into_held_slots_only(case, into):
    kb = _vector_result_through_a_slot(case)
    program = kb.build(CPU_CAPACITY)
    (muls,) = [i for i in program.instructions() if i.op == "TMULS"]
    (store,) = [i for i in program.instructions() if i.op == "TSTORE" and i.ins[0] == "p"]
    assert (muls.attr("into") is not None) is into
    assert store.attr("by_producer", False) is into
    check_doubled_times_y(program, f"vec_result_{case}", 3)


def test_verifier_rejects_a_mark_the_pass_would_not_make():
    """A producer marked into a slot it does not hold at the time (TALLOC after it) would compute
    into whatever the slot variable last pointed at: the verifier names it."""
    from pto_dynamo.lowering.tile.verifier import verify_program
    program = _vector_result_through_a_slot("alloc_after").build()
    (store,) = [i for i in program.instructions() if i.op == "TSTORE" and i.ins[0] == "p"]

    def force(inst):
        if inst.op == "TMULS":
            return inst.with_attrs(into=store.outs[0])
        return inst.with_attrs(by_producer=True) if inst == store else inst
    forced = dataclasses.replace(program, body=map_insts(program.body, force))
    with pytest.raises(Exception, match="may not be"):
        verify_program(forced)
