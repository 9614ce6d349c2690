"""Attention stores its result in the layout its reader copies it into.

SDPA's decomposition hands its result back laid out as ATen's CPU flash attention writes it:
[B, H, M, Dv] values in [M, B, H, Dv] memory,

    o  = pto::attention(...)                        [B*H, M, Dv]  (contiguous)
    o4 = view(o, [B, H, M, Dv]) [alias]*            batch regrouped only
    t  = permute(o4, [2, 0, 1, 3])                  [M, B, H, Dv]
    c  = clone(t, contiguous_format)                the copy
    ...  permute(c, [1, 2, 0, 3])                   the caller's [B, H, M, Dv] view of it

When every value of the chain but `c` is read only by the next step, the attention node returns
`t`'s layout itself (`rows_first`: [M, batch, Dv], the kernel stores the (batch, M, Dv) values
through those strides) and `c` becomes a view of it: one pass over the result fewer (a clone
kernel that read and wrote every element), the same values and strides for every reader, and a
returned `c` is computed straight into the caller's tensor (fusion.output_aliases).
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from pto_dynamo.graph.dims import same_layout
from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.attention.op import ATTENTION
from pto_dynamo.lowering.vector.expand import contiguous_meta

aten = torch.ops.aten
_REGROUPS = (aten.view.default, aten._unsafe_view.default, aten.alias.default)


def _contiguous(shape) -> tuple:
    return contiguous_meta(tuple(shape), torch.float32).stride


def _single_user(graph: Graph, name: str) -> Node | None:
    users = graph.users.get(name, [])
    if len(users) != 1 or name in graph.output_names:
        return None
    return graph.node_by_name[users[0]]


def _rewrite(graph: Graph, node: Node) -> dict[str, Node] | None:
    meta = node.meta
    if not isinstance(meta, TensorMeta) or meta.rank != 3 or (len(node.args) > 9 and node.args[9]):
        return None
    batch, M, Dv = meta.shape
    cur = node
    while True:                               # views that regroup the batch dims only
        user = _single_user(graph, cur.name)
        if user is None:
            return None
        if user.target not in _REGROUPS:
            break
        shape = tuple(user.meta.shape)
        if len(shape) < 3 or not same_layout(shape[-2:], (1, 1), (M, Dv), (1, 1)) \
                or not same_layout((math.prod(shape[:-2]),), (1,), (batch,), (1,)):
            return None
        cur = user
    permute, rank = user, len(cur.meta.shape)
    if permute.target is not aten.permute.default or list(permute.args[1]) != [rank - 2, *range(rank - 2), rank - 1]:
        return None
    clone = _single_user(graph, permute.name)
    if clone is None or clone.target is not aten.clone.default \
            or dict(clone.kwargs).get("memory_format", torch.contiguous_format) is not torch.contiguous_format \
            or not same_layout(clone.meta.shape, clone.meta.stride, clone.meta.shape, _contiguous(clone.meta.shape)):
        return None
    args = tuple(node.args) + (None,) * (9 - len(node.args)) + (True,)
    rows = (M, batch, Dv)
    return {node.name: node.with_(args=args, meta=replace(meta, shape=rows, stride=_contiguous(rows), offset=0)),
            clone.name: Node(clone.name, aten.view.default, (Ref(node.name), list(clone.meta.shape)), (), clone.meta)}


def store_attention_as_read(graph: Graph) -> Graph:
    """Let every attention node whose result only feeds SDPA's layout copy return that layout."""
    replaced: dict[str, Node] = {}
    for node in graph.nodes:
        if node.target is ATTENTION:
            found = _rewrite(graph, node)
            if found is not None:
                replaced.update(found)
    if not replaced:
        return graph
    return graph.replace_nodes([replaced.get(n.name, n) for n in graph.nodes])
