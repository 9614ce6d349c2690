"""Input mutations stay in place: a cache updated with index_copy_ / index assignment is written
where it lives, never copied whole (the host program holds the in-place op, not a functional
copy plus copy_)."""
import torch

from tests.conftest import VERIFY, compiled_graphs


def _decode_step(x, cache, pos):
    cache.index_copy_(1, pos, x)                      # [B, S, D] cache, write T new positions
    return cache.sum(1)


def test_index_copy_cache_update_is_in_place(fresh):
    compiled = torch.compile(_decode_step, backend="pto", fullgraph=True, options=VERIFY)
    B, S, D = 2, 64, 8
    cache, ref_cache = torch.zeros(B, S, D), torch.zeros(B, S, D)
    data_ptr = cache.data_ptr()
    for step in range(4):
        T = 1 + step % 2
        x = torch.randn(B, T, D)
        pos = torch.arange(step * 2, step * 2 + T)
        fresh.mark_dynamic(x, 1)
        fresh.mark_dynamic(pos, 0)
        torch.testing.assert_close(compiled(x, cache, pos), _decode_step(x, ref_cache, pos))
        torch.testing.assert_close(cache, ref_cache)
    assert cache.data_ptr() == data_ptr
    assert fresh.stats()["signatures_compiled"] == 1
    (c,) = compiled_graphs()
    src = c.host_program.source
    assert "aten.index_put_.default(" in src and "aten.index_put.default(" not in src
    assert "aten.copy_.default" not in src


def test_slice_assignment_becomes_a_view_copy(fresh):
    def f(cache, x, start: int):
        cache[:, 2:5] = x
        return cache * 1
    compiled = torch.compile(f, backend="pto", fullgraph=True, options=VERIFY)
    cache, ref = torch.zeros(3, 8), torch.zeros(3, 8)
    x = torch.randn(3, 3)
    torch.testing.assert_close(compiled(cache, x, 0), f(ref, x, 0))
    torch.testing.assert_close(cache, ref)
    src = compiled_graphs()[0].host_program.source
    assert "aten.slice_scatter" not in src and "aten.slice.Tensor(" in src and "aten.copy_.default(" in src


def test_reading_the_input_after_mutation_sees_new_values(fresh):
    def f(cache, idx, v):
        before = cache.sum()
        cache.index_put_((idx,), v)
        return before, cache.sum()
    compiled = torch.compile(f, backend="pto", fullgraph=True, options=VERIFY)
    cache, ref = torch.ones(6), torch.ones(6)
    idx, v = torch.tensor([1, 3]), torch.tensor([5.0, 7.0])
    torch.testing.assert_close(compiled(cache, idx, v), f(ref, idx, v))
    torch.testing.assert_close(cache, ref)


def test_device_reads_around_a_host_in_place_update_keep_program_order(fresh):
    """Regression: after reinplacing, `b` reads the graph input `cache` directly, so only a
    read-after-write edge (not a data edge) keeps it after the host's index_copy_; `a` must read
    the old cache (write-after-read). Both are device ops that would otherwise share a region."""
    def f(cache, idx, v, x):
        a = cache * 2 + x
        cache.index_copy_(0, idx, v)
        b = cache * 3 + x
        return a, b
    compiled = torch.compile(f, backend="pto", fullgraph=True, options=VERIFY)
    cache, ref = torch.randn(6, 4), None
    ref = cache.clone()
    idx, v, x = torch.tensor([1, 4]), torch.randn(2, 4), torch.randn(6, 4)
    got, want = compiled(cache, idx, v, x), f(ref, idx, v, x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(cache, ref)
    (c,) = compiled_graphs()
    assert len(c.partition.regions) == 2 and all(not hasattr(r, "fallback_reason") for r in c.runners)


def test_returning_an_input_updated_in_place(fresh):
    """Regression: the reinplaced graph returned the dropped `copy_` node (NameError)."""
    def f(cache, idx, v):
        cache.index_put_((idx,), v)
        return cache
    cache, ref = torch.zeros(5, 2), torch.zeros(5, 2)
    idx, v = torch.tensor([1]), torch.ones(1, 2)
    out = torch.compile(f, backend="pto", fullgraph=True, options=VERIFY)(cache, idx, v)
    torch.testing.assert_close(out, f(ref, idx, v))
    torch.testing.assert_close(cache, ref)


def test_slice_assignment_at_a_dynamic_length(fresh):
    """`cache[:, 5:5 + T] = k` with T dynamic: the slice's end is `min(64, T + 5)` (ShapeEnv's
    sympy Min, which the code printer once rejected: the compile failed)."""
    def f(cache, k):
        cache[:, 5:5 + k.shape[1]] = k
        return cache[:, :5 + k.shape[1]].sum(1)
    compiled = torch.compile(f, backend="pto", fullgraph=True, options=VERIFY)
    cache, ref = torch.zeros(2, 64, 8), torch.zeros(2, 64, 8)
    for T in (1, 6, 59):
        k = torch.randn(2, T, 8)
        fresh.mark_dynamic(k, 1)
        torch.testing.assert_close(compiled(cache, k), f(ref, k))
        torch.testing.assert_close(cache, ref)
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["fallback_regions"].values()), s
