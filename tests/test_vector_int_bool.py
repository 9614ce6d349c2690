"""Integer, bool, comparison, selection and creation ops on the device: each graph runs with no
host node and no region on the ATen fallback, and matches eager exactly (integers beyond 2**24
included, NaN compares as eager does)."""
import pytest
import torch

from tests.conftest import VERIFY


def _causal_where(x):
    i = torch.arange(x.shape[0])
    keep = (i.unsqueeze(1) - i.unsqueeze(0)) >= 0
    return torch.where(keep, x, torch.full_like(x, float("-inf")))


def _safe_softmax(x):
    # the SDPA decomposition's masked softmax: rows that are all -inf give 0, not NaN
    s = torch.softmax(x, -1)
    dead = torch.logical_not((x != float("-inf")).any(-1, keepdim=True))
    return torch.where(dead, torch.zeros_like(s), s)


def _ints(*shape, lo=-2**40, hi=2**40, dtype=torch.int64):
    return torch.randint(lo, hi, shape, dtype=dtype)


CASES = {
    "compare_tensors": (lambda x, y: x > y, lambda: [torch.randn(7, 33), torch.randn(7, 33)]),
    "compare_scalar": (lambda x: x <= 0.3, lambda: [torch.randn(7, 33)]),
    "compare_broadcast_row_col": (lambda x, y: x == y, lambda: [torch.randint(0, 3, (9, 1)).float(),
                                                                torch.randint(0, 3, (1, 40)).float()]),
    "where_broadcast": (lambda c, x, y: torch.where(c, x, y), lambda: [torch.randn(7, 33) > 0, torch.randn(7, 33),
                                                                       torch.randn(33)]),
    "where_0d_other": (lambda x: torch.where(x > 0, x, torch.zeros(())), lambda: [torch.randn(9, 40)]),
    "logical": (lambda a, b: torch.logical_and(a > 0, ~(b > 0)) | (a > 1), lambda: [torch.randn(5, 20),
                                                                                    torch.randn(5, 20)]),
    "logical_xor": (lambda a, b: torch.logical_xor(a > 0, b), lambda: [torch.randn(5, 20), torch.randn(5, 20)]),
    "any_last": (lambda x: (x > 1).any(-1), lambda: [torch.randn(6, 50)]),
    "all_first": (lambda x: (x > -2).all(0), lambda: [torch.randn(6, 50)]),
    "any_float_all_dims": (lambda x: x.any(), lambda: [torch.randn(6, 50).relu()]),
    "int64_arith_beyond_2p24": (lambda a, b: a * 3 + b - 7, lambda: [_ints(4, 30), _ints(30, lo=-100, hi=100)]),
    "int64_sum": (lambda a: a.sum(-1), lambda: [_ints(4, 300)]),
    "int64_scalars_beyond_2p53": (lambda a: ((a + (2**60 + 1)) == 2**60 + 2).int() + a - (2**59 + 3),
                                  lambda: [torch.tensor([[1, 5, 2**40]])]),
    "bool_sum_to_int64": (lambda a: (a > 0).sum(-1), lambda: [torch.randn(4, 300)]),
    "int32_max": (lambda a: (a + 1).amax(0), lambda: [_ints(4, 30, lo=-1000, hi=1000, dtype=torch.int32)]),
    "int_times_float": (lambda a, x: a * x, lambda: [_ints(4, 30, lo=-5, hi=5), torch.randn(4, 30)]),
    "float_to_int_truncates": (lambda x: (x * 10).to(torch.int64), lambda: [torch.randn(4, 30)]),
    "float_to_bool": (lambda x: x.relu().to(torch.bool), lambda: [torch.randn(4, 30)]),
    "int_neg_abs_clamp": (lambda a: (-a).abs().clamp(max=50), lambda: [_ints(4, 30, lo=-100, hi=100)]),
    "ne_int": (lambda a, b: a != b, lambda: [_ints(5, 20, lo=0, hi=3), _ints(5, 20, lo=0, hi=3)]),
    "nan_compares_as_eager": (lambda x: torch.where(x != x, torch.zeros(()), x) + (x < 1),
                              lambda: [torch.tensor([[1.0, float("nan"), 3.0, -float("inf")]])]),
    "clamp_tensor_bounds": (lambda x, lo, hi: torch.clamp(x, lo, hi), lambda: [torch.randn(5, 37),
                                                                               torch.randn(37) - 1,
                                                                               torch.randn(5, 1) + 1]),
    "arange_cols": (lambda x: x + torch.arange(x.shape[1]), lambda: [torch.randn(5, 37)]),
    "arange_rows": (lambda x: x * torch.arange(x.shape[0]).unsqueeze(1), lambda: [torch.randn(5, 37)]),
    "arange_float_step": (lambda x: x + torch.arange(0.5, 19.0, 0.5), lambda: [torch.randn(5, 37)]),
    "full": (lambda x: x + torch.full((5, 37), 2.5), lambda: [torch.randn(5, 37)]),
    "arange_outer_dim": (lambda x: x * torch.arange(x.shape[0]).view(-1, 1, 1), lambda: [torch.randn(3, 5, 37)]),
    "remainder_python_sign": (lambda a: (a % 7) * 100 + a % -7, lambda: [_ints(5, 40)]),
    "floor_div_by_constant": (lambda a: (a // 4) * 7 + a // -3, lambda: [_ints(5, 40)]),
    "trunc_div_by_constant": (lambda a: torch.div(a, -3, rounding_mode="trunc") * 9
                              + torch.div(a, 5, rounding_mode="trunc"), lambda: [_ints(5, 40)]),
    "ring_slot_int32": (lambda p: (p % 128) * 2 + p // 128, lambda: [_ints(3, 33, lo=-300, hi=300, dtype=torch.int32)]),
    "causal_mask_where": (_causal_where, lambda: [torch.randn(9, 9)]),
    "safe_softmax": (_safe_softmax, lambda: [torch.where(torch.rand(6, 40) > 0.3, torch.randn(6, 40),
                                                         torch.tensor(float("-inf")))]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_int_bool_ops_on_the_device(fresh, name):
    fn, make = CASES[name]
    torch.manual_seed(0)
    args = make()
    out = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args)
    torch.testing.assert_close(out, fn(*args), equal_nan=True, rtol=1e-6, atol=1e-6)
    s = fresh.stats()
    assert all(n == 0 for n in s["host_nodes"].values()) and s["host_nodes"], s
    assert all(n == 0 for n in s["fallback_regions"].values()), s
    assert s["launches"] >= 1, s


def test_causal_mask_dynamic_tokens_one_compile(fresh):
    compiled = torch.compile(_causal_where, backend="pto", fullgraph=True, options=VERIFY)
    for T in [3, 17, 64, 1, 130]:
        x = torch.randn(T, T)
        fresh.mark_dynamic(x, 0, name="T")
        fresh.mark_dynamic(x, 1, name="T")
        torch.testing.assert_close(compiled(x), _causal_where(x))
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and s["graphs_received"] == 1, s
    assert all(n == 0 for n in s["host_nodes"].values()), s
    assert all(n == 0 for n in s["fallback_regions"].values()), s


def test_fill_with_a_dynamic_size(fresh):
    fn = lambda x: x + torch.full_like(x, x.shape[0]) + torch.arange(x.shape[0]).unsqueeze(1)   # noqa: E731
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in [3, 40]:
        x = torch.randn(T, 20)
        fresh.mark_dynamic(x, 0, name="T")
        torch.testing.assert_close(compiled(x), fn(x))
    s = fresh.stats()
    assert s["signatures_compiled"] == 1, s
    assert all(n == 0 for n in s["host_nodes"].values()), s
    assert all(n == 0 for n in s["fallback_regions"].values()), s


def test_integer_ops_outside_the_exact_set_stay_on_the_host(fresh):
    # integer division by a tensor, float remainder and bitwise ops on integers are not claimed:
    # they run on the host, correctly
    fn = lambda a, b: (a // b) + (a & b) + (a.float() % 3)                                 # noqa: E731
    a, b = _ints(4, 30, lo=1, hi=1000), _ints(4, 30, lo=1, hi=50)
    torch.testing.assert_close(torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(a, b), fn(a, b))
    s = fresh.stats()
    assert sum(s["host_nodes"].values()) >= 3, s
