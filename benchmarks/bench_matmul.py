"""Matmuls on one CPU thread: eager vs backend="inductor" vs backend="pto".

    linear   F.linear(x, w)        x: [T, 4096], w: [4096, 4096] (w read transposed, in place)
    bmm      torch.bmm(a, b)       a: [8, 512, 128], b: [8, 128, 512]

in float32 and bfloat16 (eager: MKL for f32, oneDNN for bf16). Contenders, all with
torch.set_num_threads(1): eager; torch.compile(fn, backend="inductor", dynamic=True);
torch.compile(fn, backend="pto", fullgraph=True) with the token dim marked dynamic (one compile for
every T). Each case is checked against eager before timing, and pto's graphs must have no host
node and no fallback region.

Timing: interleaved rounds (every contender at every case in turn), each measurement >= 3 calls and
>= 50 ms, medians. Printed: pto/eager, pto/inductor and pto's GFLOP/s as a % of the machine's
single-thread fp32 FMA peak measured in the same run (a register-only FMA loop). The issue's
target: pto <= 1.1x eager at every case.

    .venv/bin/python benchmarks/bench_matmul.py [--rounds 3] [--T 1,16,256,2048] [--dtypes float32,bfloat16]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PTO_CACHE_DIR", tempfile.mkdtemp(prefix="pto-bench-mm-"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="inductor-bench-mm-"))

import pto_dynamo  # noqa: E402
from _contenders import check_against_eager, interleaved_times  # noqa: E402
from pto_dynamo.ascend_backend.cpu.compiler import build_library  # noqa: E402

D = 4096
TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-3}, torch.bfloat16: {"rtol": 1.6e-2, "atol": 1e-1}}

FMA_PEAK_SOURCE = r"""
// bench_matmul.py: single-thread fp32 FMA peak (independent accumulators in registers, no memory
// traffic). One native vector per accumulator: 16 lanes with AVX-512, 8 with AVX2 (12 accumulators
// of two ymm halves each would not fit AVX2's 16 registers and measure spills instead).
#if defined(__AVX512F__)
constexpr int L = 16;
#else
constexpr int L = 8;
#endif
typedef float vec __attribute__((vector_size(4 * L)));
extern "C" int fma_lanes() { return L; }
extern "C" float fma_loop(long iters) {
  vec acc[12];
  for (int j = 0; j < 12; ++j) for (int l = 0; l < L; ++l) acc[j][l] = float(j + l) * 1e-3f;
  vec b, c;
  for (int l = 0; l < L; ++l) { b[l] = 0.999f; c[l] = 1e-4f; }
  for (long i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = acc[j] * b + c;
  float s = 0;
  for (int j = 0; j < 12; ++j) for (int l = 0; l < L; ++l) s += acc[j][l];
  return s;
}
"""


def fma_peak_gflops() -> float:
    lib = ctypes.CDLL(str(build_library(FMA_PEAK_SOURCE, "bench_fma_peak")))
    lib.fma_loop.restype = ctypes.c_float
    lib.fma_loop.argtypes = [ctypes.c_long]
    iters, lanes = 20_000_000, lib.fma_lanes()
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        lib.fma_loop(iters)
        best = max(best, iters * 12 * lanes * 2 / (time.perf_counter() - t) / 1e9)
    return best


def linear(x, w):
    return torch.nn.functional.linear(x, w)


def bmm(a, b):
    return torch.bmm(a, b)


def make_cases(dtypes, Ts):
    """(label, fn, inputs, flops, dynamic dim of input 0 or None)."""
    cases = []
    for dt in dtypes:
        g = torch.Generator().manual_seed(0)
        w = (torch.randn(D, D, generator=g) / D ** 0.5).to(dt)
        for T in Ts:
            x = torch.randn(T, D, generator=g).to(dt)
            cases.append((f"linear {str(dt)[6:]} T={T}", linear, [x, w], 2 * T * D * D, 0))
        a = torch.randn(8, 512, 128, generator=g).to(dt)
        b = torch.randn(8, 128, 512, generator=g).to(dt)
        cases.append((f"bmm {str(dt)[6:]} [8,512,128]x[8,128,512]", bmm, [a, b], 2 * 8 * 512 * 128 * 512, None))
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--T", default="1,16,256,2048")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dtypes = [getattr(torch, d) for d in args.dtypes.split(",")]
    Ts = [int(t) for t in args.T.split(",")]
    cases = make_cases(dtypes, Ts)
    compiled = {}
    failed = False
    for fn in {c[1] for c in cases}:
        compiled[("pto", fn)] = torch.compile(fn, backend="pto", fullgraph=True)
        compiled[("inductor", fn)] = torch.compile(fn, backend="inductor", dynamic=True)
    before = pto_dynamo.stats()
    failed = not check_against_eager(cases, compiled, TOL)
    s = pto_dynamo.stats()
    host = {g: n for g, n in s["host_nodes"].items() if n}
    fallbacks = {g: n for g, n in s["fallback_regions"].items() if n}
    print(f"pto: {s['signatures_compiled'] - before['signatures_compiled']} signatures, host nodes {host or 0}, "
          f"fallback regions {fallbacks or 0}")
    failed |= bool(host or fallbacks)
    peak = fma_peak_gflops()
    times = interleaved_times(cases, compiled, args.rounds)
    print(f"fp32 FMA peak (1 thread, measured): {peak:.0f} GFLOP/s; {args.rounds} interleaved rounds, medians")
    print(f"{'case':40s} {'eager ms':>9s} {'ind ms':>9s} {'pto ms':>9s} {'pto/eager':>9s} {'pto/ind':>8s} "
          f"{'pto GF/s':>8s} {'%peak':>6s}")
    for label, _, _, flops, _ in cases:
        e, i, p = (statistics.median(times[(label, w)]) for w in ("eager", "inductor", "pto"))
        mark = "" if p / e <= 1.1 else "  (target <= 1.1x eager missed)"
        print(f"{label:40s} {e * 1e3:9.2f} {i * 1e3:9.2f} {p * 1e3:9.2f} {p / e:9.2f} {p / i:8.2f} "
              f"{flops / p / 1e9:8.1f} {100 * flops / p / 1e9 / peak:5.0f}%{mark}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
