"""Turn functionalised input mutations back into in-place updates.

With `keep_inference_input_mutations`, `cache.index_copy_(0, pos, new)` reaches us as
    index_put = aten.index_put.default(cache, [pos], new)
    copy_     = aten.copy_.default(cache, index_put)
which copies the whole cache twice per call. When the functional result feeds only that copy_,
the pair becomes one in-place op at the copy_'s position (after every other read of the input):
    copy_     = aten.index_put_.default(cache, [pos], new)
so a decode step costs the size of the update, not of the cache.
"""
from __future__ import annotations

import dataclasses

import torch

from pto_dynamo.graph.ir import Graph, Node, Ref

aten = torch.ops.aten

# functional op -> in-place op with the same arguments
INPLACE_OF = {
    aten.index_put.default: aten.index_put_.default,
    aten.index_copy.default: aten.index_copy_.default,
    aten.index_add.default: aten.index_add_.default,
    aten.scatter.src: aten.scatter_.src,
    aten.scatter.value: aten.scatter_.value,
    aten.scatter.reduce: aten.scatter_.reduce,
    aten.scatter.value_reduce: aten.scatter_.value_reduce,
    aten.scatter_add.default: aten.scatter_add_.default,
    aten.masked_fill.Scalar: aten.masked_fill_.Scalar,
    aten.masked_fill.Tensor: aten.masked_fill_.Tensor,
}
# functional scatter-into-a-view op -> the view op that selects the written window
VIEW_OF_SCATTER = {
    aten.slice_scatter.default: aten.slice.Tensor,      # (x, src, dim, start, end, step)
    aten.select_scatter.default: aten.select.int,       # (x, src, dim, index)
}


def _rewrite(copy: Node, producer: Node, graph: Graph) -> list[Node]:
    if producer.target in INPLACE_OF:
        return [copy.with_(target=INPLACE_OF[producer.target], args=producer.args, kwargs=producer.kwargs)]
    view_op = VIEW_OF_SCATTER[producer.target]
    dest, src, *view_args = producer.args
    view = Node(f"{copy.name}_view", view_op, (dest, *view_args), (), _view_meta(graph, producer))
    return [view, copy.with_(args=(Ref(view.name), src))]


def _view_meta(graph: Graph, producer: Node):
    """Meta of the window a scatter writes: the source's shape with the destination's strides."""
    dest, src = graph.meta_of(producer.args[0].name), graph.meta_of(producer.args[1].name)
    dim = (producer.args[2] if len(producer.args) > 2 else producer.kwargs_dict().get("dim", 0)) % dest.rank
    stride = list(dest.stride)
    if producer.target is aten.slice_scatter.default:
        step = producer.args[5] if len(producer.args) > 5 else 1
        stride[dim] = stride[dim] * step
    else:
        del stride[dim]
    return dataclasses.replace(src, stride=tuple(stride))


def reinplace_input_mutations(graph: Graph) -> Graph:
    """Rewrite `copy_(input, f(input, ...))` into the in-place form of f (see module doc)."""
    input_names = set(graph.input_by_name)
    position = {n.name: i for i, n in enumerate(graph.nodes)}
    replace: dict[str, list[Node]] = {}
    drop: set[str] = set()
    for i, node in enumerate(graph.nodes):
        if node.target is not aten.copy_.default or not all(isinstance(a, Ref) for a in node.args[:2]):
            continue
        dest, value = node.args[0].name, node.args[1].name
        producer = graph.node_by_name.get(value)
        if (dest not in input_names or producer is None
                or (producer.target not in INPLACE_OF and producer.target not in VIEW_OF_SCATTER)
                or producer.args[0] != Ref(dest)
                or graph.users[value] != [node.name] or value in graph.output_names
                or any(position[u] > i for u in graph.users[dest] if u != node.name)):
            continue
        replace[node.name] = _rewrite(node, producer, graph)
        drop.add(producer.name)
    if not replace:
        return graph
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.name in drop:
            continue
        nodes.extend(replace.get(node.name, [node]))
    return graph.replace_nodes(nodes)
