// pto_dynamo CPU target: TMATMUL, TMATMUL_ACC, TMATMUL_BIAS (pto_isa.md §3.6).
//
// M = left.GetValidRow(), K = left.GetValidCol(), N = right.GetValidCol(); accumulation in the
// accumulator type (fp32 for half/bf16/float inputs, int32 for int8). On the CPU the Left and Acc
// tiles are stored row-major and the Right tile (Zn) column-major (tile.hpp), so both operands run
// along K contiguously.
//
// The body of one TMATMUL is one tile-sized product; the K loop, the output tiles and their
// distribution over blocks stay in the tile program. Kernels, chosen per call:
//   f32 x f32   up to kF32DotRows rows (decode): AVX-512 (or AVX2) dot products. Above: the
//               packed register-blocked kernel packed_gemm (AVX2 or AVX-512 vectors). Without
//               AVX2, MKL's sgemm_ on the tile: libtorch_cpu exports it and the kernel library
//               lives in the torch process, so it is looked up there (dlopen RTLD_NOLOAD + dlsym)
//               once per library. Blocks run inside the launch's OpenMP parallel region, where
//               MKL runs single-threaded (the SPMD blocks are the parallelism).
//               PTO_CPU_BLAS=0, or a process without libtorch_cpu, uses the generic kernel.
//   bf16 x bf16 with AMX: above kAmxMinRows rows (above 4 on tiles of 64 or more columns: use_amx),
//               AMX tiles (amx_bf16_gemm, 8x the vdpbf16ps
//               kernel on a 256 x 128 x 256 tile). With AVX512_BF16: vdpbf16ps kernels
//               (bf16_matmul below): dot products up to kBf16DotRows rows, a packed
//               register-blocked kernel above. Without either: the
//               4 x 4 dot-product blocks up to kBf16DotRowsAvx2 rows, packed_gemm above (bf16
//               widened to f32 while packing).
//   f16 x f16   packed_gemm (f16 widened to f32 while packing).
//   otherwise   the generic kernel: dot products of A's rows and B's columns.
// Operands loaded with LoadHint::InPlace are read where they lie (tile.hpp OperandView): a B
// viewed by rows (a row-major operand) goes to brows_dots up to kBRowsDotRows rows, to packed_gemm
// packing its panels from rows, or to sgemm_ with B not transposed; elsewhere it is copied into
// the Right tile first, as is a transposed A into its Left tile.
#pragma once
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#include "pto/cpu/movement.hpp"

#pragma GCC visibility push(hidden)

namespace pto::detail {
// ---- BLAS from the hosting process ---------------------------------------------------------------
using sgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                          const int*, const float*, const int*, const float*, float*, const int*);
struct HostBlas {
  sgemm_fn sgemm = nullptr;
};
inline const HostBlas& host_blas() {
  static const HostBlas blas = [] {
    HostBlas b;
    const char* env = std::getenv("PTO_CPU_BLAS");
    if (env && env[0] == '0') return b;
    void* h = dlopen("libtorch_cpu.so", RTLD_NOW | RTLD_NOLOAD);
    if (h == nullptr) return b;
    b.sgemm = reinterpret_cast<sgemm_fn>(dlsym(h, "sgemm_"));
    return b;
  }();
  return blas;
}

// c (row-major, ldc) = [c +] a (row-major, lda) @ b, b column-stored: (k, n) at b[n * ldb + k],
// or with b_rows row-stored: (k, n) at b[k * ldb + n]. Returns false when no BLAS is available.
PTO_INLINE bool sgemm_tile(float* c, std::ptrdiff_t ldc, bool accumulate, const float* a, std::ptrdiff_t lda,
                           const float* b, std::ptrdiff_t ldb, int M, int N, int K, bool b_rows = false) {
  const HostBlas& blas = host_blas();
  if (blas.sgemm == nullptr) return false;
  // Row-major C = A B is column-major C^T = B^T A^T; the column-stored B is a column-major
  // K x N matrix, so B^T is it transposed ("T"), a row-stored B read as column-major is B^T
  // ("N"), and A^T is row-major A read as column-major ("N").
  const int lb = int(ldb), la = int(lda), lc = int(ldc);
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  blas.sgemm(b_rows ? "N" : "T", "N", &N, &M, &K, &one, b, &lb, a, &la, &beta, c, &lc);
  return true;
}

// Per-thread scratch of the packed kernels (B panels, widened or padded operands), 64-byte
// aligned, grown on demand; `slot` < 3 keeps the buffers of one call apart.
PTO_INLINE void* matmul_scratch(int slot, std::size_t bytes) {
  static thread_local void* buf[3] = {nullptr, nullptr, nullptr};
  static thread_local std::size_t size[3] = {0, 0, 0};
  if (bytes > size[slot]) {
    std::free(buf[slot]);
    buf[slot] = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!buf[slot]) fail("out of memory for a matmul panel", __FILE__, __LINE__);
    size[slot] = bytes;
  }
  return buf[slot];
}

// ---- generic kernel ----------------------------------------------------------------------------
// Right column-stored: C(i, j) is the dot product of row i of A and column j of B.
template <typename CT, typename AT, typename BT>
PTO_INLINE void matmul_dots(CT* c, std::ptrdiff_t ldc, const CT* cin, const AT* a, std::ptrdiff_t lda, const BT* b,
                            std::ptrdiff_t ldb, int M, int N, int K) {
  for (int i = 0; i < M; ++i) {
    const AT* arow = a + i * lda;
    for (int j = 0; j < N; ++j) {
      const BT* bcol = b + std::ptrdiff_t(j) * ldb;
      CT s = 0;
#pragma omp simd reduction(+ : s)
      for (int k = 0; k < K; ++k) s += static_cast<CT>(to_c(arow[k])) * static_cast<CT>(to_c(bcol[k]));
      c[i * ldc + j] = (cin ? cin[i * ldc + j] : CT(0)) + s;
    }
  }
}

#if defined(__AVX512F__)
// The sums of 4 vectors as the 4 lanes of one: an unpack tree within 128-bit lanes, then two
// cross-lane folds (13 instructions where 4 separate reductions take about 32).
PTO_INLINE __m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 s01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
  const __m512 s23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  const __m512d d01 = _mm512_castps_pd(s01), d23 = _mm512_castps_pd(s23);
  const __m512 t = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(d01, d23)),
                                 _mm512_castpd_ps(_mm512_unpackhi_pd(d01, d23)));
  const __m512 u = _mm512_add_ps(t, _mm512_shuffle_f32x4(t, t, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512 v = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castps512_ps128(v);
}

// f32 accumulators of the AVX-512 dot kernels: 16 lanes; c[0..jr) = [cin +] the 4 sums.
struct Acc512 {
  using Acc = __m512;
  static PTO_INLINE Acc zero() { return _mm512_setzero_ps(); }
  static PTO_INLINE void store4(float* c, const float* cin, int jr, Acc a0, Acc a1, Acc a2, Acc a3) {
    const __mmask8 m = __mmask8((1u << jr) - 1);
    __m128 s = reduce4(a0, a1, a2, a3);
    if (cin) s = _mm_add_ps(s, _mm_maskz_loadu_ps(m, cin));
    _mm_mask_storeu_ps(c, m, s);
  }
};
#endif

#if defined(__AVX2__) && defined(__FMA__)
// f32 accumulators of the AVX2 dot kernels: 8 lanes; three horizontal adds give the 4 sums.
struct Acc256 {
  using Acc = __m256;
  static PTO_INLINE Acc zero() { return _mm256_setzero_ps(); }
  static PTO_INLINE __m128i lanes(int n) { return _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3)); }
  static PTO_INLINE void store4(float* c, const float* cin, int jr, Acc a0, Acc a1, Acc a2, Acc a3) {
    const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    const __m128i m = lanes(jr);
    if (cin) s = _mm_add_ps(s, _mm_maskload_ps(cin, m));
    _mm_maskstore_ps(c, m, s);
  }
  // the first n of 8 lanes (all 8 for n >= 8), for the K tail
  static PTO_INLINE __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
};

