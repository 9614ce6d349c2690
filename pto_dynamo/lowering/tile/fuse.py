"""Fuse an element-wise V-op with the row reduction, conversion or add that reads its result.

    fuse_vops(program) -> TileProgram

The fused instructions are project extensions (ops.py, `<pto/cpu/fused.hpp>`): one pass over the
tile where the pair made two. A CPU core runs V-ops on 64 x 128 f32 tiles at the speed of its L1
and L2, and flash attention's online softmax is a handful of passes over the scores per key step
(1 thread, Sapphire Rapids, a 64 x 128 step: 2.9 -> 1.9 us for exp, row sum and the bf16
rounding of P; 1.1 -> 0.65 us for the scale and the row max; 0.8 -> 0.55 us for o * alpha + pv),
and RMSNorm is a square with its row sum and a scaling by row and by column.

    TMULS d, x, s ; TROWMAX m, d, t                 -> TMULS_ROWMAX d, m, x, s, t
    TROWEXPANDEXPDIF p, x, v ; TROWSUM l, p, t      -> TROWEXPANDEXPDIF_ROWSUM p, l, x, v, t
    TROWEXPANDEXPDIF_ROWSUM p, l, x, v, t ; TCVT q, p (bf16 / f16, nearest even)
                                                    -> TROWEXPANDEXPDIF_ROWSUM q, l, x, v, t
    TROWEXPANDMUL d, a, v ; TADD e, d, b            -> TROWEXPANDMUL_ADD e, a, v, b
    TMUL d, a, b ; TROWSUM s, d, t                  -> TMUL_ROWSUM d, s, a, b, t
    TROWEXPANDMUL d, a, v ; TCOLEXPANDMUL e, d, w   -> TROWEXPANDMUL_COLEXPANDMUL e, a, v, w
    TCVT w, s (bf16 -> f32) ; OP d, w, b            -> OP d, s, b     (element-wise OPs)
    OP d, a, b ; TCVT q, d (f32 -> bf16, nearest)   -> OP q, a, b

The last two fold a conversion into the op next to it (the mixed-precision forms, device_abi.md):
the op widens bf16 operands exactly and rounds its f32 result once into its destination's type,
so the folded op's elements are the pair's, bit for bit. The SwiGLU gate bf16(silu(f32(g)) *
f32(u)) goes from five passes over the tile to two (the bf16 MLP at T=256, 1 thread: 0.96-0.98x
its time), RMSNorm's bf16 tail bf16(bf16(f32(x) * r) * w) too ([2048, 4096]: 0.94x).

A pair fuses when second directly follows first in the same body (only tile declarations, lets and
aliases of other tiles between: peephole.rewrite_pairs), reads first's result, and the tiles are
f32 (the fused ops' vectorised forms; f32 and bf16 for the folded conversions);
first's result is not aliased (TRESHAPE). A reduction leaves first's result as it was (its other
readers still read it). The conversion, the add and the column scaling replace it: nothing may
read the value the pair leaves in it (`_Ctx.dead_after`), or second overwrites it (`d = d * v;
d = d + b`). Results are the pair's, up to the order of the row sum's additions and, for a bf16
P, an exp within 2^-22 of the accurate one before the rounding (device_abi.md).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from pto_dynamo.lowering.tile.dtypes import BF16, F16, F32
from pto_dynamo.lowering.tile.ir import TileInst, TileProgram, children
from pto_dynamo.lowering.tile.peephole import rewrite_pairs
from pto_dynamo.lowering.tile.specs import ops_of_family

# (first op, second op) -> fuse(first, second, ctx) -> the fused instruction or None
FUSE_RULES: dict[tuple[str, str], Callable] = {}


def fuse_rule(first: str, second: str):
    def deco(fn: Callable) -> Callable:
        FUSE_RULES[(first, second)] = fn
        return fn
    return deco


class _Ctx:
    def __init__(self, program: TileProgram):
        self.decls = program.tile_decls()
        self.reads: Counter = Counter()       # tile -> the instructions that read it
        for inst in program.instructions():
            self.reads.update({t for t in inst.ins if isinstance(t, str)})
        self.aliased = program.aliased()
        self.read_later: dict[int, set] = {}   # id(inst) -> tiles read after it in its body
        self.bodies: dict[str, set] = {}       # tile -> ids of the bodies whose instructions name it
        self.fresh: set = set()                # (body id, tile): the body's first use of tile writes it
        self._scan(program.body)

    def _scan(self, body) -> None:
        insts = [s for s in body if isinstance(s, TileInst)]
        for inst in insts:
            for t in inst.tiles():
                if t not in self.bodies.setdefault(t, set()):
                    if t in inst.outs and t not in inst.ins and t not in inst.tmps:
                        self.fresh.add((id(body), t))
                self.bodies[t].add(id(body))
        later: set = set()
        for inst in reversed(insts):
            self.read_later[id(inst)] = set(later)
            later |= {t for t in inst.ins if isinstance(t, str)}
        for s in body:
            if children(s):
                self._scan(children(s))

    def dead_after(self, tile: str, first: TileInst, second: TileInst) -> bool:
        """Nothing reads the value of `tile` that the pair leaves, so the fused instruction need
        not write it: no instruction but second (and first itself, computing in place) reads it,
        or every use of it is in the pair's body, the body's first use writes it (nothing flows
        in from an earlier iteration) and nothing after the pair in the body reads it."""
        if self.reads[tile] == 1 + (tile in first.ins):
            return True
        if len(self.bodies[tile]) != 1:
            return False
        (body,) = self.bodies[tile]
        return (body, tile) in self.fresh and tile not in self.read_later[id(second)]

    def dtype(self, tile):
        """The element type of a declared tile, None for a scalar or an undeclared name."""
        decl = self.decls.get(tile) if isinstance(tile, str) else None
        return None if decl is None else decl.dtype

    def f32(self, *tiles) -> bool:
        return all(self.dtype(t) == F32 for t in tiles)


def _reduces(first: TileInst, second: TileInst, ctx: _Ctx) -> bool:
    """second = a row reduction of first's (only) result."""
    (mid,) = first.outs
    return second.ins == (mid,) and mid not in ctx.aliased and ctx.f32(mid, second.outs[0])


