"""Tile rules: the PTO instructions of each vector op, registered per ATen op (or per kind).

A rule receives the KernelTiler, the node and, for a reduction in a column loop, the
accumulators to fold into; it leaves the node's tile in `tiler.values[node.name]`.

Values live in tiles of their compute type (`compute_type`): floats in f32 (a cast to bf16/f16
rounds through a TCVT pair, as eager rounds at that point), bool as f32 0/1, int32/int64 in
their own type, so integer math is exact. `_arg` hands a rule its operand converted to the
node's result dtype (the ATen type promotion); comparisons promote their operands themselves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from pto_dynamo.graph.ir import Ref
from pto_dynamo.lowering.tile import BF16, F16, F32, I32, I64
from pto_dynamo.lowering.tile.dtypes import ElemType, elem_type
from pto_dynamo.lowering.vector.opinfo import vector_op

aten = torch.ops.aten
prims = torch.ops.prims
TILE_RULES: dict = {}
COMMUTATIVE = {"ADD", "MUL", "MAX", "MIN"}
EXPANDABLE = {"ADD", "SUB", "MUL", "DIV", "MAX", "MIN"}


class TilingError(RuntimeError):
    """The kernel cannot be tiled (an access pattern the tile loads cannot express)."""


@dataclass(frozen=True)
class TileVal:
    """A value's tile: its name, form (full | row | col), for a per-row value the RowMajor alias
    that elementwise instructions use (`vec`), its element type, and whether it holds a bool
    (as f32 0/1)."""

    name: str
    form: str
    alias: str | None = None
    dtype: ElemType = F32
    boolean: bool = False

    @property
    def vec(self) -> str:
        return self.alias or self.name


def tile_rule(*keys):
    def register(fn):
        for k in keys:
            TILE_RULES[k] = fn
        return fn
    return register


def compute_type(dtype: torch.dtype) -> ElemType:
    """The tile element type a value of `dtype` is computed in (see the module doc)."""
    if dtype.is_floating_point or dtype == torch.bool:
        return F32
    return {torch.int32: I32, torch.int64: I64}[dtype]


# -- helpers ----------------------------------------------------------------------------------
def to(t, v: TileVal, dtype: torch.dtype) -> TileVal:
    """v converted to `dtype`'s compute type: float -> int truncates, as torch casts; anything ->
    bool is `v != 0`; a bool is already the f32 0/1 a float or int conversion starts from."""
    if dtype == torch.bool:
        return v if v.boolean else truth(t, v)
    want = compute_type(dtype)
    if v.dtype == want:
        return replace(v, boolean=False) if v.boolean else v
    dst = t.tile(v.form, want)
    t.emit("TCVT", dst.vec, v.vec, round="CAST_TRUNC" if v.dtype.is_float and not want.is_float else "CAST_RINT")
    return dst


def truth(t, v: TileVal) -> TileVal:
    """`v != 0` as a bool tile (integers compare in f32: a nonzero integer stays nonzero)."""
    src = v if v.dtype == F32 else to(t, v, torch.float32)
    mask = t.mask(v.form)
    t.emit("TCMPS", mask, src.vec, 0.0, mode="NE")
    return select01(t, mask, v.form)


def select01(t, mask: str, form: str) -> TileVal:
    """The bool tile of a compare mask: 1.0 where set, else 0.0."""
    ones = fill(t, form, F32, 1.0)
    dst = replace(t.tile(form, F32), boolean=True)
    t.emit("TSELS", dst.vec, mask, ones.vec, 0.0, t.sel_tmp(F32))
    return dst


def fill(t, form: str, dtype: ElemType, value) -> TileVal:
    dst = t.tile(form, dtype)
    t.emit("TEXPANDS", dst.vec, _scalar_of(t, dtype, value))
    return dst


def _scalar_of(t, dtype: ElemType, value):
    """A scalar operand for a tile of `dtype`: a float or an int (integer tiles), or an expression
    over the kernel's dims and loop values."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, (int, float)):
        return float(value) if dtype.is_float else int(value)
    return t._expr(value)


def expand(t, v: TileVal) -> TileVal:
    """A full tile holding v broadcast over the columns (row value) or rows (column value)."""
    if v.form == "full":
        return v
    dst = replace(t.tile("full", v.dtype), boolean=v.boolean)
    t.emit("TROWEXPAND" if v.form == "row" else "TCOLEXPAND", dst.name, v.name)
    return dst


