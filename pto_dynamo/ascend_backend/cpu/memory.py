"""Device memory of the cpu target: the buffers a host program allocates for device-region outputs.

    empty_strided(shape, stride, dtype) -> torch.Tensor      (torch.empty_strided, huge pages advised)

Every buffer comes from torch's CPU allocator and is an ordinary tensor. glibc's malloc recycles
freed memory below its largest mmap threshold (32 MiB on 64-bit, DEFAULT_MMAP_THRESHOLD_MAX)
without asking the kernel again; from there up it maps fresh pages for every allocation and unmaps
them on free, so each call's large outputs pay a page fault per 4 KiB page on first write. On this
project's 2-core machine a fresh 64 MiB tensor costs ~34 ms to fill against ~7 ms once huge pages
are advised (benchmarks/bench_vector_ops.py at T=2048 spent most of every contender's time there).
So a buffer of HUGE_PAGE_MIN_BYTES or more gets MADV_HUGEPAGE on the 2 MiB-aligned part of its
fresh mapping before anything touches it: one fault per 2 MiB. The advice dies with the mapping
(freeing the tensor unmaps it). Where transparent huge pages are off ("never") or the platform has
no madvise, nothing changes.
"""
from __future__ import annotations

import ctypes
import functools
import mmap
import sys

import torch

HUGE_PAGE_MIN_BYTES = 32 << 20
_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)


@functools.lru_cache(maxsize=1)
def _madvise():
    """libc's madvise(addr, length, advice) -> int, or None off Linux."""
    if _MADV_HUGEPAGE is None or not sys.platform.startswith("linux"):
        return None
    fn = ctypes.CDLL(None, use_errno=True).madvise
    fn.argtypes, fn.restype = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int), ctypes.c_int
    return fn


def advise_huge_pages(t: torch.Tensor) -> bool:
    """MADV_HUGEPAGE on the 2 MiB-aligned pages inside t's storage; False where nothing was advised."""
    madvise = _madvise()
    storage = t.untyped_storage()
    lo = -(-storage.data_ptr() // _HUGE_PAGE) * _HUGE_PAGE
    hi = (storage.data_ptr() + storage.nbytes()) // _HUGE_PAGE * _HUGE_PAGE
    return madvise is not None and hi > lo and madvise(lo, hi - lo, _MADV_HUGEPAGE) == 0


def empty_strided(shape, stride, dtype: torch.dtype) -> torch.Tensor:
    """torch.empty_strided, with huge pages advised from HUGE_PAGE_MIN_BYTES of elements up (see
    module doc). Called for every region output of every call: the small case costs one attribute
    read on top of torch.empty_strided."""
    t = torch.empty_strided(shape, stride, dtype=dtype)
    if t.nbytes >= HUGE_PAGE_MIN_BYTES:
        advise_huge_pages(t)
    return t