def _with_row_reduction(op: str, first: TileInst, second: TileInst, ctx: _Ctx):
    """first (one f32 result from f32 tiles and scalars) and second, its row reduction, as op."""
    tiles = [t for t in first.ins if isinstance(t, str)]
    if not (len(first.outs) == 1 and _reduces(first, second, ctx) and ctx.f32(*tiles)):
        return None
    return TileInst(op, (first.outs[0], second.outs[0]), first.ins, second.tmps, first.attrs)


@fuse_rule("TMULS", "TROWMAX")
def _muls_rowmax(first, second, ctx):
    return _with_row_reduction("TMULS_ROWMAX", first, second, ctx)


@fuse_rule("TROWEXPANDEXPDIF", "TROWSUM")
def _expdif_rowsum(first, second, ctx):
    return _with_row_reduction("TROWEXPANDEXPDIF_ROWSUM", first, second, ctx)


@fuse_rule("TROWEXPANDEXPDIF_ROWSUM", "TCVT")
def _expdif_rowsum_cvt(first, second, ctx):
    p, total = first.outs
    (q,) = second.outs
    narrow = ctx.dtype(q) in (BF16, F16)
    if second.ins != (p,) or not ctx.dead_after(p, first, second) or p in ctx.aliased or q in ctx.aliased or not narrow \
            or second.attr("round", "CAST_RINT") != "CAST_RINT":
        return None
    return TileInst(first.op, (q, total), first.ins, first.tmps, first.attrs)


@fuse_rule("TROWEXPANDMUL", "TADD")
def _rowexpand_mul_add(first, second, ctx):
    (d,), (e,) = first.outs, second.outs
    if d not in second.ins or d in ctx.aliased or not ctx.f32(d, e, *first.ins, *second.ins):
        return None
    if e != d and not ctx.dead_after(d, first, second):   # d = d * v; d = d + b overwrites it
        return None
    other = second.ins[1] if second.ins[0] == d else second.ins[0]
    if other == d:                           # d + d: not this form
        return None
    return TileInst("TROWEXPANDMUL_ADD", (e,), (*first.ins, other), (), first.attrs)