def binary(t, op: str, a: TileVal, b: TileVal) -> TileVal:
    if a.form == b.form:
        dst = t.tile(a.form, a.dtype)
        t.emit(f"T{op}", dst.vec, a.vec, b.vec)
        return dst
    if {a.form, b.form} == {"row", "col"}:
        a, b = (expand(t, a), b) if a.form == "row" else (a, expand(t, b))
    if a.form != "full" and op in COMMUTATIVE:
        a, b = b, a
    if a.form == "full" and op in EXPANDABLE:
        dst = t.tile("full", a.dtype)
        t.emit(("TROWEXPAND" if b.form == "row" else "TCOLEXPAND") + op, dst.name, a.name, b.name)
        return dst
    a, b = expand(t, a), expand(t, b)
    dst = t.tile("full", a.dtype)
    t.emit(f"T{op}", dst.name, a.name, b.name)
    return dst


def with_scalar(t, op: str, x: TileVal, s) -> TileVal:
    dst = t.tile(x.form, x.dtype)
    t.emit(f"T{op}S", dst.vec, x.vec, _scalar_of(t, x.dtype, s))
    return dst


def unary(t, op: str, x: TileVal) -> TileVal:
    dst = t.tile(x.form, x.dtype)
    t.emit(op, dst.vec, x.vec)
    return dst


def _set(t, node, val: TileVal) -> None:
    t.values[node.name] = val


def _arg(t, node, i, dtype: torch.dtype | None = None, as_stored: bool = False):
    """Operand i of node: a tensor as a tile of `dtype` (default: the node's result dtype).
    `as_stored`: a 16-bit float computed in this kernel (kept in f32) is first rounded to its own
    dtype, as eager stores it: for the ops whose result jumps where a rounding can cross
    (floor, ceil, round, trunc, sign, comparisons), bf16 trunc(a * 3) of 6.99 is 7 in eager."""
    a = node.args[i]
    if not isinstance(a, Ref):
        return a
    v = t.operand(node, a)
    stored = t.meta_of(a.name).dtype
    if as_stored and stored in (torch.bfloat16, torch.float16) and a.name in t.plan.dmaps:
        v = t.convert(t.convert(v, elem_type(stored)), v.dtype)
    return to(t, v, dtype or node.meta.dtype)


# -- elementwise ------------------------------------------------------------------------------
_BINARY = {aten.add.Tensor: "ADD", aten.sub.Tensor: "SUB", aten.mul.Tensor: "MUL", aten.div.Tensor: "DIV",
           aten.maximum.default: "MAX", aten.minimum.default: "MIN", aten.pow.Tensor_Tensor: "POW",
           aten.pow.Scalar: "POW"}                      # number ** tensor: the number filled as a tile


@tile_rule(*_BINARY)
def _binary(t, node, _):
    op = _BINARY[node.target]
    a, b = _arg(t, node, 0), _arg(t, node, 1)
    alpha = node.kwargs_dict().get("alpha", 1)
    if alpha != 1:
        b = with_scalar(t, "MUL", b, float(alpha)) if isinstance(b, TileVal) else b * alpha
    if not isinstance(a, TileVal):                       # scalar op tensor
        if op in COMMUTATIVE:
            a, b = b, a
        else:
            a = fill_like(t, b, a)
    _set(t, node, binary(t, op, a, b) if isinstance(b, TileVal) else with_scalar(t, op, a, b))


def fill_like(t, like: TileVal, value) -> TileVal:
    """A tile of `like`'s form and type filled with a scalar."""
    return fill(t, like.form, like.dtype, value)


_SCALAR = {aten.add.Scalar: "ADD", aten.sub.Scalar: "SUB", aten.mul.Scalar: "MUL", aten.div.Scalar: "DIV"}


@tile_rule(*_SCALAR)
def _scalar(t, node, _):
    _set(t, node, with_scalar(t, _SCALAR[node.target], _arg(t, node, 0), node.args[1]))


