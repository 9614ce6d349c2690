// pto_dynamo CPU target: data movement and layout instructions (pto_isa.md §3.1):
// TLOAD, TSTORE (incl. Acc -> GM with conversion, AtomicAdd), TMOV, TEXTRACT, TTRANS, TTRI.
#pragma once
#include <atomic>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include "pto/cpu/tile.hpp"

#pragma GCC visibility push(hidden)

namespace pto::detail {
template <typename T> PTO_INLINE T pad_value(PadValue pad) {
  using C = compute_t<T>;
  if (pad == PadValue::Max) {
    if constexpr (std::numeric_limits<C>::has_infinity) return from_c<T>(std::numeric_limits<C>::infinity());
    else return from_c<T>(std::numeric_limits<C>::max());
  }
  if (pad == PadValue::Min) {
    if constexpr (std::numeric_limits<C>::has_infinity) return from_c<T>(-std::numeric_limits<C>::infinity());
    else return from_c<T>(std::numeric_limits<C>::lowest());
  }
  return from_c<T>(C(0));
}

// Fill rows [r0, r1) x cols [c0, c1) of a tile with v.
template <typename TileData>
PTO_INLINE void fill_rect(TileData& t, int r0, int r1, int c0, int c1, typename TileData::DType v) {
  for (int r = r0; r < r1; ++r) {
    typename TileData::DType* row = t.data() + TileData::offset(r, 0);
#pragma omp simd
    for (int c = c0; c < c1; ++c) row[std::ptrdiff_t(c) * TileData::ColStride] = v;
  }
}

// TLOAD's pad: everything outside the valid region gets the tile's pad value (the CPU
// simulator's behaviour; on the device do not rely on it).
template <typename TileData> PTO_INLINE void pad_outside_valid(TileData& t, int vr, int vc) {
  if (vr == TileData::Rows && vc == TileData::Cols) return;
  PadValue pad = PadValue::Null;
  if constexpr (std::is_same_v<std::remove_cv_t<decltype(TileData::PadVal)>, PadValue>) pad = TileData::PadVal;
  const auto v = pad_value<typename TileData::DType>(pad);
  fill_rect(t, 0, vr, vc, TileData::Cols, v);
  fill_rect(t, vr, TileData::Rows, 0, TileData::Cols, v);
}

// Copy n elements, GM (stride ss) <-> tile line (stride ds), same element size. `Full` is the
// tile's static row length: a full contiguous row is copied with a compile-time trip count
// (no loop prologue/epilogue; per-row overhead dominated TLOAD/TSTORE of small tiles).
template <int Full = 0, typename D, typename S>
PTO_INLINE void copy_line(D* __restrict__ d, std::ptrdiff_t ds, const S* __restrict__ s, std::ptrdiff_t ss, int64_t n) {
  static_assert(sizeof(D) == sizeof(S));
  if (ds == 1 && ss == 1) {  // an inline vector copy: rows are short, a libc memcpy call costs more
    if constexpr (Full > 0) {
      if (n == Full) {
#pragma omp simd
        for (int i = 0; i < Full; ++i) d[i] = std::bit_cast<D>(s[i]);
        return;
      }
    }
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = std::bit_cast<D>(s[i]);
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) d[i * ds] = std::bit_cast<D>(s[i * ss]);
}

// Walk the GM rectangle that maps onto tile rows/cols (pto_isa.md §2.2):
// ND: tile row r <- dims (0,1,2,3) (3 fastest), tile col c <- dim 4.
// DN: tile row r <- dim 3, tile col c <- dims (0,1,2,4) (4 fastest).
// body(tile_row, tile_col0, gm_offset, gm_step, count, along_row) moves `count` elements
// starting at tile (row, col0) along the tile row (along_row) or down the tile column.
// ---- streaming (non-temporal) stores ---------------------------------------------------------
// A TSTORE whose destination is never read again soon (a large output that does not fit any
// cache level) pays for every line twice with ordinary stores: the line is first read from DRAM
// (read-for-ownership) and later written back. Streaming stores write whole 64-byte lines
// through write-combining buffers without the read, cutting a store's DRAM traffic in half, but
// they also leave the line out of every cache, so a consumer that reads the data right away
// (the next kernel of a small decode step) would miss. The choice is therefore explicit:
// TSTORE streams only when asked to (StoreHint::Stream, see TSTORE below), and even then only
// rows of at least kStreamMinBytes contiguous bytes (short rows would leave partially written
// write-combining buffers). PTO_CPU_STREAM_STORES=0 turns streaming off, =2 streams every large
// contiguous row (an experiment switch; the default 1 honours the hint).
#ifndef PTO_CPU_STREAM_STORES
#define PTO_CPU_STREAM_STORES 1
#endif
constexpr int64_t kStreamMinBytes = 1024;

// Copy `bytes` from s to d (no overlap) with streaming stores: ordinary stores up to d's next
// 64-byte boundary, then full lines with non-temporal stores, then the tail. The caller issues
// the store fence (stream_fence) before the data may be observed by another thread.
PTO_INLINE void stream_copy_bytes(unsigned char* __restrict__ d, const unsigned char* __restrict__ s, int64_t bytes) {
#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__)
  const int64_t to_line = (64 - int64_t(reinterpret_cast<uintptr_t>(d) & 63)) & 63;
  const int64_t head = to_line < bytes ? to_line : bytes;
  std::memcpy(d, s, std::size_t(head));
  d += head; s += head; bytes -= head;
  const int64_t lines = bytes >> 6;
  for (int64_t i = 0; i < lines; ++i, d += 64, s += 64) {
#if defined(__AVX512F__)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(d), _mm512_loadu_si512(s));
#elif defined(__AVX__)
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s)));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + 32), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 32)));
#else
    for (int k = 0; k < 64; k += 16)
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + k), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k)));
#endif
  }
  std::memcpy(d, s, std::size_t(bytes & 63));
