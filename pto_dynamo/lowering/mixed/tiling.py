"""Tile a MixedPlan (matmuls + pointwise epilogue) into one mixed TileProgram.

    pipe pipe0: 2 slots of n_mm x Mt x Nt (result dtype), block b's slice at b x per_block
    for t in tiles(batch x ceil(M/Mt) x ceil(N/Nt)), chunked over blocks:          (SPMD)
        bi, m0, n0, vm, vn
        cube stage:
            TALLOC pipe0
            for each matmul i: acc_i <- K loop (cube/tiling.accumulate)
            TSTORE slot[i] <- acc_i (f32 -> result dtype);  TPUSH pipe0
        vector stage (AIV subblock_idx of subblock_num takes its share of the vm rows):
            TPOP pipe0
            for each R x C window of its rows:
                the epilogue's nodes (vector/tiling.KernelTiler), matmul results TLOADed from the
                slot, other operands from their buffers, results TSTOREd to theirs
            TFREE pipe0

With a dynamic M (and a B of >= 1 MiB) the kernel holds this loop twice: over the few-rows tiles
for M <= few_rows_limit, then over the big tiles, each running only on its side of that test
(cube/tiling.tile_loops).

The result dtype in the slot rounds the product exactly where the eager matmul does, so the
epilogue sees the values eager's pointwise ops see.
"""
from __future__ import annotations

import sympy

from pto_dynamo.lowering.cube.tiling import (TileLoopPlan, a_row_bytes, accumulate, output_tiles, tile_loops,
                                             tile_shape)
from pto_dynamo.lowering.mixed.epilogue import MixedPlan
from pto_dynamo.lowering.tile import GmView, PlanningError, Role, ceil_div, elem_type, emax, emin
from pto_dynamo.lowering.tile.capacity import TargetCapacity
from pto_dynamo.lowering.tile.ir import SUBBLOCK_IDX, SUBBLOCK_NUM
from pto_dynamo.lowering.vector.tile_rules import TileVal, TilingError, compute_type
from pto_dynamo.lowering.vector.tiling import KernelTiler, _Col, _round_up


class _CubeParams:
    """What cube/tiling's emitters need (kb, expr, let, tensor, bound), from the epilogue's tiler,
    so both stages share one kernel's parameters and scalars."""

    def __init__(self, tiler: KernelTiler):
        self.tiler, self.kb, self.bound = tiler, tiler.kb, tiler.bound

    def expr(self, e):
        return self.tiler._expr(e)

    def let(self, name: str, value):
        return self.tiler.let(name, value)

    def tensor(self, buffer: str) -> str:
        return self.tiler.param(buffer)


class _EpilogueTiler(KernelTiler):
    """KernelTiler whose matmul-result operands come from the held pipe slot."""

    def __init__(self, mixed: MixedPlan, metas: dict, name: str, graph: str, R: int, C: int, align: int):
        super().__init__(mixed.epilogue, metas, name, graph, R, C, align)
        self.slot_index = {value: i for i, (value, _) in enumerate(mixed.matmuls)}
        self.slot_name = ""
        self.tile_origin = (0, 0)
        self.slot_shape = (0, 0)

    def load(self, value: str, dmap: tuple) -> TileVal:
        if value not in self.slot_index:
            return super().load(value, dmap)
        key = (value, dmap)
        if key not in self.values:
            dtype = elem_type(self.metas[value].dtype)
            Mt, Nt = self.slot_shape
            m0, n0 = self.tile_origin
            raw = self.tile("full", dtype, base=value)
            off = self.slot_index[value] * Mt * Nt + (self.r0 - m0) * Nt + (self.col.c0 - n0)
            self.emit("TLOAD", raw.name, GmView(self.slot_name, off, self.vr, self.col.vc, Nt))
            want = compute_type(self.metas[value].dtype)
            self.values[key] = raw if dtype == want else self.convert(raw, want)
        return self.values[key]


