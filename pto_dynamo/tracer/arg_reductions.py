"""argmax/argmin and max/min (along a dim or over all) as device ops: an amax (amin), a compare
and an amin.

    index = amin over dim of where(x == extreme | x != x, iota, n)

is the index of the first extreme element, and of the first nan where a line holds one (ATen's
rule: nan is larger and smaller than anything); the extreme itself is the amax (amin), which
propagates nan as ATen's max.dim does. Float and integer inputs (integer tiles compare exactly);
bool inputs keep ATen's op. Greedy decoding's `logits.argmax(-1)` and MoE routers'
`scores.max(-1)` then stay on the device instead of splitting the graph.
"""
from __future__ import annotations

import torch

aten = torch.ops.aten
TAKEN = (torch.float32, torch.bfloat16, torch.float16, torch.int32, torch.int64)


def _first_extreme(x, dim: int, keepdim: bool, largest: bool):
    """(extreme values, int64 indices) along `dim` of `x` (at least one dim)."""
    n = x.shape[dim]
    extreme = x.amax(dim, keepdim=True) if largest else x.amin(dim, keepdim=True)
    hit = (x == extreme) | (x != x)
    shape = [1] * x.dim()
    shape[dim] = n
    iota = torch.arange(n, device=x.device).view(shape)
    index = torch.where(hit, iota, n).amin(dim, keepdim=keepdim)
    return (extreme if keepdim else extreme.squeeze(dim)), index


def _applies(x, dim) -> bool:
    if x.dtype not in TAKEN:
        return False
    n = x.numel() if dim is None or x.dim() == 0 else x.shape[dim]
    return not (isinstance(n, int) and n == 0)            # ATen's error for an empty line


def _scalar_index(x):
    """The index of a 0-d x's only element."""
    return torch.zeros((), dtype=torch.int64, device=x.device)


def _arg(largest: bool):
    def decomposition(x, dim=None, keepdim=False):
        if not _applies(x, dim):
            return NotImplemented
        if x.dim() == 0:
            return _scalar_index(x)
        if dim is None:                                   # over all elements, shaped as ATen shapes it
            index = _first_extreme(x.reshape(-1), 0, False, largest)[1]
            return index.reshape([1] * x.dim()) if keepdim else index
        return _first_extreme(x, dim % x.dim(), keepdim, largest)[1]
    decomposition.__name__ = "argmax" if largest else "argmin"
    return decomposition


def _extreme_dim(largest: bool):
    def decomposition(x, dim, keepdim=False):
        if not _applies(x, dim):
            return NotImplemented
        if x.dim() == 0:
            return x.clone(), _scalar_index(x)
        return _first_extreme(x, dim % x.dim(), keepdim, largest)
    decomposition.__name__ = "max_dim" if largest else "min_dim"
    return decomposition


def _extreme_all(largest: bool):
    def decomposition(x):
        if not _applies(x, None):
            return NotImplemented
        return x.amax() if largest else x.amin()          # nan propagates, as in max()
    decomposition.__name__ = "max" if largest else "min"
    return decomposition


DECOMPOSITIONS = {aten.argmax.default: _arg(True), aten.argmin.default: _arg(False),
                  aten.max.dim: _extreme_dim(True), aten.min.dim: _extreme_dim(False),
                  aten.max.default: _extreme_all(True), aten.min.default: _extreme_all(False)}
