"""Runtime overheads of the cpu target, for benchmarks and reports: the per-call cost of a region
callable (ctypes + launch counting) and of one SPMD launch of an empty kernel."""
from __future__ import annotations

import time

import torch

from pto_dynamo.ascend_backend.cpu.loader import load_library
from pto_dynamo.ascend_backend.cpu.region import load_region

_SOURCE = r"""
// pto_dynamo cpu target: overhead probes (pto_dynamo/ascend_backend/cpu/microbench.py)
#include <cstdint>
#include <pto/pto-runtime.hpp>
extern "C" void pto_empty_kernel(int32_t block_num) {}
extern "C" int64_t pto_region_nothing(void* const* tensors, const int64_t* scalars, int32_t block_num) { return 0; }
extern "C" int64_t pto_region_empty_launch(void* const* tensors, const int64_t* scalars, int32_t block_num) {
  PTO_LAUNCH(pto_empty_kernel, block_num);
  return 1;
}
extern "C" int64_t pto_region_empty_launches(void* const* tensors, const int64_t* scalars, int32_t block_num) {
  for (int64_t i = 0; i < scalars[0]; ++i) PTO_LAUNCH(pto_empty_kernel, block_num);
  return scalars[0];
}
"""


def _best_us(call, calls: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best * 1e6


def region_call_overhead_us(n_tensors: int = 4, n_scalars: int = 2, calls: int = 20000, repeats: int = 5) -> float:
    """µs per call of a region that does nothing (ctypes, pointer marshalling, counter)."""
    region = load_region(load_library(_SOURCE, "microbench"), "pto_region_nothing", 1)
    tensors = [torch.empty(4) for _ in range(n_tensors)]
    scalars = list(range(n_scalars))
    return _best_us(lambda: region(tensors, scalars), calls, repeats)


def launch_overhead_us(block_num: int = 24, threads: int | None = None, launches: int = 2000, repeats: int = 5) -> float:
    """µs per PTO_LAUNCH of an empty kernel with `block_num` blocks, measured inside one native
    call (no Python in the loop) on `threads` threads (default: torch's current setting)."""
    region = load_region(load_library(_SOURCE, "microbench"), "pto_region_empty_launches", block_num)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        region([], [launches])
        return _best_us(lambda: region([], [launches]), 1, repeats) / launches
    finally:
        torch.set_num_threads(before)
