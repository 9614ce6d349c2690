"""Fused residual + RMSNorm as a hand-built TileProgram on the CPU target, against STREAM triad.

    y = x + r;  out = y * rsqrt(mean(y^2) + eps) * w        (T = 2048 tokens, D = 4096, fp32)

Prints achieved GB/s (bytes the kernel must move: read x, r, w; write y, out) and the ratio to the
single-thread STREAM triad bandwidth measured in the same run, medians over interleaved rounds;
eager torch for context; and the fixed costs of the runtime: per-launch overhead (empty kernel,
block_num=24) and per-region-call overhead.

    .venv/bin/python benchmarks/bench_tile_rmsnorm.py [--rounds 7] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

from pto_dynamo.lowering.tile import A2A3_CAPACITY, F32, DeviceRegion, Distribution, KernelBuilder, Launch, RegionTensor
from pto_dynamo.lowering.tile import handbuilt as hb
from pto_dynamo.lowering.tile.region import single_kernel_region

TRIAD_SOURCE = r"""
// STREAM triad a = b + s * c (fp32), the bandwidth yardstick of bench_tile_rmsnorm.py
#include <cstdint>
extern "C" void bench_triad(float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ c,
                            float s, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}
"""

# The practical ceiling of this kernel on a CPU: one fused pass per token written by hand
# (regular stores, like TSTORE's), built with the same flags.
HANDWRITTEN_SOURCE = r"""
// Hand-written fused residual + RMSNorm (fp32), the ceiling bench_tile_rmsnorm.py compares with
#include <cstdint>
#include <cmath>
extern "C" void bench_rmsnorm(const float* __restrict__ x, const float* __restrict__ r, const float* __restrict__ w,
                              float* __restrict__ y, float* __restrict__ out, int64_t T, int64_t D, float eps) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * D; const float* rr = r + t * D; float* yr = y + t * D; float* o = out + t * D;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < D; ++c) { const float v = xr[c] + rr[c]; yr[c] = v; ss += v * v; }
    const float scale = 1.0f / std::sqrt(ss / float(D) + eps);
#pragma omp simd
    for (int64_t c = 0; c < D; ++c) o[c] = yr[c] * scale * w[c];
  }
}
"""


def _timeit(fn, repeat: int) -> float:
    """Best-of-`repeat` seconds of one call (after a warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _triad_fn(n: int, threads: int):
    """(measure() -> GB/s, description) of the STREAM triad yardstick: the CPU runtime's
    `stream.triad_gbps`, or a hand-written C++ triad built via the runtime if that is missing."""
    try:
        from pto_dynamo.ascend_backend.cpu import stream
        return (lambda: stream.triad_gbps(n, threads=threads, repeats=3)), \
            "pto_dynamo.ascend_backend.cpu.stream.triad_gbps, fp32, best of 3"
    except ImportError:
        pass
    import ctypes
    from pto_dynamo.ascend_backend.cpu import load_library
    lib = load_library(TRIAD_SOURCE, "bench_triad")
    fn = lib.symbol("bench_triad")
    fn.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float, ctypes.c_int64)
    a, b, c = torch.zeros(n), torch.rand(n), torch.rand(n)

    def triad():   # the closure keeps a, b, c alive
        fn(a.data_ptr(), b.data_ptr(), c.data_ptr(), 3.0, n)
    return (lambda: 3 * n * 4 / _timeit(triad, 3) / 1e9), "hand-written C++ triad (fp32) built via the runtime"


def _handwritten_fn(x, r, w, y, out, eps):
    import ctypes
    from pto_dynamo.ascend_backend.cpu import load_library
    fn = load_library(HANDWRITTEN_SOURCE, "bench_rmsnorm").symbol("bench_rmsnorm")
    fn.argtypes = (ctypes.c_void_p,) * 5 + (ctypes.c_int64, ctypes.c_int64, ctypes.c_float)
    T, D = x.shape

    def run():
        fn(x.data_ptr(), r.data_ptr(), w.data_ptr(), y.data_ptr(), out.data_ptr(), T, D, eps)
    return run


def _load(region: DeviceRegion, block_num: int):
    from pto_dynamo.ascend_backend.cpu import load_library, load_region
    from pto_dynamo.ascend_backend.render import render_translation_unit
    return load_region(load_library(render_translation_unit(region), region.name), region.name, block_num)


def _empty_kernel():
    kb = KernelBuilder("pto_vec_empty_0", pass_name="bench", description="does nothing (launch overhead)")
    return kb.build(A2A3_CAPACITY)