_UNARY = {aten.exp.default: "TEXP", aten.log.default: "TLOG", aten.sqrt.default: "TSQRT",
          aten.rsqrt.default: "TRSQRT", aten.reciprocal.default: "TRECIP", aten.abs.default: "TABS",
          aten.neg.default: "TNEG", aten.relu.default: "TRELU", aten.sigmoid.default: "TSIGMOID",
          aten.tanh.default: "TTANH", aten.erf.default: "TERF", aten.gelu.default: "TGELU",
          aten.silu.default: "TSILU", aten.floor.default: "TFLOOR", aten.ceil.default: "TCEIL", aten.trunc.default: "TTRUNC",
          aten.round.default: "TROUND", aten.sign.default: "TSIGN", aten.log1p.default: "TLOG1P",
          aten.expm1.default: "TEXPM1", aten.sin.default: "TSIN", aten.cos.default: "TCOS"}


# ops whose result jumps at points a rounding of their operand can cross
_STEPS = {aten.floor.default, aten.ceil.default, aten.round.default, aten.trunc.default, aten.sign.default}


@tile_rule(*_UNARY)
def _unary(t, node, _):
    _set(t, node, unary(t, _UNARY[node.target], _arg(t, node, 0, as_stored=node.target in _STEPS)))


@tile_rule(aten.gelu.default)
def _gelu(t, node, _):
    x = _arg(t, node, 0)
    if node.kwargs_dict().get("approximate", "none") == "none":
        _set(t, node, unary(t, "TGELU", x))
        return
    # tanh form, as ATen: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
    cube = binary(t, "MUL", binary(t, "MUL", x, x), x)
    inner = binary(t, "ADD", x, with_scalar(t, "MUL", cube, 0.044715))
    th = unary(t, "TTANH", with_scalar(t, "MUL", inner, math.sqrt(2.0 / math.pi)))
    half_x = with_scalar(t, "MUL", x, 0.5)
    _set(t, node, binary(t, "MUL", half_x, with_scalar(t, "ADD", th, 1.0)))


@tile_rule(aten.exp2.default)
def _exp2(t, node, _):
    _set(t, node, unary(t, "TEXP", with_scalar(t, "MUL", _arg(t, node, 0), math.log(2.0))))


@tile_rule(aten.log2.default)
def _log2(t, node, _):
    _set(t, node, with_scalar(t, "MUL", unary(t, "TLOG", _arg(t, node, 0)), 1.0 / math.log(2.0)))


@tile_rule(aten.pow.Tensor_Scalar)
def _pow_scalar(t, node, _):
    x, e = _arg(t, node, 0), node.args[1]
    special = {2: None, 0.5: "TSQRT", -0.5: "TRSQRT", -1: "TRECIP"}
    if e == 2:
        val = binary(t, "MUL", x, x)
    elif e == 1:
        val = x
    elif e in special:
        val = unary(t, special[e], x)
    else:
        val = with_scalar(t, "POW", x, float(e))
    _set(t, node, val)


@tile_rule(aten.clamp.default, aten.clamp_min.default, aten.clamp_max.default)
def _clamp(t, node, _):
    x = _arg(t, node, 0)
    kw = node.kwargs_dict()
    lo = node.args[1] if len(node.args) > 1 else kw.get("min")
    hi = node.args[2] if len(node.args) > 2 else kw.get("max")
    if node.target is aten.clamp_max.default:
        lo, hi = None, lo
    if lo is not None:
        x = with_scalar(t, "MAX", x, float(lo))
    if hi is not None:
        x = with_scalar(t, "MIN", x, float(hi))
    _set(t, node, x)


@tile_rule(aten.clone.default, aten.lift_fresh_copy.default, aten.alias.default, aten._to_copy.default,
           prims.convert_element_type.default, aten.copy.default)
def _copy(t, node, _):
    src = node.args[1] if node.target is aten.copy.default else node.args[0]
    dtype = node.meta.dtype
    x = to(t, t.operand(node, src), dtype)
    if dtype in (torch.bfloat16, torch.float16):             # round as eager does at a cast
        low = t.convert(x, BF16 if dtype == torch.bfloat16 else F16)
        x = t.convert(low, F32)
    _set(t, node, x)


@tile_rule("view")
def _view(t, node, _):
    _set(t, node, t.operand(node, node.args[0]))


# -- reductions ------------------------------------------------------------------------------
_ROW_REDUCE = {"sum": "TROWSUM", "max": "TROWMAX", "min": "TROWMIN"}
_FOLD = {"sum": "TADD", "max": "TMAX", "min": "TMIN"}
_COL_REDUCE = {"sum": "TCOLSUM", "max": "TCOLMAX", "min": "TCOLMIN"}


