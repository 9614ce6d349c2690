"""Region callables: one Python call runs a whole device region (its orchestration function).

An orchestration has the C signature (docs/device_abi.md)

    int64_t pto_region_<graph>_<k>(void* const* tensors, const int64_t* scalars, int32_t block_num)

and returns the number of kernel launches it executed (negative: an error code). `load_region`
wraps it as `region(tensors, scalars, block_num=None) -> None` that passes the tensors' data
pointers and the scalars as int64, adds the returned count to `stats()["launches"]`, and raises
`RegionError` on a negative return.
"""
from __future__ import annotations

import ctypes
from typing import Sequence

import torch

from pto_dynamo.stats import bump as _bump_counter
from pto_dynamo.ascend_backend.cpu.loader import NativeLibrary

# SPMD blocks per launch when the caller does not say (PtoOptions.core_num=None): the cube-core
# count of a large A2A3 part, so kernels split work the way they will on the NPU. Blocks are dealt
# dynamically to the OpenMP threads, so this may exceed the thread count.
DEFAULT_BLOCK_NUM = 24

# ctypes array types by length, made once (type construction is the slow part of marshalling).
_PTR_ARRAYS = [ctypes.c_void_p * n for n in range(33)]
_INT_ARRAYS = [ctypes.c_int64 * n for n in range(33)]


class RegionError(RuntimeError):
    """An orchestration returned an error code."""


class RegionCallable:
    """`region(tensors, scalars, block_num=None)`: run one orchestration function.

    `tensors` are laid out as the region expects (the host program allocates outputs and passes
    inputs contiguous unless their strides travel as scalars); only their data pointers are passed.
    """

    __slots__ = ("name", "library", "block_num", "_fn", "_bump")

    def __init__(self, library: NativeLibrary, symbol: str, block_num: int | None = None) -> None:
        fn = library.symbol(symbol)
        # No argtypes: the two ctypes arrays pass as pointers and block_num as a C int (int32_t),
        # which skips per-argument from_param conversions (~0.2 us a call).
        fn.restype = ctypes.c_int64
        self.name = symbol
        self.library = library
        self.block_num = int(block_num) if block_num is not None else DEFAULT_BLOCK_NUM
        if self.block_num < 1:
            raise ValueError(f"pto cpu: block_num must be >= 1, got {self.block_num}")
        self._fn = fn
        self._bump = _bump_counter

    def __call__(self, tensors: Sequence[torch.Tensor], scalars: Sequence[int] = (), block_num: int | None = None) -> None:
        n, k = len(tensors), len(scalars)
        ptrs = (_PTR_ARRAYS[n] if n < 33 else ctypes.c_void_p * n)(*[t.data_ptr() for t in tensors])
        ints = (_INT_ARRAYS[k] if k < 33 else ctypes.c_int64 * k)(*scalars)
        launches = self._fn(ptrs, ints, self.block_num if block_num is None else int(block_num))
        if launches < 0:
            raise RegionError(f"pto cpu: region {self.name} in {self.library.path} returned error code {launches}: "
                              f"{self.last_error() or 'no message'}")
        if launches:
            self._bump("launches", launches)

    def last_error(self) -> str:
        """The library's last kernel error message (pto_last_error), '' if none."""
        try:
            fn = self.library.symbol("pto_last_error")
        except Exception:
            return ""
        fn.restype = ctypes.c_char_p
        return (fn() or b"").decode(errors="replace")

    def __repr__(self) -> str:
        return f"RegionCallable({self.name!r}, block_num={self.block_num}, library={str(self.library.path)!r})"


def load_region(library: NativeLibrary, symbol: str, block_num: int | None = None) -> RegionCallable:
    """The callable of orchestration `symbol` in `library` (default block count: DEFAULT_BLOCK_NUM)."""
    return RegionCallable(library, symbol, block_num)
