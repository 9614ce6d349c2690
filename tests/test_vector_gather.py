"""embedding / index_select / `x[idx]` / gather on the device (MGATHER of table rows by a per-row
index, or of elements by a flat index: `take`), small scatters as selects (scatter, scatter_add,
scatter_reduce, index_put), and the bounds check that raises on an out-of-range index as eager
does."""
import random

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import VERIFY, assert_on_device, compiled_graphs

W = torch.randn(50, 37)


def _matches_eager(fresh, fn, args) -> dict:
    """Compile fn, check it against eager on args, and return the counters."""
    torch.testing.assert_close(torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args), fn(*args))
    return fresh.stats()

CASES = {
    "embedding": (lambda i, w: F.embedding(i, w), lambda: [torch.randint(0, 50, (9,)), W]),
    "embedding_2d_then_pointwise": (lambda i, w: F.embedding(i, w) * 3 + 1, lambda: [torch.randint(0, 50, (2, 5)), W]),
    "embedding_bf16": (lambda i, w: F.embedding(i, w), lambda: [torch.randint(0, 50, (9,)), W.bfloat16()]),
    "embedding_wide_rows_reduced": (lambda i, w: F.embedding(i, w).amax(-1),
                                    lambda: [torch.randint(0, 50, (9,)), torch.randn(50, 3000)]),
    "embedding_0d_index": (lambda i, w: F.embedding(i, w), lambda: [torch.tensor(3), W]),
    "index_select_int32": (lambda x, i: torch.index_select(x, 0, i).relu(),
                           lambda: [W, torch.randint(0, 50, (13,), dtype=torch.int32)]),
    "embedding_one_column": (lambda i, w: F.embedding(i, w) + 1, lambda: [torch.randint(0, 50, (9,)), W[:, :1]]),
}


X3 = torch.randn(40, 3, 8)
INDEXING = {   # x[idx]: one integer index tensor on dim 0, negative indices counting from the end
    "rows_of_2d": (lambda x, i: x[i] * 2, lambda: [W, torch.randint(-50, 50, (9,))]),
    "rows_of_3d_by_2d_index": (lambda x, i: x[i] + 1, lambda: [X3, torch.randint(-40, 40, (3, 4))]),
    "elements_of_1d": (lambda x, i: x[i] - 1, lambda: [torch.randn(30), torch.tensor([-30, 29, 3, -1])]),
    "bf16_by_int32": (lambda x, i: x[i].float(),
                      lambda: [W.bfloat16(), torch.randint(-50, 50, (6,), dtype=torch.int32)]),
    "rows_of_a_slice": (lambda x, i: x[3:][i] * 2, lambda: [W, torch.randint(-47, 47, (5,))]),
    "computed_index": (lambda x, p: x[p % 7 + 1].sum(-1), lambda: [W, torch.arange(20)]),
    # x[:, idx] (an index_select of dim k >= 1, tracer/layout_decompositions.py)
    "columns": (lambda x, i: x[:, i] * 2, lambda: [W, torch.tensor([0, 3, -2, -37, 36])]),
    "middle_dim_by_2d_index": (lambda x, i: x[:, i] + 1, lambda: [X3, torch.randint(-3, 3, (2, 5))]),
    "last_dim_by_a_list": (lambda x: x[..., [0, 5, -1]] * 2, lambda: [X3]),
}


@pytest.mark.parametrize("name", list(INDEXING))
def test_indexing_rows_on_the_device(fresh, name):
    fn, make = INDEXING[name]
    args = make()
    s = _matches_eager(fresh, fn, args)
    assert s["launches"] > 0 and all(n == 0 for n in s["fallback_regions"].values()), s
    if name != "computed_index":                     # `%` on integers is a host op
        assert all(n == 0 for n in s["host_nodes"].values()), s


@pytest.mark.parametrize("fn", [lambda x, i: x[:, ::2][i] * 2,            # rows not dense
                                lambda x, i: x[i, i % 37] * 2],           # two index tensors
                         ids=["strided_rows", "two_indices"])
def test_other_indexing_runs_on_the_host(fresh, fn):
    args = [W, torch.tensor([0, 3, -2])]
    s = _matches_eager(fresh, fn, args)
    assert sum(s["host_nodes"].values()) >= 1 and all(n == 0 for n in s["fallback_regions"].values()), s


