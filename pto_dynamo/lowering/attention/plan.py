"""AttentionPlan: one `pto::attention` node as the attention lowering reads it."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pto_dynamo.graph.dims import Dim
from pto_dynamo.lowering.cube.ops import Operand


@dataclass(frozen=True)
class AttentionPlan:
    """out[b] = softmax(q[b] @ kt[b] * scale + mask[b], -1) @ v[b] for b < batch (with a sink:
    the sink's exp joins the denominator only; see `pto::attention`).

    q: M x D, kt: D x S (a transposed k reads through its strides), v: S x Dv, mask: M x S
    (broadcast dims have stride 0; additive, or bool where True drops the key) or None,
    out: M x Dv. `safe`: an all -inf row gives zeros. `causal`: the top-left causal mask applies
    too (keys after a query tile's last row are skipped, the diagonal steps masked in the kernel).
    `sink`: M x 1 logits (broadcast) or None; `p_dtype`: the exp weights are rounded to it before P @ V (None: v's dtype)."""

    q: Operand
    kt: Operand
    v: Operand
    out: Operand
    mask: Operand | None
    batch: Dim
    M: Dim
    S: Dim
    D: int
    Dv: int
    scale: float
    safe: bool
    causal: bool = False
    sink: Operand | None = None
    p_dtype: torch.dtype | None = None


def broadcast_strides(shape: tuple, stride: tuple, rank: int = 3) -> tuple:
    """Strides of a value right-aligned into `rank` dims, 0 along size-1 and missing dims."""
    shape, stride = tuple(shape)[-rank:], tuple(stride)[-rank:]      # dropped leading dims are all 1
    pad = rank - len(shape)
    return (0,) * pad + tuple(0 if (isinstance(s, int) and s == 1) else st for s, st in zip(shape, stride))
