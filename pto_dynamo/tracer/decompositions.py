"""The project's decomposition table: core ATen, minus the ops the device wants whole.

Keeping `_softmax`/`_log_softmax` whole lets the lowering emit one online-softmax kernel instead of
recognising max/sub/exp/sum/div again; matmul-family ops stay whole for the cube lowering; `silu`
stays one TSILU (x / (1 + exp(-x)), ATen's own formula) instead of TSIGMOID and a TMUL pass.
The project's own decompositions (`OWN`): float `div(..., rounding_mode="trunc")` as ATen rounds
it, and `repeat` as an expand and one copy.
"""
from __future__ import annotations

import functools

import torch
from torch._decomp import core_aten_decompositions

aten = torch.ops.aten

# Ops kept whole even if core ATen would decompose them.
KEEP_WHOLE = (
    aten._softmax.default,
    aten._log_softmax.default,
    aten.native_layer_norm.default,
    aten.silu.default,
    aten.addmm.default,
    aten.mm.default,
    aten.bmm.default,
)


def _div_trunc_floats(a, b, rounding_mode=None):
    """`div(a, b, rounding_mode="trunc")` of floats: trunc of the quotient, as ATen's CPU kernel
    computes it: by a tensor, the quotient rounded to the result dtype first (a bf16 19.94 is 20
    before the trunc), by a Python number in fp32 (16.98 truncates to 16). Without this the fused
    kernel would keep every quotient in fp32. Anything else (floor division, integers) stays whole."""
    dtype = torch.result_type(a, b)
    if rounding_mode != "trunc" or not dtype.is_floating_point:
        return NotImplemented
    wide = torch.promote_types(dtype, torch.float32)
    q = torch.div(a.to(wide) if isinstance(a, torch.Tensor) else a, b.to(wide) if isinstance(b, torch.Tensor) else b)
    if isinstance(b, torch.Tensor):
        q = q.to(dtype)
    return torch.trunc(q).to(dtype)


def _repeat(x, repeats):
    """`x.repeat(r0, r1, ..)`: each dim of x (padded with leading 1s) as (1, s) expanded to (r, s),
    then one copy (a device kernel reading x through stride-0 dims) viewed as (r * s, ..).
    ATen's own decomposition builds it from as_strided unfolds, which the device does not take."""
    repeats = list(repeats)
    if len(repeats) < x.dim() or any(isinstance(r, int) and r == 0 for r in repeats):
        return NotImplemented                             # ATen's error / an empty result
    padded = [1] * (len(repeats) - x.dim()) + list(x.shape)
    lined = [n for s in padded for n in (1, s)]
    wide = [n for r, s in zip(repeats, padded) for n in (r, s)]
    return x.reshape(lined).expand(wide).clone().reshape([r * s for r, s in zip(repeats, padded)])


# Project decompositions (returning NotImplemented where they do not apply).
OWN = {aten.div.Tensor_mode: _div_trunc_floats, aten.repeat.default: _repeat}


@functools.lru_cache(maxsize=1)
def decomposition_table() -> dict:
    """op overload -> decomposition, as aot_autograd takes it."""
    table = dict(core_aten_decompositions())
    for op in KEEP_WHOLE:
        table.pop(op, None)
    table.update(OWN)
    return table