#else
  std::memcpy(d, s, std::size_t(bytes));
#endif
}
// Streaming stores are weakly ordered: fence them before the TSTORE returns, so that a later
// TLOAD by any block (after the launch's barrier) sees them, exactly as ordinary stores.
PTO_INLINE void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// ---- software prefetch of the next tile (TLOAD with LoadHint::PrefetchNext) --------------------
// On one core a tile program alternates between TLOADs that wait for DRAM and V-ops that run on
// cached tiles while DRAM idles; the hardware prefetchers do not run far enough ahead across
// those gaps (nor across 4 KiB pages). A kernel whose tile loop walks a tensor's rows in order
// can ask TLOAD to prefetch the rows right after the ones it loads (the next tile's rectangle),
// so the next tile's lines are in flight during this tile's V-ops. Copy in 256-byte steps, each
// with the prefetch of 4 lines of the next tile; prefetcht1 (into L2): prefetcht0 would pull the
// next tile into L1 and evict the tiles being worked on, prefetchnta measured slower.
// `n` is an int, as a tile's valid extent is: with an int64_t GCC could not bound the scalar tail
// and warned that a 2^62-th iteration would be undefined (-Waggressive-loop-optimizations).
template <typename D, typename S>
PTO_INLINE void copy_prefetch(D* __restrict__ d, const S* __restrict__ s, const S* pf, int n) {
  constexpr int B = 256 / int(sizeof(S));
  int i = 0;
  for (; i + B <= n; i += B) {
    const char* p = reinterpret_cast<const char*>(pf + i);
    __builtin_prefetch(p, 0, 2); __builtin_prefetch(p + 64, 0, 2);
    __builtin_prefetch(p + 128, 0, 2); __builtin_prefetch(p + 192, 0, 2);
    std::memcpy(d + i, s + i, 256);
  }
  for (; i < n; ++i) d[i] = std::bit_cast<D>(s[i]);
}

}  // namespace pto::detail

namespace pto::cpu {
// A GM window (columns of `col_bytes` bytes, `ld_bytes` apart) whose cache lines the next compute
// instruction prefetches a few at a time while it runs (TLOAD PrefetchNext of a DN view sets it).
struct DeferredPrefetch {
  const char* col = nullptr;                       // the current column
  int64_t ld_bytes = 0, lines_per_col = 0, line = 0, cols_left = 0;
  PTO_INLINE void set(const char* b, int64_t ld, int64_t col_bytes, int64_t cols) {
    col = b; ld_bytes = ld; lines_per_col = (col_bytes + 63) / 64; line = 0; cols_left = cols;
  }
  PTO_INLINE int64_t remaining() const { return cols_left > 0 ? cols_left * lines_per_col - line : 0; }
  // Prefetch (into L2) up to n more lines of the window. A compute loop calls this with a few
  // lines per iteration: a burst of prefetches stalls once the core's miss buffers are full.
  PTO_INLINE void step(int64_t n) {
    for (; n > 0 && cols_left > 0; --n) {
      __builtin_prefetch(col + line * 64, 0, 2);
      if (++line == lines_per_col) { line = 0; col += ld_bytes; --cols_left; }
    }
  }
};
inline thread_local DeferredPrefetch t_deferred_prefetch;
}  // namespace pto::cpu

