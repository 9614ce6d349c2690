"""Mark the TLOADs of a vector kernel whose Vec tiles may read the input where it lies.

    read_inputs_in_place(program) -> TileProgram       (TLOAD attr in_place=True where allowed)
    read_slots_in_place(program) -> TileProgram        (the same for loads from held pipe slots)

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

A Vec tile may also be loaded in place from a gm-pipe slot its role holds (`slot_read_tiles`;
KernelBuilder.build marks every such load of a mixed kernel): flash attention's scores and P @ V
block, a mixed kernel's matmul results. The slot is this block's own and nobody writes it until
the consumer frees it, so reading it there equals reading a copy when
- no instruction but its TLOADs writes the tile, and nothing aliases it;
- every instruction that reads it follows one of those TLOADs in the same body, with no TPOP or
  TFREE of that pipe in between (a TFREE later in the body, or after the loop around it, ends it).
So may a Mat tile the cube stage loads from a V2C slot it holds (flash attention's probabilities,
the A operand of P @ V): its view goes on through TMOV/TEXTRACT into Left/Right tiles to the
TMATMUL (docs/device_abi.md), so the tile is read only by such moves, those operand tiles only
by matmuls and written only by those moves, and every read of either lies in the held window.
"""
from __future__ import annotations

import dataclasses

from pto_dynamo.lowering.tile.ir import (GmView, SerialLoop, Stage, TileInst, TileLoc, TileLoop, TileProgram, map_insts,
                                         walk)

MOVES = {"TMOV", "TEXTRACT"}                       # pass a Mat tile's in-place view on
MATMULS = {"TMATMUL", "TMATMUL_ACC", "TMATMUL_BIAS"}


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
    aliased = program.aliased()
    return {t for t in loaded - written - aliased if decls[t].loc is TileLoc.Vec}


def slot_read_tiles(program: TileProgram) -> set[str]:
    """Vec and Mat tiles that may be loaded in place from a pipe slot (see module doc)."""
    decls, slots = program.tile_decls(), program.slots()
    insts = [s for s in walk(program.body) if isinstance(s, TileInst)]
    reads: dict[str, int] = {}
    loaded, other_writes = set(), set()
    for inst in insts:
        for t in inst.ins:
            if isinstance(t, str):
                reads[t] = reads.get(t, 0) + 1
        is_slot_load = inst.op == "TLOAD" and isinstance(inst.ins[0], GmView) and inst.ins[0].tensor in slots
        for t in (*inst.outs, *inst.tmps):
            if isinstance(t, str):
                (loaded if is_slot_load else other_writes).add(t)
    candidates = {t for t in loaded - other_writes - program.aliased() if decls[t].loc in (TileLoc.Vec, TileLoc.Mat)}
    # a Mat candidate's view reaches the Left/Right tiles it is moved into: their reads count too
    family: dict[str, set[str]] = {t: {t} for t in candidates}
    moved: dict[str, set[str]] = {}
    for inst in insts:
        if inst.op in MOVES and isinstance(inst.ins[0], str) and inst.ins[0] in candidates:
            moved.setdefault(inst.ins[0], set()).add(inst.outs[0])
    for t in [t for t in candidates if decls[t].loc is TileLoc.Mat]:
        ops = moved.get(t, set())
        writes = [i for i in insts if set(i.outs) & ops and not (i.op in MOVES and i.ins[0] == t)]
        if writes or ops & program.aliased() or any(decls[o].loc not in (TileLoc.Left, TileLoc.Right) for o in ops) \
                or any(r in ops and i.op not in MATMULS for i in insts for r in i.ins) \
                or any(r == t and i.op not in MOVES for i in insts for r in i.ins):
            candidates.discard(t)
            continue
        family[t] |= ops
    covered: dict[str, int] = {}             # reads inside the windows of the candidates' loads
    bad: set[str] = set()

    def scan(body):
        for i, stmt in enumerate(body):
            if isinstance(stmt, (TileLoop, SerialLoop, Stage)):
                scan(stmt.body)
                continue
            if not (isinstance(stmt, TileInst) and stmt.op == "TLOAD" and stmt.outs[0] in candidates):
                continue
            tile, pipe = stmt.outs[0], slots[stmt.ins[0].tensor][0].name
            members = family[tile]
            for later in body[i + 1:]:
                if isinstance(later, (TileLoop, SerialLoop, Stage)):
                    if any(isinstance(x, TileInst) and members & set(x.ins) for x in walk(later.body)):
                        bad.add(tile)         # read in a nested loop: keep the rule simple
                    continue
                if not isinstance(later, TileInst):
                    continue
                if later.op in ("TPOP", "TFREE") and later.attr("pipe") == pipe or later.outs[:1] == (tile,):
                    break
                for x in later.ins:
                    if x in members:
                        covered[x] = covered.get(x, 0) + 1

    scan(program.body)
    return {t for t in candidates - bad if all(covered.get(m, 0) == reads.get(m, 0) for m in family[t])}


def read_inputs_in_place(program: TileProgram) -> TileProgram:
    """`program` with in_place=True on every TLOAD into an eligible tile (see module doc)."""
    return _mark(program, eligible_tiles(program))


def read_slots_in_place(program: TileProgram) -> TileProgram:
    """`program` with in_place=True on every TLOAD from a pipe slot into a tile that may read it
    there (slot_read_tiles)."""
    return _mark(program, slot_read_tiles(program) if program.pipes else set())


def _mark(program: TileProgram, tiles: set[str]) -> TileProgram:
    if not tiles:
        return program

    def mark(inst: TileInst) -> TileInst:
        return inst.with_attrs(in_place=True) if inst.op == "TLOAD" and inst.outs[0] in tiles else inst

    return dataclasses.replace(program, body=map_insts(program.body, mark))
