"""Graph clean-up passes: common-subexpression elimination and dead-code elimination.

aot_autograd's inference graphs have no CSE (a norm used twice is computed twice); these passes
run before partitioning so the device never computes a value twice.
"""
from __future__ import annotations

import torch

from pto_dynamo.graph.ir import Graph, Node, Ref, iter_refs, map_refs
from pto_dynamo.lowering.effects import has_effect, is_random

aten = torch.ops.aten


def _key(node: Node):
    if node.target is aten._assert_scalar.default:
        return ("check", node.args[0])               # the same condition checked twice
    try:
        key = (node.target, node.args, node.kwargs)
        hash(key)
        return key
    except TypeError:
        return None                                  # unhashable constant: never merged


def eliminate_common_subexpressions(graph: Graph) -> Graph:
    """Merge nodes computing the same op on the same arguments (pure, deterministic ops only),
    and drop a runtime check of a condition already checked."""
    rename: dict[str, Ref] = {}
    seen: dict = {}
    nodes: list[Node] = []
    for node in graph.nodes:
        node = node.with_(args=map_refs(node.args, lambda r: rename.get(r.name, r)),
                          kwargs=map_refs(node.kwargs, lambda r: rename.get(r.name, r)))
        pure = not has_effect(node, graph) or node.target is aten._assert_scalar.default
        key = _key(node) if pure and not is_random(node) else None
        if key is not None and key in seen:
            rename[node.name] = Ref(seen[key])
            continue
        if key is not None:
            seen[key] = node.name
        nodes.append(node)
    outputs = map_refs(tuple(graph.outputs), lambda r: rename.get(r.name, r))
    return graph.replace_nodes(nodes, outputs)


def eliminate_dead_code(graph: Graph) -> Graph:
    """Drop nodes whose values nobody reads and that have no effect."""
    live: set[str] = {r.name for r in iter_refs(graph.outputs)}
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if node.name in live or has_effect(node, graph):
            kept.append(node)
            live.update(node.inputs())
    return graph.replace_nodes(reversed(kept))