@pytest.mark.parametrize("bad", [[1, 50], [-51, 2]], ids=["past_the_end", "before_the_start"])
def test_out_of_range_row_index_raises(fresh, bad):
    fn = torch.compile(lambda x, i: x[i] * 2, backend="pto", fullgraph=True, options=VERIFY)
    torch.testing.assert_close(fn(W, torch.tensor([-50, 49])), W[torch.tensor([-50, 49])] * 2)
    with pytest.raises(RuntimeError, match=r"index: index out of range.*\[-50, 50\)"):
        fn(W, torch.tensor(bad))


@pytest.mark.parametrize("bad", [[1, 37], [-38, 2]], ids=["past_the_end", "before_the_start"])
def test_out_of_range_column_index_raises(fresh, bad):
    fn = torch.compile(lambda x, i: x[:, i] * 2, backend="pto", fullgraph=True, options=VERIFY)
    torch.testing.assert_close(fn(W, torch.tensor([-37, 36])), W[:, torch.tensor([-37, 36])] * 2)
    # the message names the op, the dim, its size and the shapes (not the graph's internal names)
    with pytest.raises(RuntimeError, match=r"index_select: index out of range: an index into dim 1 \(size 37\) of the "
                                           r"indexed tensor f32\[50, 37\] is outside \[0, 37\) \(indices: i64\[2\]\)"):
        fn(W, torch.tensor(bad))
    assert_on_device(fresh.stats())


def test_row_index_dynamic_tokens_one_compile(fresh):
    cos = torch.randn(64, 16)
    fn = lambda pos, x: x * cos[pos]                                                   # noqa: E731
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in [7, 1, 130]:
        pos, x = torch.randint(-64, 64, (T,)), torch.randn(T, 16)
        fresh.mark_dynamic(pos, 0, name="T")
        fresh.mark_dynamic(x, 0, name="T")
        torch.testing.assert_close(compiled(pos, x), fn(pos, x))
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["host_nodes"].values()), s


@pytest.mark.parametrize("name", list(CASES))
def test_gather_on_the_device(fresh, name):
    fn, make = CASES[name]
    args = make()
    s = _matches_eager(fresh, fn, args)
    assert all(n == 0 for n in s["host_nodes"].values()) and s["host_nodes"], s
    assert all(n == 0 for n in s["fallback_regions"].values()), s


@pytest.mark.parametrize("bad", [[1, 50], [-1, 2]], ids=["past_the_end", "negative"])
def test_out_of_range_index_raises(fresh, bad):
    fn = torch.compile(lambda i, w: F.embedding(i, w) * 2, backend="pto", fullgraph=True, options=VERIFY)
    torch.testing.assert_close(fn(torch.tensor([0, 49]), W), F.embedding(torch.tensor([0, 49]), W) * 2)
    with pytest.raises(RuntimeError, match=r"embedding: index out of range.*\[0, 50\)"):
        fn(torch.tensor(bad), W)


def test_token_embedding_dynamic_tokens_one_compile(fresh):
    fn = lambda i, w: F.embedding(i, w) * w.shape[1] ** 0.5                                  # noqa: E731
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in [7, 1, 130]:
        i = torch.randint(0, 50, (T,))
        fresh.mark_dynamic(i, 0, name="T")
        torch.testing.assert_close(compiled(i, W), fn(i, W))
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["host_nodes"].values()), s


def test_bad_index_raises_before_an_in_place_update_of_an_input(fresh):
    # an in-place update runs after every earlier runtime check (a partition ordering edge), so a
    # bad index leaves the cache as eager does: untouched
    def step(ids, cache, pos):
        h = F.embedding(ids, W) * 2
        cache.index_copy_(0, pos, h)
        return h.sum()
    compiled = torch.compile(step, backend="pto", fullgraph=True, options=VERIFY)
    pos = torch.tensor([1, 2])
    cache, ref = torch.zeros(10, 37), torch.zeros(10, 37)
    torch.testing.assert_close(compiled(torch.tensor([3, 4]), cache, pos), step(torch.tensor([3, 4]), ref, pos))
    torch.testing.assert_close(cache, ref)
    cache = torch.zeros(10, 37)
    with pytest.raises(RuntimeError, match="index out of range"):
        compiled(torch.tensor([3, 77]), cache, pos)
    assert cache.abs().sum() == 0