@tile_rule("reduction")
def _reduce(t, node, accs):
    kind = vector_op(node.target).reduce
    x = expand(t, _arg(t, node, 0))
    if node.name in t.plan.col_reductions:               # over the rows: the tile holds them all
        col = replace(t.tile("col", x.dtype), boolean=x.boolean)
        t.emit(_COL_REDUCE[kind], col.name, x.name)
        _set(t, node, col)
        return
    part = replace(t.tile("row", x.dtype), boolean=x.boolean)
    scratch = t.tile("full", x.dtype)
    t.emit(_ROW_REDUCE[kind], part.name, x.name, scratch.name)
    if accs is None:
        _set(t, node, part)
    else:
        acc = accs[node.name]
        t.emit(_FOLD[kind], acc.vec, acc.vec, part.vec)


# -- integer division by a constant ---------------------------------------------------------------
@tile_rule(aten.remainder.Scalar, aten.div.Tensor_mode)
def _int_division(t, node, _):
    """x // b (floor or trunc) and x % b (Python's: the sign of b) of an integer x by a nonzero
    integer constant b (claims.py): the C quotient q rounds toward zero, r = x - q * b has x's
    sign; where r is nonzero with the sign opposite to b's, floor takes q - 1 and remainder r + b."""
    x, b = _arg(t, node, 0), int(node.args[1])
    q = with_scalar(t, "DIV", x, b)
    mode = "floor" if node.target is aten.remainder.Scalar else node.kwargs_dict()["rounding_mode"]
    if mode == "trunc":
        _set(t, node, q)
        return
    r = binary(t, "SUB", x, with_scalar(t, "MUL", q, b))
    mask = t.mask(r.form)
    t.emit("TCMPS", mask, r.vec, _scalar_of(t, r.dtype, 0), mode="LT" if b > 0 else "GT")
    base, fixed = (r, with_scalar(t, "ADD", r, b)) if node.target is aten.remainder.Scalar else \
        (q, with_scalar(t, "SUB", q, 1))
    dst = t.tile(base.form, base.dtype)
    t.emit("TSEL", dst.vec, mask, fixed.vec, base.vec, t.sel_tmp(base.dtype))
    _set(t, node, dst)


# -- predicates and selection -----------------------------------------------------------------
_CMP = {aten.eq: "EQ", aten.ne: "NE", aten.lt: "LT", aten.le: "LE", aten.gt: "GT", aten.ge: "GE"}
_CMP_MODES = {getattr(packet, overload): mode for packet, mode in _CMP.items() for overload in ("Tensor", "Scalar")}


def _promoted(t, node) -> torch.dtype:
    """The dtype ATen compares `node`'s operands in (0-d tensors promote by category only)."""
    def probe(a):
        if not isinstance(a, Ref):
            return a if isinstance(a, (bool, int, float)) else 0     # a symbolic size is an int
        meta = t.meta_of(a.name)
        return torch.empty((0,) * meta.rank if meta.rank else (), dtype=meta.dtype, device="meta")
    return torch.result_type(probe(node.args[0]), probe(node.args[1]))


def same_form(t, *vals: TileVal) -> list[TileVal]:
    """The values in one form (full unless they already share one)."""
    if len({v.form for v in vals}) == 1:
        return list(vals)
    return [expand(t, v) for v in vals]


@tile_rule(*_CMP_MODES)
def _compare(t, node, _):
    dtype = _promoted(t, node)
    a, b = _arg(t, node, 0, dtype, as_stored=True), _arg(t, node, 1, dtype, as_stored=True)
    mode = _CMP_MODES[node.target]
    if isinstance(b, TileVal):
        a, b = same_form(t, a, b)
        mask = t.mask(a.form)
        t.emit("TCMP", mask, a.vec, b.vec, mode=mode)
    else:
        mask = t.mask(a.form)
        t.emit("TCMPS", mask, a.vec, _scalar_of(t, a.dtype, b), mode=mode)
    _set(t, node, select01(t, mask, a.form))


_LOGICAL = {aten.logical_and.default: "MUL", aten.bitwise_and.Tensor: "MUL", aten.logical_or.default: "MAX",
            aten.bitwise_or.Tensor: "MAX", aten.logical_xor.default: "XOR", aten.bitwise_xor.Tensor: "XOR"}