namespace pto::detail {
#if defined(__AVX512F__)
// r[i] (16 words each) -> r[j] = (r[0][j], ..., r[15][j]): a 16 x 16 transpose of 32-bit words
// (unpacks within 128-bit lanes, then lane shuffles).
PTO_INLINE void transpose16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {             // u[g + q], lane j: rows g..g+3, word 4j + q
    u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int q = 0; q < 4; ++q) {
    const __m512i a = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x88), b = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xDD);
    const __m512i c = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x88), d = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xDD);
    r[q] = _mm512_shuffle_i32x4(a, c, 0x88);
    r[4 + q] = _mm512_shuffle_i32x4(b, d, 0x88);
    r[8 + q] = _mm512_shuffle_i32x4(a, c, 0xDD);
    r[12 + q] = _mm512_shuffle_i32x4(b, d, 0xDD);
  }
}
#endif

// The elements a blocked row -> column transpose of the window at (row, col) leaves to do one by
// one: the right edge of the full blocks' rows (columns vc_b..vc) and the rows below them.
template <typename Dst, typename Src, typename T>
PTO_INLINE void transpose_edges(T* d, const T* s, int row, int col, int vr, int vc, int vr_b, int vc_b) {
  auto copy = [&](int ra, int rb, int ca, int cb) {
    for (int r = ra; r < rb; ++r)
      for (int c = ca; c < cb; ++c) d[Dst::offset(r, c)] = s[Src::offset(r + row, c + col)];
  };
  copy(0, vr_b, vc_b, vc);
  copy(vr_b, vr, 0, vc);
}

#if defined(__AVX2__)
// r[i] (8 floats each) -> r[j] = (r[0][j], ..., r[7][j]): an 8 x 8 transpose (unpacks and shuffles
// within 128-bit lanes, then lane swaps).
PTO_INLINE void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// dst (column-stored) = src (row-stored) window at (row, col), 32-bit elements: 8 x 8 blocks, the
// edges element by element.
template <typename Dst, typename Src>
PTO_INLINE void transpose_rows_u32(Dst& dst, Src& src, int row, int col, int vr, int vc) {
  static_assert(sizeof(typename Dst::DType) == 4 && Dst::RowStride == 1 && Src::ColStride == 1);
  const int vr8 = vr / 8 * 8, vc8 = vc / 8 * 8;
  const auto* sbase = reinterpret_cast<const float*>(src.data());
  auto* dbase = reinterpret_cast<float*>(dst.data());
  for (int r0 = 0; r0 < vr8; r0 += 8)
    for (int c0 = 0; c0 < vc8; c0 += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(sbase + Src::offset(row + r0 + i, col + c0));
      transpose8x8(r);
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dbase + Dst::offset(r0, c0 + j), r[j]);
    }
  transpose_edges<Dst, Src>(dbase, sbase, row, col, vr, vc, vr8, vc8);
}
#endif

#if defined(__AVX512BW__)
// dst (column-stored) = src (row-stored) window at (row, col), 16-bit elements: 32 x 32 blocks.
// Two source rows interleave into 32-bit words (one word per column: the column's two elements,
// consecutive in dst), which 16 x 16 word transposes turn into runs down dst's columns.
template <typename Dst, typename Src>
PTO_INLINE void transpose_rows_u16(Dst& dst, Src& src, int row, int col, int vr, int vc) {
  static_assert(sizeof(typename Dst::DType) == 2 && Dst::RowStride == 1 && Src::ColStride == 1);
  const __m512i idx0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i idx1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const int vr32 = vr / 32 * 32, vc32 = vc / 32 * 32;
  const auto* sbase = reinterpret_cast<const uint16_t*>(src.data());
  auto* dbase = reinterpret_cast<uint16_t*>(dst.data());
  for (int r0 = 0; r0 < vr32; r0 += 32)
    for (int c0 = 0; c0 < vc32; c0 += 32) {
      __m512i w0[16], w1[16];                         // words of columns c0..c0+15 / c0+16..c0+31
      for (int p = 0; p < 16; ++p) {
        const __m512i x = _mm512_loadu_si512(sbase + Src::offset(row + r0 + 2 * p, col + c0));
        const __m512i y = _mm512_loadu_si512(sbase + Src::offset(row + r0 + 2 * p + 1, col + c0));
        const __m512i lo = _mm512_unpacklo_epi16(x, y), hi = _mm512_unpackhi_epi16(x, y);
        w0[p] = _mm512_permutex2var_epi32(lo, idx0, hi);
        w1[p] = _mm512_permutex2var_epi32(lo, idx1, hi);
      }
      transpose16x16(w0);
      transpose16x16(w1);
      for (int c = 0; c < 16; ++c) {
        _mm512_storeu_si512(dbase + Dst::offset(r0, c0 + c), w0[c]);
        _mm512_storeu_si512(dbase + Dst::offset(r0, c0 + 16 + c), w1[c]);
      }
    }
  transpose_edges<Dst, Src>(dbase, sbase, row, col, vr, vc, vr32, vc32);
}
#endif

