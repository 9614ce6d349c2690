"""`torch.ops.pto.attention`: the node the pattern stage puts in place of a recognised attention.

    attention(q [B, M, D], kt [B, D, S], v [B, S, Dv], mask [B, M, S] | None, scale, safe, causal)
        = softmax(q @ kt * scale + mask, dim=-1) @ v                                    -> [B, M, Dv]

`mask` is additive and broadcast (a causal mask is 0 / -inf); `safe` gives rows whose every score
is -inf an all-zero result (SDPA's `_safe_softmax`) instead of NaN; `causal` says the mask is the
top-left causal one (key j masked for query i < j), so a kernel may skip the keys after a query
tile's last row (the result is the same). The eager implementation below
is the host fallback and the reference: it runs the same ATen ops the pattern replaced.
"""
from __future__ import annotations

from typing import Optional

import torch


@torch.library.custom_op("pto::attention", mutates_args=())
def attention(q: torch.Tensor, kt: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor], scale: float,
              safe: bool, causal: bool = False) -> torch.Tensor:
    s = torch.bmm(q, kt)
    if scale != 1.0:
        s = s * scale
    if mask is not None:
        s = s + mask
    p = torch.softmax(s, -1)
    if safe:
        p = torch.where((s == float("-inf")).all(-1, keepdim=True), torch.zeros_like(p), p)
    return torch.bmm(p, v)


@attention.register_fake
def _(q, kt, v, mask, scale, safe, causal=False):
    return q.new_empty((q.shape[0], q.shape[1], v.shape[2]))


ATTENTION = torch.ops.pto.attention.default