@tile_rule(*_LOGICAL)
def _logical(t, node, _):
    a, b = _arg(t, node, 0, torch.bool), _arg(t, node, 1, torch.bool)
    op = _LOGICAL[node.target]
    out = unary(t, "TABS", binary(t, "SUB", a, b)) if op == "XOR" else binary(t, op, a, b)
    _set(t, node, replace(out, boolean=True))


@tile_rule(aten.logical_not.default, aten.bitwise_not.default)
def _logical_not(t, node, _):
    x = _arg(t, node, 0, torch.bool)
    _set(t, node, replace(with_scalar(t, "ADD", with_scalar(t, "MUL", x, -1.0), 1.0), boolean=True))


@tile_rule(aten.where.self)
def _where(t, node, _):
    cond, a, b = same_form(t, _arg(t, node, 0, torch.bool), _arg(t, node, 1), _arg(t, node, 2))
    mask = t.mask(cond.form)
    t.emit("TCMPS", mask, cond.vec, 0.0, mode="NE")
    dst = replace(t.tile(a.form, a.dtype), boolean=node.meta.dtype == torch.bool)
    t.emit("TSEL", dst.vec, mask, a.vec, b.vec, t.sel_tmp(a.dtype))
    _set(t, node, dst)


@tile_rule(aten.clamp.Tensor)
def _clamp_tensor(t, node, _):
    x = _arg(t, node, 0)
    kw = node.kwargs_dict()
    lo = node.args[1] if len(node.args) > 1 else kw.get("min")
    hi = node.args[2] if len(node.args) > 2 else kw.get("max")
    if lo is not None:
        x = binary(t, "MAX", x, to(t, t.operand(node, lo), node.meta.dtype))
    if hi is not None:
        x = binary(t, "MIN", x, to(t, t.operand(node, hi), node.meta.dtype))
    _set(t, node, x)


# -- creation ---------------------------------------------------------------------------------
def _creation_fill(t, node, value) -> None:
    dtype = node.meta.dtype
    form = t.form_of(t.plan.dmaps[node.name])
    _set(t, node, replace(fill(t, form, compute_type(dtype), value), boolean=dtype == torch.bool))


@tile_rule(aten.full.default)
def _full(t, node, _):
    _creation_fill(t, node, node.args[1])


@tile_rule(aten.full_like.default)
def _full_like(t, node, _):
    _creation_fill(t, node, node.args[1])


@tile_rule(aten.scalar_tensor.default)
def _scalar_tensor(t, node, _):
    _creation_fill(t, node, node.args[0])


@tile_rule(aten.arange.default, aten.arange.start, aten.arange.start_step)
def _arange(t, node, _):
    """start + i * step, i the position along the dim the output maps to (TCI for the row and
    col dims, the tile loop's index for an outer dim)."""
    args = list(node.args)
    if node.target is aten.arange.default:
        args = [0, args[0]]
    start, step = args[0], (args[2] if len(args) > 2 else 1)
    (d,) = t.plan.dmaps[node.name]
    form = t.form_of((d,))
    if d is None:
        pos = fill(t, form, I64, 0)
    elif d == t.plan.col:
        pos = t.iota(form, t.col.c0)
    elif d == t.plan.rank - 2:
        pos = t.iota(form, t.r0)
    else:
        pos = fill(t, form, I64, t.outer_idx[d])
    val = to(t, pos, node.meta.dtype)
    if step != 1:
        val = with_scalar(t, "MUL", val, step)
    if start != 0:
        val = with_scalar(t, "ADD", val, start)
    _set(t, node, val)


# -- gathers ----------------------------------------------------------------------------------
@tile_rule("gather")
def _gather(t, node, _):
    """Rows of the table picked by the per-row index, or for `take` elements of the flattened
    table picked by a full index tile (MGATHER Row / Elem, clamped into the table: the
    index_checks pass raises on an out-of-range index before the result is used)."""
    idx = to(t, t.operand(node, node.args[vector_op(node.target).tensor_args[0]]), torch.int32)
    if node.target is aten.take.default:                 # one flat index per element
        _set(t, node, t.take(node, expand(t, idx)))
        return
    if idx.form != "row":
        raise TilingError(f"{node.name}: the gather index must vary along rows only, not as a {idx.form} value")
    _set(t, node, t.gather(node, idx))
