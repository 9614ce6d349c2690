"""Device claim of `pto::attention`: f32, bf16 or f16 operands read in place, static head dims up
to MAX_HEAD_DIM (a head wider than the target's cube memories runs in head-dim panels)."""
from __future__ import annotations

from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.attention.op import ATTENTION
from pto_dynamo.lowering.cube.claims import FLOATS
from pto_dynamo.lowering.cube.ops import is_one
from pto_dynamo.lowering.registry import device_rule

# Heads wider than the cube memories run in head-dim panels (attention/tiling.py HEAD_PANELS);
# 512 is DeepSeek-V4's head (448 no-rope + 64 rope).
MAX_HEAD_DIM = 512


@device_rule(ATTENTION)
def check_attention_node(node: Node, graph: Graph) -> str | None:
    """None if the attention lowering takes `node`, else why it stays on the host."""
    q, kt, v, mask = (graph.meta_of(a.name) if isinstance(a, Ref) else None for a in node.args[:4])
    if not all(isinstance(m, TensorMeta) for m in (q, kt, v)) or q.dtype not in FLOATS:
        return "attention of non-float operands"
    if not (is_one(q.stride[-1]) and is_one(v.stride[-1]) and (is_one(kt.stride[-1]) or is_one(kt.stride[-2]))):
        return (f"attention operands without unit strides (q {tuple(q.stride)}, k^T {tuple(kt.stride)}, "
                f"v {tuple(v.stride)})")
    for what, d in (("head dim", q.shape[-1]), ("value head dim", v.shape[-1])):
        if not isinstance(d, int) or d > MAX_HEAD_DIM:
            return f"{what} {d} (the attention lowering takes a static head dim <= {MAX_HEAD_DIM})"
    if mask is not None and not (isinstance(mask, TensorMeta) and (mask.rank < 2 or is_one(mask.stride[-1])
                                                                   or mask.shape[-1] == 1)):
        return f"mask with strides {tuple(mask.stride)} (keys must be contiguous)"
    return None
