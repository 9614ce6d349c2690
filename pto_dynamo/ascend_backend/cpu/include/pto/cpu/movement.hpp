// pto_dynamo CPU target: data movement and layout instructions (pto_isa.md §3.1):
// TLOAD, TSTORE (incl. Acc -> GM with conversion, AtomicAdd), TMOV, TEXTRACT, TTRANS, TTRI.
#pragma once
#include <atomic>
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
// ---- TLOAD: GM -> tile over dst's valid region, pad value elsewhere ---------------------------
template <detail::TileT Dst, detail::GlobalT G, typename... E>
PTO_INST RecordEvent TLOAD(Dst& dst, G& gm, E&...) {
  using DT = typename Dst::DType;
  using GT = std::remove_const_t<typename G::DType>;
  static_assert(sizeof(DT) == sizeof(GT), "TLOAD: tile and GM element sizes must match (no conversion)");
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  detail::pad_outside_valid(dst, vr, vc);
  const GT* base = gm.data();
  detail::walk_gm(gm, vr, vc, [&](int r, int c, int64_t off, int64_t step, int64_t n, bool along_row) PTO_LAMBDA {
    DT* d = dst.data() + Dst::offset(r, c);
    detail::copy_line<Dst::Cols>(d, along_row ? Dst::ColStride : Dst::RowStride, base + off, step, n);
  });
  return {};
}

// ---- TSTORE: tile -> GM over src's valid region -------------------------------------------------
namespace detail {
template <AtomicType Atomic, typename Src, typename G> PTO_INLINE void tstore(G& gm, Src& src) {
  using ST = typename Src::DType;
  using GT = std::remove_const_t<typename G::DType>;
  constexpr bool convert = !std::is_same_v<ST, GT>;
  static_assert(!convert || Src::Loc == TileType::Acc || sizeof(ST) == sizeof(GT),
                "TSTORE: from Vec/Mat the tile and GM element sizes must match");
  const int vr = src.GetValidRow(), vc = src.GetValidCol();
  GT* base = gm.data();
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
      copy_line<Src::Cols>(d, step, s, ss, n);
    }
  });
}
}  // namespace detail

template <typename TileData, typename GlobalData, AtomicType atomicType = AtomicType::AtomicNone, typename... E>
  requires(detail::TileT<TileData> && detail::GlobalT<GlobalData>)
PTO_INST RecordEvent TSTORE(GlobalData& dst, TileData& src, E&...) {
  detail::tstore<atomicType>(dst, src);
  return {};
}
template <STPhase Phase, typename TileData, typename GlobalData, typename... E>
  requires(detail::TileT<TileData> && detail::GlobalT<GlobalData>)
PTO_INST RecordEvent TSTORE(GlobalData& dst, TileData& src, E&...) {
  detail::tstore<AtomicType::AtomicNone>(dst, src);
  return {};
}

// ---- TMOV / TEXTRACT: logical element copy with value conversion --------------------------------
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TEXTRACT(Dst& dst, Src& src, uint16_t row = 0, uint16_t col = 0, E&...) {
  using DT = typename Dst::DType;
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
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
