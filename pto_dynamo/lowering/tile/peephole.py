"""Instruction pairs the ISA does as one instruction, merged before tile planning; conversion
round trips dropped.

    merge_pairs(program) -> TileProgram
    drop_round_trips(program) -> TileProgram

The lowerings emit one instruction per op; where the PTO ISA has a single instruction for an op
and the op that consumes its result (`TROWEXPANDEXPDIF`: exp(src0 - s_i), pto_isa.md §3.5), the
pair becomes that instruction: one pass over the tile instead of two, and one tile fewer to plan.
Softmax, log-softmax and flash attention's online softmax subtract a row's max and take exp.

A pair (first, second) merges when
- second directly follows first in the same body (only tile declarations and lets in between,
  which neither read nor write tiles), and reads first's result as its only tile input;
- first's result is read by nothing else: second overwrites it (the in-place form `d = d - m;
  d = exp(d)`), or no other instruction, alias (TRESHAPE) or store refers to that tile at all;
- the rule's own condition holds (EXPDIF: a half or float tile, as the ISA takes it).
The merged instruction writes second's destination from first's operands; a tile left without
any reference loses its declaration. Results are those of the pair, up to the rounding the pair
made between the two steps (none here: both compute in the tile's own type).

A round trip `TCVT m <- x` (bf16 or f16 to f32), `TCVT d <- m` (back to x's type) gives x's
elements back exactly (f32 holds every bf16 and f16 value), so both go and d's readers read x.
The vector lowering computes bf16 values in f32 and rounds at every cast, so a bf16 copy (permute,
clone, alias) was six conversions between a load and a store. The pair must follow each other as
above, m must be referenced by the pair alone, x and d written once (by their own instruction) and
neither aliased, and d declared as x is (shape, valid region, layout).
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from pto_dynamo.lowering.tile.dtypes import BF16, F16, F32
from pto_dynamo.lowering.tile.expr import exprs_equal
from pto_dynamo.lowering.tile.ir import SerialLoop, Stage, Stmt, TileDecl, TileInst, TileLoop, TileProgram
from pto_dynamo.lowering.tile.ops import EXPDIF_TYPES
from pto_dynamo.lowering.tile.specs import op_spec


@dataclass(frozen=True)
class PairRule:
    merged: str                                     # the one instruction
    allowed: Callable[[TileInst, dict], bool]       # (first, tile decls) -> may merge


PAIR_RULES: dict[tuple[str, str], PairRule] = {}


def pair_rule(first: str, second: str, merged: str, allowed=lambda inst, decls: True) -> None:
    PAIR_RULES[(first, second)] = PairRule(merged, allowed)


def _expdif_tile(inst: TileInst, decls: dict) -> bool:
    decl = decls.get(inst.outs[0])
    return decl is not None and decl.dtype in EXPDIF_TYPES


pair_rule("TROWEXPANDSUB", "TEXP", "TROWEXPANDEXPDIF", _expdif_tile)
pair_rule("TCOLEXPANDSUB", "TEXP", "TCOLEXPANDEXPDIF", _expdif_tile)


def tile_references(program: TileProgram) -> Counter:
    """How many instruction operands (outs, ins, tmps; TSTORE's source included) name each tile."""
    refs: Counter = Counter()
    for inst in program.instructions():
        refs.update(inst.tiles())
    return refs


def merge_pairs(program: TileProgram) -> TileProgram:
    """`program` with every mergeable pair (see module doc) replaced by its one instruction."""
    decls = program.tile_decls()
    refs = tile_references(program)
    aliased = program.aliased()

    def mergeable(first: TileInst, second: TileInst) -> PairRule | None:
        rule = PAIR_RULES.get((first.op, second.op))
        if rule is None or len(first.outs) != 1 or first.tmps or second.tmps:
            return None
        mid = first.outs[0]
        if second.ins != (mid,) or mid in aliased:
            return None
        # d = sub(..); d = exp(d): the difference is overwritten at once. Otherwise the tile must
        # be referenced by this pair alone (first's out, second's in).
        if second.outs[0] != mid and refs[mid] != 2:
            return None
        return rule if rule.allowed(first, decls) else None

    def combine(first: TileInst, second: TileInst):
        rule = mergeable(first, second)
        if rule is None:
            return None
        # at second's place: its destination is declared by then
        return (TileInst(rule.merged, second.outs, first.ins, attrs=first.attrs),)

    return rewrite_pairs(program, combine)


def rewrite_pairs(program: TileProgram, combine, prepare=lambda inst: inst) -> TileProgram:
    """Walk every body's instructions as adjacent pairs (only declarations, lets and aliases
    (TRESHAPE) of other tiles than first's between the two): `combine(first, second)` returns
    None to keep both, or what replaces the pair (one instruction, which may pair with the next
    one, or nothing), in second's place: first moves past the aliases, which name none of its
    tiles. `prepare` rewrites each instruction before it is looked at. Tiles left without a
    reference lose their declarations; the program itself comes back when nothing changed."""
    changed = False

    def rewrite(body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        nonlocal changed
        out: list[Stmt] = []
        pending: int | None = None          # index in `out` of the last instruction
        for stmt in body:
            if isinstance(stmt, (TileLoop, SerialLoop, Stage)):
                out.append(dataclasses.replace(stmt, body=rewrite(stmt.body)))
                pending = None
                continue
            if isinstance(stmt, TileInst):
                stmt = prepare(stmt)
                if pending is not None and op_spec(stmt.op).family == "alias" \
                        and not set(stmt.tiles()) & set(out[pending].tiles()):
                    out.append(stmt)        # binds other tiles' storage: first may move past it
                    continue
                replaced = combine(out[pending], stmt) if pending is not None else None
                if replaced is not None:
                    del out[pending]
                    out.extend(replaced)
                    pending = len(out) - 1 if replaced else None
                    changed = True
                    continue
                out.append(stmt)
                pending = len(out) - 1
                continue
            out.append(stmt)                # TileDecl, Let: no tile is read or written
        return tuple(out)

    body = rewrite(program.body)
    if not changed:
        return program
    program = dataclasses.replace(program, body=body)
    used = set(tile_references(program)) | program.aliased()
    return dataclasses.replace(program, body=_drop_decls(program.body, used))


def _writes(program: TileProgram) -> Counter:
    """How many instructions write each tile (as an output or a scratch tile)."""
    writes: Counter = Counter()
    for inst in program.instructions():
        writes.update({t for t in (*inst.outs, *inst.tmps) if isinstance(t, str)})
    return writes


def _same_decl(a: TileDecl, b: TileDecl) -> bool:
    return (a.dtype, a.rows, a.cols, a.layout, a.loc) == (b.dtype, b.rows, b.cols, b.layout, b.loc) \
        and exprs_equal(a.valid_rows, b.valid_rows) and exprs_equal(a.valid_cols, b.valid_cols)


def drop_round_trips(program: TileProgram) -> TileProgram:
    """`program` without its exact conversion round trips (see module doc)."""
    decls = program.tile_decls()
    refs, writes = tile_references(program), _writes(program)
    aliased = program.aliased()
    renamed: dict[str, str] = {}

    def round_trip(first: TileInst, second: TileInst) -> bool:
        if first.op != "TCVT" or second.op != "TCVT" or first.tmps or second.tmps:
            return False
        (mid,), (x,), (d,) = first.outs, first.ins, second.outs
        if second.ins != (mid,) or not all(isinstance(t, str) and t in decls for t in (mid, x, d)):
            return False
        narrow = decls[x].dtype
        return (narrow in (BF16, F16) and decls[mid].dtype == F32 and refs[mid] == 2 and writes[d] == 1
                and writes[x] == 1 and not {mid, x, d} & aliased and _same_decl(decls[d], decls[x]))

    def rename(inst: TileInst) -> TileInst:
        def sub(ops):
            return tuple(renamed.get(o, o) if isinstance(o, str) else o for o in ops)
        return dataclasses.replace(inst, outs=sub(inst.outs), ins=sub(inst.ins), tmps=sub(inst.tmps))

    def combine(first: TileInst, second: TileInst):
        if not round_trip(first, second):
            return None
        renamed[second.outs[0]] = first.ins[0]
        return ()

    return rewrite_pairs(program, combine, prepare=rename)


def _drop_decls(body: tuple[Stmt, ...], used: set[str]) -> tuple[Stmt, ...]:
    out = []
    for stmt in body:
        if isinstance(stmt, TileDecl) and stmt.name not in used:
            continue
        if isinstance(stmt, (TileLoop, SerialLoop, Stage)):
            stmt = dataclasses.replace(stmt, body=_drop_decls(stmt.body, used))
        out.append(stmt)
    return tuple(out)