def test_rotary_tables_gathered_twice_cross_multiply(fresh):
    # rope: two gathers (cos, sin) by the same positions, each read by both outputs. The kernel of
    # one gather comes to load a product from the other's after values of it were used there: the
    # fuser must see kernel-level dependencies, or the two kernels wait for each other (a cycle).
    cos, sin = torch.randn(64, 16), torch.randn(64, 16)

    def rope(pos, x, y):
        c, s = cos[pos], sin[pos]
        return x * c - y * s, x * s + y * c
    args = [torch.randint(0, 64, (5,)), torch.randn(5, 16), torch.randn(5, 16)]
    got = torch.compile(rope, backend="pto", fullgraph=True, options=VERIFY)(*args)
    for g, w in zip(got, rope(*args)):
        torch.testing.assert_close(g, w)
    s = fresh.stats()
    assert_on_device(s)


X4 = torch.randn(6, 5, 7)
ELEMENTS = {   # gather and index_select as a take of x flattened (MGATHER Elem)
    "gather_dim0": (lambda x, i: torch.gather(x, 0, i) * 2, lambda: [X4, torch.randint(0, 6, (4, 3, 5))]),
    "gather_dim1": (lambda x, i: torch.gather(x, 1, i) * 2, lambda: [X4, torch.randint(0, 5, (6, 2, 7))]),
    "gather_last_int32": (lambda x, i: torch.gather(x, -1, i) + 1,
                          lambda: [X4, torch.randint(0, 7, (5, 5, 9), dtype=torch.int32)]),
    "gather_bf16": (lambda s, k: s.gather(1, k).float(),
                    lambda: [torch.randn(9, 16).bfloat16(), torch.randint(0, 16, (9, 3))]),
    "index_select_dim1": (lambda x, i: torch.index_select(x, 1, i) - 1, lambda: [W, torch.tensor([36, 0, 5, 5])]),
    "index_select_3d_dim0": (lambda x, i: torch.index_select(x, 0, i), lambda: [X4, torch.tensor([5, 1])]),
    "index_select_1d": (lambda x, i: torch.index_select(x, 0, i) * 3,
                        lambda: [torch.randn(11), torch.tensor([10, 0, 3])]),
}


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_element_gathers_on_the_device(fresh, name):
    fn, make = ELEMENTS[name]
    args = make()
    s = _matches_eager(fresh, fn, args)
    assert_on_device(s)
    kernels = [k for g in compiled_graphs() for r in g.runners for k in getattr(r, "kernel_names", ())]
    assert any("take" in k for k in kernels), kernels


def test_gather_from_a_transposed_source_is_right_on_the_host(fresh):
    fn = lambda x, i: torch.gather(x.t(), 0, i) * 2                                    # noqa: E731
    args = [W, torch.randint(0, 37, (3, 50))]
    s = _matches_eager(fresh, fn, args)
    assert all(n == 0 for n in s["fallback_regions"].values()), s


def test_out_of_range_gather_raises(fresh):
    fn = torch.compile(lambda x, i: torch.gather(x, 1, i) * 2, backend="pto", fullgraph=True, options=VERIFY)
    torch.testing.assert_close(fn(W, torch.tensor([[36], [0]])), torch.gather(W, 1, torch.tensor([[36], [0]])) * 2)
    with pytest.raises(RuntimeError, match=r"gather: index out of range.*\[0, 37\)"):
        fn(W, torch.tensor([[37], [0]]))


def test_an_arange_inside_the_dim_needs_no_bounds_check(fresh):
    """A flip's `arange(n - 1, -1, -1)` (n the dynamic dim) stays inside the dim by construction:
    no check kernel, no host assert; an arange that may leave it keeps its check and raises."""
    flip = torch.compile(lambda x: torch.flip(x, (0,)), backend="pto", fullgraph=True, options=VERIFY)
    for T in (2, 9):
        x = torch.randn(T, 5)
        fresh.mark_dynamic(x, 0)
        torch.testing.assert_close(flip(x), torch.flip(x, (0,)))
    (c,) = compiled_graphs()
    assert not [n for n in c.graph.nodes if "check" in n.name], [n.name for n in c.graph.nodes]
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["host_nodes"].values()), s
    past = torch.compile(lambda x: x.index_select(1, torch.arange(2, 6)), backend="pto", fullgraph=True,
                         options=VERIFY)
    with pytest.raises(RuntimeError, match=r"index_select: index out of range.*\[0, 5\)"):
        past(torch.randn(3, 5))


