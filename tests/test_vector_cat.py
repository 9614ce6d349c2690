"""cat on the device: every part is copied straight into its slice of the result's buffer, so a
computed part fuses into the kernel that computes it (no extra pass over memory)."""
import pytest
import torch

from tests.conftest import VERIFY, assert_on_device, check_dynamic, compiled_graphs

CASES = {
    "rows": (lambda x, y: torch.cat([x, y], 0), [(3, 5), (4, 5)]),
    "cols": (lambda x, y: torch.cat([x, y], 1), [(3, 5), (3, 7)]),
    "computed_parts_then_reduce": (lambda x, y: torch.cat([x.exp(), y * 2, x], -1).sum(-1), [(6, 33), (6, 10)]),
    "middle_dim_3d": (lambda x, y: torch.cat([x, y], 1) * 2, [(2, 3, 5), (2, 4, 5)]),
    "rotate_half": (lambda x: torch.cat([-x[..., 8:], x[..., :8]], -1) * 0.5 + x, [(7, 16)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_cat_on_the_device(fresh, name):
    fn, shapes = CASES[name]
    args = [torch.randn(s) for s in shapes]
    torch.testing.assert_close(torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args), fn(*args))
    s = fresh.stats()
    assert all(n == 0 for n in s["host_nodes"].values()) and s["host_nodes"], s
    assert all(n == 0 for n in s["fallback_regions"].values()), s


def test_cat_promotes_dtypes_and_takes_integers(fresh):
    a, b = torch.randn(3, 5), torch.randn(2, 5, dtype=torch.bfloat16)
    i, j = torch.randint(-2**40, 2**40, (3, 5)), torch.randint(0, 9, (3, 2))
    fn = lambda a, b, i, j: (torch.cat([a, b]), torch.cat([i, j], 1))                  # noqa: E731
    got = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(a, b, i, j)
    want = fn(a, b, i, j)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert all(n == 0 for n in fresh.stats()["host_nodes"].values())


@pytest.mark.parametrize("case", ["middle", "first_promotes", "only_one_left"])
def test_cat_skips_legacy_empty_parts_on_the_device(fresh, case):
    """ATen skips 1-d empty parts beside parts of another rank (they still take part in dtype
    promotion); the device's cat gets the other parts."""
    a, b = torch.randn(3, 4), torch.randn(3, 2)
    e32 = torch.empty(0)
    fn, args = {
        "middle": (lambda a, e, b: torch.cat([a, e, b], 1) * 2, (a, e32, b)),
        "first_promotes": (lambda e, a: torch.cat([e, a]) + 1, (e32, a.bfloat16())),    # -> float32
        "only_one_left": (lambda a, e: torch.cat([e, a, e], -1), (a, e32)),
    }[case]
    got, want = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args), fn(*args)
    assert got.dtype == want.dtype
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    s = fresh.stats()
    assert_on_device(s)


def test_stack_of_equal_parts_is_one_kernel_with_a_dynamic_dim(fresh):
    fn = lambda x, y: torch.stack([x, y, x + y]).relu()                                  # noqa: E731
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in [5, 17, 1]:
        x, y = torch.randn(T, 40), torch.randn(T, 40)
        fresh.mark_dynamic(x, 0, name="T")
        fresh.mark_dynamic(y, 0, name="T")
        torch.testing.assert_close(compiled(x, y), fn(x, y))
    s = fresh.stats()
    assert s["signatures_compiled"] == 1, s
    (c,) = compiled_graphs()
    assert c.partition.host_op_count <= 1, c.partition.host_reasons    # at most the free output view
    assert all(n == 0 for n in s["fallback_regions"].values()), s


REPEATS = {   # repeat: an expand of x's dims as (1, s) -> (r, s), one copy, a view (decompositions.py)
    "hyper_connections": (lambda x: x.unsqueeze(1).repeat(1, 4, 1) * 2, (5, 8), torch.float32),   # DeepSeek-V4
    "both_dims": (lambda x: x.repeat(2, 3), (5, 8), torch.float32),
    "new_leading_dim": (lambda x: x.repeat(2, 1, 3) + 1, (5, 8), torch.float32),
    "transposed_bf16": (lambda x: x.t().repeat(2, 2), (5, 8), torch.bfloat16),
}


@pytest.mark.parametrize("name", list(REPEATS))
def test_repeat_on_the_device(fresh, name):
    fn, shape, dtype = REPEATS[name]
    x = torch.randn(shape).to(dtype)
    torch.testing.assert_close(torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(x), fn(x), rtol=0, atol=0)
    s = fresh.stats()
    assert s["launches"] > 0 and all(n == 0 for n in s["host_nodes"].values()), s
    assert all(n == 0 for n in s["fallback_regions"].values()), s


def test_repeat_dynamic_tokens_one_compile(fresh):
    fn = lambda x: x.unsqueeze(1).repeat(1, 4, 1).sum(-1)                                  # noqa: E731
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in (3, 1, 17):
        x = torch.randn(T, 8)
        fresh.mark_dynamic(x, 0, name="T")
        torch.testing.assert_close(compiled(x), fn(x))
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and s["launches"] > 0, s
    assert_on_device(s)


def test_repeat_by_zero_stays_on_the_host(fresh):
    fn = lambda x: x.repeat(2, 0)                                                          # noqa: E731
    x = torch.randn(5, 8)
    torch.testing.assert_close(torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(x), fn(x))


def _setitem(x, v):
    y = x * 2
    y[:, 2:5] = v                      # functionalized: slice_scatter into a full-range slice of y
    return y


SLICE_SCATTERS = {   # name -> (fn, width of v)
    "middle": (lambda x, v: torch.slice_scatter(x * 2, v, 1, 2, 5) + 1, 3),
    "head": (lambda x, v: torch.slice_scatter(x * 2, v, 1, 0, 3), 3),
    "tail_to_the_end": (lambda x, v: torch.slice_scatter(x * 2, v, 1, 5), 3),
    "negative_start": (lambda x, v: torch.slice_scatter(x - 1, v, -1, -3, None), 3),
    "whole": (lambda x, v: torch.slice_scatter(x * 2, v * 3, 1), 8),
    "setitem_on_an_intermediate": (_setitem, 3),
}


@pytest.mark.parametrize("name", list(SLICE_SCATTERS))
def test_slice_scatter_is_a_cat_on_the_device(fresh, name):
    """slice_scatter (a backward's slice gradient into zeros, `y[:, a:b] = v` on an intermediate)
    as a cat of x's views around src; the whole-range scatter along a dynamic dim is src itself."""
    fn, width = SLICE_SCATTERS[name]
    check_dynamic(fresh, fn, lambda T: (torch.randn(T, 8), torch.randn(T, width)), Ts=(4, 9, 1), exact=True,
                  name="T")
