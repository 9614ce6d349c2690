"""`x[idx]` as a row gather the device runs.

    index.Tensor(x, [idx])  ->  w   = where(idx < 0, idx + n, idx)       n = x.shape[0]
                                t   = view(x, [n, W])                    W = x's row, flattened
                                g   = embedding(t, w)                    MGATHER of whole rows
                                out = view(g, idx.shape + x.shape[1:])   (when x is not 2-d)

Only for one integer index tensor on dim 0 (`cos[pos]`, `state[rows]`, a cache read by slot),
and only when x's rows are dense (dims 1.. contiguous), so that the 2-d view is an affine access
of x's own storage. Runs after `index_checks`, which has already checked every index against
[-n, n) as eager does; the wrap turns the Python-style negative indices into rows. Any other
indexing (several index tensors, a bool mask, `x[:, idx]`) stays `aten.index` on the host.
"""
from __future__ import annotations

import math

import sympy
import torch

from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.index_checks import single_leading_index
from pto_dynamo.lowering.vector.expand import contiguous_meta

aten = torch.ops.aten


def _same(a, b) -> bool:
    return sympy.simplify(sympy.sympify(a) - b) == 0


def _dense_rows(meta: TensorMeta) -> bool:
    """Are dims 1.. of `meta` laid out contiguously (a size-1 dim's stride does not matter)?"""
    expected = 1
    for size, stride in reversed(list(zip(meta.shape[1:], meta.stride[1:]))):
        if not _same(size, 1) and not _same(stride, expected):
            return False
        expected = expected * size
    return True


def _gather_nodes(node: Node, graph: Graph) -> list[Node] | None:
    rows = single_leading_index(node, graph)
    table = graph.meta_of(node.args[0].name)
    if rows is None or not _dense_rows(table):
        return None
    idx, n = rows.idx, rows.size
    imeta = graph.meta_of(idx.name)
    width = math.prod(table.shape[1:])
    ishape = contiguous_meta(tuple(imeta.shape), imeta.dtype)
    base = f"{node.name}__"
    out = [Node(base + "neg", aten.lt.Scalar, (idx, 0), (), contiguous_meta(tuple(imeta.shape), torch.bool)),
           Node(base + "up", aten.add.Tensor, (idx, n), (), ishape),
           Node(base + "row", aten.where.self, (Ref(base + "neg"), Ref(base + "up"), idx), (), ishape)]
    table_ref = node.args[0]
    if table.rank != 2:
        view_meta = TensorMeta((n, width), table.dtype, (table.stride[0], 1), offset=table.offset)
        out.append(Node(base + "table", aten.view.default, (table_ref, [n, width]), (), view_meta))
        table_ref = Ref(base + "table")
    gathered = contiguous_meta(tuple(imeta.shape) + (width,), table.dtype)
    if table.rank == 2:
        return out + [Node(node.name, aten.embedding.default, (table_ref, Ref(base + "row")), (), node.meta)]
    return out + [Node(base + "gather", aten.embedding.default, (table_ref, Ref(base + "row")), (), gathered),
                  Node(node.name, aten.view.default, (Ref(base + "gather"), list(node.meta.shape)), (), node.meta)]


def gather_indexed_rows(graph: Graph) -> Graph:
    """The graph with every `x[idx]` over dense rows as an embedding of x's rows."""
    out: list[Node] = []
    changed = False
    for node in graph.nodes:
        nodes = _gather_nodes(node, graph) if node.target is aten.index.Tensor else None
        changed |= nodes is not None
        out += nodes if nodes is not None else [node]
    return graph.replace_nodes(out) if changed else graph