// F32Dot8, Bf16Dot8: the dot kernels on AVX2, 8 K values per vector (bf16 widened to f32).
struct F32Dot8 : Acc256 {
  using T = float;
  using V = __m256;
  static constexpr int kStep = 8;
  static PTO_INLINE V load(const T* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static PTO_INLINE V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static PTO_INLINE Acc madd(Acc acc, V a, V b) { return _mm256_fmadd_ps(a, b, acc); }
};

struct Bf16Dot8 : Acc256 {
  using T = uint16_t;
  using V = __m256;
  static constexpr int kStep = 8;
  static PTO_INLINE V load(const T* p, __m256i m) {   // 8 bf16 (masked lanes read as 0) -> f32
    alignas(16) uint16_t buf[8];
    __m128i raw;
    if (_mm256_testc_si256(m, _mm256_set1_epi32(-1))) {
      raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    } else {
      const int n = _mm256_movemask_ps(_mm256_castsi256_ps(m));
      for (int i = 0; i < 8; ++i) buf[i] = (n >> i) & 1 ? p[i] : uint16_t(0);
      raw = _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
    }
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
  }
  static PTO_INLINE V loadu(const T* p) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
  }
  static PTO_INLINE Acc madd(Acc acc, V a, V b) { return _mm256_fmadd_ps(a, b, acc); }
};
#endif

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
// Few rows (decode) against a column-stored B: dot products reading A's rows and B's columns in
// place, blocks of up to 4 rows x 4 columns (16 accumulators; every loaded vector feeds 4
// multiply-adds); a per-tile GEMM call or packing B costs more than the math at these sizes.
// `Op` is the element kind (F32Dot, Bf16Dot; F32Dot8, Bf16Dot8 on AVX2): kStep K elements per
// vector, a zero-masked load, the multiply-add into f32 lanes and the store of 4 sums.
template <typename Op, int MR, bool Prefetch>
PTO_INLINE void dots_rows(float* c, std::ptrdiff_t ldc, const float* cin, const typename Op::T* a, std::ptrdiff_t lda,
                          const typename Op::T* b, std::ptrdiff_t ldb, int N, int K) {
  // Prefetch: the next K step's window (DeferredPrefetch), spread over this loop. A local copy:
  // touching the thread_local inside the loop calls __tls_get_addr, which spills every zmm.
  cpu::DeferredPrefetch pf = Prefetch ? cpu::t_deferred_prefetch : cpu::DeferredPrefetch{};
  const int64_t iters = int64_t((N + 3) / 4) * ((K + Op::kStep - 1) / Op::kStep);
  const int64_t per_iter = Prefetch && iters > 0 ? (pf.remaining() + iters - 1) / iters : 0;
  for (int j = 0; j < N; j += 4) {
    const int jr = N - j < 4 ? N - j : 4;
    typename Op::Acc acc[MR][4];
    for (int i = 0; i < MR; ++i)
      for (int jj = 0; jj < 4; ++jj) acc[i][jj] = Op::zero();
    const typename Op::T* bc = b + std::ptrdiff_t(j) * ldb;
    // full vectors with plain loads (a masked load in every step halves the stream rate on some
    // cores, AMD's AVX2 maskload among them), then the K tail zero-masked
    const int k_full = K / Op::kStep * Op::kStep;
    int k = 0;
    for (; k < k_full; k += Op::kStep) {
      if constexpr (Prefetch) pf.step(per_iter);
      typename Op::V vb[4];
      for (int jj = 0; jj < 4; ++jj) vb[jj] = Op::loadu(bc + (jj < jr ? jj : 0) * ldb + k);
      for (int i = 0; i < MR; ++i) {
        const typename Op::V va = Op::loadu(a + i * lda + k);
        for (int jj = 0; jj < 4; ++jj) acc[i][jj] = Op::madd(acc[i][jj], va, vb[jj]);
      }
    }
    if (k < K) {
      const auto m = Op::mask(K - k);
      typename Op::V vb[4];
      for (int jj = 0; jj < 4; ++jj) vb[jj] = Op::load(bc + (jj < jr ? jj : 0) * ldb + k, m);
      for (int i = 0; i < MR; ++i) {
        const typename Op::V va = Op::load(a + i * lda + k, m);
        for (int jj = 0; jj < 4; ++jj) acc[i][jj] = Op::madd(acc[i][jj], va, vb[jj]);
      }
    }
    for (int i = 0; i < MR; ++i)
      Op::store4(c + i * ldc + j, cin ? cin + i * ldc + j : nullptr, jr, acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
  }
  if constexpr (Prefetch) cpu::t_deferred_prefetch = pf;
}

template <typename Op>
PTO_INLINE void dots(float* c, std::ptrdiff_t ldc, const float* cin, const typename Op::T* a, std::ptrdiff_t lda,
                     const typename Op::T* b, std::ptrdiff_t ldb, int M, int N, int K) {
  if (M <= 4) {   // one pass over B: it also prefetches the next K step's window
    if (M == 4) return dots_rows<Op, 4, true>(c, ldc, cin, a, lda, b, ldb, N, K);
    if (M == 3) return dots_rows<Op, 3, true>(c, ldc, cin, a, lda, b, ldb, N, K);
    if (M == 2) return dots_rows<Op, 2, true>(c, ldc, cin, a, lda, b, ldb, N, K);
    return dots_rows<Op, 1, true>(c, ldc, cin, a, lda, b, ldb, N, K);
  }
  int i = 0;
  auto cin_at = [&](int r) { return cin ? cin + r * ldc : nullptr; };
  for (; i + 4 <= M; i += 4) dots_rows<Op, 4, false>(c + i * ldc, ldc, cin_at(i), a + i * lda, lda, b, ldb, N, K);
  for (; i + 2 <= M; i += 2) dots_rows<Op, 2, false>(c + i * ldc, ldc, cin_at(i), a + i * lda, lda, b, ldb, N, K);
  for (; i < M; ++i) dots_rows<Op, 1, false>(c + i * ldc, ldc, cin_at(i), a + i * lda, lda, b, ldb, N, K);
}
#endif

#if defined(__AVX512F__)
struct F32Dot : Acc512 {
  using T = float;
  using V = __m512;
  static constexpr int kStep = 16;
  static PTO_INLINE __mmask16 mask(int n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }
  static PTO_INLINE V load(const T* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static PTO_INLINE V loadu(const T* p) { return _mm512_loadu_ps(p); }
  static PTO_INLINE __m512 madd(__m512 acc, V a, V b) { return _mm512_fmadd_ps(a, b, acc); }
};
#endif

// ---- few rows against a row-stored B (an in-place view of a row-major operand) ------------------
// C(i, :) = [cin +] sum over k of A(i, k) * B(k, :): per block of 64 columns, each row of C in 8
// vector accumulators over the whole K loop, so B's rows advance together (a few sequential
// streams) and C is written once; f32 or bf16 operands widened to f32 (GCC vector types: the same
// code on AVX2 and AVX-512). For the decode shapes of `p @ v` and `x @ w` with a row-major w,
// where transposing B into a column-stored tile first costs more than the math.
using f32x8 = float __attribute__((vector_size(32)));
PTO_INLINE f32x8 load8(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
PTO_INLINE f32x8 load8(const uint16_t* p) {   // 8 bf16 -> f32
  using u16x8 = uint16_t __attribute__((vector_size(16)));
  using u32x8 = uint32_t __attribute__((vector_size(32)));
  u16x8 h;
  std::memcpy(&h, p, sizeof(h));
  return reinterpret_cast<f32x8>(__builtin_convertvector(h, u32x8) << 16);
}
PTO_INLINE float load1(float x) { return x; }
PTO_INLINE float load1(uint16_t x) { return bf16_bits_to_f32(x); }
PTO_INLINE float load1(half x) { return static_cast<float>(x); }

template <typename T>
PTO_INLINE void brows_dots(float* c, std::ptrdiff_t ldc, const float* cin, const T* a, std::ptrdiff_t lda, const T* b,
                           std::ptrdiff_t ldb, int M, int N, int K) {
  // Groups of KB rows of B: a group's rows stream side by side (one sequential stream per row:
  // one stream alone, as a plain axpy, ran at 2/3 of the DRAM rate that 8 reach on one core),
  // each 64-column block of a group in vector registers, C read and written once per group.
  constexpr int V = 8, W = 8 * V, KB = 8;
  if (cin == nullptr)
    for (int i = 0; i < M; ++i) std::memset(c + i * ldc, 0, std::size_t(N) * sizeof(float));
  const int n_full = N / W * W;
  for (int k0 = 0; k0 < K; k0 += KB) {
    const int kb = K - k0 < KB ? K - k0 : KB;
    const T* bg = b + std::ptrdiff_t(k0) * ldb;
    for (int i = 0; i < M; ++i) {
      const T* ai = a + i * lda + k0;
      float* ci = c + i * ldc;
      for (int j = 0; j < n_full; j += W) {
        f32x8 acc[V];
        for (int v = 0; v < V; ++v) acc[v] = load8(ci + j + 8 * v);
        for (int k = 0; k < kb; ++k) {
          const T* bk = bg + std::ptrdiff_t(k) * ldb + j;
          const float av = load1(ai[k]);
          for (int v = 0; v < V; ++v) acc[v] += av * load8(bk + 8 * v);
        }
        std::memcpy(ci + j, acc, sizeof(acc));
      }
      for (int k = 0; k < kb; ++k) {   // the ragged columns
        const T* bk = bg + std::ptrdiff_t(k) * ldb;
        const float av = load1(ai[k]);
#pragma omp simd
        for (int l = n_full; l < N; ++l) ci[l] += av * load1(bk[l]);
      }
    }
  }
}

#if defined(__AVX512BF16__)
// ---- bf16 x bf16 -> f32 with vdpbf16ps ------------------------------------------------------------
// vdpbf16ps adds, per f32 lane, the products of one pair of consecutive bf16 values of each
// operand, so both operands are read as K-pairs (32-bit words). Zero-masked loads and zero padding
// make odd K and ragged tails exact.
using u16 = uint16_t;

// Bf16Dot: the dot kernels (dots_rows) on bf16, 32 values per vector, one vdpbf16ps per pair.
struct Bf16Dot : Acc512 {
  using T = u16;
  using V = __m512i;
  static constexpr int kStep = 32;
  static PTO_INLINE __mmask32 mask(int n) { return n >= 32 ? __mmask32(0xFFFFFFFFu) : __mmask32((uint64_t(1) << n) - 1); }
  static PTO_INLINE V load(const T* p, __mmask32 m) { return _mm512_maskz_loadu_epi16(m, p); }
  static PTO_INLINE V loadu(const T* p) { return _mm512_loadu_si512(p); }
  static PTO_INLINE __m512 madd(__m512 acc, V a, V b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
};

// A panel of 32 columns of B as K-pairs: word (kp, n) at panel[kp * 32 + n], zero past N and K.
// Blocks of 16 columns x 16 K-pairs move as 16 x 16 word transposes; the edges word by word.
PTO_INLINE void bf16_pack_panel(uint32_t* __restrict__ panel, const u16* __restrict__ b, std::ptrdiff_t ldb, int K,
                                int nr) {
  const int KP = (K + 1) / 2, full_kp = K / 2, vec_kp = full_kp / 16 * 16;
  const int vec_cols = nr / 16 * 16;
  for (int n0 = 0; n0 < vec_cols; n0 += 16)
    for (int kp0 = 0; kp0 < vec_kp; kp0 += 16) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(b + std::ptrdiff_t(n0 + i) * ldb + 2 * kp0);
      transpose16x16(r);
      for (int j = 0; j < 16; ++j) _mm512_store_si512(panel + (kp0 + j) * 32 + n0, r[j]);
    }
  for (int n = 0; n < 32; ++n) {
    if (n >= nr) {
      for (int kp = 0; kp < KP; ++kp) panel[kp * 32 + n] = 0;
      continue;
    }
    const u16* col = b + std::ptrdiff_t(n) * ldb;
    for (int kp = n < vec_cols ? vec_kp : 0; kp < full_kp; ++kp) {
      uint32_t w;
      std::memcpy(&w, col + 2 * kp, 4);
      panel[kp * 32 + n] = w;
    }
    if (K & 1) panel[(KP - 1) * 32 + n] = col[K - 1];
  }
}

// MR rows x 32 columns of C in registers over the whole K loop: per K-pair, one broadcast of each
// row's A pair feeds two vdpbf16ps. (GCC's loop distribution would split the two accumulator
// halves into two loops that broadcast every A pair twice; it is switched off here.)
template <int MR>
__attribute__((optimize("no-tree-loop-distribution"))) PTO_INLINE void bf16_block(float* c, std::ptrdiff_t ldc, const float* cin, const u16* a, std::ptrdiff_t lda,
                           const uint32_t* panel, int K, int nr) {
  const __mmask16 m0 = nr >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? __mmask16(0xFFFF) : nr <= 16 ? __mmask16(0) : __mmask16((1u << (nr - 16)) - 1);
  __m512 acc0[MR], acc1[MR];
  for (int i = 0; i < MR; ++i) {
    acc0[i] = cin ? _mm512_maskz_loadu_ps(m0, cin + i * ldc) : _mm512_setzero_ps();
    acc1[i] = cin ? _mm512_maskz_loadu_ps(m1, cin + i * ldc + 16) : _mm512_setzero_ps();
  }
  const int KP = K / 2;
  for (int kp = 0; kp < KP; ++kp) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(panel + kp * 32);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(panel + kp * 32 + 16);
    for (int i = 0; i < MR; ++i) {
      uint32_t w;
      std::memcpy(&w, a + i * lda + 2 * kp, 4);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(w));
      acc0[i] = _mm512_dpbf16_ps(acc0[i], av, b0);
      acc1[i] = _mm512_dpbf16_ps(acc1[i], av, b1);
    }
  }
  if (K & 1) {  // the last, unpaired k: its A word carries a zero upper half
    const __m512bh b0 = (__m512bh)_mm512_load_si512(panel + KP * 32);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(panel + KP * 32 + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(uint32_t(a[i * lda + K - 1])));
      acc0[i] = _mm512_dpbf16_ps(acc0[i], av, b0);
      acc1[i] = _mm512_dpbf16_ps(acc1[i], av, b1);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(c + i * ldc, m0, acc0[i]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc1[i]);
  }
}

PTO_INLINE uint32_t* bf16_panel_buffer(int K) {
  return static_cast<uint32_t*>(matmul_scratch(0, std::size_t((K + 1) / 2 + 1) * 32 * 4));
}

#ifndef PTO_BF16_DOT_ROWS
#define PTO_BF16_DOT_ROWS 128
#endif
// Up to this many rows the dot kernel beats packing B, whose cost is the same for 1 row or 256
// (linear [T, 4096] x [4096, 4096]^T, 1 thread: 1.4-1.7x faster at 16-64 rows, even at 128, 10%
// slower at 256).
constexpr int kBf16DotRows = PTO_BF16_DOT_ROWS;

PTO_INLINE void bf16_matmul(float* c, std::ptrdiff_t ldc, const float* cin, const u16* a, std::ptrdiff_t lda,
                            const u16* b, std::ptrdiff_t ldb, int M, int N, int K) {
  if (M <= kBf16DotRows) return dots<Bf16Dot>(c, ldc, cin, a, lda, b, ldb, M, N, K);
  constexpr int MR = 12;
  uint32_t* panel = bf16_panel_buffer(K);
  for (int j = 0; j < N; j += 32) {
    const int nr = N - j < 32 ? N - j : 32;
    bf16_pack_panel(panel, b + std::ptrdiff_t(j) * ldb, ldb, K, nr);
    int i = 0;
    auto at = [&](int r) { return std::ptrdiff_t(r) * ldc + j; };
    for (; i + MR <= M; i += MR) bf16_block<MR>(c + at(i), ldc, cin ? cin + at(i) : nullptr, a + i * lda, lda, panel, K, nr);
    for (; i + 4 <= M; i += 4) bf16_block<4>(c + at(i), ldc, cin ? cin + at(i) : nullptr, a + i * lda, lda, panel, K, nr);
    for (; i < M; ++i) bf16_block<1>(c + at(i), ldc, cin ? cin + at(i) : nullptr, a + i * lda, lda, panel, K, nr);
  }
}
#endif

#if defined(__AVX512BF16__) && defined(__AMX_TILE__) && defined(__AMX_BF16__)
// ---- bf16 x bf16 -> f32 on AMX tiles ------------------------------------------------------------
// The tile matrix unit of Sapphire Rapids and later Xeons: eight tile registers of up to 16 rows x
// 64 bytes; TDPBF16PS adds A (16 rows x 32 bf16 of K) times B (16 K-pairs x 16 columns, VNNI: the
// two bf16 of a K-pair in one 32-bit word) into C (16 x 16 f32). Blocks of 32 rows x 32 columns:
// tiles 0-3 hold C, 4-5 two 16-row slices of A, 6-7 two 16-column halves of a bf16_pack_panel
// panel, so every K step of 32 loads four tiles for four products. A is read where it lies when
// K is a multiple of 32 (a partial last block of rows goes through a zero-padded copy); any other
// K, A is copied once with K padded by zeros. Edge tiles of C go through a 32 x 32 scratch.
// Linux hands out the tile data state on request (arch_prctl ARCH_REQ_XCOMP_PERM, once per
// process); where it refuses, bf16 stays on the vdpbf16ps kernels. Each call configures the tiles
// unless the thread has this configuration loaded already, and on return restores any other
// configuration the thread had (oneDNN's, inside torch, whose brgemm remembers per thread what
// it configured). A thread that held none (ATen releases the tiles after its kernels and forgets
// its configuration) keeps ours, so the next TMATMUL of a kernel configures nothing (loading
// and releasing the configuration per call cost 0.1-0.15 us of a 64 x 128 x 128 product).
struct AmxConfig {
  uint8_t palette = 0, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

PTO_INLINE bool amx_permitted() {
  static const bool ok = [] {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
}

struct AmxTiles {
  alignas(64) AmxConfig saved;
  bool restore = false;
  static const AmxConfig& ours() {
    static const AmxConfig cfg = [] {
      AmxConfig c;
      c.palette = 1;
      for (int t = 0; t < 8; ++t) {
        c.rows[t] = 16;
        c.colsb[t] = 64;
      }
      return c;
    }();
    return cfg;
  }
  AmxTiles() {
    _tile_storeconfig(&saved);                 // all zero (palette 0) when the thread holds none
    if (std::memcmp(&saved, &ours(), sizeof(AmxConfig)) == 0) return;
    restore = saved.palette != 0;
    alignas(64) AmxConfig cfg = ours();
    _tile_loadconfig(&cfg);
  }
  ~AmxTiles() {
    if (restore) _tile_loadconfig(&saved);
  }
};

// C rows [0, 16 R) x columns [0, 32) (rows x nr valid) += A rows (bf16, K-contiguous, lda
// elements) @ the panel over KP16 K-pairs (a multiple of 16; A and the panel zero past K). Each K
// step also prefetches a line of each of pf_rows rows (pfs elements apart) from pf on.
template <int R>
PTO_INLINE void amx_block(float* c, std::ptrdiff_t ldc, bool accumulate, const u16* a, std::ptrdiff_t lda,
                          const uint32_t* panel, int KP16, int rows, int nr, const u16* pf = nullptr, int pf_rows = 0,
                          std::ptrdiff_t pfs = 0) {
  alignas(64) float edge[32 * 32];
  const bool whole = rows == 16 * R && nr == 32;
  float* ct = whole ? c : edge;
  const std::ptrdiff_t ldt = whole ? ldc : 32;
  if (!whole && accumulate)
    for (int i = 0; i < 16 * R; ++i)
      for (int j = 0; j < 32; ++j) edge[i * 32 + j] = i < rows && j < nr ? c[i * ldc + j] : 0.0f;
  const std::size_t cs = std::size_t(ldt) * 4, as = std::size_t(lda) * 2;
  if (accumulate) {
    _tile_loadd(0, ct, cs);
    _tile_loadd(1, ct + 16, cs);
    if constexpr (R == 2) {
      _tile_loadd(2, ct + 16 * ldt, cs);
      _tile_loadd(3, ct + 16 * ldt + 16, cs);
    }
  } else {
    _tile_zero(0);
    _tile_zero(1);
    if constexpr (R == 2) {
      _tile_zero(2);
      _tile_zero(3);
    }
  }
  for (int kp = 0; kp < KP16; kp += 16) {
    for (int r = 0; r < pf_rows; ++r) _mm_prefetch(reinterpret_cast<const char*>(pf + r * pfs + 2 * kp), _MM_HINT_T1);
    _tile_loadd(6, panel + kp * 32, 128);
    _tile_loadd(7, panel + kp * 32 + 16, 128);
    _tile_loadd(4, a + 2 * kp, as);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if constexpr (R == 2) {
      _tile_loadd(5, a + 16 * lda + 2 * kp, as);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, ct, cs);
  _tile_stored(1, ct + 16, cs);
  if constexpr (R == 2) {
    _tile_stored(2, ct + 16 * ldt, cs);
    _tile_stored(3, ct + 16 * ldt + 16, cs);
  }
  if (!whole)
    for (int i = 0; i < rows; ++i) std::memcpy(c + i * ldc, edge + i * 32, std::size_t(nr) * 4);
}

// A's rows [r0, r0 + n) (K-contiguous, lda) into dst (16 x ... rows of ldd elements, ldd >= K):
// zero past K and past n.
PTO_INLINE void amx_copy_rows(u16* dst, std::ptrdiff_t ldd, int rows, const u16* a, std::ptrdiff_t lda, int n, int K) {
  for (int i = 0; i < rows; ++i) {
    u16* d = dst + i * ldd;
    if (i < n) std::memcpy(d, a + i * lda, std::size_t(K) * 2);
    std::memset(d + (i < n ? K : 0), 0, std::size_t(ldd - (i < n ? K : 0)) * 2);
  }
}

// bf16_pack_panel's panel from a row-stored B ((k, n) at b[k * ldb + n]): two rows of B
// interleave into the K-pair words of 32 columns (one two-source permute per 16 columns).
PTO_INLINE void bf16_pack_panel_rows(uint32_t* __restrict__ panel, const u16* __restrict__ b, std::ptrdiff_t ldb,
                                     int K, int nr) {
  const int KP = (K + 1) / 2;
  if (nr == 32) {
    alignas(64) static constexpr uint16_t kInterleave[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                                             8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
    const __m512i lo = _mm512_load_si512(kInterleave);   // word 2i: B(2kp, i), 2i + 1: B(2kp + 1, i)
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    for (int kp = 0; kp < KP; ++kp) {
      const __m512i r0 = _mm512_loadu_si512(b + std::ptrdiff_t(2 * kp) * ldb);
      const __m512i r1 = 2 * kp + 1 < K ? _mm512_loadu_si512(b + std::ptrdiff_t(2 * kp + 1) * ldb) : _mm512_setzero_si512();
      _mm512_store_si512(panel + kp * 32, _mm512_permutex2var_epi16(r0, lo, r1));
      _mm512_store_si512(panel + kp * 32 + 16, _mm512_permutex2var_epi16(r0, hi, r1));
    }
    return;
  }
  for (int kp = 0; kp < KP; ++kp)
    for (int n = 0; n < 32; ++n) {
      const uint32_t lo16 = n < nr ? b[std::ptrdiff_t(2 * kp) * ldb + n] : 0;
      const uint32_t hi16 = n < nr && 2 * kp + 1 < K ? b[std::ptrdiff_t(2 * kp + 1) * ldb + n] : 0;
      panel[kp * 32 + n] = lo16 | hi16 << 16;
    }
}

// Not inlined: one copy per library (a tile-sized product per call).
template <bool BRows>
[[gnu::noinline]] inline void amx_bf16_gemm(float* c, std::ptrdiff_t ldc, bool accumulate, const u16* a,
                                            std::ptrdiff_t lda, const u16* b, std::ptrdiff_t ldb, int M, int N, int K) {
  const int KP = (K + 1) / 2, KP16 = (KP + 15) / 16 * 16, Kp = 2 * KP16;
  if (K % 32 != 0) {   // A with K padded by zeros, once for every panel
    u16* ap = static_cast<u16*>(matmul_scratch(1, std::size_t(M) * Kp * 2));
    amx_copy_rows(ap, Kp, M, a, lda, M, K);
    a = ap;
    lda = Kp;
  }
  const int full = M / 32 * 32, rest = M - full;   // blocks of 32 rows, then 1-31 rows
  u16* tail = rest == 0 ? nullptr : static_cast<u16*>(matmul_scratch(2, 32 * std::size_t(Kp) * 2));
  if (tail) amx_copy_rows(tail, Kp, 32, a + std::ptrdiff_t(full) * lda, lda, rest, K);
  uint32_t* panel = static_cast<uint32_t*>(matmul_scratch(0, std::size_t(KP16) * 32 * 4));
  const bool prefetch_b = !BRows && (ldb * 2) % 2048 != 0;   // B's rows not 2 KiB x n apart (below)
  AmxTiles tiles;
  for (int j = 0; j < N; j += 32) {
    const int nr = N - j < 32 ? N - j : 32;
    if constexpr (BRows) bf16_pack_panel_rows(panel, b + j, ldb, K, nr);
    else bf16_pack_panel(panel, b + std::ptrdiff_t(j) * ldb, ldb, K, nr);
    for (int kp = KP; kp < KP16; ++kp) std::memset(panel + kp * 32, 0, 32 * 4);
    // The next panel's rows of a column-stored B go into L2 while the tile unit works (its packing
    // waits on L3 for them otherwise): a share of the rows per block, one line of each per K step
    // of 32. 1 thread, bf16 linear [256, 2816] x [2816, 1024]^T 0.92x the time (K steps of 256,
    // capacity.py). Not for rows 2 KiB x n apart: [2048, 4096] x [4096, 4096]^T took 1.09x.
    const int ahead = prefetch_b && j + 32 < N ? std::min(32, N - j - 32) : 0;
    for (int i = 0, r0 = 0; i < full; i += 32) {
      const int r1 = ahead * (i / 32 + 1) / (full / 32);
      amx_block<2>(c + i * ldc + j, ldc, accumulate, a + i * lda, lda, panel, KP16, 32, nr,
                   b + std::ptrdiff_t(j + 32 + r0) * ldb, r1 - r0, ldb);
      r0 = r1;
    }
    if (rest > 16) amx_block<2>(c + full * ldc + j, ldc, accumulate, tail, Kp, panel, KP16, rest, nr);
    else if (rest > 0) amx_block<1>(c + full * ldc + j, ldc, accumulate, tail, Kp, panel, KP16, rest, nr);
  }
}

// Which bf16 products go to AMX: above kAmxMinRows rows, and above kAmxWideMinRows where the tile
// has at least kAmxWideCols columns. A B panel costs the same for 5 rows or 256, the dot kernels'
// work grows with the rows. The few-rows tiles (16 columns) stay on the dots (the SwiGLU MLP at
// T=16 in 16 x 16 tiles took 2.9x longer on AMX from 5 rows on); on a wide tile (a static M, or a
// dynamic one above the few-rows loop's rows: capacity.py's few_rows_bf16) AMX is faster from 5
// rows on: 1 thread, linear [T, 1024] x [1024, 2816]^T bf16 in 16 x 512 tiles, AMX against dots:
// T = 5: 0.54 / 0.61 ms, 7: 0.54 / 0.75, 16: 0.52 / 1.24 (eager 0.46-0.50); T = 2 and 4: 0.57 and
// 0.53 against 0.39 and 0.42 (the dots' single pass over B wins up to 4 rows).
#ifndef PTO_AMX_MIN_ROWS
#define PTO_AMX_MIN_ROWS 16
#endif
constexpr int kAmxMinRows = PTO_AMX_MIN_ROWS, kAmxWideMinRows = 4, kAmxWideCols = 64;
PTO_INLINE bool use_amx(int M, int N) {
  return (M > kAmxMinRows || (M > kAmxWideMinRows && N >= kAmxWideCols)) && amx_permitted();
}
#endif

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
// ---- a packed, register-blocked kernel (f32, and bf16 widened to f32 while packing) -------------
// Per 2W columns of B (W = the f32 lanes of a vector): a panel with (k, 0..2W) at panel[k * 2W + j]
// (the column-stored B moves in W x W transposes), then MR rows x 2W columns of C in 2 MR
// accumulators over the whole K loop: per k, two panel loads and MR broadcasts of A feed 2 MR FMAs.
// AVX2: W = 8, MR = 6 (12 of 16 registers); AVX-512: W = 16, MR = 12 (24 of 32). 1 thread, tile
// shapes of attention and the cube kernels (M 64..256, N 64..128, K 64..256): AVX2 (Zen 3) 10-25%
// faster than sgemm_ on the tile, which packs both operands and scales C on every call; AVX-512
// (Sapphire Rapids) 256 x 128 x 256 with C accumulated over K = 1024: on par with sgemm_ when B
// comes from L3, 163 vs 143-162 GF/s when it is hot.
#if defined(__AVX512F__)
struct PackedVec {
  using V = __m512;
  static constexpr int W = 16, MR = 12;
  static PTO_INLINE V zero() { return _mm512_setzero_ps(); }
  static PTO_INLINE V load(const float* p) { return _mm512_load_ps(p); }
  static PTO_INLINE V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static PTO_INLINE V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static PTO_INLINE V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static PTO_INLINE void store(float* p, V v) { _mm512_store_ps(p, v); }
  static PTO_INLINE void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static PTO_INLINE __mmask16 mask(int n) { return n >= W ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }
  static PTO_INLINE V load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static PTO_INLINE void store_n(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static PTO_INLINE V widen(const float* p) { return loadu(p); }
  static PTO_INLINE V widen(const uint16_t* p) {   // 16 bf16 -> f32
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
  }
  static PTO_INLINE V widen(const half* p) {   // 16 f16 -> f32
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static PTO_INLINE void transpose(V r[W]) {
    __m512i w[W];
    for (int i = 0; i < W; ++i) w[i] = _mm512_castps_si512(r[i]);
    transpose16x16(w);
    for (int i = 0; i < W; ++i) r[i] = _mm512_castsi512_ps(w[i]);
  }
};
#else
struct PackedVec {
  using V = __m256;
  static constexpr int W = 8, MR = 6;
  static PTO_INLINE V zero() { return _mm256_setzero_ps(); }
  static PTO_INLINE V load(const float* p) { return _mm256_load_ps(p); }
  static PTO_INLINE V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static PTO_INLINE V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static PTO_INLINE V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static PTO_INLINE void store(float* p, V v) { _mm256_store_ps(p, v); }
  static PTO_INLINE void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static PTO_INLINE __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static PTO_INLINE V load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static PTO_INLINE void store_n(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static PTO_INLINE V widen(const float* p) { return loadu(p); }
  static PTO_INLINE V widen(const uint16_t* p) {   // 8 bf16 -> f32
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
  }
  static PTO_INLINE V widen(const half* p) {   // 8 f16 -> f32 (F16C, which every AVX2 core has)
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static PTO_INLINE void transpose(V r[W]) { transpose8x8(r); }
};
#endif
constexpr int kPanelCols = 2 * PackedVec::W;

// Per-thread f32 scratch: slot 0 the B panel, slot 1 A widened to f32.
PTO_INLINE float* packed_scratch(int slot, std::size_t floats) {
  return static_cast<float*>(matmul_scratch(slot, floats * 4));
}

// The valid columns of panel half h (0 or 1) when nr of the panel's 2W are valid: 0..W.
PTO_INLINE int panel_half_cols(int nr, int h) {
  const int cols = nr - h * PackedVec::W;
  return cols < 0 ? 0 : cols > PackedVec::W ? PackedVec::W : cols;
}

// panel[k * 2W + j] = B(k, j) for j < nr (B column-stored: (k, j) at b[j * ldb + k]; with BRows
// row-stored: at b[k * ldb + j]), 0 past nr.
template <bool BRows, typename BT>
PTO_INLINE void pack_panel(float* __restrict__ panel, const BT* __restrict__ b, std::ptrdiff_t ldb, int K, int nr) {
  using P = PackedVec;
  constexpr int W = P::W;
  if constexpr (BRows) {
    for (int k = 0; k < K; ++k) {
      const BT* bk = b + std::ptrdiff_t(k) * ldb;
      for (int h = 0; h < 2; ++h) {
        const int cols = panel_half_cols(nr, h);
        float* dst = panel + k * kPanelCols + h * W;
        if (cols == W) P::store(dst, P::widen(bk + h * W));
        else
          for (int j = 0; j < W; ++j) dst[j] = j < cols ? load1(bk[h * W + j]) : 0.0f;
      }
    }
    return;
  }
  // One half (W columns of B, W lines of memory) at a time over the whole K: half the read streams
  // (AVX2, Zen 3: a [2816, 1024] f32 weight from DRAM packs in 0.62-0.70 ms, 0.89-0.93 ms with
  // both halves per K step). A half with no valid column is zeros; a partly valid one goes
  // element by element (a few-rows tile of 16 columns is one full half on AVX-512: element by
  // element, the SwiGLU MLP at T=16 took 2.5x inductor's time).
  const int kw = K / W * W;
  for (int h = 0; h < 2; ++h) {
    const int cols = panel_half_cols(nr, h);
    if (cols == 0) {
      for (int k = 0; k < K; ++k) P::store(panel + k * kPanelCols + h * W, P::zero());
      continue;
    }
    int k = 0;
    if (cols == W) {
      for (; k < kw; k += W) {
        typename P::V r[W];
        for (int j = 0; j < W; ++j) r[j] = P::widen(b + (h * W + j) * ldb + k);
        P::transpose(r);
        for (int i = 0; i < W; ++i) P::store(panel + (k + i) * kPanelCols + h * W, r[i]);
      }
    }
    for (; k < K; ++k)
      for (int j = 0; j < W; ++j) panel[k * kPanelCols + h * W + j] = j < cols ? load1(b[(h * W + j) * ldb + k]) : 0.0f;
  }
}

// MR rows x 2W columns of C (nr valid) = [C +] A rows (f32, lda) @ the panel.
template <int MR>
PTO_INLINE void packed_block(float* c, std::ptrdiff_t ldc, bool accumulate, const float* a, std::ptrdiff_t lda,
                             const float* panel, int K, int nr) {
  using P = PackedVec;
  constexpr int W = P::W;
  typename P::V c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = P::zero();
  // A's rows as (base of a group of 3) + (0, 1, 2) x lda: MR / 3 pointers and one stride in
  // registers, where one pointer per row spills (x86 addressing scales an index by 1, 2, 4 or 8).
  constexpr int G = (MR + 2) / 3;
  const float* ag[G];
  for (int g = 0; g < G; ++g) ag[g] = a + 3 * g * lda;
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    const typename P::V b0 = P::load(panel + k * kPanelCols), b1 = P::load(panel + k * kPanelCols + W);
    for (int i = 0; i < MR; ++i) {
      const typename P::V av = P::bcast(ag[i / 3] + (i % 3) * lda + k);
      c0[i] = P::fma(av, b0, c0[i]);
      c1[i] = P::fma(av, b1, c1[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    if (nr == kPanelCols) {
      if (accumulate) {
        c0[i] = c0[i] + P::loadu(ci);
        c1[i] = c1[i] + P::loadu(ci + W);
      }
      P::storeu(ci, c0[i]);
      P::storeu(ci + W, c1[i]);
    } else {
      if (accumulate) {
        c0[i] = c0[i] + P::load_n(ci, nr);
        c1[i] = c1[i] + P::load_n(ci + W, nr - W);
      }
      P::store_n(ci, c0[i], nr);
      P::store_n(ci + W, c1[i], nr - W);
    }
  }
}

// The rows below the last full block of MR, in blocks of 8, 4, 2 and 1 (the powers of two below
// MR): few instantiations of the register block, since every one costs each kernel library that
// runs a float TMATMUL compile time (all of 1..12 on AVX-512: +0.4 s a library).
template <int P>
PTO_INLINE void packed_rest(float* c, std::ptrdiff_t ldc, bool accumulate, const float* a, std::ptrdiff_t lda,
                            const float* panel, int K, int nr, int rows) {
  if constexpr (P >= 1) {
    if (rows >= P) {
      packed_block<P>(c, ldc, accumulate, a, lda, panel, K, nr);
      c += P * ldc;
      a += P * lda;
      rows -= P;
    }
    packed_rest<P / 2>(c, ldc, accumulate, a, lda, panel, K, nr, rows);
  }
}

// Not inlined: one copy per element type and library (a tile-sized product per call), instead of
// the register blocks inlined at every TMATMUL of a kernel (seconds of compile time each).
template <typename T, bool BRows = false>
[[gnu::noinline]] inline void packed_gemm(float* c, std::ptrdiff_t ldc, bool accumulate, const T* a, std::ptrdiff_t lda,
                                          const T* b, std::ptrdiff_t ldb, int M, int N, int K) {
  using P = PackedVec;
  constexpr int MR = P::MR;
  const float* af = reinterpret_cast<const float*>(a);
  if constexpr (!std::is_same_v<T, float>) {   // bf16 A: widened once, row-major with lda = K
    float* w = packed_scratch(1, std::size_t(M) * K);
    for (int i = 0; i < M; ++i) {
      int k = 0;
      for (; k + P::W <= K; k += P::W) P::storeu(w + std::ptrdiff_t(i) * K + k, P::widen(a + i * lda + k));
      for (; k < K; ++k) w[std::ptrdiff_t(i) * K + k] = load1(a[i * lda + k]);
    }
    af = w;
    lda = K;
  }
  const int full = M / MR * MR;
  float* panel = packed_scratch(0, std::size_t(K) * kPanelCols);
  for (int j = 0; j < N; j += kPanelCols) {
    const int nr = N - j < kPanelCols ? N - j : kPanelCols;
    pack_panel<BRows>(panel, BRows ? b + j : b + std::ptrdiff_t(j) * ldb, ldb, K, nr);
    float* cj = c + j;
    int i = 0;
    for (; i < full; i += MR) packed_block<MR>(cj + i * ldc, ldc, accumulate, af + i * lda, lda, panel, K, nr);
    packed_rest<(MR > 8 ? 8 : 4)>(cj + i * ldc, ldc, accumulate, af + i * lda, lda, panel, K, nr, M - full);
  }
}
#endif

#ifndef PTO_F32_DOT_ROWS
#define PTO_F32_DOT_ROWS 4
#endif
// Up to this many f32 rows the dot kernel runs instead of the packed kernel (measured against
// sgemm_, which packed_gemm matches or beats; linear [T, 4096] x [4096, 4096]^T, 1 thread: on
// par at 16 rows, behind at 64; ahead at 1-2, where a per-tile call costs more than the math).
constexpr int kF32DotRows = PTO_F32_DOT_ROWS;
#ifndef PTO_BF16_DOT_ROWS_AVX2
#define PTO_BF16_DOT_ROWS_AVX2 4
#endif
// bf16 without AVX512_BF16: up to this many rows the dot kernel, above it packed_gemm.
constexpr int kBf16DotRowsAvx2 = PTO_BF16_DOT_ROWS_AVX2;
#if defined(__AVX512F__)
using F32DotKernel = F32Dot;
#elif defined(__AVX2__) && defined(__FMA__)
using F32DotKernel = F32Dot8;
#endif

// Copy an in-place view (tile.hpp OperandView) into the tile's own storage and drop it: a
// transposed A (the kernels read A by rows), or a row-stored B no row-reading kernel takes.
template <typename TileData> PTO_INLINE void materialize_view(TileData& t) {
  using T = typename TileData::DType;
  const T* v = static_cast<const T*>(t.view_);
  T* d = t.data_;
  const int vr = t.GetValidRow(), vc = t.GetValidCol();
  constexpr int B = 16;   // blocks: one of the two sides is a transpose
  for (int r0 = 0; r0 < vr; r0 += B)
    for (int c0 = 0; c0 < vc; c0 += B) {
      const int r1 = r0 + B < vr ? r0 + B : vr, c1 = c0 + B < vc ? c0 + B : vc;
      for (int r = r0; r < r1; ++r)
        for (int c = c0; c < c1; ++c) d[TileData::offset(r, c)] = v[t.view_at(r, c)];
    }
  t.clear_view();
}

// Up to this many rows of A, a row-stored B goes to brows_dots.
constexpr int kBRowsDotRows = 4;

// c (row-major, ldc) = [cin +] left @ right.
template <typename CT, typename Left, typename Right>
PTO_INLINE void matmul_into(CT* c, const std::ptrdiff_t ldc, const CT* cin, Left& left, Right& right) {
  static_assert(Left::ColStride == 1 && Right::RowStride == 1,
                "TMATMUL: Left and Acc tiles are row-stored, Right tiles column-stored on the CPU");
  using AT = typename Left::DType;
  using BT = typename Right::DType;
  const int M = left.GetValidRow(), K = left.GetValidCol(), N = right.GetValidCol();
  if (M <= 0 || N <= 0) return;
  if (cin != nullptr && cin != c)
    for (int i = 0; i < M; ++i) std::memcpy(c + i * ldc, cin + i * ldc, std::size_t(N) * sizeof(CT));
  const CT* acc_in = cin ? c : nullptr;
  // An operand loaded with LoadHint::InPlace is read where it lies in global memory (tile.hpp):
  // A by rows (a column view is copied first), B by columns, or by rows (a row-major operand).
  if (left.has_view() && left.view_cols_) materialize_view(left);
  const AT* a = left.has_view() ? static_cast<const AT*>(left.view_) : left.data();
  const std::ptrdiff_t lda = left.has_view() ? left.view_ld_ : Left::RowStride;
  if (right.has_view() && !right.view_cols_) {
    const BT* bv = static_cast<const BT*>(right.view_);
    const std::ptrdiff_t ld = right.view_ld_;
    if constexpr (std::is_same_v<CT, float> && std::is_same_v<AT, BT> &&
                  (std::is_same_v<AT, float> || std::is_same_v<AT, bfloat16_t>)) {
      using U = std::conditional_t<std::is_same_v<AT, float>, float, uint16_t>;
      const U* au = reinterpret_cast<const U*>(a);
      const U* bu = reinterpret_cast<const U*>(bv);
      if (M <= kBRowsDotRows) return brows_dots(c, ldc, acc_in, au, lda, bu, ld, M, N, K);
#if defined(__AVX512BF16__) && defined(__AMX_TILE__) && defined(__AMX_BF16__)
      if constexpr (std::is_same_v<U, uint16_t>)
        if (use_amx(M, N)) return amx_bf16_gemm<true>(c, ldc, acc_in != nullptr, au, lda, bu, ld, M, N, K);
#endif
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
      return packed_gemm<U, true>(c, ldc, acc_in != nullptr, au, lda, bu, ld, M, N, K);
#endif
      if constexpr (std::is_same_v<AT, float>)
        if (sgemm_tile(c, ldc, acc_in != nullptr, a, lda, bv, ld, M, N, K, true)) return;
    }
    materialize_view(right);
  }
  const BT* b = right.has_view() ? static_cast<const BT*>(right.view_) : right.data();
  const std::ptrdiff_t ldb = right.has_view() ? right.view_ld_ : Right::ColStride;
  if constexpr (std::is_same_v<CT, float> && std::is_same_v<AT, float> && std::is_same_v<BT, float>) {
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
    if constexpr (Right::isColumnStored) {
      // a few-rows tile (16 x 16, cube/tiling.few_rows_shape) fills half an AVX-512 panel: dots
      if (M <= kF32DotRows || (M <= 16 && N <= PackedVec::W))
        return dots<F32DotKernel>(c, ldc, acc_in, a, lda, b, ldb, M, N, K);
      return packed_gemm(c, ldc, acc_in != nullptr, a, lda, b, ldb, M, N, K);
    }
#endif
    if (sgemm_tile(c, ldc, acc_in != nullptr, a, lda, b, ldb, M, N, K)) return;
  }
#if defined(__AVX512BF16__)
  if constexpr (std::is_same_v<CT, float> && std::is_same_v<AT, bfloat16_t> && std::is_same_v<BT, bfloat16_t> &&
                Right::isColumnStored) {
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
    if (use_amx(M, N))
      return amx_bf16_gemm<false>(c, ldc, acc_in != nullptr, reinterpret_cast<const uint16_t*>(a), lda,
                                  reinterpret_cast<const uint16_t*>(b), ldb, M, N, K);
#endif
    return bf16_matmul(c, ldc, acc_in, reinterpret_cast<const uint16_t*>(a), lda,
                       reinterpret_cast<const uint16_t*>(b), ldb, M, N, K);
  }
#elif defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<CT, float> && std::is_same_v<AT, bfloat16_t> && std::is_same_v<BT, bfloat16_t> &&
                Right::isColumnStored) {
    const auto* a16 = reinterpret_cast<const uint16_t*>(a);
    const auto* b16 = reinterpret_cast<const uint16_t*>(b);
    if (M <= kBf16DotRowsAvx2) return dots<Bf16Dot8>(c, ldc, acc_in, a16, lda, b16, ldb, M, N, K);
    return packed_gemm(c, ldc, acc_in != nullptr, a16, lda, b16, ldb, M, N, K);
  }
#endif
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__) && defined(__F16C__))
  // f16: widened to f32 while packing (the generic kernel's dot products took [256, 2816] x
  // [2816, 1024]^T 90x eager's time)
  if constexpr (std::is_same_v<CT, float> && std::is_same_v<AT, half> && std::is_same_v<BT, half> &&
                Right::isColumnStored)
    return packed_gemm(c, ldc, acc_in != nullptr, a, lda, b, ldb, M, N, K);
#endif
  matmul_dots(c, ldc, acc_in, a, lda, b, ldb, M, N, K);
}

template <typename Acc, typename Left, typename Right>
constexpr bool matmul_shapes_v = Left::Rows == Acc::Rows && Left::Cols == Right::Rows && Right::Cols == Acc::Cols;

template <typename Acc, typename Left, typename Right>
PTO_INLINE void matmul(Acc& acc, const typename Acc::DType* cin, Left& left, Right& right) {
  static_assert(matmul_shapes_v<Acc, Left, Right>,
                "TMATMUL: Left::Rows == Acc::Rows, Left::Cols == Right::Rows, Right::Cols == Acc::Cols");
  static_assert(Acc::ColStride == 1, "TMATMUL: Acc tiles are row-stored on the CPU");
  matmul_into(acc.data(), Acc::RowStride, cin, left, right);
}
}  // namespace pto::detail

namespace pto {
template <AccPhase Phase = AccPhase::Unspecified, detail::TileT Acc, detail::TileT Left, detail::TileT Right, typename... E>
PTO_INST RecordEvent TMATMUL(Acc& acc, Left& left, Right& right, E&...) {
  detail::matmul(acc, nullptr, left, right);
  return {};
}
// CPU-target extension (docs/device_abi.md): acc = A * B computed straight into `into`, the ND
// window of a held gm-pipe slot that the TSTORE of acc after it would copy acc to (the window is
// acc's valid region, of acc's element type; tile/slot_stores.py). acc itself is not written.
template <AccPhase Phase = AccPhase::Unspecified, detail::TileT Acc, detail::TileT Left, detail::TileT Right,
          detail::GlobalT Gm>
PTO_INST RecordEvent TMATMUL(Acc& acc, Left& left, Right& right, Gm& into) {
  static_assert(detail::matmul_shapes_v<Acc, Left, Right>,
                "TMATMUL: Left::Rows == Acc::Rows, Left::Cols == Right::Rows, Right::Cols == Acc::Cols");
  static_assert(std::is_same_v<std::remove_const_t<typename Gm::DType>, typename Acc::DType> && Gm::layout == Layout::ND,
                "TMATMUL into a window: an ND window of the accumulator's element type");
  PTO_CHECK(into.GetShape(0) * into.GetShape(1) * into.GetShape(2) == 1 && into.GetShape(3) == left.GetValidRow() &&
                into.GetShape(4) == right.GetValidCol() && into.GetStride(4) == 1,
            "TMATMUL into a window: the window must be the product's rows x cols, unit column stride");
  (void)acc;
  detail::matmul_into(into.data(), std::ptrdiff_t(into.GetStride(3)), static_cast<typename Acc::DType*>(nullptr), left, right);
  return {};
}
// accOut = accIn + A * B (accOut may be accIn).
template <AccPhase Phase = AccPhase::Unspecified, detail::TileT Acc, detail::TileT AccIn, detail::TileT Left,
          detail::TileT Right, typename... E>
PTO_INST RecordEvent TMATMUL_ACC(Acc& accOut, AccIn& accIn, Left& left, Right& right, E&...) {
  static_assert(std::is_same_v<typename Acc::DType, typename AccIn::DType> && Acc::RowStride == AccIn::RowStride,
                "TMATMUL_ACC: accumulators of one type and shape");
  detail::matmul(accOut, accIn.data(), left, right);
  return {};
}
template <AccPhase Phase = AccPhase::Unspecified, detail::TileT Acc, detail::TileT Left, detail::TileT Right>
PTO_INST RecordEvent TMATMUL_ACC(Acc& acc, Left& left, Right& right) {
  detail::matmul(acc, acc.data(), left, right);
  return {};
}
// acc = A * B + bias (bias: a row of N values).
template <AccPhase Phase = AccPhase::Unspecified, detail::TileT Acc, detail::TileT Left, detail::TileT Right,
          detail::TileT Bias, typename... E>
PTO_INST RecordEvent TMATMUL_BIAS(Acc& acc, Left& left, Right& right, Bias& bias, E&...) {
  detail::matmul(acc, nullptr, left, right);
  const int M = left.GetValidRow(), N = right.GetValidCol();
  for (int i = 0; i < M; ++i) {
    auto* c = acc.data() + Acc::offset(i, 0);
#pragma omp simd
    for (int j = 0; j < N; ++j) c[j] += static_cast<typename Acc::DType>(detail::to_c(bias.data()[Bias::offset(0, j)]));
  }
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