@fuse_rule("TMUL", "TROWSUM")
def _mul_rowsum(first, second, ctx):
    return _with_row_reduction("TMUL_ROWSUM", first, second, ctx)


@fuse_rule("TROWEXPANDMUL", "TCOLEXPANDMUL")
def _rowexpand_colexpand_mul(first, second, ctx):
    (d,), (e,) = first.outs, second.outs
    if second.ins[0] != d or second.ins[1] == d or d in ctx.aliased or not ctx.f32(d, e, *first.ins, *second.ins):
        return None
    if e != d and not ctx.dead_after(d, first, second):   # d = d * v; d = d * w overwrites it
        return None
    return TileInst("TROWEXPANDMUL_COLEXPANDMUL", (e,), (*first.ins, second.ins[1]), (), first.attrs)


# The ops a conversion folds into (module doc). Binary, unary and row/column-broadcast binary ops
# compute in f32 from any float operands (elementwise.hpp's ewise, reduce_expand.hpp's
# expand_binary, the interpreter's read/write); not the scalar family, whose scalar takes the
# source tile's type, nor the EXPDIF ops, whose 16-lane form and fused rules take f32. bf16 only:
# the cpu target's 16-lane forms (TSILU, TEXP, ...) load and store bf16 rows (AVX512BW); f16
# would leave them for GCC's vectorisation of vexp.
_MIXED_OPS = tuple(op for family in ("binary", "unary", "rowexpand_binary", "colexpand_binary")
                   for op in ops_of_family(family) if not op.endswith("EXPDIF"))


def _mixed_operands(inst: TileInst, ctx: _Ctx) -> bool:
    """inst's tiles are f32 or bf16 (its scalar and integer forms stay as they are)."""
    return all(ctx.dtype(t) in (F32, BF16) for t in inst.tiles())


def _widened(first: TileInst, second: TileInst, ctx: _Ctx):
    """TCVT w <- s (bf16 -> f32), then an op reading w: the op reads s."""
    (w,), (s,) = first.outs, first.ins
    if first.tmps or ctx.dtype(w) != F32 or ctx.dtype(s) != BF16 or w not in second.ins:
        return None
    if w in ctx.aliased or not _mixed_operands(second, ctx):
        return None
    if second.outs != (w,) and not ctx.dead_after(w, first, second):   # w = op(w) overwrites it
        return None
    ins = tuple(s if t == w else t for t in second.ins)
    return TileInst(second.op, second.outs, ins, second.tmps, second.attrs)


def _narrowed(first: TileInst, second: TileInst, ctx: _Ctx):
    """An op writing d (f32), then TCVT q <- d (f32 -> bf16, nearest even): the op writes q."""
    (d,), (q,) = first.outs, second.outs
    if second.ins != (d,) or second.tmps or ctx.dtype(d) != F32 or ctx.dtype(q) != BF16:
        return None
    if second.attr("round", "CAST_RINT") != "CAST_RINT" or {d, q} & ctx.aliased or not _mixed_operands(first, ctx):
        return None
    if not ctx.dead_after(d, first, second):
        return None
    return TileInst(first.op, (q,), first.ins, first.tmps, first.attrs)


for _op in _MIXED_OPS:
    FUSE_RULES[("TCVT", _op)] = _widened
    FUSE_RULES[(_op, "TCVT")] = _narrowed


def fuse_vops(program: TileProgram) -> TileProgram:
    """`program` with its fusable pairs fused (see module doc). Two rounds: the conversion after
    the exp fuses once the row sum has (the readers are counted in the first round's result)."""
    for _ in range(2):
        ctx = _Ctx(program)

        def combine(first: TileInst, second: TileInst, ctx=ctx):
            rule = FUSE_RULES.get((first.op, second.op))
            fused = rule(first, second, ctx) if rule is not None else None
            return None if fused is None else (fused,)

        program = rewrite_pairs(program, combine)
    return program
