"""Bounds checks for gathers the device runs (embedding, index_select).

Eager raises on an index outside the table. The device gather clamps instead (it never reads
outside the table), so this pass adds, before each such op, a check that raises the error:

    bad = any((idx < 0) | (idx >= size));  _assert_async(!bad, "<op>: index out of range ...")

The comparisons and the `any` are device ops (they fuse into one small kernel); the assert is a
host runtime check. It runs before the graph returns and before any later in-place update of an
input (the partition orders updates after checks), so a bad index raises instead of returning
rows of the clamped index or writing them into a cache.
"""
from __future__ import annotations

import torch

from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.vector.expand import contiguous_meta

aten = torch.ops.aten

# op -> (table arg, index arg, the table dim indexed)
GATHERS = {aten.embedding.default: (0, 1, lambda node: 0),
           aten.index_select.default: (0, 2, lambda node: node.args[1])}


def _bool_meta(shape) -> TensorMeta:
    return contiguous_meta(tuple(shape), torch.bool)


def add_index_checks(graph: Graph) -> Graph:
    """The graph with a bounds check before every embedding / index_select."""
    if not any(n.target in GATHERS for n in graph.nodes):
        return graph
    out: list[Node] = []
    for node in graph.nodes:
        if node.target in GATHERS:
            table_arg, index_arg, dim_of = GATHERS[node.target]
            table, idx = node.args[table_arg], node.args[index_arg]
            table_meta, idx_meta = graph.meta_of(table.name), graph.meta_of(idx.name)
            size = table_meta.shape[dim_of(node) % table_meta.rank] if table_meta.rank else 1   # 0-d: one element
            op = str(node.target).split(".")[1]
            name = f"{node.name}__check"
            mask = _bool_meta(idx_meta.shape)
            out += [Node(f"{name}_lo", aten.lt.Scalar, (idx, 0), (), mask),
                    Node(f"{name}_hi", aten.ge.Scalar, (idx, size), (), mask),
                    Node(f"{name}_bad", aten.logical_or.default, (Ref(f"{name}_lo"), Ref(f"{name}_hi")), (), mask),
                    Node(f"{name}_any", aten.any.default, (Ref(f"{name}_bad"),), (), _bool_meta(())),
                    Node(f"{name}_ok", aten.logical_not.default, (Ref(f"{name}_any"),), (), _bool_meta(())),
                    Node(name, aten._assert_async.msg,
                         (Ref(f"{name}_ok"), f"{op}: index out of range: every index of {idx.name} must be in "
                                             f"[0, {size}), the size of {table.name} along the indexed dim"), ())]
        out.append(node)
    return graph.replace_nodes(out)
