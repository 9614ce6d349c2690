"""Turn functionalised input mutations back into in-place updates.

With `keep_inference_input_mutations`, `cache.index_copy_(0, pos, new)` reaches us as
    index_put = aten.index_put.default(cache, [pos], new)
    ...                                   (later nodes may read index_put: the updated cache)
    copy_     = aten.copy_.default(cache, index_put)
which copies the whole cache twice per call. The pair becomes one in-place op, so a decode step
costs the size of the update, not of the cache:
  - at the functional op's position, when no other node reads the old input after it; later
    readers of `index_put` read the (now updated) input instead;
  - else at the copy_'s position, when the functional result feeds only the copy_.
Scatters into a window (`slice_scatter`, `select_scatter`) become a view plus `copy_` into it.
"""
from __future__ import annotations

import dataclasses

import torch

from pto_dynamo.graph.ir import Graph, Node, Ref, map_refs

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


def _in_place_nodes(name: str, producer: Node, graph: Graph) -> list[Node]:
    """The in-place form of `producer`, as nodes; the last one is named `name`."""
    if producer.target in INPLACE_OF:
        return [producer.with_(name=name, target=INPLACE_OF[producer.target])]
    dest, src, *view_args = producer.args
    view = Node(f"{name}_view", VIEW_OF_SCATTER[producer.target], (dest, *view_args), producer.kwargs,
                _view_meta(graph, producer))
    return [view, Node(name, aten.copy_.default, (Ref(view.name), src), (), graph.meta_of(src.name))]


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


def reinplace_candidate(node: Node, graph: Graph) -> Node | None:
    """The functional producer if `node` is `copy_(input, f(input, ...))`, else None."""
    if node.target is not aten.copy_.default or not all(isinstance(a, Ref) for a in node.args[:2]):
        return None
    dest, value = node.args[0].name, node.args[1].name
    producer = graph.node_by_name.get(value)
    if (dest not in graph.input_by_name or producer is None
            or (producer.target not in INPLACE_OF and producer.target not in VIEW_OF_SCATTER)
            or producer.args[0] != Ref(dest) or value in graph.output_names):
        return None
    return producer


def reinplace_input_mutations(graph: Graph) -> Graph:
    """Rewrite `copy_(input, f(input, ...))` into the in-place form of f (see module doc)."""
    position = {n.name: i for i, n in enumerate(graph.nodes)}
    at: dict[str, list[Node]] = {}          # node name -> nodes that replace it
    rename: dict[str, Ref] = {}             # functional result -> the mutated input
    for node in graph.nodes:
        producer = reinplace_candidate(node, graph)
        if producer is None:
            continue
        dest = node.args[0].name
        other_readers = [u for u in graph.users[dest] if u not in (node.name, producer.name)]
        if all(position[u] < position[producer.name] for u in other_readers):
            at[producer.name] = _in_place_nodes(producer.name, producer, graph)
            at[node.name] = []
            rename[producer.name] = Ref(dest)
            rename[node.name] = Ref(dest)          # copy_ returns its destination
        elif graph.users[producer.name] == [node.name] and all(position[u] < position[node.name] for u in other_readers):
            at[producer.name] = []
            at[node.name] = _in_place_nodes(node.name, producer, graph)
    if not at:
        return graph
    nodes: list[Node] = []
    for node in graph.nodes:
        for new in at.get(node.name, [node]):
            is_mutation = new.name in rename         # keeps its own (functional) argument names
            nodes.append(new if is_mutation else new.with_(args=map_refs(new.args, lambda r: rename.get(r.name, r)),
                                                           kwargs=map_refs(new.kwargs, lambda r: rename.get(r.name, r))))
    return graph.replace_nodes(nodes, map_refs(tuple(graph.outputs), lambda r: rename.get(r.name, r)))