template <typename G, typename Body> PTO_INLINE void walk_gm(const G& g, int vr, int vc, Body body) {
  const int64_t s0 = g.GetShape(0), s1 = g.GetShape(1), s2 = g.GetShape(2), s3 = g.GetShape(3), s4 = g.GetShape(4);
  const int64_t t0 = g.GetStride(0), t1 = g.GetStride(1), t2 = g.GetStride(2), t3 = g.GetStride(3), t4 = g.GetStride(4);
  if constexpr (G::layout == Layout::ND) {
    PTO_CHECK(s0 * s1 * s2 * s3 == vr && s4 == vc,
              "TLOAD/TSTORE (ND): GM shape dims 0..3 must multiply to the tile's valid rows and dim 4 equal its valid cols");
    int r = 0;
    for (int64_t i0 = 0; i0 < s0; ++i0)
      for (int64_t i1 = 0; i1 < s1; ++i1)
        for (int64_t i2 = 0; i2 < s2; ++i2)
          for (int64_t i3 = 0; i3 < s3; ++i3, ++r) body(r, 0, i0 * t0 + i1 * t1 + i2 * t2 + i3 * t3, t4, s4, true);
  } else if constexpr (G::layout == Layout::DN) {
    PTO_CHECK(s3 == vr && s0 * s1 * s2 * s4 == vc,
              "TLOAD/TSTORE (DN): GM dim 3 must equal the tile's valid rows and dims 0,1,2,4 multiply to its valid cols");
    int c = 0;
    for (int64_t i0 = 0; i0 < s0; ++i0)
      for (int64_t i1 = 0; i1 < s1; ++i1)
        for (int64_t i2 = 0; i2 < s2; ++i2)
          for (int64_t i4 = 0; i4 < s4; ++i4, ++c) body(0, c, i0 * t0 + i1 * t1 + i2 * t2 + i4 * t4, t3, s3, false);
  } else {
    static_assert(G::layout != Layout::NZ, "TLOAD/TSTORE: the CPU target does not implement NZ global tensors");
  }
}

template <typename T> PTO_INLINE void atomic_add(T* p, T v) {
  if constexpr (std::is_integral_v<T> || std::is_floating_point_v<T>) {
    std::atomic_ref<T>(*p).fetch_add(v, std::memory_order_relaxed);
  } else {  // 16-bit float storage: compare-and-swap on the bits
    static_assert(sizeof(T) == 2);
    std::atomic_ref<uint16_t> ref(*reinterpret_cast<uint16_t*>(p));
    uint16_t old = ref.load(std::memory_order_relaxed);
    for (;;) {
      const T sum = from_c<T>(to_c(std::bit_cast<T>(old)) + to_c(v));
      if (ref.compare_exchange_weak(old, std::bit_cast<uint16_t>(sum), std::memory_order_relaxed)) break;
    }
  }
}
}  // namespace pto::detail

