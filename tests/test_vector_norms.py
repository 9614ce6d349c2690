"""LayerNorm and var_mean on the device: native_layer_norm through ATen's decomposition, var_mean
through the project's (mean, then squared deviations from it), so a LayerNorm is one kernel."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import VERIFY, assert_on_device, check_dynamic, compiled_graphs

TOL = {torch.float32: {}, torch.bfloat16: {"rtol": 1.6e-2, "atol": 2e-2}, torch.float16: {"rtol": 1e-3, "atol": 1e-3}}
# f32 LayerNorm of rows with mean 50 and std 3: the mean's rounding moves every output, so two f32
# implementations that sum in different orders differ by up to ~2e-5 (eager's own error against
# float64 reaches 1e-5 here, ours 1.3-1.9e-5). A one-pass variance (E[x^2] - E[x]^2) would be
# off by ~4e-4 on this data: the tolerance still catches cancellation.
LN_TOL = {**TOL, torch.float32: {"rtol": 1.3e-6, "atol": 4e-5}}


def _kernels() -> list[str]:
    return [k for c in compiled_graphs() for r in c.runners for k in r.kernel_names]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_is_one_kernel_with_a_dynamic_dim(fresh, dtype, affine):
    ln = torch.nn.LayerNorm(96, elementwise_affine=affine).to(dtype)
    if affine:
        with torch.no_grad():
            ln.weight.normal_()
            ln.bias.normal_()
    fn = lambda x: ln(x)                                               # noqa: E731
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in (1, 5, 33):
        g = torch.Generator().manual_seed(T)
        x = (torch.randn(T, 96, generator=g) * 3 + 50).to(dtype)      # a large mean: no cancellation
        fresh.mark_dynamic(x, 0)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), fn(x), **LN_TOL[dtype])
    s = fresh.stats()
    assert s["signatures_compiled"] == 1, s
    assert_on_device(s)
    assert len(_kernels()) == 1, _kernels()


VAR_MEANS = {
    "last_dim": (lambda x: torch.var_mean(x, -1), (6, 40)),
    "keepdim_unbiased": (lambda x: torch.var_mean(x, 1, keepdim=True), (6, 40)),
    "two_dims_correction_0": (lambda x: torch.var_mean(x, (0, 2), correction=0), (3, 5, 8)),
    "all_dims": (lambda x: torch.var_mean(x), (7, 9)),
    "correction_past_n": (lambda x: torch.var_mean(x, -1, correction=5), (4, 3)),    # N - c < 0: inf
    "single_element_rows": (lambda x: torch.var_mean(x, 1), (4, 1)),                  # 0 / 0: nan
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", list(VAR_MEANS))
def test_var_mean_matches_eager_on_the_device(fresh, name, dtype):
    fn, shape = VAR_MEANS[name]
    x = (torch.randn(shape) * 2 + 3).to(dtype)
    got = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(x)
    want = fn(x)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        torch.testing.assert_close(g, w, equal_nan=True, **TOL[dtype])
    s = fresh.stats()
    assert_on_device(s)


def test_var_mean_over_the_dynamic_dim_compiles_once(fresh):
    check_dynamic(fresh, lambda x: torch.var_mean(x, 0), lambda T: (torch.randn(T, 8),), Ts=(3, 9, 17))
