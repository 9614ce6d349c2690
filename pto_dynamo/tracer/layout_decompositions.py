"""flip, constant padding and indexing by one tensor as device ops: gathers and a cat of filled parts.

Core ATen keeps `flip` and `constant_pad_nd` whole, and ATen's decompositions go down to
`prims.rev` and an in-place `copy_to`, which neither the device nor aot_autograd's functional
graph takes. Here
    flip(x, dims)           = x.index_select(d, arange(n - 1, -1, -1)) for each d in dims
    constant_pad_nd(x, pad) = cat([full(lo), x, full(hi)], d) per padded dim (a negative pad
                              narrows x first), from the last dim backwards as `pad` lists them
    index(x, [None] * k + [i]) = x.index_select(k, i wrapped).view(x.shape[:k] + i.shape + x.shape[k + 1:])
                              (`x[:, i]`, `x[:, [0, 2]]`: integer indices into one dim k >= 1; a
                              negative index counts from the end; `x[i]` itself is lowering/gathers.py's)
so `F.pad`, `torch.flip` and such indexing run as kernels the device already has (gather, cat,
full). A negative pad of a dynamic dim keeps ATen's op (narrowing would guard on the dim's size),
and so do symbolic pads; so do boolean masks and several index tensors. The flip's indices need no
bounds check (lowering/index_checks.py proves them in range); indexing keeps index_select's.
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


def _index(x, indices):
    k = next((i for i, ix in enumerate(indices) if ix is not None), len(indices))
    if k == 0 or k >= len(indices) or any(ix is not None for ix in indices[k + 1:]) or \
            indices[k].dtype not in (torch.int64, torch.int32):
        return NotImplemented              # dim 0: lowering/gathers.py; masks, several index tensors: ATen's op
    i, n = indices[k], x.shape[k]
    flat = i.reshape(-1)
    flat = torch.where(flat < 0, flat + n, flat)
    return x.index_select(k, flat).view(*x.shape[:k], *i.shape, *x.shape[k + 1:])


DECOMPOSITIONS = {aten.flip.default: _flip, aten.constant_pad_nd.default: _constant_pad_nd,
                  aten.index.Tensor: _index}