namespace pto {
// Cache hints of the CPU target's TLOAD/TSTORE extension forms (docs/device_abi.md): the plain ISA
// forms never prefetch and never stream; a kernel asks for either explicitly.
// Flags, combined with |:
//   PrefetchNext  prefetch the next tile of a loop that walks the tensor in order (tload below);
//   InPlace       a matmul operand (a Mat tile) read in place: the tile keeps a view of the
//                 global window instead of a copy when the window's lines are unit-stride in the
//                 tile's storage order (tile.hpp OperandView); TMOV/TEXTRACT into Left/Right pass
//                 the view on and TMATMUL reads the operand from global memory. A CPU core copying
//                 a window and then reading the copy does the DMA's work itself, and waits for
//                 DRAM twice: a decode step's weights stream once instead. On a Vec tile: the
//                 tile points at the window itself when its rows lie as the tile's would
//                 (tload_vec_in_place), and the V-ops read the input there. The lowering asks for
//                 it only for kernel inputs, which no block writes during the launch, and (Vec)
//                 only for tiles that no instruction writes or aliases.
enum class LoadHint : int { None = 0, PrefetchNext = 1, InPlace = 2 };
constexpr LoadHint operator|(LoadHint a, LoadHint b) { return LoadHint(int(a) | int(b)); }
constexpr bool has_hint(LoadHint set, LoadHint flag) { return (int(set) & int(flag)) != 0; }

// ---- TLOAD: GM -> tile over dst's valid region, pad value elsewhere ---------------------------
namespace detail {
// LoadHint::InPlace: make dst a view of a 2-D window whose lines run unit-stride in dst's storage
// order (columns of a column-stored tile from a DN window, rows of a row-stored one from an ND
// window). False (dst copies as usual) for any other window.
template <typename Dst, typename G> PTO_INLINE bool tload_in_place(Dst& dst, G& gm, int vr, int vc, LoadHint hint) {
  using GT = std::remove_const_t<typename G::DType>;
  if (gm.GetShape(0) * gm.GetShape(1) * gm.GetShape(2) != 1) return false;
  PTO_CHECK(gm.GetShape(3) == vr && gm.GetShape(4) == vc, "TLOAD: the GM window's dims 3, 4 must equal the tile's valid region");
  const GT* base = gm.data();
  if constexpr (G::layout == Layout::DN && Dst::isColumnStored) {
    if (gm.GetStride(3) != 1) return false;
    const int64_t ld = gm.GetStride(4);
    if (has_hint(hint, LoadHint::PrefetchNext))
      cpu::t_deferred_prefetch.set(reinterpret_cast<const char*>(base + vr), ld * int64_t(sizeof(GT)),
                                   int64_t(vr) * int64_t(sizeof(GT)), vc);
    dst.set_view(base, ld, true);
    return true;
  } else if constexpr (G::layout == Layout::ND && !Dst::isColumnStored) {
    if (gm.GetStride(4) != 1) return false;
    dst.set_view(base, gm.GetStride(3), false);
    return true;
  }
  return false;
}

// LoadHint::InPlace into a Vec tile: point dst at an ND window whose rows lie where dst's own
// storage would put them (one row, or rows exactly Cols elements apart), so that the V-ops read
// the kernel input where it is instead of a copy (one pass over the data fewer; on a CPU the copy
// is the core's own work). False (dst copies as usual) for any other window. Nothing outside the
// valid region is padded: V-ops read valid regions only.
template <typename Dst, typename G> PTO_INLINE bool tload_vec_in_place(Dst& dst, G& gm, int vr, int vc) {
  if constexpr (G::layout == Layout::ND && !Dst::isColumnStored) {
    if (gm.GetShape(0) * gm.GetShape(1) * gm.GetShape(2) != 1 || gm.GetStride(4) != 1) return false;
    if (vr > 1 && gm.GetStride(3) != Dst::Cols) return false;
    PTO_CHECK(gm.GetShape(3) == vr && gm.GetShape(4) == vc, "TLOAD: the GM window's dims 3, 4 must equal the tile's valid region");
    dst.home_ = dst.data_;
    dst.data_ = reinterpret_cast<typename Dst::DType*>(const_cast<std::remove_const_t<typename G::DType>*>(gm.data()));
    return true;
  }
  return false;
}

template <typename Dst, typename G> PTO_INLINE void tload(Dst& dst, G& gm, LoadHint hint) {
  using DT = typename Dst::DType;
  using GT = std::remove_const_t<typename G::DType>;
  static_assert(sizeof(DT) == sizeof(GT), "TLOAD: tile and GM element sizes must match (no conversion)");
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  if constexpr (Dst::kHasView) {
    dst.clear_view();
    if (has_hint(hint, LoadHint::InPlace) && tload_in_place(dst, gm, vr, vc, hint)) return;
  }
  if constexpr (Dst::kCanPointAtGm) {
    if (dst.home_ != nullptr) {          // loaded in place before: copy into its own storage again
      dst.data_ = static_cast<DT*>(dst.home_);
      dst.home_ = nullptr;
    }
    if (has_hint(hint, LoadHint::InPlace) && tload_vec_in_place(dst, gm, vr, vc)) return;
  }
  // The pad fill is the simulator's courtesy to vector code; a Mat tile is only ever read over
  // valid regions (TMOV/TEXTRACT to L0, TMATMUL), and filling it would cost a decode step (one
  // valid row of a 128-row tile) a whole tile of stores per K step.
  if constexpr (Dst::Loc != TileType::Mat) pad_outside_valid(dst, vr, vc);
  const GT* base = gm.data();
  if constexpr (G::layout == Layout::DN && Dst::RowStride == 1) {
    // A column-contiguous window (a transposed matmul operand): each column is a separate DRAM
    // stream, and a plain copy keeps too few misses in flight (a copy of a [128, 512] f32 window
    // of a 64 MiB weight ran at 6 GB/s). Prefetching the column 8 ahead (into L2) while copying
    // this one doubles that; prefetching the next tile during the copy measured slower.
    // PrefetchNext defers the next tile (the vr elements after this window in every column: the
    // next K step) to the next TMATMUL, which spreads its prefetches over its compute
    // (DeferredPrefetch), so DRAM works while the core computes.
    if (gm.GetShape(0) * gm.GetShape(1) * gm.GetShape(2) == 1 && gm.GetStride(3) == 1) {
      PTO_CHECK(gm.GetShape(3) == vr && gm.GetShape(4) == vc,
                "TLOAD (DN): GM dim 3 must equal the tile's valid rows and dims 0,1,2,4 multiply to its valid cols");
      const int64_t ld = gm.GetStride(4);
      if (has_hint(hint, LoadHint::PrefetchNext))
        cpu::t_deferred_prefetch.set(reinterpret_cast<const char*>(base + vr), ld * int64_t(sizeof(GT)),
                                     int64_t(vr) * int64_t(sizeof(GT)), vc);
      for (int c = 0; c < vc; ++c) copy_prefetch(dst.data() + Dst::offset(0, c), base + c * ld, base + (c + 8) * ld, vr);
      return;
    }
  }
  if constexpr (G::layout == Layout::ND && Dst::ColStride == 1) {
    // PrefetchNext on a 2-D row-contiguous view: the next tile is the vr rows after this one.
    if (has_hint(hint, LoadHint::PrefetchNext) && gm.GetShape(0) * gm.GetShape(1) * gm.GetShape(2) == 1 &&
        gm.GetStride(4) == 1) {
      PTO_CHECK(gm.GetShape(3) == vr && gm.GetShape(4) == vc,
                "TLOAD (ND): GM shape dims 0..3 must multiply to the tile's valid rows and dim 4 equal its valid cols");
      const int64_t ld = gm.GetStride(3), ahead = int64_t(vr) * ld;
      for (int r = 0; r < vr; ++r) copy_prefetch(dst.data() + Dst::offset(r, 0), base + r * ld, base + r * ld + ahead, vc);
      return;
    }
  }
  walk_gm(gm, vr, vc, [&](int r, int c, int64_t off, int64_t step, int64_t n, bool along_row) PTO_LAMBDA {
    DT* d = dst.data() + Dst::offset(r, c);
    copy_line<Dst::Cols>(d, along_row ? Dst::ColStride : Dst::RowStride, base + off, step, n);
  });
}
}  // namespace detail

template <detail::TileT Dst, detail::GlobalT G, typename... E>
PTO_INST RecordEvent TLOAD(Dst& dst, G& gm, E&...) {
  detail::tload(dst, gm, LoadHint::None);
  return {};
}
// CPU-target extension: TLOAD with a cache hint (LoadHint::PrefetchNext, see copy_prefetch).
template <detail::TileT Dst, detail::GlobalT G>
PTO_INST RecordEvent TLOAD(Dst& dst, G& gm, LoadHint hint) {
  detail::tload(dst, gm, hint);
  return {};
}

// ---- TSTORE: tile -> GM over src's valid region -------------------------------------------------
// Whether a TSTORE may bypass the caches (see stream_copy_bytes): Cache is the ISA's plain
// TSTORE; Stream asks for streaming stores, taken for contiguous rows of >= kStreamMinBytes.
enum class StoreHint : int { Cache = 0, Stream = 1 };
// A tensor at least this large is streamed by the renderer's size-conditional hint (TSTORE attr
// stream_bytes): half the last-level cache this core shares (sysfs cpu0 cache index3, the L3 of
// its core complex; sysconf reports a whole package's), at least kStreamTensorMinBytes. A larger
// output would push the kernel's own inputs and the next kernel's operands out of that cache, so
// keeping it there only costs the read-for-ownership of every line; smaller outputs stay cached
// for the kernel that reads them (residual + RMSNorm at [256, 4096] f32, 4 MiB per output, on a
// 32 MiB L3: 8-13% faster cached than streamed).
constexpr int64_t kStreamTensorMinBytes = int64_t(2) << 20;
inline int64_t stream_tensor_bytes() {
  static const int64_t bytes = [] {
    int64_t llc = 0;
    if (std::FILE* f = std::fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r")) {
      long n = 0;
      char unit = 0;
      if (std::fscanf(f, "%ld%c", &n, &unit) >= 1)
        llc = int64_t(n) * (unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : 1);
      std::fclose(f);
    }
    return std::max(kStreamTensorMinBytes, llc / 2);
  }();
  return bytes;
}

namespace detail {
template <AtomicType Atomic, typename Src, typename G> PTO_INLINE void tstore(G& gm, Src& src, StoreHint hint = StoreHint::Cache) {
  using ST = typename Src::DType;
  using GT = std::remove_const_t<typename G::DType>;
  constexpr bool convert = !std::is_same_v<ST, GT>;
  static_assert(!convert || Src::Loc == TileType::Acc || sizeof(ST) == sizeof(GT),
                "TSTORE: from Vec/Mat the tile and GM element sizes must match");
  const int vr = src.GetValidRow(), vc = src.GetValidCol();
  GT* base = gm.data();
  bool streamed = false;
  const bool may_stream = Atomic == AtomicType::AtomicNone && !convert &&
                          (PTO_CPU_STREAM_STORES == 2 || (PTO_CPU_STREAM_STORES == 1 && hint == StoreHint::Stream));
  walk_gm(gm, vr, vc, [&](int r, int c, int64_t off, int64_t step, int64_t n, bool along_row) PTO_LAMBDA {
    const ST* s = src.data() + Src::offset(r, c);
    const std::ptrdiff_t ss = along_row ? Src::ColStride : Src::RowStride;
    GT* d = base + off;
    if constexpr (Atomic == AtomicType::AtomicAdd) {
      for (int64_t i = 0; i < n; ++i) atomic_add(d + i * step, from_c<GT>(to_c(s[i * ss])));
    } else if constexpr (convert && Src::Loc == TileType::Acc) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) d[i * step] = from_c<GT>(to_c(s[i * ss]));
    } else {
      if (may_stream && step == 1 && ss == 1 && n * int64_t(sizeof(GT)) >= kStreamMinBytes) {
        stream_copy_bytes(reinterpret_cast<unsigned char*>(d), reinterpret_cast<const unsigned char*>(s),
                          n * int64_t(sizeof(GT)));
        streamed = true;
        return;
      }
      copy_line<Src::Cols>(d, step, s, ss, n);
    }
  });
  if (streamed) stream_fence();
}
}  // namespace detail