def test_router_gather_dynamic_tokens_one_compile(fresh):
    # DeepSeek's router: the weights of the chosen experts, for any token count
    def weights(scores, idx):
        return scores.gather(1, idx) / scores.gather(1, idx).sum(-1, keepdim=True)
    compiled = torch.compile(weights, backend="pto", fullgraph=True, options=VERIFY)
    for T in [5, 1, 70]:
        scores = torch.rand(T, 16)
        idx = scores.topk(4).indices
        fresh.mark_dynamic(scores, 0, name="T")
        fresh.mark_dynamic(idx, 0, name="T")
        torch.testing.assert_close(compiled(scores, idx), weights(scores, idx))
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["host_nodes"].values()), s


def test_interpreter_runs_the_take_kernel(fresh):
    """The reference interpreter (the tile IR's semantics) runs the lowered gather region, MGATHER
    Elem included, and agrees with eager."""
    from pto_dynamo.ascend_backend.host_program import region_scalars
    from pto_dynamo.lowering.tile import CPU_CAPACITY, interpret_region
    from pto_dynamo.lowering.vector.lower import lower_vector_region
    fn = lambda x, i: torch.gather(x, 1, i)                                             # noqa: E731
    x, idx = X4, torch.randint(0, 5, (6, 9, 7))
    torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(x, idx)
    c = compiled_graphs()[-1]
    part = c.partition.regions[0]
    region = lower_vector_region(c.graph, part, region_scalars(c.graph, part), "take_interp", CPU_CAPACITY)
    assert any(launch.kernel.name.startswith("pto_vec_take") for launch in region.launches)
    by_name = dict(zip((i.name for i in c.graph.inputs), (x, idx)))
    outputs = {n: torch.empty(c.graph.meta_of(n).shape, dtype=c.graph.meta_of(n).dtype) for n in part.outputs}
    interpret_region(region, [by_name[n] for n in part.inputs] + list(outputs.values()), [], 3)
    torch.testing.assert_close(outputs["gather"], fn(x, idx))


def test_gathers_read_a_table_after_its_in_place_update(fresh):
    # the compressor's pattern: write rows of a state in place (a host node), then gather from it on
    # the device; the gathers must see the write (a memory-order edge), as eager does
    def step(state, idx, s, rows):
        state.index_copy_(0, idx, s)
        return state[rows].exp() * 2, torch.gather(state, 1, rows[:, None].clamp(0, 7).expand(-1, 3))

    def run(fn):
        state = torch.zeros(10, 8)
        out = fn(state, torch.tensor([1, 4]), torch.full((2, 8), 5.0), torch.tensor([4, 1, -9, 0]))
        return state, out
    torch.testing.assert_close(run(torch.compile(step, backend="pto", fullgraph=True, options=VERIFY)), run(step))
    s = fresh.stats()
    assert sum(s["host_nodes"].values()) == 1 and all(n == 0 for n in s["fallback_regions"].values()), s


