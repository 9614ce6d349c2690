"""Mark the results a stage stores into a held pipe slot, so that they are computed there.

    store_results_in_slots(program) -> TileProgram
        (the producing instruction: attr into=<the TSTORE's window>; that TSTORE: by_producer=True)

A mixed kernel hands a result to the other stage through a slot: `TMATMUL acc, l, r; TSTORE slot
<- acc` on the cube stage, `TCVT p, s; TSTORE slot <- p` on the vector stage. On the cpu target
Acc and Vec tiles are memory like the slot, and the TSTORE a copy (flash attention: two 32 KiB
products and 16 KiB of bf16 probabilities per key step). With `into`, a TMATMUL writes the product
into the window (`TMATMUL(acc, l, r, gm)`) and any other producer writes its Vec tile there (the
tile is pointed at the window first, `TASSIGN(tile, address)`), and the TSTORE is not rendered
(docs/device_abi.md). That computes the same slot contents when
- the tile has exactly one writer, that instruction, and one reader, the TSTORE, which follows it
  in the same body and stores the tile's valid region, ND, into a slot of the tile's element type
  (no conversion); the tile is not aliased (TRESHAPE);
- a TMATMUL is a plain one (no bias) into an Acc tile; any other producer is a
  V-op that writes exactly its valid region (TCVT, element-wise and expand ops; not a TLOAD, which
  pads the rest of the tile) into a Vec tile whose rows lie in the window as in the tile (one row,
  or a row stride of the tile's `Cols`);
- the slot is held at the producer: a TALLOC of its pipe earlier in the same body, and no TPUSH
  of it before the TSTORE.
A TMATMUL may also start a chain: `TMATMUL acc; (a K loop of) TMATMUL_ACC acc, acc, ..; TSTORE
slot <- acc`, acc's only other writers and readers those TMATMUL_ACCs, between the two (a loop
between may name acc only so). It is marked into=<window>, chain=True and rendered as the Acc tile
pointed at the window (TASSIGN to its address) and the plain TMATMUL: every product of the chain
accumulates in the slot (the window's rows `Cols` apart, as the cpu target stores an Acc tile).
The mixed matmul + epilogue kernels' K loops take it (SwiGLU's gate and up products: two 128 KiB
copies per 256 x 128 output tile fewer; the MLP's time moved within its noise).
Other targets render the producer and the TSTORE as they are; the attrs never change what the
program computes.
"""
from __future__ import annotations

import dataclasses

from pto_dynamo.lowering.tile.expr import exprs_equal
from pto_dynamo.lowering.tile.ir import (GmView, SerialLoop, Stage, TileInst, TileLoc, TileLoop, TileProgram, children,
                                         map_insts, walk)
from pto_dynamo.lowering.tile.printer import fmt_inst
from pto_dynamo.lowering.tile.specs import ops_of_family


# V-ops that write exactly their destination's valid region (a TLOAD pads the rest of the tile)
_VEC_PRODUCERS = frozenset({"TCVT", *ops_of_family("unary"), *ops_of_family("binary"), *ops_of_family("scalar"),
                            *ops_of_family("rowexpand_binary"), *ops_of_family("colexpand_binary"),
                            *ops_of_family("fused")})


