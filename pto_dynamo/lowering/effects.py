"""Which nodes have effects: mutations, runtime checks, random ops. CSE and DCE leave them alone."""
from __future__ import annotations

import torch

from pto_dynamo.graph.ir import Graph, Node

aten = torch.ops.aten
CHECK_OPS = {aten._assert_scalar.default, aten._assert_async.default, aten._assert_async.msg,
              aten.sym_constrain_range.default, aten.sym_constrain_range_for_size.default}


def is_mutating(node: Node) -> bool:
    """True for ops that write one of their arguments (`index_put_`, `copy_`)."""
    t = node.target
    return isinstance(t, torch._ops.OpOverload) and t._schema.is_mutable


def is_random(node: Node) -> bool:
    t = node.target
    return isinstance(t, torch._ops.OpOverload) and torch.Tag.nondeterministic_seeded in t.tags


def has_effect(node: Node, graph: Graph) -> bool:
    """A node that must run even if nothing reads its value."""
    return (is_mutating(node) or node.target in CHECK_OPS or is_random(node)
            or node.name in graph.dims_produced_by)       # binds a dim that shapes may use