S16 = torch.rand(6, 16)
TOP4 = S16.topk(4).indices
X3S = torch.randn(4, 6, 5)
SCATTERS = {   # scatter with few indices per line: selects in index order (a later index wins)
    "router_weights": (lambda s, i, w: torch.zeros_like(s).scatter(1, i, w) * 2,
                       lambda: [S16, TOP4, torch.rand(6, 4)]),
    "value": (lambda s, i, w: s.scatter(1, i, 7.0) + w.sum(), lambda: [S16, TOP4, torch.rand(6, 4)]),
    "dim0_larger_src": (lambda s, i, w: s.scatter(0, i, w),
                        lambda: [S16, torch.randint(0, 6, (2, 16)), torch.rand(3, 16)]),
    "duplicate_indices": (lambda s, i, w: s.scatter(1, torch.cat([i, i], 1), torch.cat([w, w + 1], 1)),
                          lambda: [S16, TOP4, torch.rand(6, 4)]),
    # idx covers a leading block of x in the other dims: selects on the block, the rest cat back
    "partial_rows": (lambda s, i, w: s.scatter(1, i[:3], w[:3]) * 2, lambda: [S16, TOP4, torch.rand(6, 4)]),
    "partial_two_dims_3d": (lambda x, i, w: x.scatter(1, i, w),
                            lambda: [X3S, torch.randint(0, 6, (3, 2, 4)), torch.randn(3, 2, 4)]),
    "reduce_add_duplicates": (lambda s, i, w: s.scatter(1, torch.cat([i, i], 1), torch.cat([w, w], 1), reduce="add"),
                              lambda: [S16, TOP4, torch.rand(6, 4)]),
    "reduce_multiply_dim0_partial": (lambda s, i, w: s.scatter(0, i, w, reduce="multiply"),
                                     lambda: [S16, torch.randint(0, 6, (4, 9)), torch.rand(4, 9) + 0.5]),
    "value_reduce_add": (lambda s, i, w: s.scatter(1, i, 2.5, reduce="add"), lambda: [S16, TOP4, torch.rand(6, 4)]),
    "scatter_add": (lambda s, i, w: s.scatter_add(1, torch.cat([i[:, :2]] * 3, 1), torch.cat([w] * 2, 1)[:, :6]),
                    lambda: [S16, TOP4, torch.rand(6, 4)]),
    "scatter_reduce_amax_exclude_self": (
        lambda s, i, w: s.scatter_reduce(1, torch.cat([i, i], 1), torch.cat([w, -w], 1), "amax", include_self=False),
        lambda: [S16, TOP4, torch.randn(6, 4)]),
    "scatter_reduce_sum_exclude_self": (
        lambda s, i, w: s.scatter_reduce(0, i, w, "sum", include_self=False),
        lambda: [S16, torch.randint(0, 6, (5, 16)), torch.randn(5, 16)]),
    "scatter_reduce_prod_amin": (
        lambda s, i, w: s.scatter_reduce(1, i, w, "prod") + s.scatter_reduce(1, i, w, "amin"),
        lambda: [S16, TOP4, torch.randn(6, 4)]),
    "scatter_reduce_mean_both_ways": (
        lambda s, i, w: s.scatter_reduce(0, i, w, "mean") - s.scatter_reduce(0, i, w, "mean", include_self=False),
        lambda: [S16, torch.randint(0, 6, (5, 16)), torch.randn(5, 16)]),
    "zero_d": (lambda x, i, w: x.scatter(0, i, w, reduce="multiply") + x.scatter(0, i, 3.0),
               lambda: [torch.tensor(1.5), torch.tensor(0), torch.tensor(-2.0)]),
    "bf16_int32_index": (lambda s, i, w: s.scatter(1, i, w),
                         lambda: [S16.bfloat16(), TOP4.int(), torch.rand(6, 4).bfloat16()]),
    # x[i] = v / index_put with one index on dim 0: whole rows, negative indices from the end
    "index_put_rows": (lambda x, i, v: x.index_put((i,), v), lambda: [S16, torch.tensor([1, -1, 3]), torch.rand(3, 16)]),
    "index_put_accumulate_broadcast": (lambda x, i, v: x.index_put((i,), v, accumulate=True),
                                       lambda: [X3S, torch.tensor([2, 0, 2, -4]), torch.rand(6, 1)]),
    "bool_mask_rows": (lambda x, m, v: x.index_put((m,), v) - x.index_put((m,), v, accumulate=True),
                       lambda: [S16, torch.rand(6) > 0.5, torch.rand(16)]),
    "bool_mask_2d": (lambda x, m, v: x.index_put((m,), v), lambda: [X3S, torch.rand(4, 6) > 0.5, torch.rand(1, 5)]),
    "setitem_into_a_copy": (lambda x, i, v: _setitem(x.clone(), i, v) * 2,
                            lambda: [S16, torch.tensor([5, 0]), torch.tensor(4.0)]),
}


def _setitem(x, i, v):
    x[i] = v
    return x


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")
@pytest.mark.parametrize("name", list(SCATTERS))
def test_scatters_on_the_device(fresh, name):
    fn, make = SCATTERS[name]
    args = make()
    s = _matches_eager(fresh, fn, args)
    assert s["launches"] > 0, s
    assert_on_device(s)


def test_scatter_into_an_input_in_place(fresh):
    def step(cache, state, i, v):
        cache.index_put_((i,), v, accumulate=True)
        state.scatter_(1, i[:, None].clamp(0, 7), 1.0)
        return cache.sum() + state.sum()

    def run(fn):
        cache, state = torch.zeros(10, 8), torch.zeros(10, 8)
        v = torch.rand(3, 8, generator=torch.Generator().manual_seed(0))
        return fn(cache, state, torch.tensor([1, 4, 1]), v), cache, state
    torch.testing.assert_close(run(torch.compile(step, backend="pto", fullgraph=True, options=VERIFY)), run(step))
    s = fresh.stats()     # updates of an input stay in place on the host: they cost the written rows only
    assert all(n == 0 for n in s["fallback_regions"].values()), s
    (c,) = compiled_graphs()
    assert {c.graph.node_by_name[n].target for n, _ in c.partition.host_reasons} >= {
        torch.ops.aten.index_put_.default, torch.ops.aten.scatter_.value}, c.partition