template <typename TileData, typename GlobalData, AtomicType atomicType = AtomicType::AtomicNone, typename... E>
  requires(detail::TileT<TileData> && detail::GlobalT<GlobalData>)
PTO_INST RecordEvent TSTORE(GlobalData& dst, TileData& src, E&...) {
  detail::tstore<atomicType>(dst, src);
  return {};
}
// CPU-target extension (docs/device_abi.md): TSTORE with a cache hint, which may be a run-time
// value (the renderer emits `hint_expr ? StoreHint::Stream : StoreHint::Cache`).
template <typename TileData, typename GlobalData>
  requires(detail::TileT<TileData> && detail::GlobalT<GlobalData>)
PTO_INST RecordEvent TSTORE(GlobalData& dst, TileData& src, StoreHint hint) {
  detail::tstore<AtomicType::AtomicNone>(dst, src, hint);
  return {};
}
template <STPhase Phase, typename TileData, typename GlobalData, typename... E>
  requires(detail::TileT<TileData> && detail::GlobalT<GlobalData>)
PTO_INST RecordEvent TSTORE(GlobalData& dst, TileData& src, E&...) {
  detail::tstore<AtomicType::AtomicNone>(dst, src);
  return {};
}

// ---- TMOV / TEXTRACT: logical element copy with value conversion --------------------------------
namespace detail {
// TEXTRACT from a tile holding an in-place view (LoadHint::InPlace): a Left/Right/Mat destination
// of the same element type takes the view at (row, col), whatever its storage order (TMATMUL reads
// either); any other destination gets the elements, read through the view.
template <typename Dst, typename Src> PTO_INLINE void extract_from_view(Dst& dst, Src& src, int row, int col) {
  using DT = typename Dst::DType;
  using ST = typename Src::DType;
  const ST* v = static_cast<const ST*>(src.view_);
  if constexpr (Dst::kHasView && std::is_same_v<DT, ST>) {
    dst.set_view(v + src.view_at(row, col), src.view_ld_, src.view_cols_);
  } else {
    if constexpr (Dst::kHasView) dst.clear_view();
    const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
    DT* d = dst.data();
    for (int r = 0; r < vr; ++r)
      for (int c = 0; c < vc; ++c) d[Dst::offset(r, c)] = from_c<DT>(to_c(v[src.view_at(r + row, c + col)]));
  }
}
}  // namespace detail

