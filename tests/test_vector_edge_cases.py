"""Edge cases of the vector lowering that stay on the device: 0-d reductions and softmax, empty
tensors (a kernel that runs no tile), and tanh-approximate gelu."""
import pytest
import torch

from tests.conftest import VERIFY, assert_on_device, check_dynamic


def _run_on_device(fresh, fn, *args, **tol):
    out = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args)
    torch.testing.assert_close(out, fn(*args), equal_nan=True, **tol)
    s = fresh.stats()
    assert s["host_nodes"] and all(n == 0 for n in s["host_nodes"].values()), s
    assert all(n == 0 for n in s["fallback_regions"].values()), s
    return s


@pytest.mark.filterwarnings("ignore:var\\(\\). degrees of freedom")   # var of one element is NaN, as eager
@pytest.mark.parametrize("fn", [
    lambda x: torch.softmax(x, 0),
    lambda x: torch.log_softmax(x, -1),
    lambda x: x.sum(0),
    lambda x: x.mean(),
    lambda x: x.var(),
    lambda x: x.amax(0, keepdim=True) + x.amin(),
], ids=["softmax", "log_softmax", "sum", "mean", "var", "amax_amin"])
def test_zero_dim_reductions_run_on_the_device(fresh, fn):
    _run_on_device(fresh, fn, torch.tensor(1.5))


@pytest.mark.parametrize("fn,shapes", [
    (lambda x: x.exp() * 2, [(0, 5)]),
    (lambda x, y: x + y, [(5, 0), (0,)]),
    (lambda x: torch.softmax(x, 1), [(0, 7)]),
    (lambda x: x.sum(1), [(3, 0)]),
    (lambda x: x.sum(), [(0, 4)]),
], ids=["exp", "add_broadcast", "softmax_no_rows", "sum_over_empty_dim", "sum_all"])
def test_empty_tensors_run_on_the_device(fresh, fn, shapes):
    # an empty domain launches its kernel with no tile to do; a sum over an empty dim is zeros
    _run_on_device(fresh, fn, *[torch.randn(s) for s in shapes])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_both_forms_on_the_device(fresh, dtype, approximate):
    x = torch.linspace(-8, 8, 37 * 300).reshape(37, 300).to(dtype)
    _run_on_device(fresh, lambda x: torch.nn.functional.gelu(x, approximate=approximate), x)


@pytest.mark.parametrize("shape,dims", [((3, 2, 1, 2), (0, -1)), ((5, 7, 9), (0, 2)), ((4, 33, 6), (0,))])
def test_reductions_over_leading_dims(fresh, shape, dims):
    # the second step of a multi-dim reduction reads its operand with strided columns (DN load)
    fn = lambda x: x.sum(dims, keepdim=True) * x.amax(dims, keepdim=True) + x.mean(dims, keepdim=True)  # noqa: E731
    _run_on_device(fresh, fn, torch.randn(*shape))


def _rope_interleaved(x, c, s):
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], -1).flatten(-2)


@pytest.mark.parametrize("fn,shapes", [
    (lambda x: x[..., ::2] * 2 + x[..., 1::2], [(5, 3, 32)]),
    (lambda x: x[:, ::2].sum(-1), [(7, 40)]),
    (lambda x, y: x.t() + y[:, ::2], [(8, 5), (5, 16)]),
], ids=["even_odd_columns", "strided_row_sum", "transposed_and_strided"])
def test_views_with_no_contiguous_dim_run_a_row_per_tile(fresh, fn, shapes):
    _run_on_device(fresh, fn, *[torch.randn(s) for s in shapes])


def test_interleaved_rope_on_the_device(fresh):
    args = [torch.randn(6, 4, 16), torch.randn(6, 1, 8), torch.randn(6, 1, 8)]
    out = torch.compile(_rope_interleaved, backend="pto", fullgraph=True, options=VERIFY)(*args)
    torch.testing.assert_close(out, _rope_interleaved(*args))
    s = fresh.stats()
    assert all(n == 0 for n in s["fallback_regions"].values()), s
    assert sum(s["host_nodes"].values()) <= 1, s          # at most the free flatten of the output


