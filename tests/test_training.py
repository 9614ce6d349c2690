"""Training through backend="pto": forward and backward graphs compared with eager autograd, the
parameters' gradients included, with the batch dim dynamic; every region lowered (none on the
ATen fallback)."""
import copy

import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._sympy.functions import FloatTrueDiv

from tests.conftest import VERIFY


def _no_fallback(s: dict) -> None:
    assert all(n == 0 for n in s["fallback_regions"].values()), s


def _grads_match(fresh, model: nn.Module, make, loss=lambda out: out, Ts=(5, 17), tol=None) -> dict:
    """Compile `model`, run forward + backward at every T (dim 0 marked dynamic), and compare the
    loss and every parameter's and input's gradient with eager autograd on a copy."""
    ref = copy.deepcopy(model)
    compiled = torch.compile(model, backend="pto", fullgraph=True, options=VERIFY)
    for T in Ts:
        args = make(T)
        mine = [a.clone().requires_grad_(a.is_floating_point()) for a in args]
        theirs = [a.clone().requires_grad_(a.is_floating_point()) for a in args]
        for a in mine:
            fresh.mark_dynamic(a, 0, shape_id="T")
        model.zero_grad()
        ref.zero_grad()
        got, want = loss(compiled(*mine)), loss(ref(*theirs))
        torch.testing.assert_close(got, want, **(tol or {}))
        got.backward()
        want.backward()
        for a, b in zip(mine + list(model.parameters()), theirs + list(ref.parameters())):
            if b.grad is not None:
                torch.testing.assert_close(a.grad, b.grad, **(tol or {}))
    s = fresh.stats()
    assert s["graphs_received"] == 1 and s["signatures_compiled"] == 2, s      # forward + backward
    _no_fallback(s)
    return s


class _Fn(nn.Module):
    def __init__(self, fn, *params):
        super().__init__()
        self.fn = fn
        self.params = nn.ParameterList(params)

    def forward(self, *args):
        return self.fn(*args, *self.params)


def test_causal_sdpa_gradients(fresh):
    """ATen's decomposition of the CPU flash attention returns the attention weights where the
    op returns the logsumexp; under autograd the op's native backward read them as the logsumexp
    and the gradients were off by 10x. Training graphs keep the op whole."""
    fn = _Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True).pow(2).sum())
    _grads_match(fresh, fn, lambda T: [torch.randn(T, 2, 6, 8) for _ in range(3)])


def test_a_scalar_loss_backward_runs_on_the_device(fresh):
    """The backward of a scalar loss starts from `expand(tangent, [T, D])`, a buffer read with
    strides 0: it once sent the whole backward region to the ATen fallback."""
    fn = _Fn(lambda x, w: (x * w).pow(2).sum() + (x.tanh() * w).mean(), nn.Parameter(torch.randn(32)))
    s = _grads_match(fresh, fn, lambda T: [torch.randn(T, 32)])
    assert all(n == 0 for n in s["host_nodes"].values()), s


class _ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_conv_batchnorm_gradients_with_a_dynamic_batch(fresh):
    """BatchNorm's backward scales by 1 / (N * H * W), a float of the dynamic batch: the code
    printer rejected it, and the ATen fallback truncated it to the int 0 (zero gradients through
    the norm, the conv weight's off by ~10)."""
    torch.manual_seed(0)
    _grads_match(fresh, _ConvBN(), lambda T: [torch.randn(T, 3, 6, 6)], loss=lambda out: out.pow(2).sum(),
                 tol={"rtol": 1e-4, "atol": 1e-4})


def test_the_fallback_runner_keeps_float_scalars():
    from pto_dynamo.ascend_backend.reference_region import _subst
    from pto_dynamo.graph.dims import dim_symbol
    u0 = dim_symbol("u0")
    assert _subst((FloatTrueDiv(sympy.Float(1.0), 36 * u0), 2 * u0, [u0 + 1]), {u0: 17}) == (1 / 612, 34, [18])
