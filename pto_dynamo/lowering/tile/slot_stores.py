"""Mark the products a cube stage stores into a held pipe slot, so that they are computed there.

    store_products_in_slots(program) -> TileProgram
        (TMATMUL attr into=<the TSTORE's window>, that TSTORE attr by_matmul=True)

A mixed kernel hands a matmul result to its vector stage through a slot: `TMATMUL acc, l, r;
TSTORE slot <- acc`. On the cpu target an Acc tile is memory like the slot, and the TSTORE a copy
of it (flash attention: two 32 KiB copies per key step); a TMATMUL with `into` writes the product
into the window instead and the TSTORE is not rendered (docs/device_abi.md). That computes the
same slot contents when
- the TMATMUL is a plain one (no accumulation, no bias) into an Acc tile, and the next
  instruction of its body that names the tile is a TSTORE of it, ND, into a slot of the tile's
  element type (no conversion), over the tile's valid region;
- the slot is held at the TMATMUL: a TALLOC of its pipe earlier in the same body, and no TPUSH of
  it before the TSTORE;
- the TMATMUL is the tile's only writer and the TSTORE its only reader (nothing reads the Acc tile
  the cpu target then leaves unwritten).
Other targets render the TMATMUL and the TSTORE as they are; the attrs never change what the
program computes.
"""
from __future__ import annotations

import dataclasses

from pto_dynamo.lowering.tile.expr import exprs_equal
from pto_dynamo.lowering.tile.ir import GmView, SerialLoop, Stage, TileInst, TileLoc, TileLoop, TileProgram, walk


def _with_attr(inst: TileInst, key: str, value) -> TileInst:
    attrs = dict(inst.attrs)
    attrs[key] = value
    return dataclasses.replace(inst, attrs=tuple(sorted(attrs.items(), key=lambda kv: kv[0])))


def store_products_in_slots(program: TileProgram) -> TileProgram:
    """`program` with its eligible TMATMUL/TSTORE pairs marked (see module doc)."""
    if not program.pipes:
        return program
    decls, slots = program.tile_decls(), program.slots()
    readers: dict[str, int] = {}
    writers: dict[str, int] = {}
    for inst in (s for s in walk(program.body) if isinstance(s, TileInst)):
        for t in inst.ins:
            if isinstance(t, str):
                readers[t] = readers.get(t, 0) + 1
        for t in (*inst.outs, *inst.tmps):
            if isinstance(t, str):
                writers[t] = writers.get(t, 0) + 1

    def pair_in(body) -> dict[int, int]:
        """index of an eligible TMATMUL -> index of its TSTORE, within one body."""
        found, held = {}, set()
        for i, stmt in enumerate(body):
            if not isinstance(stmt, TileInst):
                continue
            if stmt.op == "TALLOC":
                held.add(stmt.attr("pipe"))
            elif stmt.op == "TPUSH":
                held.discard(stmt.attr("pipe"))
            elif stmt.op == "TMATMUL" and not stmt.tmps:
                acc = stmt.outs[0]
                if decls[acc].loc is not TileLoc.Acc or writers.get(acc) != 1 or readers.get(acc) != 1:
                    continue
                j = _store_of(body, i, acc)
                if j is None:
                    continue
                view = body[j].outs[0]
                pipe = slots[view.tensor][0].name if isinstance(view, GmView) and view.tensor in slots else None
                if pipe in held and _fits(view, decls[acc], program.gm_dtype(view.tensor)):
                    found[i] = j
        return found

    def mark(body) -> tuple:
        pairs = pair_in(body)
        out = []
        for i, stmt in enumerate(body):
            if isinstance(stmt, (TileLoop, SerialLoop, Stage)):
                stmt = dataclasses.replace(stmt, body=mark(stmt.body))
            elif i in pairs:
                stmt = _with_attr(stmt, "into", body[pairs[i]].outs[0])
            elif i in pairs.values():
                stmt = _with_attr(stmt, "by_matmul", True)
            out.append(stmt)
        return tuple(out)

    return dataclasses.replace(program, body=mark(program.body))


def _store_of(body, i: int, acc: str) -> int | None:
    """Index of the TSTORE of `acc` that is the next instruction after body[i] naming it (no
    TPUSH between), or None."""
    for j in range(i + 1, len(body)):
        stmt = body[j]
        if not isinstance(stmt, TileInst):
            if any(isinstance(x, TileInst) and acc in x.tiles() for x in walk(getattr(stmt, "body", ()))):
                return None
            continue
        if stmt.op == "TPUSH":
            return None
        if acc in stmt.tiles():
            return j if stmt.op == "TSTORE" and stmt.ins[0] == acc else None
    return None


def _fits(view: GmView, decl, slot_dtype) -> bool:
    return (view.is_nd and exprs_equal(view.col_stride, 1) and slot_dtype == decl.dtype
            and exprs_equal(view.rows, decl.valid_rows) and exprs_equal(view.cols, decl.valid_cols))
