"""Ops that reach the device through decompositions (tracer/decompositions.py, arg_reductions.py,
layout_decompositions.py): activations, vector norms, nan tests, number ** tensor, argmax/argmin
and max/min along a dim, flip, constant padding, BatchNorm (eval) and GroupNorm. Each matches
eager, with a dynamic token dim and one compile, and leaves no node on the host."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import VERIFY, check_dynamic

TOL = {torch.float32: {}, torch.bfloat16: {"rtol": 1.6e-2, "atol": 2e-2}}


def test_every_claimed_vector_op_has_a_lowering():
    """A claim without a tile rule sends its region to the ATen fallback at compile time
    (leaky_relu and hardtanh once did: KeyError 'pointwise')."""
    from pto_dynamo.lowering.vector.expand import _EXPANDERS
    from pto_dynamo.lowering.vector.opinfo import VECTOR_OPS
    from pto_dynamo.lowering.vector.tile_rules import TILE_RULES
    unlowered = [str(op) for op, info in VECTOR_OPS.items()
                 if op not in TILE_RULES and info.kind not in TILE_RULES and op not in _EXPANDERS
                 and info.kind != "cat"]                  # cat: fusion.py's own kernel
    assert unlowered == []


def _with_edges(T, C=40, dtype=torch.float32):
    x = torch.randn(T, C) * 4
    edges = torch.tensor([0.0, -0.0, -0.5, 0.7, 6.0, -1.0, 1e-3, -1e-3])
    x[:, :8] = edges                                      # thresholds of the activations below
    return x.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_piecewise_activations(fresh, dtype):
    def fn(x):
        return (F.leaky_relu(x, 0.1), F.leaky_relu(x, 2.5), F.hardtanh(x, -0.5, 0.7), F.relu6(x),
                F.elu(x), F.selu(x), F.celu(x, 0.7))
    check_dynamic(fresh, fn, lambda T: (_with_edges(T, dtype=dtype),), tol=TOL[dtype])


NORMS = {
    "l2_keepdim_and_normalize": lambda x: (x.norm(dim=-1, keepdim=True), F.normalize(x, dim=-1)),
    "l1_inf_neg_inf": lambda x: tuple(torch.linalg.vector_norm(x, o, dim=-1) for o in (1, float("inf"), -float("inf"))),
    "p3_over_both_dims": lambda x: torch.linalg.vector_norm(x, 3, dim=(0, 1)),
    "l0_and_all_dims": lambda x: (torch.linalg.vector_norm(x.round(), 0, dim=-1), torch.linalg.vector_norm(x)),
}


@pytest.mark.parametrize("name", list(NORMS))
def test_vector_norms(fresh, name):
    check_dynamic(fresh, NORMS[name], lambda T: (torch.randn(T, 24),))


def test_nan_and_inf_tests(fresh):
    def fn(x):
        return torch.isnan(x), torch.isinf(x), torch.nan_to_num(x), torch.nan_to_num(x, 1.0, 2.0, -3.0)

    def make(T):
        x = torch.randn(T, 16)
        x[:, :4] = torch.tensor([float("nan"), float("inf"), -float("inf"), 3.4e38])
        return (x,)
    check_dynamic(fresh, fn, make, exact=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_number_to_the_power_of_a_tensor(fresh, dtype):
    """pow.Scalar (RoPE's inverse frequencies 10000 ** (-i / d)), negative bases at integer
    exponents, 0 ** negative = inf."""
    def fn(x):
        return 10000 ** (x.abs() / -16), 2.0 ** x, (-2.0) ** x.round(), 0.0 ** x.round()
    check_dynamic(fresh, fn, lambda T: (torch.randn(T, 16).to(dtype) * 3,), tol=TOL[dtype])


def _nans_ties(T, C=24, dtype=torch.float32):
    x = torch.randn(T, C).round()                         # ties
    x[::3, 5] = float("nan")                              # a nan decides its line
    x[1::4] = -float("inf")                               # all -inf lines: index 0
    return x.to(dtype)


ARG_EXTREMES = {
    "argmax_last": lambda x: x.argmax(-1),
    "argmin_keepdim": lambda x: x.argmin(1, keepdim=True),
    "argmax_all_keepdim": lambda x: (x.argmax(), x.argmin(keepdim=True)),
    "argmax_over_dynamic_dim": lambda x: x.argmax(0),
    "max_min_dim": lambda x: (*x.max(-1), *x.min(1, keepdim=True)),
    "max_dim0": lambda x: x.max(0),
    "max_min_all": lambda x: (x.max(), x.min(), *x[0, 0].max(0), x[0, 1].argmin()),
}


@pytest.mark.parametrize("name", list(ARG_EXTREMES))
def test_arg_extremes_first_index_and_nan(fresh, name):
    check_dynamic(fresh, ARG_EXTREMES[name], lambda T: (_nans_ties(T),), exact=True)


def test_arg_extremes_bf16(fresh):
    check_dynamic(fresh, lambda x: (x.argmax(-1), *x.min(-1)), lambda T: (_nans_ties(T, dtype=torch.bfloat16),),
                 exact=True)


def test_integer_arg_extremes_are_exact(fresh):
    """Integer tiles compare exactly: values far beyond 2^24, ties, both int dtypes."""
    def make(T):
        x = torch.randint(-4, 4, (T, 9)) * 2**40 + torch.randint(0, 2, (T, 9))
        return (x, x.to(torch.int32) // 2**20)
    check_dynamic(fresh, lambda a, b: (a.argmax(-1), *a.min(-1), b.argmin(1), *b.max(-1, keepdim=True)), make,
                 exact=True)


@pytest.mark.parametrize("dims", [(-1,), (0, 1)])
def test_flip(fresh, dims):
    check_dynamic(fresh, lambda x: torch.flip(x, dims), lambda T: (torch.randn(T, 13),), exact=True)


PADS = {
    "last_dim_value": lambda x: F.pad(x, (1, 2), value=2.5),
    "negative_and_positive": lambda x: F.pad(x, (-2, 3, 1, 0)),
    "along_the_dynamic_dim": lambda x: F.pad(x, (0, 0, 2, 1), value=-1.0),
}


@pytest.mark.parametrize("name", list(PADS))
def test_constant_pad(fresh, name):
    check_dynamic(fresh, PADS[name], lambda T: (torch.randn(T, 11),), Ts=(2, 5, 33), exact=True)


def test_negative_pad_of_the_dynamic_dim_keeps_atens_op(fresh):
    """Narrowing a dynamic dim by a pad would guard on its size: ATen's constant_pad_nd runs on the
    host (one compile, matches eager)."""
    fn = lambda x: F.pad(x, (1, 1, 0, -1))                                             # noqa: E731
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in (2, 5, 33):
        x = torch.randn(T, 4)
        fresh.mark_dynamic(x, 0)
        torch.testing.assert_close(compiled(x), fn(x), rtol=0, atol=0)
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and sum(s["host_nodes"].values()) == 1, s


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_eval(fresh, affine):
    bn = torch.nn.BatchNorm2d(6, affine=affine).eval()
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        if affine:
            bn.weight.normal_()
            bn.bias.normal_()
    check_dynamic(fresh, lambda x: bn(x), lambda T: (torch.randn(T, 6, 3, 5),))


def test_group_norm(fresh):
    gn = torch.nn.GroupNorm(4, 16)
    with torch.no_grad():
        gn.weight.normal_()
        gn.bias.normal_()
    check_dynamic(fresh, lambda x: gn(x), lambda T: (torch.randn(T, 16, 5) + 2,), Ts=(2, 5, 33))


def test_optimizer_fma_runs_on_the_device(fresh):
    """Dynamo turns `addcmul_`/`addcdiv_` with a value into `prims.fma` (torch._inductor's prim);
    it decomposes to a multiply and an add, so an AdamW step leaves only the write-backs of the
    updated inputs on the host."""
    def adamw(p, g, m, v):
        p.mul_(1 - 1e-3 * 0.01)
        m.mul_(0.9).add_(g, alpha=0.1)
        v.mul_(0.999).addcmul_(g, g, value=0.001)
        denom = (v.sqrt() / math.sqrt(1 - 0.999 ** 3)).add_(1e-8)
        p.addcdiv_(m, denom, value=-1e-3 / (1 - 0.9 ** 3))
        return p

    compiled = torch.compile(adamw, backend="pto", fullgraph=True, options=VERIFY)
    for T in (3, 17):
        args = [torch.randn(T, 8) for _ in range(3)] + [torch.rand(T, 8)]      # v >= 0
        ref = [a.clone() for a in args]
        for a in args:
            fresh.mark_dynamic(a, 0, shape_id="T")
        torch.testing.assert_close(compiled(*args), adamw(*ref))
        for got, want in zip(args, ref):
            torch.testing.assert_close(got, want)
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["fallback_regions"].values()), s
    torch._dynamo.reset()
    ex = fresh.explain(adamw, *[torch.randn(5, 8) for _ in range(4)], print_report=False)
    reasons = [reason for _, _, reason in ex.host_nodes]
    assert len(reasons) == 3 and all("mutates a graph input" in r for r in reasons), reasons