def _split_parts(x):
    a, b = x.split([3, 5], dim=-1)
    c, d, e = x.split(3, dim=-1)                 # 3, 3, and a last part of 2
    u, v = x[..., 6:].unbind(-1)
    return a * 2 + d[..., :1], b.exp() + e.sum(-1, keepdim=True), u - v * c[:, 0]


def test_split_and_unbind_parts_are_views_on_the_device(fresh):
    # a split is a tuple (a host value); each part read as the slice / select it is runs on the device
    compiled = torch.compile(_split_parts, backend="pto", fullgraph=True, options=VERIFY)
    for T in [2, 5, 33]:
        x = torch.randn(T, 8)
        fresh.mark_dynamic(x, 0, name="T")
        for got, want in zip(compiled(x), _split_parts(x)):
            torch.testing.assert_close(got, want)
    s = fresh.stats()
    assert s["signatures_compiled"] == 1, s
    assert_on_device(s)


def _sinkhorn(x, iters=6):
    # DeepSeek-V4's hyper-connection mixing matrix: alternating row and column normalisation
    x = x.softmax(-1)
    for _ in range(iters):
        x = x / x.sum(-1, keepdim=True)
        x = x / x.sum(-2, keepdim=True)
    return x


def test_sinkhorn_row_and_column_sums_are_one_kernel(fresh):
    # a reduction over the rows of a domain that fits one tile is a per-column value (TCOLSUM) in the
    # same kernel: 6 iterations of row and column sums are one launch, for every token count
    compiled = torch.compile(_sinkhorn, backend="pto", fullgraph=True, options=VERIFY)
    for T in [3, 1, 50]:
        x = torch.rand(T, 4, 4)
        fresh.mark_dynamic(x, 0, name="T")
        torch.testing.assert_close(compiled(x), _sinkhorn(x))
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and s["launches"] == 3, s
    assert_on_device(s)


@pytest.mark.parametrize("fn,shape", [
    (lambda x: x - x.amax(-2, keepdim=True) + x.amin(-2, keepdim=True) * 2, (3, 5, 33)),
    (lambda x: (x * 2).sum(0) + x.sum(-1).sum(), (6, 20)),
    (lambda x: x.sum(-2), (2, 70, 40)),                  # rows x cols past one tile: a kernel of its own
    (lambda x: (x + 1).sum(0) * 2, (0, 5)),              # no rows: the sums are still written (zeros)
], ids=["col_max_min", "col_sum_2d", "too_many_rows", "no_rows"])
def test_reductions_over_rows(fresh, fn, shape):
    _run_on_device(fresh, fn, torch.randn(shape))


def _bf16_pair(seed: int):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(64, 33, generator=g) * 9).bfloat16(), (torch.randn(64, 33, generator=g) * 3).bfloat16()


@pytest.mark.parametrize("fn", [
    lambda a, b: torch.div(a, b, rounding_mode="trunc"),         # ATen rounds the quotient to bf16 first
    lambda a, b: torch.div(a, 0.37, rounding_mode="trunc"),      # ... but not a quotient by a number
    lambda a, b: (torch.div(a, b[0], rounding_mode="trunc"), torch.trunc(a)),
    lambda a, b: (torch.floor(a * 3), torch.ceil(a / b), torch.round(a * 0.3), torch.trunc(a * b), torch.sign(a - b)),
    lambda a, b: (a * 3 > b * 2, a * 0.1 == 1.0),
], ids=["div_trunc", "div_trunc_by_number", "div_trunc_row_and_trunc", "steps_of_products", "compare_products"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_steps_of_16_bit_values_see_them_rounded_as_eager(fresh, fn, dtype):
    # a fused kernel keeps bf16 values in f32; an op whose result jumps (floor, trunc, compare) must
    # see them rounded to bf16 as eager stores them, or it is off by a whole unit: exact equality
    for seed in range(3):
        a, b = (x.to(dtype) for x in _bf16_pair(seed))
        _run_on_device(fresh, fn, a, b, rtol=0, atol=0)


def _floor_division_operands():
    """Random pairs, pairs whose quotient is an integer and their float neighbours (where floor(a / b)
    is off by one), and every pair of special values."""
    g = torch.Generator().manual_seed(0)
    b = torch.randn(3000, generator=g) * 3
    a = torch.randn(3000, generator=g) * 9
    a[:1000] = torch.randint(-50, 50, (1000,), generator=g).float() * b[:1000]
    a[1000:2000] = torch.nextafter(a[:1000], torch.tensor(float("inf")))
    a[2000:] = torch.nextafter(a[:1000], torch.tensor(float("-inf")))
    b[1000:2000], b[2000:] = b[:1000], b[:1000]
    sp = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e30, -1e-30, 3.0, -3.0, 7.5])
    sa, sb = torch.meshgrid(sp, sp, indexing="ij")
    return torch.cat([a, sa.reshape(-1)]), torch.cat([b, sb.reshape(-1)])


