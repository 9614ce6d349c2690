"""STREAM triad on the cpu target, so benchmarks can quote a kernel's bandwidth as % of STREAM.

`triad_gbps(n, threads, repeats)` builds (through the runtime, cached) a plain OpenMP loop
`a[i] = b[i] + s * c[i]` over float32 arrays and returns the best of `repeats` runs in GB/s,
counting 12 bytes per element (read b, read c, write a; write-allocate traffic not counted, as
STREAM does).
"""
from __future__ import annotations

import ctypes

import torch

from pto_dynamo.ascend_backend.cpu.loader import load_library

_TRIAD_SOURCE = r"""
// pto_dynamo cpu target: STREAM triad (pto_dynamo/ascend_backend/cpu/stream.py)
#include <cstdint>
#include <omp.h>
extern "C" double pto_stream_triad(float* __restrict__ a, const float* __restrict__ b,
                                   const float* __restrict__ c, float s, int64_t n, int32_t repeats) {
  double best = 1e300;
  for (int32_t r = 0; r < repeats; ++r) {
    const double t0 = omp_get_wtime();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    const double dt = omp_get_wtime() - t0;
    best = dt < best ? dt : best;
  }
  return best;
}
"""


def _triad_fn():
    fn = load_library(_TRIAD_SOURCE, "stream_triad").symbol("pto_stream_triad")
    fn.restype = ctypes.c_double
    fn.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float, ctypes.c_int64, ctypes.c_int32)
    return fn


def triad_gbps(n: int = 1 << 24, threads: int = 1, repeats: int = 10) -> float:
    """Best-of-`repeats` STREAM triad bandwidth in GB/s (1e9 B/s) over float32 arrays of `n`
    elements with `threads` OpenMP threads (torch's pool; restored afterwards)."""
    fn = _triad_fn()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b, c = torch.empty(n), torch.ones(n), torch.full((n,), 2.0)
        fn(a.data_ptr(), b.data_ptr(), c.data_ptr(), 3.0, n, 1)   # warm-up: first touch of a
        seconds = fn(a.data_ptr(), b.data_ptr(), c.data_ptr(), 3.0, n, repeats)
    finally:
        torch.set_num_threads(before)
    if not bool((a[:: max(1, n // 97)] == 7.0).all()):
        raise RuntimeError("pto cpu: STREAM triad produced wrong values")
    return 12.0 * n / seconds / 1e9
