"""Device claims of the cube lowering: mm, bmm, addmm, baddbmm with checkers.

Operands of float32, bfloat16 or float16 (accumulation in float32), each read in place through its
strides: one of its two matrix dims must have unit stride (a row-major or a transposed operand);
an operand with neither stays on the host with the reason.
"""
from __future__ import annotations

import torch

from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.cube.ops import EXPANDED_OPS, MATMUL_OPS, is_one
from pto_dynamo.lowering.registry import device_rule

FLOATS = (torch.float32, torch.bfloat16, torch.float16)


def _name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def check_matmul_node(node: Node, graph: Graph) -> str | None:
    """None if the cube lowering takes `node`, else the reason it stays on the host."""
    meta = node.meta
    if not isinstance(meta, TensorMeta):
        return "result is not a single tensor"
    if meta.dtype not in FLOATS:
        return f"{_name(meta.dtype)} matmul (the cube lowering takes f32/bf16/f16)"
    if not is_one(meta.stride[-1]):
        return f"result with strides {tuple(meta.stride)} (the cube kernel stores rows of unit stride)"
    first = 1 if node.target in EXPANDED_OPS else 0
    if node.target in EXPANDED_OPS:
        bias = graph.meta_of(node.args[0].name) if isinstance(node.args[0], Ref) else None
        if not isinstance(bias, TensorMeta) or bias.dtype != meta.dtype:
            return "bias of another dtype than the result"
    for pos, what in ((first, "left"), (first + 1, "right")):
        arg = node.args[pos]
        m = graph.meta_of(arg.name) if isinstance(arg, Ref) else None
        if not isinstance(m, TensorMeta) or m.dtype != meta.dtype:
            return f"{what} operand of another dtype than the result"
        if not (is_one(m.stride[-1]) or is_one(m.stride[-2])):
            return f"{what} operand has no unit stride in its matrix dims (strides {tuple(m.stride)})"
    return None


device_rule(*MATMUL_OPS, *EXPANDED_OPS)(check_matmul_node)
