"""Verifier rules of in-place loads (TLOAD attr `in_place=True`): matmul operands and Vec tiles.

A Vec tile may be loaded in place when it is only read (in_place_loads.py: a kernel input, no
instruction but its TLOADs writes the tile, no TRESHAPE aliases it), or from a pipe slot its role
holds, read only until the slot is freed (in_place_loads.slot_read_tiles). For matmul operands:

On the cpu target such a Mat tile holds a view of global memory instead of a copy, and TMOV or
TEXTRACT into a Left/Right tile passes the view on to TMATMUL (docs/device_abi.md). That is the
same result as a copy only when
- the tensor is a kernel input: no block writes it during the launch (not an output parameter),
  or a pipe slot the cube stage holds while the tile and its moves are read (slot_read_tiles);
- the view is read only along that path: the Mat tile only by TMOV/TEXTRACT into Left or Right
  tiles, those only by TMATMUL, TMATMUL_ACC and TMATMUL_BIAS, and none of them is aliased
  (TRESHAPE), since an alias would read the tile's own bytes.
"""
from __future__ import annotations

from pto_dynamo.lowering.tile.in_place_loads import MATMULS, MOVES, eligible_tiles, slot_read_tiles
from pto_dynamo.lowering.tile.ir import TileInst, TileLoc, walk
from pto_dynamo.lowering.tile.printer import fmt_inst


def check_in_place(ctx) -> None:
    """Report every in-place load (and every reader of its views) the cpu target could get wrong."""
    insts = [s for s in walk(ctx.program.body) if isinstance(s, TileInst)]
    loads = [i for i in insts if i.op == "TLOAD" and i.attr("in_place", False)]
    if not loads:
        return
    mats = set()
    may_read = eligible_tiles(ctx.program) | slot_read_tiles(ctx.program)
    for inst in loads:
        ctx.where = fmt_inst(inst)
        dst, view = ctx.tile(inst.outs[0]), inst.ins[0]
        if dst is not None and dst.loc is TileLoc.Vec:
            if dst.name not in may_read:
                ctx.error(f"an in-place TLOAD into a Vec tile needs a tile that only TLOADs from kernel inputs "
                          f"(or from a held pipe slot, read before its TFREE) write and that no TRESHAPE aliases; "
                          f"{dst.name} is not one")
            continue
        if dst is not None and dst.loc is not TileLoc.Mat:
            ctx.error(f"an in-place TLOAD writes a Mat tile (a matmul operand) or a Vec tile; "
                      f"{dst.name} is a {dst.loc.name} tile")
        if view.tensor in ctx.program.slots():
            if inst.outs[0] not in may_read:
                ctx.error(f"an in-place TLOAD of a Mat tile from a pipe slot needs the slot held while the tile, "
                          f"and the operands it is moved into, are read; {inst.outs[0]} is read after it is freed")
        elif ctx.program.param(view.tensor).is_output:
            ctx.error(f"an in-place TLOAD reads a kernel input; the kernel writes {view.tensor}: load a copy")
        mats.add(inst.outs[0])
    operands = {i.outs[0] for i in insts if i.op in MOVES and i.ins[0] in mats}
    allowed = [(mats, MOVES, "TMOV/TEXTRACT"), (operands, MATMULS, "TMATMUL")]
    for inst in insts:
        for tiles, ops, what in allowed:
            read = [t for t in inst.ins if isinstance(t, str) and t in tiles]
            if read and inst.op not in ops:
                ctx.where = fmt_inst(inst)
                ctx.error(f"{inst.op} reads {read[0]}, a view of an in-place TLOAD that only {what} may read")
    for name in operands:
        d = ctx.tile(name)
        if d is not None and d.loc not in (TileLoc.Left, TileLoc.Right):
            ctx.where = f"tile {name}"
            ctx.error(f"a move of an in-place Mat tile goes to a Left or Right tile; {name} is a {d.loc.name} tile")
    aliased = (mats | operands) & (set(ctx.aliases) | set(ctx.aliases.values()))
    for name in sorted(aliased):
        ctx.where = f"tile {name}"
        ctx.error(f"tile {name} holds an in-place view and must not be aliased by TRESHAPE")
