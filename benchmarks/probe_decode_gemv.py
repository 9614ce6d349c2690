"""What the copy-then-compute structure of a tile program costs a decode-shape linear (T=1) on a
CPU, measured without the tile program: why the cpu target reads matmul operands of kernel inputs
in place (TLOAD LoadHint::InPlace, docs/device_abi.md) instead of copying them.

y = W x with W [4096, 4096] fp32 (64 MiB, read once; memory-bound), on one thread, four ways:

    direct        every row of W streamed into its dot product (what MKL's sgemv does)
    copy          per tile of Nt rows x Kt columns: copy it into a buffer (TLOAD GM -> Mat), then
                  the dot products read the buffer (TMATMUL)
    copy+move     the same with a second copy in between (TMOV Mat -> Right)
    copy+move+pf  the same, prefetching the next tile (into L2) while the dot products run

On a CPU a TLOAD is the core's own copy, so the DRAM stream stops while the copies and the dot
products of a tile run; on the NPU the copy is a DMA beside the compute. The gap between `direct`
and the best tiled row bounds what any tile shape or prefetch placement can reach for T=1.

    .venv/bin/python benchmarks/probe_decode_gemv.py [--rounds 7]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PTO_CACHE_DIR", tempfile.mkdtemp(prefix="pto-probe-gemv-"))

from pto_dynamo.ascend_backend.cpu.compiler import build_library  # noqa: E402

SOURCE = r"""
// benchmarks/probe_decode_gemv.py: y = W x (W [4096, 4096] fp32), direct vs tile-by-tile copies.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>
constexpr int N = 4096, K = 4096;
static float* W = nullptr;
alignas(64) static float x[K], y[N], mat[1 << 16], right[1 << 16];   // 256 KiB tiles

static float dot(const float* a, const float* b, int n, const char* pf, int pf_lines) {
  float acc[16] = {};
  int line = 0;
  const int per = pf_lines > 0 ? (pf_lines * 16 + n - 1) / n : 0;   // lines per 16 elements
  for (int i = 0; i < n; i += 16) {
    for (int q = 0; q < per && line < pf_lines; ++q, ++line) __builtin_prefetch(pf + 64 * line, 0, 2);
#pragma omp simd
    for (int l = 0; l < 16; ++l) acc[l] += a[i + l] * b[i + l];
  }
  float s = 0;
  for (int l = 0; l < 16; ++l) s += acc[l];
  return s;
}

static void direct() { for (int n = 0; n < N; ++n) y[n] = dot(W + size_t(n) * K, x, K, nullptr, 0); }

// mode 0: copy; 1: copy + move; 2: copy + move + prefetch of the next tile during the dots
static void tiled(int Nt, int Kt, int mode) {
  for (int n0 = 0; n0 < N; n0 += Nt)
    for (int k0 = 0; k0 < K; k0 += Kt) {
      for (int c = 0; c < Nt; ++c) std::memcpy(mat + size_t(c) * Kt, W + size_t(n0 + c) * K + k0, Kt * 4);
      const float* b = mat;
      if (mode >= 1) { std::memcpy(right, mat, size_t(Nt) * Kt * 4); b = right; }
      int nn = n0, nk = k0 + Kt;
      if (nk >= K) { nk = 0; nn += Nt; }
      for (int c = 0; c < Nt; ++c) {
        const char* pf = mode == 2 && nn < N ? reinterpret_cast<const char*>(W + size_t(nn + c) * K + nk) : nullptr;
        const float d = dot(b + size_t(c) * Kt, x + k0, Kt, pf, pf ? Kt * 4 / 64 : 0);
        y[n0 + c] = k0 == 0 ? d : y[n0 + c] + d;
      }
    }
}

extern "C" void probe_init() {
  if (W == nullptr) W = static_cast<float*>(std::aligned_alloc(64, size_t(N) * K * 4));
  for (size_t i = 0; i < size_t(N) * K; ++i) W[i] = float(i % 7) * 0.1f;
  for (int i = 0; i < K; ++i) x[i] = 1.0f;
}

// Median seconds of `rounds` runs: Nt == 0 is `direct`, else tiled(Nt, Kt, mode).
extern "C" double probe_time(int Nt, int Kt, int mode, int rounds) {
  std::vector<double> t;
  for (int r = 0; r < rounds; ++r) {
    const auto s = std::chrono::steady_clock::now();
    if (Nt == 0) direct(); else tiled(Nt, Kt, mode);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
"""

# (Nt, Kt): the cpu target's f32 Right tile (512 columns x 128 K), square-ish, and long-K shapes
SHAPES = ((512, 128), (128, 512), (32, 1024), (16, 4096))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    lib = ctypes.CDLL(str(build_library(SOURCE, "probe_decode_gemv")))
    lib.probe_time.restype = ctypes.c_double
    lib.probe_time.argtypes = [ctypes.c_int] * 4
    lib.probe_init()
    gb = 4096 * 4096 * 4 / 1e9
    direct = gb / lib.probe_time(0, 0, 0, args.rounds)
    print(f"W [4096, 4096] fp32 read once, 1 thread, medians of {args.rounds}: GB/s (fraction of direct)")
    print(f"  direct (row streaming, as sgemv)   {direct:5.1f}")
    print(f"  {'Nt x Kt tile':14s} {'copy':>13s} {'copy+move':>13s} {'copy+move+pf':>13s}")
    for nt, kt in SHAPES:
        cells = [gb / lib.probe_time(nt, kt, mode, args.rounds) for mode in (0, 1, 2)]
        print(f"  {f'{nt} x {kt}':14s} " + " ".join(f"{c:5.1f} ({c / direct:4.2f})" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