def measure_overheads(n_launches: int = 200, reps: int = 50) -> dict[str, float]:
    """Microseconds: per launch of an empty kernel with 24 blocks, and per region call."""
    empty = _empty_kernel()
    many = DeviceRegion("bench_launch", 0, (), (), tuple(Launch(empty, (), ()) for _ in range(n_launches)))
    none = DeviceRegion("bench_call", 0, (RegionTensor("x", F32, (8,)),), (), ())
    call_many, call_none = _load(many, 24), _load(none, 24)
    x = torch.zeros(8)
    t_many = _timeit(lambda: call_many([], [], 24), reps)
    t_none = _timeit(lambda: call_none([x], [], 24), reps)
    return {"launch_us": (t_many - t_none) / n_launches * 1e6, "region_call_us": t_none * 1e6}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--block-num", type=int, default=24)
    ap.add_argument("--rows-per-tile", type=int, default=None, help="tokens per tile (default: what fits UB)")
    args = ap.parse_args()
    os.environ.setdefault("PTO_CACHE_DIR", tempfile.mkdtemp(prefix="pto_bench_"))
    torch.set_num_threads(args.threads)
    T, D, eps = args.tokens, args.hidden, 1e-6

    variants = {   # name -> program; every variant is checked against torch before timing
        "pto, chunked blocks": hb.residual_rmsnorm(D, eps=eps, rows_per_tile=args.rows_per_tile,
                                                   distribution=Distribution.CHUNKED),
        "pto, cyclic blocks": hb.residual_rmsnorm(D, eps=eps, rows_per_tile=args.rows_per_tile),
        # CPU cache hints (docs/device_abi.md): streaming TSTOREs (outputs of 32 MB each do not fit
        # any cache, so their read-for-ownership is pure waste) and TLOADs that prefetch the next
        # tile (CHUNKED tiles follow each other in memory).
        "pto, chunked, stream": hb.residual_rmsnorm(D, eps=eps, rows_per_tile=args.rows_per_tile,
                                                    distribution=Distribution.CHUNKED, stream_stores=True),
        "pto, chunked, stream+prefetch": hb.residual_rmsnorm(
            D, eps=eps, rows_per_tile=args.rows_per_tile, distribution=Distribution.CHUNKED,
            stream_stores=True, prefetch_next=True),
        "pto, chunked 1-row, stream+prefetch": hb.residual_rmsnorm(
            D, eps=eps, rows_per_tile=1, distribution=Distribution.CHUNKED, stream_stores=True, prefetch_next=True),
        # x, r and w read where they lie (TLOAD in_place: no copies; y and y^2 get tiles of their own)
        "pto, chunked, stream, in place": hb.residual_rmsnorm(
            D, eps=eps, rows_per_tile=args.rows_per_tile, distribution=Distribution.CHUNKED,
            stream_stores=True, read_in_place=True),
        "pto, two-phase 2x1024 tiles": hb.residual_rmsnorm_chunked(D, eps=eps),
    }
    x, r, w = torch.randn(T, D), torch.randn(T, D), torch.randn(D)
    y, out = torch.empty(T, D), torch.empty(T, D)
    tensors = [x, r, w, y, out]
    ref_y = x + r
    ref = ref_y * torch.rsqrt(ref_y.pow(2).mean(-1, keepdim=True) + eps) * w
    calls = {}
    for i, (name, program) in enumerate(variants.items()):
        calls[name] = _load(single_kernel_region(program, f"bench_rmsnorm_v{i}"), args.block_num)
        out.fill_(float("nan"))
        calls[name](tensors, [T])
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(y, ref_y)
    kernel_bytes = (4 * T * D + D) * 4

    def eager():
        yy = x + r
        return yy * torch.rsqrt(yy.pow(2).mean(-1, keepdim=True) + eps) * w

    triad, triad_desc = _triad_fn(1 << 25, args.threads)
    hand = _handwritten_fn(x, r, w, torch.empty(T, D), torch.empty(T, D), eps)
    contenders = {**{name: (lambda c=c: c(tensors, [T])) for name, c in calls.items()},
                  "hand-written fused C++ loop": hand, "eager torch": eager}
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    ratios: dict[str, list[float]] = {name: [] for name in contenders}
    triads: list[float] = []
    for _ in range(args.rounds):                 # interleaved: each round measures every contender
        triads.append(triad())
        for name, fn in contenders.items():
            seconds[name].append(_timeit(fn, 3))
            ratios[name].append(kernel_bytes / seconds[name][-1] / 1e9 / triads[-1])
    triad_gbps = statistics.median(triads)
    hand_t = statistics.median(seconds["hand-written fused C++ loop"])
    print(f"fused residual+RMSNorm  T={T} D={D} fp32, {args.threads} thread(s), block_num={args.block_num}, "
          f"{args.rounds} interleaved rounds, medians; {kernel_bytes / 1e6:.0f} MB moved per call")
    print(f"  STREAM triad ({triad_desc}): {triad_gbps:6.2f} GB/s")
    for name in contenders:
        t = statistics.median(seconds[name])
        print(f"  {name:36s} {t * 1e3:7.2f} ms  {kernel_bytes / t / 1e9:6.2f} GB/s  "
              f"{statistics.median(ratios[name]):6.1%} of triad  ({hand_t / t:4.2f}x the hand-written loop's speed)")
    for threads in sorted({args.threads, 2}):
        torch.set_num_threads(threads)
        ov = measure_overheads()
        print(f"  {threads} thread(s): per-launch overhead (empty kernel, block_num=24): {ov['launch_us']:.2f} us; "
              f"per-region-call overhead (Python -> ctypes -> orchestration, 1 tensor, 0 launches): "
              f"{ov['region_call_us']:.2f} us")
    torch.set_num_threads(args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
