"""The cpu target's allocator of region outputs (ascend_backend/cpu/memory.py): torch's allocator,
with huge pages advised for buffers of HUGE_PAGE_MIN_BYTES or more; ordinary tensors either way,
and a compiled graph's large outputs use it."""
from __future__ import annotations

import gc
import io
import sys

import pytest
import torch

from pto_dynamo.ascend_backend.cpu import memory

BIG_ROWS = memory.HUGE_PAGE_MIN_BYTES // (4096 * 4) + 3      # a [BIG_ROWS, 4096] f32 tensor is just above


def _aligned_inside(t: torch.Tensor) -> int:
    """The first 2 MiB-aligned address inside t's storage (the advice covers the aligned part)."""
    huge = 2 << 20
    addr = -(-t.untyped_storage().data_ptr() // huge) * huge
    assert addr < t.untyped_storage().data_ptr() + t.untyped_storage().nbytes()
    return addr


def _require_huge_page_advice():
    """Skip where the kernel refuses MADV_HUGEPAGE (built without transparent huge pages)."""
    if not memory.advise_huge_pages(torch.empty(8 << 20, dtype=torch.uint8)):
        pytest.skip("madvise(MADV_HUGEPAGE) is refused here")


def _vm_flags(addr: int) -> list[str] | None:
    """The VmFlags (Linux /proc/self/smaps) of the mapping holding `addr`, None if not found."""
    current = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                current = lo <= addr < hi
            elif head == "VmFlags:" and current:
                return line.split()[1:]
    return None


@pytest.mark.parametrize("shape,stride,dtype", [
    ((BIG_ROWS, 4096), (4096, 1), torch.float32),
    ((4096, BIG_ROWS), (1, 4096), torch.float32),            # a transposed layout
    ((2, BIG_ROWS, 4096), (BIG_ROWS * 4096, 4096, 1), torch.bfloat16),
    ((7, 33), (33, 1), torch.float32),                         # small: torch's allocator
    ((0, 4096), (4096, 1), torch.float32),
])
def test_empty_strided_is_an_ordinary_tensor(shape, stride, dtype):
    t = memory.empty_strided(shape, stride, dtype)
    assert (t.shape, t.stride(), t.dtype) == (torch.Size(shape), stride, dtype)
    assert t.untyped_storage().nbytes() >= t.nbytes
    values = torch.arange(t.numel(), dtype=torch.float32).reshape(shape).to(dtype)
    t.copy_(values)
    gc.collect()                                              # the mapping lives as long as the tensor
    assert torch.equal(t, values)
    assert torch.equal(torch.load(io.BytesIO(_saved(t))), values)
    t.resize_(*shape[:-1], shape[-1] + 8)                      # resizing works as on any tensor
    assert t.shape[-1] == shape[-1] + 8


def _saved(t: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    torch.save(t, buf)
    return buf.getvalue()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc/self/smaps are Linux's")
def test_large_buffers_get_huge_pages_advised():
    _require_huge_page_advice()
    big = memory.empty_strided((BIG_ROWS, 4096), (4096, 1), torch.float32)
    small = memory.empty_strided((64, 4096), (4096, 1), torch.float32)
    assert "hg" in _vm_flags(_aligned_inside(big))                  # MADV_HUGEPAGE
    assert "hg" not in (_vm_flags(small.data_ptr()) or [])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc/self/smaps are Linux's")
def test_a_compiled_graphs_large_outputs_use_it(fresh):
    _require_huge_page_advice()
    def f(x, r):
        h = x + r
        return h, torch.softmax(h, dim=-1)

    compiled = torch.compile(f, backend="pto", fullgraph=True)
    for T in (BIG_ROWS, 5):
        x, r = torch.randn(T, 4096), torch.randn(T, 4096)
        fresh.mark_dynamic(x, 0)
        fresh.mark_dynamic(r, 0)
        h, s = compiled(x, r)
        want_h, want_s = f(x, r)
        torch.testing.assert_close(h, want_h)
        torch.testing.assert_close(s, want_s)
        flags = _vm_flags(_aligned_inside(s) if T == BIG_ROWS else s.data_ptr()) or []
        assert ("hg" in flags) == (T == BIG_ROWS)
    s = fresh.stats()
    assert s["signatures_compiled"] == 1, s
    assert all(n == 0 for n in s["host_nodes"].values()) and all(n == 0 for n in s["fallback_regions"].values()), s