def store_results_in_slots(program: TileProgram) -> TileProgram:
    """`program` with its eligible producer/TSTORE pairs marked (see module doc)."""
    if not program.pipes:
        return program
    decls, slots, aliased = program.tile_decls(), program.slots(), program.aliased()
    readers: dict[str, int] = {}
    writers: dict[str, int] = {}
    accumulations: dict[str, int] = {}         # acc -> its TMATMUL_ACC acc, acc, .. instructions
    for inst in program.instructions():
        for t in inst.ins:
            if isinstance(t, str):
                readers[t] = readers.get(t, 0) + 1
        for t in (*inst.outs, *inst.tmps):
            if isinstance(t, str):
                writers[t] = writers.get(t, 0) + 1
        if inst.op == "TMATMUL_ACC" and _accumulates(inst, inst.outs[0]):
            accumulations[inst.outs[0]] = accumulations.get(inst.outs[0], 0) + 1

    def producer(inst: TileInst) -> str | None:
        """The tile `inst` may compute into a slot window, if it is a candidate producer."""
        if not inst.outs or not isinstance(inst.outs[0], str) or inst.op == "TSTORE":
            return None
        t = inst.outs[0]
        chained = accumulations.get(t, 0) if inst.op == "TMATMUL" else 0
        if writers.get(t) != 1 + chained or readers.get(t) != 1 + chained or t in aliased or t in inst.tmps:
            return None
        loc = decls[t].loc
        if inst.op == "TMATMUL":
            return t if loc is TileLoc.Acc and len(inst.ins) == 2 else None
        return t if loc is TileLoc.Vec and inst.op in _VEC_PRODUCERS else None

    def pairs_in(body) -> dict[int, int]:
        """index of an eligible producer -> index of its TSTORE, within one body."""
        found, held = {}, set()
        for i, stmt in enumerate(body):
            if not isinstance(stmt, TileInst):
                continue
            if stmt.op == "TALLOC":
                held.add(stmt.attr("pipe"))
            elif stmt.op == "TPUSH":
                held.discard(stmt.attr("pipe"))
            elif (t := producer(stmt)) is not None:
                j = _store_of(body, i, t)
                if j is None:
                    continue
                view = body[j].outs[0]
                pipe = slots[view.tensor][0].name if isinstance(view, GmView) and view.tensor in slots else None
                chain = accumulations.get(t, 0) > 0 and stmt.op == "TMATMUL"
                # a chain's every TMATMUL_ACC lies between its TMATMUL and the TSTORE
                between = sum(1 for x in walk(body[i + 1:j]) if isinstance(x, TileInst) and _accumulates(x, t))
                if chain and between != accumulations[t]:
                    continue
                if pipe in held and _fits(view, decls[t], program.gm_dtype(view.tensor), chain):
                    found[i] = j
        return found

    def mark(body) -> tuple:
        pairs = pairs_in(body)
        out = []
        for i, stmt in enumerate(body):
            if isinstance(stmt, (TileLoop, SerialLoop, Stage)):
                stmt = dataclasses.replace(stmt, body=mark(stmt.body))
            elif i in pairs:
                chain = stmt.op == "TMATMUL" and accumulations.get(stmt.outs[0], 0) > 0
                stmt = stmt.with_attrs(into=body[pairs[i]].outs[0], chain=True if chain else None)
            elif i in pairs.values():
                stmt = stmt.with_attrs(by_producer=True)
            out.append(stmt)
        return tuple(out)

    return dataclasses.replace(program, body=mark(program.body))


def _accumulates(inst: TileInst, acc: str) -> bool:
    return inst.op == "TMATMUL_ACC" and inst.outs == (acc,) and inst.ins[0] == acc


def _store_of(body, i: int, acc: str) -> int | None:
    """Index of the TSTORE of `acc` that is the next instruction after body[i] naming it (no
    TPUSH between), or None. Loops and stages between may name it only to accumulate into it
    (TMATMUL_ACC acc, acc, ..: a K loop) and hold no TPUSH."""
    for j in range(i + 1, len(body)):
        stmt = body[j]
        if not isinstance(stmt, TileInst):
            inner = [x for x in walk(children(stmt)) if isinstance(x, TileInst)]
            if any(x.op == "TPUSH" or acc in x.tiles() and not _accumulates(x, acc) for x in inner):
                return None
            continue
        if _accumulates(stmt, acc):
            continue
        if stmt.op == "TPUSH":
            return None
        if acc in stmt.tiles():
            return j if stmt.op == "TSTORE" and stmt.ins[0] == acc else None
    return None


def _fits(view: GmView, decl, slot_dtype, chain: bool = False) -> bool:
    # a plain product goes into any window (TMATMUL's gm form); an accumulated one is the Acc tile
    # itself pointed at the window, whose rows must lie as the tile's (the cpu target stores an
    # Acc tile's rows Cols apart)
    rows_lie = decl.loc is TileLoc.Acc and not chain or decl.rows == 1 or exprs_equal(view.row_stride, decl.cols)
    return (view.is_nd and exprs_equal(view.col_stride, 1) and slot_dtype == decl.dtype and rows_lie
            and exprs_equal(view.rows, decl.valid_rows) and exprs_equal(view.cols, decl.valid_cols))


def unmarked(program: TileProgram) -> TileProgram:
    """`program` without the marks of store_results_in_slots."""
    return dataclasses.replace(program, body=map_insts(program.body,
                                                       lambda i: i.with_attrs(into=None, by_producer=None, chain=None)))


def check_slot_stores(ctx) -> None:
    """Verifier rule: every producer marked `into` and TSTORE marked `by_producer` is a pair this
    pass would mark (a wrong mark leaves a slot unwritten or writes a tile's bytes into it)."""
    marked = [i for i in ctx.program.instructions() if i.attr("into") is not None or i.attr("by_producer")]
    if not marked:
        return
    expected = [i for i in store_results_in_slots(unmarked(ctx.program)).instructions()
                if i.attr("into") is not None or i.attr("by_producer")]
    for inst in marked:
        if inst not in expected:
            ctx.where = fmt_inst(inst)
            ctx.error("computed into (or stored from) a pipe slot it may not be: the slot must be held at "
                      "the producer, the tile written only by it and read only by its TSTORE of the "
                      "tile's valid region (tile/slot_stores.py)")
