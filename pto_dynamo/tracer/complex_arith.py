"""Complex multiplication in real arithmetic, so that the device computes it.

Meta's Llama rotary embedding multiplies complex tensors (`view_as_complex(x) * freqs_cis`, then
`view_as_real`). Tiles hold no complex values, so

    a * b = view_as_complex(stack([a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re], -1))

with the parts as real views (`view_as_real(a)[..., 0]`): the products and sums run on the device,
and only the complex views stay on the host, where a view costs nothing. complex64 tensors only;
a product with a real tensor or a Python number keeps ATen's op.
"""
from __future__ import annotations

import torch

aten = torch.ops.aten


def _parts(z):
    r = torch.view_as_real(z)
    return r[..., 0], r[..., 1]


def _complex_mul(a, b):
    if not all(isinstance(t, torch.Tensor) and t.dtype == torch.complex64 for t in (a, b)):
        return NotImplemented
    (ar, ai), (br, bi) = _parts(a), _parts(b)
    return torch.view_as_complex(torch.stack([ar * br - ai * bi, ar * bi + ai * br], -1))


DECOMPOSITIONS = {aten.mul.Tensor: _complex_mul}
