"""`torch.ops.pto.attention`: the node the pattern stage puts in place of a recognised attention.

    attention(q [B, M, D], kt [B, D, S], v [B, S, Dv], mask, scale, safe, causal, sink, p_dtype,
              rows_first)
        s   = q @ kt * scale  (+ mask | masked_fill(mask, -inf))
        m   = rowmax(s);  e = exp(s - m)
        out = e' @ v / (rowsum(e) [+ exp(sink - m)])                                    -> [B, M, Dv]
                                                                 (rows_first: -> [M, B, Dv])

which without a sink is `softmax(s, -1) @ v`. `mask` (or None) is additive and broadcast, or
bool: True drops the key (`masked_fill` semantics). `safe` gives rows whose every score is -inf an
all-zero result (SDPA's `_safe_softmax`) instead of NaN. `causal` applies the top-left causal mask
besides `mask`: key j is dropped for query i < j (the pattern stage puts it in place of SDPA's
arange/le/where mask, which a kernel then neither builds nor reads: it skips the keys after a
query tile's last row and masks only the steps that cross the diagonal). `sink` ([B, M, 1],
broadcast: a logit per row, one per head in DeepSeek-V4) joins only the denominator; `p_dtype`
rounds the exp weights `e` to that dtype before `@ v` (e' = e.to(p_dtype).to(e.dtype)), as a bf16
kernel does; the denominator keeps them unrounded. `rows_first` returns the result with the query
rows first, out.transpose(0, 1) contiguous: the layout SDPA's callers copy it into
(out_layout.py), which the kernel then stores directly. bf16 or f16 operands compute as the kernel
(and ATen's CPU flash attention) does: scores and sums in f32, the exp weights rounded to
`p_dtype` (default v's dtype), the result rounded to q's dtype once. The eager implementation
below is the host fallback and the reference.
"""
from __future__ import annotations

from typing import Optional

import torch


@torch.library.custom_op("pto::attention", mutates_args=())
def attention(q: torch.Tensor, kt: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor], scale: float,
              safe: bool, causal: bool = False, sink: Optional[torch.Tensor] = None,
              p_dtype: Optional[torch.dtype] = None, rows_first: bool = False) -> torch.Tensor:
    low = q.dtype if q.dtype in (torch.bfloat16, torch.float16) else None
    if low is not None:                          # as the kernel and ATen's CPU flash attention do
        out = _attention_f32(q, kt, v, mask, scale, safe, causal, sink, p_dtype or v.dtype).to(low)
    else:
        out = _attention_f32(q, kt, v, mask, scale, safe, causal, sink, p_dtype)
    return out.transpose(0, 1).contiguous() if rows_first else out


def _attention_f32(q, kt, v, mask, scale, safe, causal, sink, p_dtype):
    q, kt, v = q.float(), kt.float(), v.float()
    s = torch.bmm(q, kt)
    if scale != 1.0:
        s = s * scale
    if mask is not None:
        s = s.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else s + mask
    if causal:
        later = torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device).triu(1)
        s = s.masked_fill(later, float("-inf"))
    if sink is None and p_dtype is None:
        p = torch.softmax(s, -1)
        if safe:
            p = torch.where((s == float("-inf")).all(-1, keepdim=True), torch.zeros_like(p), p)
        return torch.bmm(p, v)
    m = s.amax(-1, keepdim=True)
    e = torch.exp(s - m)
    denom = e.sum(-1, keepdim=True)
    if sink is not None:
        denom = denom + torch.exp(sink - m)
    if p_dtype is not None:
        e = e.to(p_dtype).to(e.dtype)
    out = torch.bmm(e, v) / denom
    if safe:
        out = torch.where((s == float("-inf")).all(-1, keepdim=True), torch.zeros_like(out), out)
    return out


@attention.register_fake
def _(q, kt, v, mask, scale, safe, causal=False, sink=None, p_dtype=None, rows_first=False):
    if rows_first:
        return q.new_empty((q.shape[1], q.shape[0], v.shape[2]))
    return q.new_empty((q.shape[0], q.shape[1], v.shape[2]))


ATTENTION = torch.ops.pto.attention.default
