"""Mark the TLOADs of a vector kernel whose Vec tiles may read the input where it lies.

    read_inputs_in_place(program) -> TileProgram       (TLOAD attr in_place=True where allowed)

A TLOAD with `in_place=True` lets the cpu target point a Vec tile at the global window instead of
copying it (docs/device_abi.md, LoadHint::InPlace): the V-ops then read a kernel input straight
from memory, one pass over it fewer (residual + RMSNorm reads x and r once instead of copying both
first). That gives the same results as a copy when
- the tensor is a kernel input: no block writes it during the launch (not an output parameter,
  not a gm-pipe slot);
- the tile is only read: no instruction but its TLOADs writes it (as an output or a scratch
  tile), and it is not aliased by TRESHAPE, whose alias would share the pointer.
The hint never changes what a target that copies computes; the verifier checks the same rules
(verify_in_place.py).
"""
from __future__ import annotations

import dataclasses

from pto_dynamo.lowering.tile.ir import SerialLoop, Stage, TileInst, TileLoc, TileLoop, TileProgram, walk


def eligible_tiles(program: TileProgram) -> set[str]:
    """Vec tiles that only TLOADs from kernel inputs write and nothing aliases."""
    decls = program.tile_decls()
    insts = [s for s in walk(program.body) if isinstance(s, TileInst)]
    slots = program.slots()
    loaded, written = set(), set()
    for inst in insts:
        if inst.op == "TLOAD" and inst.ins[0].tensor not in slots and not program.param(inst.ins[0].tensor).is_output:
            loaded.add(inst.outs[0])
        else:
            written |= {t for t in (*inst.outs, *inst.tmps) if isinstance(t, str)}
    aliases = program.aliases()
    aliased = set(aliases) | set(aliases.values())
    return {t for t in loaded - written - aliased if decls[t].loc is TileLoc.Vec}


def read_inputs_in_place(program: TileProgram) -> TileProgram:
    """`program` with in_place=True on every TLOAD into an eligible tile (see module doc)."""
    tiles = eligible_tiles(program)
    if not tiles:
        return program

    def mark(stmt):
        if isinstance(stmt, TileInst) and stmt.op == "TLOAD" and stmt.outs[0] in tiles:
            attrs = dict(stmt.attrs)
            attrs["in_place"] = True
            return dataclasses.replace(stmt, attrs=tuple(sorted(attrs.items())))
        if isinstance(stmt, (TileLoop, SerialLoop, Stage)):
            return dataclasses.replace(stmt, body=tuple(mark(s) for s in stmt.body))
        return stmt

    return dataclasses.replace(program, body=tuple(mark(s) for s in program.body))
