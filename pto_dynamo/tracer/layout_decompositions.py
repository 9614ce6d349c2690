"""flip and constant padding as device ops: a gather of reversed indices, a cat of filled parts.

Core ATen keeps `flip` and `constant_pad_nd` whole, and ATen's decompositions go down to
`prims.rev` and an in-place `copy_to`, which neither the device nor aot_autograd's functional
graph takes. Here
    flip(x, dims)           = x.index_select(d, arange(n - 1, -1, -1)) for each d in dims
    constant_pad_nd(x, pad) = cat([full(lo), x, full(hi)], d) per padded dim (a negative pad
                              narrows x first), from the last dim backwards as `pad` lists them
so `F.pad` and `torch.flip` run as kernels the device already has (gather, cat, full). A negative
pad of a dynamic dim keeps ATen's op (narrowing would guard on the dim's size), and so do symbolic
pads. The flip's indices need no bounds check (lowering/index_checks.py proves them in range).
"""
from __future__ import annotations

import torch

aten = torch.ops.aten


def _flip(x, dims):
    out = x
    for d in {d % x.dim() for d in dims} if x.dim() else ():
        n = x.shape[d]
        out = out.index_select(d, torch.arange(n - 1, -1, -1, device=x.device))
    return out.clone() if out is x else out


def _constant_pad_nd(x, pad, value=0):
    if len(pad) % 2 or len(pad) // 2 > x.dim() or not all(isinstance(p, int) for p in pad):
        return NotImplemented                             # ATen's error, or symbolic pads
    for i in range(len(pad) // 2):
        n = x.shape[x.dim() - 1 - i]
        if not isinstance(n, int) and min(pad[2 * i], pad[2 * i + 1]) < 0 or \
                isinstance(n, int) and n + pad[2 * i] + pad[2 * i + 1] < 0:
            return NotImplemented                         # ATen's op: its guards and its error
    out = x
    for i in range(len(pad) // 2):
        d = x.dim() - 1 - i
        lo, hi = pad[2 * i], pad[2 * i + 1]
        if lo < 0:
            out = out.narrow(d, -lo, out.shape[d] + lo)
        if hi < 0:
            out = out.narrow(d, 0, out.shape[d] + hi)
        parts = []
        for width in (lo, None, hi):
            if width is None:
                parts.append(out)
            elif width > 0:
                shape = list(out.shape)
                shape[d] = width
                parts.append(out.new_full(shape, value))
        if len(parts) > 1:
            out = torch.cat(parts, d)
    return out.clone() if out is x else out


DECOMPOSITIONS = {aten.flip.default: _flip, aten.constant_pad_nd.default: _constant_pad_nd}