def test_router_scatter_dynamic_tokens_one_compile(fresh):
    fn = lambda s, w: torch.zeros_like(s).scatter(1, s.topk(4).indices, w).sum(-1)        # noqa: E731
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    for T in [5, 1, 33]:
        s, w = torch.rand(T, 16), torch.rand(T, 4)
        fresh.mark_dynamic(s, 0, name="T")
        fresh.mark_dynamic(w, 0, name="T")
        torch.testing.assert_close(compiled(s, w), fn(s, w))
    st = fresh.stats()
    assert st["signatures_compiled"] == 1 and all(n == 0 for n in st["fallback_regions"].values()), st
    assert st["launches"] > 0


@pytest.mark.parametrize("fn", [lambda s, i, w: s.scatter(1, torch.cat([i] * 5, 1), torch.cat([w] * 5, 1)) * 2,  # 20 a line
                                lambda s, i, w: (s * 9).long().scatter_reduce(1, i, (w * 9).long(), "mean") * 2],
                         ids=["many_indices_per_line", "integer_mean"])
def test_other_scatters_run_on_the_host_and_bad_indices_raise(fresh, fn):
    args = [S16, TOP4, torch.rand(6, 4)]
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    torch.testing.assert_close(compiled(*args), fn(*args))
    assert sum(fresh.stats()["host_nodes"].values()) >= 1
    with pytest.raises(RuntimeError, match=r"index \d+ is out of bounds for dimension 1 with size 16"):   # ATen's check
        compiled(S16, TOP4 + 13, args[2])


def test_scatter_on_the_device_bad_index_raises(fresh):
    compiled = torch.compile(lambda s, i, w: s.scatter_add(1, i, w) * 2, backend="pto", fullgraph=True, options=VERIFY)
    w = torch.rand(6, 4)
    torch.testing.assert_close(compiled(S16, TOP4, w), S16.scatter_add(1, TOP4, w) * 2)
    assert all(n == 0 for n in fresh.stats()["host_nodes"].values())
    with pytest.raises(RuntimeError, match=r"scatter_add: index out of range.*\[0, 16\)"):
        compiled(S16, TOP4 + 13, w)


def test_index_put_bad_index_raises(fresh):
    compiled = torch.compile(lambda x, i, v: x.index_put((i,), v) * 2, backend="pto", fullgraph=True, options=VERIFY)
    v = torch.rand(2, 16)
    torch.testing.assert_close(compiled(S16, torch.tensor([-6, 5]), v), S16.index_put((torch.tensor([-6, 5]),), v) * 2)
    with pytest.raises(RuntimeError, match=r"index_put: index out of range.*\[-6, 6\)"):
        compiled(S16, torch.tensor([0, 6]), v)


def _random_scatter(seed: int):
    """A random scatter-family call: x of rank 1..3, an index covering a random leading block of
    x in the other dims, src at least as large, any reduction."""
    rng = random.Random(seed)
    rank = rng.randint(1, 3)
    xs = [rng.randint(1, 7) for _ in range(rank)]
    d = rng.randrange(rank)
    ishape = [rng.randint(1, 5) if j == d else rng.randint(1, s) for j, s in enumerate(xs)]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(xs, generator=g)
    src = torch.randn([n + rng.randint(0, 2) for n in ishape], generator=g)
    idx = torch.randint(0, xs[d], ishape, generator=g)
    kind, incl = rng.choice(["add", "multiply", "scatter_add", "sum", "prod", "mean", "amax", "amin"]), rng.random() < 0.5
    if kind in ("add", "multiply"):
        fn = lambda x, i, s: x.scatter(d, i, s, reduce=kind)                               # noqa: E731
    elif kind == "scatter_add":
        fn = lambda x, i, s: x.scatter_add(d, i, s)                                        # noqa: E731
    else:
        fn = lambda x, i, s: x.scatter_reduce(d, i, s, kind, include_self=incl)            # noqa: E731
    return fn, [x, idx, src]


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")
@pytest.mark.parametrize("seed", range(12))
def test_random_scatters_match_eager_on_the_device(fresh, seed):
    fn, args = _random_scatter(seed)
    s = _matches_eager(fresh, fn, args)
    assert s["launches"] > 0, s
    assert_on_device(s)
