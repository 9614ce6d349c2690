"""Tile rules: the PTO instructions of each vector op, registered per ATen op (or per kind).

A rule receives the KernelTiler, the node and, for a reduction in a column loop, the
accumulators to fold into; it leaves the node's tile in `tiler.values[node.name]`. All math is
f32; a cast to bf16/f16 rounds through a TCVT pair, as eager rounds at that point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pto_dynamo.graph.ir import Ref
from pto_dynamo.lowering.tile import BF16, F16, F32
from pto_dynamo.lowering.vector.opinfo import vector_op

aten = torch.ops.aten
prims = torch.ops.prims
TILE_RULES: dict = {}
COMMUTATIVE = {"ADD", "MUL", "MAX", "MIN"}
EXPANDABLE = {"ADD", "SUB", "MUL", "DIV", "MAX", "MIN"}


@dataclass(frozen=True)
class TileVal:
    """A value's tile: its name, form (full | row | col), and for a per-row value the RowMajor
    alias that elementwise instructions use (`vec`)."""

    name: str
    form: str
    alias: str | None = None

    @property
    def vec(self) -> str:
        return self.alias or self.name


def tile_rule(*keys):
    def register(fn):
        for k in keys:
            TILE_RULES[k] = fn
        return fn
    return register


# -- helpers ----------------------------------------------------------------------------------
def expand(t, v: TileVal) -> TileVal:
    """A full tile holding v broadcast over the columns (row value) or rows (column value)."""
    if v.form == "full":
        return v
    dst = t.tile("full")
    t.emit("TROWEXPAND" if v.form == "row" else "TCOLEXPAND", dst.name, v.name)
    return dst


def binary(t, op: str, a: TileVal, b: TileVal) -> TileVal:
    if a.form == b.form:
        dst = t.tile(a.form)
        t.emit(f"T{op}", dst.vec, a.vec, b.vec)
        return dst
    if {a.form, b.form} == {"row", "col"}:
        a, b = (expand(t, a), b) if a.form == "row" else (a, expand(t, b))
    if a.form != "full" and op in COMMUTATIVE:
        a, b = b, a
    if a.form == "full" and op in EXPANDABLE:
        dst = t.tile("full")
        t.emit(("TROWEXPAND" if b.form == "row" else "TCOLEXPAND") + op, dst.name, a.name, b.name)
        return dst
    a, b = expand(t, a), expand(t, b)
    dst = t.tile("full")
    t.emit(f"T{op}", dst.name, a.name, b.name)
    return dst


def with_scalar(t, op: str, x: TileVal, s) -> TileVal:
    dst = t.tile(x.form)
    t.emit(f"T{op}S", dst.vec, x.vec, t._expr(s) if not isinstance(s, float) else s)
    return dst


def unary(t, op: str, x: TileVal) -> TileVal:
    dst = t.tile(x.form)
    t.emit(op, dst.vec, x.vec)
    return dst


def _set(t, node, val: TileVal) -> None:
    t.values[node.name] = val


def _arg(t, node, i):
    a = node.args[i]
    return t.operand(node, a) if isinstance(a, Ref) else a


# -- elementwise ------------------------------------------------------------------------------
_BINARY = {aten.add.Tensor: "ADD", aten.sub.Tensor: "SUB", aten.mul.Tensor: "MUL", aten.div.Tensor: "DIV",
           aten.maximum.default: "MAX", aten.minimum.default: "MIN", aten.pow.Tensor_Tensor: "POW"}


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
    _set(t, node, binary(t, op, a, b) if isinstance(b, TileVal) else with_scalar(t, op, a, _num(b)))


def fill_like(t, like: TileVal, value) -> TileVal:
    """A tile of `like`'s form filled with a scalar."""
    dst = t.tile(like.form)
    t.emit("TEXPANDS", dst.vec, _num(value) if not isinstance(value, (int, float)) else float(value))
    return dst


def _num(s):
    return float(s) if isinstance(s, (int, float)) else s


_SCALAR = {aten.add.Scalar: "ADD", aten.sub.Scalar: "SUB", aten.mul.Scalar: "MUL", aten.div.Scalar: "DIV"}


@tile_rule(*_SCALAR)
def _scalar(t, node, _):
    _set(t, node, with_scalar(t, _SCALAR[node.target], _arg(t, node, 0), _num(node.args[1])))


_UNARY = {aten.exp.default: "TEXP", aten.log.default: "TLOG", aten.sqrt.default: "TSQRT",
          aten.rsqrt.default: "TRSQRT", aten.reciprocal.default: "TRECIP", aten.abs.default: "TABS",
          aten.neg.default: "TNEG", aten.relu.default: "TRELU", aten.sigmoid.default: "TSIGMOID",
          aten.tanh.default: "TTANH", aten.erf.default: "TERF", aten.gelu.default: "TGELU",
          aten.silu.default: "TSILU", aten.floor.default: "TFLOOR", aten.ceil.default: "TCEIL",
          aten.round.default: "TROUND", aten.sign.default: "TSIGN", aten.log1p.default: "TLOG1P",
          aten.expm1.default: "TEXPM1", aten.sin.default: "TSIN", aten.cos.default: "TCOS"}


@tile_rule(*_UNARY)
def _unary(t, node, _):
    _set(t, node, unary(t, _UNARY[node.target], _arg(t, node, 0)))


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


@tile_rule(aten.clone.default, aten.alias.default, aten._to_copy.default,
           prims.convert_element_type.default, aten.copy.default)
def _copy(t, node, _):
    src = node.args[1] if node.target is aten.copy.default else node.args[0]
    x = t.operand(node, src)
    dtype = node.meta.dtype
    if dtype in (torch.bfloat16, torch.float16):             # round as eager does at a cast
        low = t.convert(x, BF16 if dtype == torch.bfloat16 else F16)
        x = t.convert(low, F32)
    _set(t, node, x)


@tile_rule("view")
def _view(t, node, _):
    _set(t, node, t.operand(node, node.args[0]))


# -- reductions over the col dim --------------------------------------------------------------
_ROW_REDUCE = {"sum": "TROWSUM", "max": "TROWMAX", "min": "TROWMIN"}
_FOLD = {"sum": "TADD", "max": "TMAX", "min": "TMIN"}


@tile_rule("reduction")
def _reduce(t, node, accs):
    kind = vector_op(node.target).reduce
    x = expand(t, t.operand(node, node.args[0]))
    part = t.tile("row")
    scratch = t.tile("full")
    t.emit(_ROW_REDUCE[kind], part.name, x.name, scratch.name)
    if accs is None:
        _set(t, node, part)
    else:
        acc = accs[node.name]
        t.emit(_FOLD[kind], acc.vec, acc.vec, part.vec)