template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TEXTRACT(Dst& dst, Src& src, uint16_t row = 0, uint16_t col = 0, E&...) {
  using DT = typename Dst::DType;
  if constexpr (Src::kHasView) {
    if (src.has_view()) {
      detail::extract_from_view(dst, src, row, col);
      return {};
    }
  }
  if constexpr (Dst::kHasView) dst.clear_view();
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  if constexpr (std::is_same_v<DT, typename Src::DType> && Dst::isColumnStored == Src::isColumnStored) {
    // one storage order and no conversion: contiguous lines (rows, or columns of Zn tiles)
    constexpr bool by_col = Dst::isColumnStored;
    const int lines = by_col ? vc : vr, len = by_col ? vr : vc;
    for (int l = 0; l < lines; ++l) {
      DT* d = dst.data() + (by_col ? Dst::offset(0, l) : Dst::offset(l, 0));
      const DT* s = src.data() + (by_col ? Src::offset(row, col + l) : Src::offset(row + l, col));
      std::memcpy(d, s, std::size_t(len) * sizeof(DT));
    }
    return {};
  } else if constexpr (std::is_same_v<DT, typename Src::DType>) {
    // one element type, the other storage order (an Nz Mat tile into a column-stored Right: a
    // row-major matmul operand): a transpose, bits copied as they are
#if defined(__AVX512BW__)
    if constexpr (sizeof(DT) == 2 && !Src::isColumnStored && Dst::isColumnStored) {
      detail::transpose_rows_u16(dst, src, row, col, vr, vc);
      return {};
    }
#endif
#if defined(__AVX2__)
    if constexpr (sizeof(DT) == 4 && !Src::isColumnStored && Dst::isColumnStored) {
      detail::transpose_rows_u32(dst, src, row, col, vr, vc);
      return {};
    }
#endif
    constexpr int B = 16;
    for (int r0 = 0; r0 < vr; r0 += B)
      for (int c0 = 0; c0 < vc; c0 += B) {
        const int r1 = r0 + B < vr ? r0 + B : vr, c1 = c0 + B < vc ? c0 + B : vc;
        for (int r = r0; r < r1; ++r)
          for (int c = c0; c < c1; ++c)
            dst.data()[Dst::offset(r, c)] = std::bit_cast<DT>(src.data()[Src::offset(r + row, c + col)]);
      }
    return {};
  }
  for (int r = 0; r < vr; ++r) {
    DT* d = dst.data() + Dst::offset(r, 0);
    const typename Src::DType* s = src.data() + Src::offset(r + row, col);
#pragma omp simd
    for (int c = 0; c < vc; ++c)
      d[std::ptrdiff_t(c) * Dst::ColStride] = detail::from_c<DT>(detail::to_c(s[std::ptrdiff_t(c) * Src::ColStride]));
  }
  return {};
}
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TMOV(Dst& dst, Src& src, E&...) {
  return TEXTRACT(dst, src, 0, 0);
}

