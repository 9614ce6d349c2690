"""Expand composite ops into the primitives the fusion pass understands.

    _softmax(x, d)      -> m = amax(x, d); e = exp(x - m); e * (1 / sum(e, d))
    _log_softmax(x, d)  -> y = x - amax(x, d); y - log(sum(exp(y), d))
    mean(x, dims)       -> sum(x, dims) / N
    var(x, dims, c)     -> sum((x - mean(x, dims))^2, dims) / (N - c)
    sum/amax/amin over several dims -> a chain of one-dim reductions (last dim first)
    any / all           -> amax / amin of the operand as bool

Each expansion keeps the original node's name on its final node, so users and region outputs
still find it; the intermediate nodes are named `<name>__<step>`.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from pto_dynamo.graph.dims import Dim
from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta

aten = torch.ops.aten
_EXPANDERS: dict[object, Callable] = {}


def expander(*targets):
    def register(fn):
        for t in targets:
            _EXPANDERS[t] = fn
        return fn
    return register


def contiguous_meta(shape: tuple[Dim, ...], dtype: torch.dtype) -> TensorMeta:
    stride, acc = [], 1
    for d in reversed(shape):
        stride.insert(0, acc)
        acc = acc * d
    return TensorMeta(tuple(shape), dtype, tuple(stride))


def _reduced_shape(shape, dims, keepdim):
    return tuple((1 if i in dims else s) for i, s in enumerate(shape) if keepdim or i not in dims)


def _norm_dims(dims, rank) -> list[int]:
    if dims is None or (isinstance(dims, (tuple, list)) and len(dims) == 0):
        return list(range(rank))
    dims = [dims] if isinstance(dims, int) else list(dims)
    return sorted({d % max(rank, 1) for d in dims})


class _Builder:
    """Appends primitive nodes with fresh names `<base>__<i>`."""

    def __init__(self, base: str):
        self.base, self.count, self.nodes = base, 0, []

    def add(self, target, args, meta, name: str | None = None, kwargs=()) -> Ref:
        if name is None:
            name, self.count = f"{self.base}__{self.count}", self.count + 1
        self.nodes.append(Node(name, target, tuple(args), tuple(kwargs), meta))
        return Ref(name)


def _reduce_chain(b: _Builder, x: Ref, meta: TensorMeta, dims, keepdim: bool, op, out_name=None,
                  out_dtype=None) -> tuple[Ref, TensorMeta]:
    """One-dim reductions over `dims` (last first), then a squeeze when keepdim is False."""
    dtype = out_dtype or meta.dtype
    shape = tuple(meta.shape)
    if meta.rank == 0:                  # reducing a 0-d tensor is the identity
        out_meta = contiguous_meta((), dtype)
        return b.add(aten.clone.default, (x,), out_meta, out_name), out_meta
    if not dims:
        return x, meta
    current, cur_meta = x, meta
    for i, d in enumerate(sorted(dims, reverse=True)):
        shape = tuple(1 if j == d else s for j, s in enumerate(shape))
        last = i == len(dims) - 1 and keepdim
        cur_meta = contiguous_meta(shape, dtype)
        current = b.add(op, (current, [d], True), cur_meta, out_name if last else None)
    if not keepdim:
        final_shape = tuple(s for j, s in enumerate(shape) if j not in dims)
        cur_meta = contiguous_meta(final_shape, dtype)
        current = b.add(aten.squeeze.dims, (current, list(dims)), cur_meta, out_name)
    return current, cur_meta


def _numel(meta: TensorMeta, dims) -> Dim:
    return math.prod([meta.shape[d] for d in dims]) if dims and meta.rank else 1


@expander(aten.sum.dim_IntList, aten.amax.default, aten.amin.default, aten.sum.default)
def _expand_reduction(node: Node, graph: Graph):
    x, xm = node.args[0], graph.meta_of(node.args[0].name)
    dims = _norm_dims(node.args[1] if len(node.args) > 1 else None, xm.rank)
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs_dict().get("keepdim", False)
    if node.target is aten.sum.default or not keepdim or len(dims) != 1 or xm.rank == 0:
        op = {aten.amax.default: aten.amax.default, aten.amin.default: aten.amin.default}.get(node.target, aten.sum.dim_IntList)
        b = _Builder(node.name)
        _reduce_chain(b, x, xm, dims, keepdim, op, node.name, node.meta.dtype)
        return b.nodes
    return None                                  # already primitive


@expander(aten.any.default, aten.any.dim, aten.any.dims, aten.all.default, aten.all.dim, aten.all.dims)
def _expand_any_all(node: Node, graph: Graph):
    """any = amax and all = amin over the operand as bool (the reduction converts it)."""
    x, xm = node.args[0], graph.meta_of(node.args[0].name)
    dims = _norm_dims(node.args[1] if len(node.args) > 1 else node.kwargs_dict().get("dim"), xm.rank)
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs_dict().get("keepdim", False)
    op = aten.amax.default if node.target in (aten.any.default, aten.any.dim, aten.any.dims) else aten.amin.default
    b = _Builder(node.name)
    _reduce_chain(b, x, xm, dims, keepdim, op, node.name, torch.bool)
    return b.nodes


@expander(aten.mean.dim, aten.mean.default)
def _expand_mean(node: Node, graph: Graph):
    x, xm = node.args[0], graph.meta_of(node.args[0].name)
    dims = _norm_dims(node.args[1] if len(node.args) > 1 else None, xm.rank)
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs_dict().get("keepdim", False)
    b = _Builder(node.name)
    total, tm = _reduce_chain(b, x, xm, dims, keepdim, aten.sum.dim_IntList, out_dtype=node.meta.dtype)
    b.add(aten.div.Scalar, (total, _numel(xm, dims)), node.meta, node.name)
    return b.nodes


@expander(aten.var.correction)
def _expand_var(node: Node, graph: Graph):
    x, xm = node.args[0], graph.meta_of(node.args[0].name)
    kw = node.kwargs_dict()
    dims = _norm_dims(node.args[1] if len(node.args) > 1 else kw.get("dim"), xm.rank)
    correction = kw.get("correction", 1)
    correction = 1 if correction is None else correction
    keepdim = kw.get("keepdim", False)
    b = _Builder(node.name)
    total, tm = _reduce_chain(b, x, xm, dims, True, aten.sum.dim_IntList)
    n = _numel(xm, dims)
    mean = b.add(aten.div.Scalar, (total, n), tm)
    diff = b.add(aten.sub.Tensor, (x, mean), contiguous_meta(xm.shape, xm.dtype))
    sq = b.add(aten.mul.Tensor, (diff, diff), contiguous_meta(xm.shape, xm.dtype))
    ss, ssm = _reduce_chain(b, sq, contiguous_meta(xm.shape, xm.dtype), dims, keepdim, aten.sum.dim_IntList)
    # eager's var over no element is NaN (not 0 / (0 - correction))
    b.add(aten.div.Scalar, (ss, math.nan if n == 0 else n - correction), node.meta, node.name)
    return b.nodes


@expander(aten._softmax.default, aten._log_softmax.default)
def _expand_softmax(node: Node, graph: Graph):
    x, xm = node.args[0], graph.meta_of(node.args[0].name)
    d = node.args[1] % max(xm.rank, 1)
    dtype = node.meta.dtype
    full = contiguous_meta(xm.shape, dtype)
    row = contiguous_meta(tuple(1 if j == d else s for j, s in enumerate(xm.shape)), dtype)
    b = _Builder(node.name)
    m, _ = _reduce_chain(b, x, xm, [d], True, aten.amax.default)
    y = b.add(aten.sub.Tensor, (x, m), full)
    e = b.add(aten.exp.default, (y,), full)
    s, _ = _reduce_chain(b, e, full, [d], True, aten.sum.dim_IntList)
    if node.target is aten._softmax.default:             # e * (1 / s), as ATen's CPU kernel
        r = b.add(aten.reciprocal.default, (s,), row)
        b.add(aten.mul.Tensor, (e, r), node.meta, node.name)
    else:
        ls = b.add(aten.log.default, (s,), row)
        b.add(aten.sub.Tensor, (y, ls), node.meta, node.name)
    return b.nodes


def expand_nodes(graph: Graph, names) -> list[Node]:
    """The region's nodes with every composite expanded (see module doc)."""
    out: list[Node] = []
    for name in names:
        node = graph.node_by_name[name]
        fn = _EXPANDERS.get(node.target)
        expanded = fn(node, graph) if fn else None
        out.extend(expanded if expanded is not None else [node])
    return out
