"""Device claims of the vector lowering: which nodes the device takes, with checkers.

Floating-point tensors (f32, bf16, f16) only for now; integer and bool tensors (indices, masks,
comparisons) stay on the host with a reason until their lowering lands.
"""
from __future__ import annotations

import torch

from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.registry import device_rule
from pto_dynamo.lowering.vector.opinfo import VECTOR_OPS

aten = torch.ops.aten
FLOATS = (torch.float32, torch.bfloat16, torch.float16)


def _dtype_name(d) -> str:
    return str(d).replace("torch.", "")


def check_vector_node(node: Node, graph: Graph) -> str | None:
    """None if the vector lowering takes `node`, else the reason it stays on the host."""
    if not isinstance(node.meta, TensorMeta):
        return "result is not a single tensor"
    if node.meta.dtype not in FLOATS:
        return f"result dtype {_dtype_name(node.meta.dtype)} (the vector lowering takes f32/bf16/f16)"
    kind = VECTOR_OPS[node.target].kind
    for a in node.args:
        if isinstance(a, Ref):
            m = graph.meta_of(a.name)
            if not isinstance(m, TensorMeta) or m.dtype not in FLOATS:
                return f"operand {a.name} is {_dtype_name(getattr(m, 'dtype', 'not a tensor'))}"
            if m.rank == 0 and m.dtype == torch.float64:
                return "reads a host scalar"
        elif isinstance(a, (list, tuple)) and any(isinstance(x, Ref) for x in a):
            return "takes a list of tensors"
    kw = node.kwargs_dict()
    if node.target is aten._to_copy.default and any(k not in ("dtype", "layout", "device") for k in kw):
        return "_to_copy with memory_format or other options"
    if node.target in (aten.sum.dim_IntList, aten.mean.dim) and kw.get("dtype") not in (None, node.meta.dtype):
        return "reduction with an accumulation dtype"
    if kind == "view" and not _feeds_device(node, graph):
        return "view read only on the host (a view costs nothing there)"
    return None


def _feeds_device(node: Node, graph: Graph) -> bool:
    """Does some user of this view (through further views) compute on the device?"""
    for user in graph.users.get(node.name, ()):
        u = graph.node_by_name[user]
        info = VECTOR_OPS.get(u.target)
        if info is None:
            continue
        if info.kind == "view" and _feeds_device(u, graph):
            return True
        if info.kind != "view" and check_vector_node(u, graph) is None:
            return True
    return False


device_rule(*VECTOR_OPS)(check_vector_node)