// ---- TTRANS: dst[j, i] = src[i, j] over src's valid region --------------------------------------
template <detail::TileT Dst, detail::TileT Src, detail::TileT Tmp, typename... E>
PTO_INST RecordEvent TTRANS(Dst& dst, Src& src, Tmp&, E&...) {
  static_assert(sizeof(typename Dst::DType) == sizeof(typename Src::DType), "TTRANS: same element size");
  const int h = src.GetValidRow(), w = src.GetValidCol();
  constexpr int B = 16;  // cache blocking
  for (int i0 = 0; i0 < h; i0 += B)
    for (int j0 = 0; j0 < w; j0 += B) {
      const int i1 = i0 + B < h ? i0 + B : h, j1 = j0 + B < w ? j0 + B : w;
      for (int j = j0; j < j1; ++j)
        for (int i = i0; i < i1; ++i)
          dst.data()[Dst::offset(j, i)] = std::bit_cast<typename Dst::DType>(src.data()[Src::offset(i, j)]);
    }
  return {};
}

// ---- TTRI: 0/1 triangle over dst's valid region (0 = lower: j <= i + d; 1 = upper: j >= i + d) --
template <detail::TileT TileData, int isUpperOrLower, typename... E>
PTO_INST RecordEvent TTRI(TileData& dst, int diagonal, E&...) {
  using DT = typename TileData::DType;
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  const DT one = detail::from_c<DT>(detail::compute_t<DT>(1)), zero = detail::from_c<DT>(detail::compute_t<DT>(0));
  for (int r = 0; r < vr; ++r) {
    DT* d = dst.data() + TileData::offset(r, 0);
#pragma omp simd
    for (int c = 0; c < vc; ++c) {
      const bool on = isUpperOrLower == 0 ? (c <= r + diagonal) : (c >= r + diagonal);
      d[std::ptrdiff_t(c) * TileData::ColStride] = on ? one : zero;
    }
  }
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
