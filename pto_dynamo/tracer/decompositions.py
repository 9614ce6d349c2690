"""The project's decomposition table: core ATen, minus the ops the device wants whole.

Keeping `_softmax`/`_log_softmax` whole lets the lowering emit one online-softmax kernel instead of
recognising max/sub/exp/sum/div again; matmul-family ops stay whole for the cube lowering; `silu`
stays one TSILU (x / (1 + exp(-x)), ATen's own formula) instead of TSIGMOID and a TMUL pass.
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


@functools.lru_cache(maxsize=1)
def decomposition_table() -> dict:
    """op overload -> decomposition, as aot_autograd takes it."""
    table = dict(core_aten_decompositions())
    for op in KEEP_WHOLE:
        table.pop(op, None)
    return table
