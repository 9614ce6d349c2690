"""Indexing ops rewritten as the gathers the device runs (`embedding`, `take`).

`x[idx]`, one integer index tensor on dim 0 of x with dense rows (dims 1.. contiguous):

    w   = where(idx < 0, idx + n, idx)          n = x.shape[0]; a negative index counts from the end
    t   = view(x, [n, W])                       W = x's row, flattened (an affine view of x)
    g   = embedding(t, w)                       MGATHER of whole rows
    out = view(g, idx.shape + x.shape[1:])      (when x is not 2-d; a 1-d x is `take(x, w)`)

`gather(x, d, idx)`, as elements of x flattened (`take`, MGATHER Elem):

    flat = idx * S[d] + sum over k != d of arange(idx.shape[k]) * S[k]      S = x's contiguous strides
    out  = take(x, flat)

`index_select(x, d, idx)` (but rows of a 2-d table, an embedding as it is) is the same take over
the result's shape, idx viewed along dim d. `take(x, idx)` itself (core ATen decomposes a user's
take into `x.reshape(-1)[idx]`) gets the wrap of negative indices: take(x, where(idx < 0, ...)).

Small scatters run as selects (scatters.py, which shares this module's `Rewrite`).

All run after `index_checks`, which has already checked every index against its range as eager
does ([-n, n) for `x[idx]`, [0, x.shape[d]) for gather, [-numel, numel) for take).
Other indexing (several index tensors, a bool mask, `x[:, idx]`, x with rows not dense) stays on
the host, and a take of a non-contiguous x is a host op by claim.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.index_checks import IndexedRows, element_gather, flat_take, single_leading_index
from pto_dynamo.lowering.tile.expr import exprs_equal
from pto_dynamo.lowering.vector.expand import contiguous_meta

aten = torch.ops.aten
prims = torch.ops.prims


def _dense_from(meta: TensorMeta, first: int) -> bool:
    """Are dims first.. of `meta` laid out contiguously (a size-1 dim's stride does not matter)?"""
    expected = 1
    for size, stride in reversed(list(zip(meta.shape[first:], meta.stride[first:]))):
        if not exprs_equal(size, 1) and not exprs_equal(stride, expected):
            return False
        expected = expected * size
    return True


class Rewrite:
    """Nodes named `<base>__<step>`; the last one takes the replaced node's name."""

    def __init__(self, node: Node):
        self.node, self.nodes = node, []

    def add(self, step: str, target, args, meta, kwargs=()) -> Ref:
        self.nodes.append(Node(f"{self.node.name}__{step}", target, tuple(args), tuple(kwargs), meta))
        return Ref(self.nodes[-1].name)

    def finish(self, target, args, kwargs=()) -> list[Node]:
        return self.nodes + [Node(self.node.name, target, tuple(args), tuple(kwargs), self.node.meta)]

    def finish_last(self) -> list[Node]:
        """The nodes, the last one added renamed to the replaced node (it has its meta)."""
        last = self.nodes.pop()
        return self.finish(last.target, last.args, last.kwargs)


def _index_rows(node: Node, graph: Graph) -> list[Node] | None:
    rows = single_leading_index(node, graph)
    table = graph.meta_of(node.args[0].name)
    if rows is None or not _dense_from(table, 1):
        return None
    b = Rewrite(node)
    n = rows.size
    width = math.prod(table.shape[1:])
    row = wrapped(b, rows, graph)
    if table.rank == 1:
        return b.finish(aten.take.default, (node.args[0], row))
    if table.rank == 2:
        return b.finish(aten.embedding.default, (node.args[0], row))
    t = b.add("table", aten.view.default, (node.args[0], [n, width]),
              TensorMeta((n, width), table.dtype, (table.stride[0], 1), offset=table.offset))
    ishape = tuple(graph.meta_of(rows.idx.name).shape)
    g = b.add("gather", aten.embedding.default, (t, row), contiguous_meta(ishape + (width,), table.dtype))
    return b.finish(aten.view.default, (g, list(node.meta.shape)))


def _flat_take(b: Rewrite, graph: Graph, x: Ref, d: int, idx: Ref, idx_shape: tuple, out_shape: tuple) -> list[Node]:
    """take(x, flat) with flat[p] = idx'[p] * S[d] + sum over k != d of p[k] * S[k] at every
    position p of `out_shape`; idx' is idx viewed as `idx_shape` (which broadcasts to out_shape)."""
    meta = graph.meta_of(x.name)
    strides = contiguous_meta(tuple(meta.shape), meta.dtype).stride or (1,)   # of x flattened, as take reads it
    imeta = graph.meta_of(idx.name)
    if tuple(imeta.shape) != idx_shape:
        idx = b.add("lined", aten.view.default, (idx, list(idx_shape)), contiguous_meta(idx_shape, imeta.dtype))
    if imeta.dtype != torch.int64:                                          # take indexes with int64
        idx = b.add("i64", prims.convert_element_type.default, (idx, torch.int64),
                    contiguous_meta(idx_shape, torch.int64))
    shape = idx_shape
    flat = b.add("at_dim", aten.mul.Tensor, (idx, strides[d]), contiguous_meta(shape, torch.int64))
    for k, size in enumerate(out_shape):
        if k == d or exprs_equal(size, 1):
            continue
        lined = tuple(size if j == k else 1 for j in range(len(out_shape)))
        iota = b.add(f"iota{k}", aten.arange.default, (size,), contiguous_meta((size,), torch.int64),
                     (("dtype", torch.int64),))
        iota = b.add(f"iota{k}_view", aten.view.default, (iota, list(lined)), contiguous_meta(lined, torch.int64))
        step = b.add(f"at{k}", aten.mul.Tensor, (iota, strides[k]), contiguous_meta(lined, torch.int64))
        shape = tuple(size if j == k else s for j, s in enumerate(shape))
        flat = b.add(f"flat{k}", aten.add.Tensor, (flat, step), contiguous_meta(shape, torch.int64))
    return b.finish(aten.take.default, (x, flat))


def _gather_elements(node: Node, graph: Graph) -> list[Node] | None:
    rows = element_gather(node, graph)
    if rows is None:
        return None
    shape = tuple(graph.meta_of(rows.idx.name).shape)
    return _flat_take(Rewrite(node), graph, node.args[0], rows.dim, rows.idx, shape, shape)


def _index_select(node: Node, graph: Graph) -> list[Node] | None:
    """index_select(x, d, idx) other than the rows of a 2-d table (which the device gathers as is)."""
    x = graph.meta_of(node.args[0].name)
    idx = graph.meta_of(node.args[2].name)
    d = node.args[1] % max(x.rank, 1)
    if idx.rank > 1 or (d == 0 and x.rank == 2 and _dense_from(x, 1)):
        return None
    n = idx.shape[0] if idx.rank else 1
    idx_shape = tuple(n if j == d else 1 for j in range(x.rank))          # () for a 0-d x (one index)
    out_shape = tuple(n if j == d else s for j, s in enumerate(x.shape))
    return _flat_take(Rewrite(node), graph, node.args[0], d, node.args[2], idx_shape, out_shape)


def _take(node: Node, graph: Graph) -> list[Node] | None:
    rows = flat_take(node, graph)
    if rows is None:
        return None
    b = Rewrite(node)
    return b.finish(aten.take.default, (node.args[0], wrapped(b, rows, graph)))


def wrapped(b: Rewrite, rows: IndexedRows, graph: Graph) -> Ref:
    """where(idx < 0, idx + size, idx): Python's negative indices as positions."""
    imeta = graph.meta_of(rows.idx.name)
    ishape = tuple(imeta.shape)
    neg = b.add("neg", aten.lt.Scalar, (rows.idx, 0), contiguous_meta(ishape, torch.bool))
    up = b.add("up", aten.add.Tensor, (rows.idx, rows.size), contiguous_meta(ishape, imeta.dtype))
    return b.add("wrapped", aten.where.self, (neg, up, rows.idx), contiguous_meta(ishape, imeta.dtype))


REWRITES: dict[object, Callable[[Node, Graph], list[Node] | None]] = {
    aten.index.Tensor: _index_rows,
    aten.gather.default: _gather_elements,
    aten.index_select.default: _index_select,
    aten.take.default: _take,
}


def rewrite_gathers(graph: Graph) -> Graph:
    """The graph with every indexing op the rules above take as an embedding or a take."""
    out: list[Node] = []
    changed = False
    for node in graph.nodes:
        nodes = REWRITES[node.target](node, graph) if node.target in REWRITES else None
        changed |= nodes is not None
        out += nodes if nodes is not None else [node]
    return graph.replace_nodes(out) if changed else graph
