"""Dynamic dims flow through locals, derived expressions and submodules without specialising."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pto_dynamo.graph.dims import dim_symbol
from pto_dynamo.graph.ir import TensorMeta
from tests.conftest import VERIFY, check_dynamic, compiled_graphs

SIZES = [1, 2, 5, 33, 130]


def _run_dynamic(fresh, fn, make_inputs, sizes=SIZES, **tol):
    cf = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for n in sizes:
        args = make_inputs(n)
        fresh.mark_dynamic(args[0], 0, name="T")
        torch.testing.assert_close(cf(*args), fn(*args), **tol)
    s = fresh.stats()
    assert s["graphs_received"] == 1 and s["signatures_compiled"] == 1, s
    (compiled,) = compiled_graphs()
    return compiled


def _mentions_T(compiled) -> bool:
    T = dim_symbol("T")
    metas = [n.meta for n in compiled.graph.nodes if isinstance(n.meta, TensorMeta)]
    return any(not isinstance(d, int) and T in d.free_symbols for m in metas for d in m.shape)


def test_new_tensors_from_local_dims(fresh):
    def f(x):
        n = x.shape[0]
        a = torch.empty(n, 4).fill_(2.0)
        b = x.new_zeros(n, 4) + torch.arange(n).unsqueeze(1)
        return x.view(n, -1)[:, :4] * a + b
    c = _run_dynamic(fresh, f, lambda n: (torch.randn(n, 8),))
    assert _mentions_T(c)
    assert "T = " in c.host_program.source


def test_slices_and_derived_dims(fresh):
    def f(x):
        n = x.shape[0]
        blocks = (n + 127) // 128
        return x[: n - 1].sum(0) * blocks, x[:n].mean(), torch.zeros(blocks, 2) + n - 1
    # a column sum of up to 299 f32 rows: summation order differs from eager's by ~1e-5
    _run_dynamic(fresh, f, lambda n: (torch.randn(n, 3),), sizes=[2, 5, 129, 300], rtol=1e-5, atol=1e-4)


def test_local_passed_into_submodule(fresh):
    class Inner(nn.Module):
        def forward(self, x, n):
            return x.reshape(n, 2, -1).sum(1) + torch.ones(n, 1)

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x):
            return self.inner(x, x.shape[0])
    _run_dynamic(fresh, Outer(), lambda n: (torch.randn(n, 6),))


def test_static_dims_stay_ints(fresh):
    def f(x, w):
        return (x @ w).relu()
    w = torch.randn(16, 8)
    c = _run_dynamic(fresh, f, lambda n: (torch.randn(n, 16), w))
    for node in c.graph.nodes:
        if isinstance(node.meta, TensorMeta) and node.meta.rank == 2:
            assert node.meta.shape[1] == 8 or node.meta.shape == (16, 8) or node.meta.shape[1] == 16
            assert isinstance(node.meta.shape[1], int)


def test_plain_dynamo_mark_dynamic_compiles_size_one_separately(fresh):
    """DESIGN.md: with torch._dynamo.mark_dynamic sizes 0/1 specialise, so T=1 is its own graph."""
    f = torch.compile(lambda x: (x * 2).sum(0), backend="pto", fullgraph=True)
    for n in [2, 3, 17, 1]:
        x = torch.randn(n, 4)
        torch._dynamo.mark_dynamic(x, 0)
        torch.testing.assert_close(f(x), (x * 2).sum(0))
    s = fresh.stats()
    assert s["graphs_received"] == 2 and s["signatures_compiled"] == 2, s


def test_an_empty_batch_compiles_its_own_graph(fresh):
    """mark_dynamic leaves a size-0 dim unmarked (marked, Dynamo fails the call with an internal
    guard error): the empty batch gets a static graph, the other sizes share the dynamic one."""
    check_dynamic(fresh, lambda x: (torch.softmax(x * 2, -1), x.sum(0)), lambda T: (torch.randn(T, 6),),
                  Ts=(3, 0, 7), signatures=2)


def test_same_signature_again_is_a_memory_hit(fresh):
    def f(x):
        return x.exp() + 1
    for _ in range(2):
        torch._dynamo.reset()
        x = torch.randn(5, 3)
        fresh.mark_dynamic(x, 0)
        torch.testing.assert_close(torch.compile(f, backend="pto", fullgraph=True)(x), f(x))
    s = fresh.stats()
    assert (s["graphs_received"], s["signatures_compiled"], s["memory_hits"]) == (2, 1, 1), s


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_unspecialised_float_is_a_host_scalar(fresh, dtype):
    def f(x, eps):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    cf = torch.compile(f, backend="pto", dynamic=True, fullgraph=True)
    x = torch.randn(4, 8, dtype=dtype)
    for eps in (1e-6, 1e-5):
        torch.testing.assert_close(cf(x, eps), f(x, eps))
    assert fresh.stats()["graphs_received"] >= 1


def test_dims_marked_with_one_name_are_one_dim(fresh):
    """Two inputs marked `name="T"` share one DynDim (the name is their shape_id): a loss that
    checks `target.size() == input.size()` traces. Each marked alone, Dynamo stopped with "Could
    not guard on data-dependent expression Eq(u1, u0)"."""
    fn = lambda x, y: F.binary_cross_entropy_with_logits(x, y) + (x - y).pow(2).mean()   # noqa: E731
    check_dynamic(fresh, fn, lambda T: (torch.randn(T, 6), torch.rand(T, 6)), Ts=(3, 17), name="T")
    (c,) = compiled_graphs()
    assert [d.name for d in c.graph.dyndims] == ["T"]
