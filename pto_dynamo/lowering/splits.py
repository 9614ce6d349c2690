"""`split`, `split_with_sizes` and `unbind` as the views they are.

    parts = split_with_sizes(x, [a, b], d);  p0 = parts[0];  p1 = parts[1]
 -> p0 = slice(x, d, 0, a);  p1 = slice(x, d, a, a + b)

    parts = unbind(x, d);  p1 = parts[1]   ->   p1 = select(x, d, 1)

A split returns a tuple of views; tuples are host values (`unpacks a host value`), but each part
is an affine view of x that a device kernel reads for free. Each `getitem` of a part becomes that
view, with the part's own meta; the split node, left without readers, goes to dead-code elimination.
"""
from __future__ import annotations

import operator

import torch

from pto_dynamo.graph.ir import Graph, Node, Ref

aten = torch.ops.aten


def _dim(node: Node, graph: Graph, position: int) -> int:
    dim = node.args[position] if len(node.args) > position else node.kwargs_dict().get("dim", 0)
    return dim % max(graph.meta_of(node.args[0].name).rank, 1)


def _split_with_sizes(node: Node, graph: Graph, i: int) -> tuple:
    sizes = list(node.args[1])
    start = sum(sizes[:i])
    return aten.slice.Tensor, (node.args[0], _dim(node, graph, 2), start, start + sizes[i])


def _split(node: Node, graph: Graph, i: int) -> tuple:
    dim = _dim(node, graph, 2)
    size, step = graph.meta_of(node.args[0].name).shape[dim], node.args[1]
    end = size if (i + 1) * step >= size else (i + 1) * step       # the last part may be shorter
    return aten.slice.Tensor, (node.args[0], dim, i * step, end)


def _unbind(node: Node, graph: Graph, i: int) -> tuple:
    return aten.select.int, (node.args[0], _dim(node, graph, 1), i)


PART_VIEWS = {aten.split_with_sizes.default: _split_with_sizes, aten.split.Tensor: _split,
              aten.unbind.int: _unbind}


def split_into_views(graph: Graph) -> Graph:
    """The graph with every part of a split / unbind read as a slice / select of its input."""
    out: list[Node] = []
    for node in graph.nodes:
        parent = graph.node_by_name.get(node.args[0].name) if (
            node.target is operator.getitem and isinstance(node.args[0], Ref)) else None
        if parent is not None and parent.target in PART_VIEWS:
            target, args = PART_VIEWS[parent.target](parent, graph, node.args[1])
            node = Node(node.name, target, args, (), node.meta)
        out.append(node)
    return graph.replace_nodes(out)