def tile_mixed(mixed: MixedPlan, metas: dict, name: str, graph: str, capacity: TargetCapacity):
    """The planned, verified mixed TileProgram and its tiler (`.params`: buffer -> tensor name)."""
    first_value, first = mixed.matmuls[0]
    dtype = elem_type(metas[first.a.buffer].dtype)
    out_dtype = elem_type(metas[first_value].dtype)
    # the big tiles (a dynamic M adds the few-rows loop, whose tiles are smaller: cube/tiling.py)
    Mt, Nt, _ = tile_shape(dtype.itemsize, capacity, first.M if isinstance(first.M, int) else None,
                           accs=len(mixed.matmuls), a_row_bytes=a_row_bytes(first.a, dtype.itemsize))
    plan = mixed.epilogue        # rows of every Vec tile span whole 32-byte blocks, as in tile_kernel
    align = 32 // min([elem_type(metas[a.buffer].dtype).itemsize for a in (*plan.loads.values(), *plan.stores.values())]
                      + [2])
    attempts = []
    C = _round_up(min(Nt, capacity.tile_cols), align)
    while C >= 16:
        R = max(1, min(Mt, capacity.tile_elems // C))
        while R >= 1:
            tiler = _EpilogueTiler(mixed, metas, name, graph, R, C, align)
            try:
                _build(tiler, mixed, dtype, out_dtype, capacity)
                return tiler.kb.build(capacity), tiler
            except PlanningError as err:
                attempts.append(f"R={R} C={C}: {err}")
                R //= 2
        C //= 2
    raise TilingError(f"mixed kernel {name}: no epilogue tile fits the target's memory:\n  " + "\n  ".join(attempts[-3:]))


def _build(tiler: _EpilogueTiler, mixed: MixedPlan, dtype, out_dtype, capacity: TargetCapacity) -> None:
    """The kernel: its tile loops (cube/tiling.tile_loops: for a dynamic M the few-rows loop, then
    the big tiles' loop, each running only on its side of M <= few_rows_limit) share the pipe."""
    kb, p = tiler.kb, _CubeParams(tiler)
    kb.kind, kb.pass_name = "mixed", "lowering.mixed"
    kb.description = (" + ".join(f"{v} = {mm_name(mm)}" for v, mm in mixed.matmuls) + "; epilogue: "
                      + tiler._describe())[:300]
    first = mixed.matmuls[0][1]
    loops = tile_loops(p, first, dtype, capacity, accs=len(mixed.matmuls))
    pipe = kb.pipe("pipe0", out_dtype, len(mixed.matmuls) * max(l.shape[0] * l.shape[1] for l in loops))
    for loop in loops:
        _tile_loop(tiler, p, mixed, pipe, loop, dtype)


def _tile_loop(tiler: _EpilogueTiler, p: _CubeParams, mixed: MixedPlan, pipe, loop: TileLoopPlan, dtype) -> None:
    """One SPMD loop over output tiles: the cube stage's K loops into the pipe, the vector stage's
    epilogue out of it."""
    kb, (Mt, Nt, _) = tiler.kb, loop.shape
    first = mixed.matmuls[0][1]
    with output_tiles(p, first, loop) as tile:
        with kb.stage(Role.CUBE):
            accs = [f"{loop.acc}{i}" if i else loop.acc for i in range(len(mixed.matmuls))]
            kb.emit("TALLOC", pipe="pipe0")    # held over the K loops: the products may accumulate there
            for acc, (_, mm) in zip(accs, mixed.matmuls):
                accumulate(p, mm, dtype, tile, loop.shape, acc)
            for i, acc in enumerate(accs):
                kb.emit("TSTORE", GmView(pipe.slot(Role.CUBE), i * Mt * Nt, tile.vm, tile.vn, Nt), acc)
            kb.emit("TPUSH", pipe="pipe0")
        with kb.stage(Role.VECTOR):
            tiler.bound |= {SUBBLOCK_IDX.name, SUBBLOCK_NUM.name}
            kb.emit("TPOP", pipe="pipe0")
            tiler.slot_name, tiler.tile_origin, tiler.slot_shape = pipe.slot(Role.VECTOR), (tile.m0, tile.n0), (Mt, Nt)
            share = tiler.let("share", ceil_div(tile.vm, SUBBLOCK_NUM))
            s0 = tiler.let("sub0", SUBBLOCK_IDX * share)
            sv = tiler.let("sv", emax(emin(share, tile.vm - s0), 0))
            tiler.outer_idx = [tile.bi] if tiler.plan.rank == 3 else []
            with kb.serial_loop("rr", 0, sv, tiler.R) as rr:
                tiler.bound.add("rr")
                tiler.r0 = tiler.let("r0", tile.m0 + s0 + rr)
                tiler.vr = tiler.let("vr", emin(tiler.R, sv - rr))
                with kb.serial_loop("cc", 0, tile.vn, tiler.C) as cc:
                    tiler.bound.add("cc")
                    c0 = tiler.let("c0", tile.n0 + cc)
                    tiler.col = _Col(c0, tiler.let("vc", emin(tiler.C, tile.vn - cc)))
                    tiler.values = {}
                    tiler._body(tiler.plan.nodes, final=True)
            kb.emit("TFREE", pipe="pipe0")


def mm_name(mm) -> str:
    return "mm" if sympy.sympify(mm.batch) == 1 else "bmm"
