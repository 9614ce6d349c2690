"""Tile placement: the `TASSIGN` byte offset of every tile within its memory.

Tiles are placed by a first-fit allocator over their live ranges: two tiles share bytes only when
their live ranges (first to last mention in program order, widened to whole loops for tiles that
are declared outside a loop and used inside it) do not overlap. Offsets are aligned to the
target's alignment; exceeding a memory's capacity raises with the tiles that occupy it.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict

from pto_dynamo.lowering.tile.capacity import TargetCapacity
from pto_dynamo.lowering.tile.ir import (SerialLoop, Stage, Stmt, TileDecl, TileInst, TileLoop, TileProgram,
                                         alias_map)


class PlanningError(ValueError):
    """The tiles of a kernel do not fit the target's memories."""


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def live_ranges(body: tuple[Stmt, ...]) -> dict[str, tuple[int, int]]:
    """Tile name -> (first, last) statement position, loop-aware.

    A tile declared outside a loop and used inside it stays live for the whole loop (its value
    must survive into the next iteration); a tile declared inside a loop lives within it.
    """
    ranges: dict[str, list[int]] = {}
    counter = [0]
    root = alias_map(body)    # a TRESHAPE alias keeps its root's bytes live

    def visit(stmts: tuple[Stmt, ...], enclosing: list[tuple[int, set[str]]]) -> None:
        # enclosing: (start position, names declared inside) of each loop around `stmts`
        for s in stmts:
            pos = counter[0]
            counter[0] += 1
            names: list[str] = []
            if isinstance(s, TileDecl):
                names = [s.name]
                if enclosing:
                    enclosing[-1][1].add(s.name)
            elif isinstance(s, TileInst):
                names = list(s.tiles())
            names = [root.get(n, n) for n in names]
            for n in names:
                r = ranges.setdefault(n, [pos, pos])
                r[1] = max(r[1], pos)
            if isinstance(s, Stage):      # straight-line code of one core: no live-range widening
                visit(s.body, enclosing)
            elif isinstance(s, (TileLoop, SerialLoop)):
                inner: set[str] = set()
                start = pos
                visit(s.body, enclosing + [(start, inner)])
                end = counter[0]
                # tiles mentioned in the loop but declared outside it live across the whole loop
                for n, r in ranges.items():
                    if n not in inner and r[1] > start and r[1] <= end:
                        r[1] = end
                        r[0] = min(r[0], start)
                if enclosing:
                    enclosing[-1][1].update(inner)

    visit(body, [])
    return {n: (r[0], r[1]) for n, r in ranges.items()}


def plan_tiles(program: TileProgram, capacity: TargetCapacity) -> TileProgram:
    """Return `program` with `placement` filled: first-fit offsets per memory, live-range aware."""
    aliases = program.aliases()
    decls = {n: d for n, d in program.tile_decls().items() if n not in aliases}
    ranges = live_ranges(program.body)
    by_loc: dict[object, list[TileDecl]] = defaultdict(list)
    for d in decls.values():
        by_loc[d.loc].append(d)
    placement: dict[str, int] = {}
    for loc, tiles in by_loc.items():
        limit = capacity.capacity(loc)
        placed: list[tuple[int, int, tuple[int, int], str]] = []   # (offset, size, range, name)
        for d in sorted(tiles, key=lambda d: (ranges.get(d.name, (0, 0))[0], d.name)):
            size = _align(d.nbytes, capacity.alignment)
            rng = ranges.get(d.name, (0, 0))
            busy = sorted((o, o + n) for o, n, r, _ in placed if not (r[1] < rng[0] or rng[1] < r[0]))
            offset = 0
            for lo, hi in busy:
                if offset + size <= lo:
                    break
                offset = max(offset, _align(hi, capacity.alignment))
            if offset + size > limit:
                users = ", ".join(f"{n} ({s} B @ {o:#x})" for o, s, _, n in placed)
                raise PlanningError(
                    f"tile planning: kernel {program.name}: tile {d.name} ({d.rows}x{d.cols} {d.dtype}, "
                    f"{d.nbytes} B) does not fit {loc.name} ({loc.memory}, {limit} B on {capacity.name}); "
                    f"already placed: {users or 'nothing'}. Use smaller tiles.")
            placed.append((offset, size, rng, d.name))
            placement[d.name] = offset
    return dataclasses.replace(program, placement=tuple(sorted(placement.items())))
