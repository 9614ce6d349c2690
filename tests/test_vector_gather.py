"""embedding / index_select on the device (MGATHER of table rows by a per-row index), and the
bounds check that raises on an out-of-range index as eager does."""
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import VERIFY

W = torch.randn(50, 37)

CASES = {
    "embedding": (lambda i, w: F.embedding(i, w), lambda: [torch.randint(0, 50, (9,)), W]),
    "embedding_2d_then_pointwise": (lambda i, w: F.embedding(i, w) * 3 + 1, lambda: [torch.randint(0, 50, (2, 5)), W]),
    "embedding_bf16": (lambda i, w: F.embedding(i, w), lambda: [torch.randint(0, 50, (9,)), W.bfloat16()]),
    "embedding_wide_rows_reduced": (lambda i, w: F.embedding(i, w).amax(-1),
                                    lambda: [torch.randint(0, 50, (9,)), torch.randn(50, 3000)]),
    "embedding_0d_index": (lambda i, w: F.embedding(i, w), lambda: [torch.tensor(3), W]),
    "index_select_int32": (lambda x, i: torch.index_select(x, 0, i).relu(),
                           lambda: [W, torch.randint(0, 50, (13,), dtype=torch.int32)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gather_on_the_device(fresh, name):
    fn, make = CASES[name]
    args = make()
    torch.testing.assert_close(torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args), fn(*args))
    s = fresh.stats()
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