@pytest.mark.parametrize("fn", [lambda a, b: torch.div(a, b, rounding_mode="floor"),
                                lambda a, b: torch.div(a, 0.37, rounding_mode="floor") + a // b[0]],
                         ids=["by_tensor", "by_number_and_row"])
def test_float32_floor_division_is_exact_on_the_device(fresh, fn):
    # ATen's float floor division is the floor of the exact quotient (through fmod): bit-equal,
    # signed zeros, infinities and nans included
    a, b = _floor_division_operands()
    got, want = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(a, b), fn(a, b)
    assert torch.equal(got.isnan(), want.isnan())
    ok = ~want.isnan()
    assert torch.equal(got[ok], want[ok]) and torch.equal(got[ok].signbit(), want[ok].signbit())
    s = fresh.stats()
    assert_on_device(s)


def test_bf16_floor_division_stays_on_the_host(fresh):
    fn = lambda a, b: torch.div(a, b, rounding_mode="floor")                              # noqa: E731
    a, b = (x.bfloat16() for x in _floor_division_operands())
    torch.testing.assert_close(torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(a, b), fn(a, b),
                               rtol=0, atol=0, equal_nan=True)
    assert sum(fresh.stats()["host_nodes"].values()) >= 1


def test_a_per_column_value_stored_with_strided_columns(fresh):
    # x.t() viewed as [6, 1, 9] has its columns 6 elements apart; a value computed along that row
    # alone (x != x) was stored as if they were adjacent, and the next kernel read garbage
    def fn(x):
        xs = x.t()
        a, b = xs.unsqueeze(-1), xs.unsqueeze(-2)
        a_nan, b_nan = a != a, b != b               # in this order: b_nan gets a kernel of its own
        return ((b > a) | (b_nan & ~a_nan)).int()
    x = torch.randint(-3, 4, (9, 6)).float()
    x[2, 3] = float("nan")
    got, want = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(x), fn(x)
    assert torch.equal(got, want)
    s = fresh.stats()
    assert_on_device(s)


def test_a_value_beside_an_empty_domain_is_still_computed(fresh):
    """A kernel over a statically empty domain runs no iteration, so a value with elements must not
    be fused into it: the arange [10] and its sum and any() sit beside `x + 1` over [5, 0, 10]
    (a creation op joins the latest kernel; once they were computed in x's kernel and never
    written: a flip's bounds check read whatever its workspace held)."""
    def fn(x):
        y = x + 1
        i = torch.arange(9, -1, -1, dtype=torch.float32)
        return y, i, i.sum(), (i > 5).any(), (i < 0).any()

    x = torch.randn(5, 0, 10)
    got = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(x)
    for g, w in zip(got, fn(x)):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    s = fresh.stats()
    assert_on_device(s)


def test_a_reduction_across_an_expanded_dim(fresh):
    """`x.expand(2, ...).sum(0)` reads the input with column stride 0 across the reduced dim: a
    transposed (DN) load whose tile once had more rows than the kernel's full tiles, so the
    verifier rejected the program and the region ran on the ATen fallback."""
    fn = lambda x: x.expand(3, -1, -1, -1).sum(0) + x.expand(2, -1, -1, -1).amax(0)    # noqa: E731
    check_dynamic(fresh, fn, lambda T: (torch.randn(T, 4, 6),), Ts=(1, 5, 19))
