// pto_dynamo CPU target: TCMP, TCMPS, TSEL, TSELS (pto_isa.md §3.3).
//
// Mask packing on the CPU: the predicate of element (r, c) is bit c % 8 of byte c / 8 of mask
// row r (least-significant bit = lowest column). Row r of the mask starts at mask.data() +
// r * Mask::RowStride, so a mask tile needs >= ceil(Cols / 8) bytes of row capacity (and, being a
// row-major uint8 tile, a multiple of 32). TCMP/TCMPS write every bit of the bytes covering the
// source's valid columns (bits past the valid width are 0); TSEL/TSELS read the same positions.
#pragma once
#if defined(__AVX2__)
#include <immintrin.h>
#endif
#include "pto/cpu/elementwise.hpp"

#pragma GCC visibility push(hidden)

namespace pto::detail {
template <typename C> PTO_INLINE bool cmp_pred(C a, C b, CmpMode m) {
  switch (m) {
    case CmpMode::EQ: return a == b;
    case CmpMode::NE: return a != b;
    case CmpMode::LT: return a < b;
    case CmpMode::LE: return a <= b;
    case CmpMode::GT: return a > b;
    default: return a >= b;
  }
}

// Mask bytes [k0 / 8, ceil(vc / 8)) of every row (k0 a multiple of 8), one bit at a time.
template <CmpMode M, typename Mask, typename Src, typename RhsAt>
PTO_INLINE void pack_compare(Mask& mask, Src& src, RhsAt rhs_at, int k0 = 0) {
  const int vr = src.GetValidRow(), vc = src.GetValidCol();
  const int nbytes = (vc + 7) / 8;
  for (int r = 0; r < vr; ++r) {
    const typename Src::DType* s = src.data() + Src::offset(r, 0);
    uint8_t* m = reinterpret_cast<uint8_t*>(mask.data()) + Mask::offset(r, 0);
    for (int k = k0 / 8; k < nbytes; ++k) {
      unsigned bits = 0;
      for (int b = 0; b < 8; ++b) {
        const int c = 8 * k + b;
        const bool in = c < vc;
        const int cc = in ? c : 0;
        bits |= unsigned(in && cmp_pred(to_c(s[cc * Src::ColStride]), rhs_at(r, cc), M)) << b;
      }
      m[k] = static_cast<uint8_t>(bits);
    }
  }
}

template <typename Mask> PTO_INLINE const uint8_t* mask_row(Mask& mask, int r) {
  return reinterpret_cast<const uint8_t*>(mask.data()) + Mask::offset(r, 0);
}

#if defined(__AVX2__)
// AVX2 paths for f32 rows with unit column stride (bit by bit, TCMP(S) ran at ~0.6 ns an
// element and TSEL(S) at ~0.9, twenty times a TMUL): 8 columns per mask byte, a
// compare and a movemask to pack, a broadcast byte tested against the 8 lane bits to unpack.
// Compare predicates follow C: NE is true for a nan operand, the ordered ones false.
template <CmpMode M> PTO_INLINE __m256 cmp8(__m256 a, __m256 b) {
  if constexpr (M == CmpMode::EQ) return _mm256_cmp_ps(a, b, _CMP_EQ_OQ);
  else if constexpr (M == CmpMode::NE) return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ);
  else if constexpr (M == CmpMode::LT) return _mm256_cmp_ps(a, b, _CMP_LT_OQ);
  else if constexpr (M == CmpMode::LE) return _mm256_cmp_ps(a, b, _CMP_LE_OQ);
  else if constexpr (M == CmpMode::GT) return _mm256_cmp_ps(a, b, _CMP_GT_OQ);
  else return _mm256_cmp_ps(a, b, _CMP_GE_OQ);
}
template <typename T> constexpr bool word_unit_cols_v = sizeof(typename T::DType) == 4 && T::ColStride == 1;

// Mask bits of row r for columns [0, 8 * (vc / 8)): rhs8(r, c) gives the 8 right-hand values.
template <CmpMode M, typename Mask, typename Src, typename Rhs8>
PTO_INLINE int pack_compare_f32_row(Mask& mask, Src& src, int r, int vc, Rhs8 rhs8) {
  const float* s = src.data() + Src::offset(r, 0);
  uint8_t* m = reinterpret_cast<uint8_t*>(mask.data()) + Mask::offset(r, 0);
  const int full = vc / 8;
  for (int k = 0; k < full; ++k)
    m[k] = static_cast<uint8_t>(_mm256_movemask_ps(cmp8<M>(_mm256_loadu_ps(s + 8 * k), rhs8(r, 8 * k))));
  return 8 * full;
}
// d[j] = bit j of `byte` ? on[j] : off[j] for 8 32-bit words (the mask byte's lanes unpacked).
PTO_INLINE void select8(void* d, const void* on, __m256 off, uint8_t byte) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 lanes = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(byte), bit), bit));
  _mm256_storeu_ps(static_cast<float*>(d), _mm256_blendv_ps(off, _mm256_loadu_ps(static_cast<const float*>(on)), lanes));
}
#endif

// f(std::integral_constant<CmpMode, mode>{}): a run-time compare mode as a compile-time one.
template <typename F> PTO_INLINE void with_cmp_mode(CmpMode mode, F f) {
  using M = CmpMode;
  switch (mode) {
    case M::EQ: f(std::integral_constant<M, M::EQ>{}); break;
    case M::NE: f(std::integral_constant<M, M::NE>{}); break;
    case M::LT: f(std::integral_constant<M, M::LT>{}); break;
    case M::LE: f(std::integral_constant<M, M::LE>{}); break;
    case M::GT: f(std::integral_constant<M, M::GT>{}); break;
    case M::GE: f(std::integral_constant<M, M::GE>{}); break;
  }
}

// TCMP (rhs: src1) / TCMPS (rhs: a scalar) for one compare mode: whole mask bytes of f32 rows
// with the AVX2 path where it applies, the rest bit by bit.
template <CmpMode M, typename Mask, typename S0, typename S1>
PTO_INLINE void tcmp(Mask& mask, S0& src0, S1& src1) {
  int k0 = 0;
#if defined(__AVX2__)
  if constexpr (f32_unit_cols_v<S0> && f32_unit_cols_v<S1>) {
    const int vr = src0.GetValidRow(), vc = src0.GetValidCol();
    for (int r = 0; r < vr; ++r)
      k0 = pack_compare_f32_row<M>(mask, src0, r, vc, [&](int rr, int c) PTO_LAMBDA {
        return _mm256_loadu_ps(src1.data() + S1::offset(rr, c));
      });
  }
#endif
  pack_compare<M>(mask, src0, [&](int r, int c) PTO_LAMBDA { return to_c(src1.data()[S1::offset(r, c)]); }, k0);
}
template <CmpMode M, typename Mask, typename Src, typename C>
PTO_INLINE void tcmps(Mask& mask, Src& src, C s) {
  int k0 = 0;
#if defined(__AVX2__)
  if constexpr (f32_unit_cols_v<Src>) {
    const __m256 sv = _mm256_set1_ps(s);
    const int vr = src.GetValidRow(), vc = src.GetValidCol();
    for (int r = 0; r < vr; ++r) k0 = pack_compare_f32_row<M>(mask, src, r, vc, [sv](int, int) PTO_LAMBDA { return sv; });
  }
#endif
  pack_compare<M>(mask, src, [s](int, int) PTO_LAMBDA { return s; }, k0);
}
}  // namespace pto::detail

namespace pto {
template <detail::TileT Mask, detail::TileT S0, detail::TileT S1, typename... E>
PTO_INST RecordEvent TCMP(Mask& mask, S0& src0, S1& src1, CmpMode mode, E&...) {
  detail::with_cmp_mode(mode, [&](auto m) PTO_LAMBDA { detail::tcmp<decltype(m)::value>(mask, src0, src1); });
  return {};
}
template <detail::TileT Mask, detail::TileT Src, typename... E>
PTO_INST RecordEvent TCMPS(Mask& mask, Src& src, typename Src::DType scalar, CmpMode mode, E&...) {
  const auto s = detail::to_c(scalar);
  detail::with_cmp_mode(mode, [&](auto m) PTO_LAMBDA { detail::tcmps<decltype(m)::value>(mask, src, s); });
  return {};
}
template <detail::TileT Mask, detail::TileT Src, detail::TileT S1, typename... E>
PTO_INST RecordEvent TCMPS(Mask& mask, Src& src, S1& scalarTile, CmpMode mode, E&...) {
  return TCMPS(mask, src, static_cast<typename Src::DType>(scalarTile.data()[0]), mode);
}

// dst = mask ? src0 : src1 over dst's valid region.
template <detail::TileT Dst, detail::TileT Mask, detail::TileT S0, detail::TileT S1, detail::TileT Tmp, typename... E>
PTO_INST RecordEvent TSEL(Dst& dst, Mask& mask, S0& src0, S1& src1, Tmp&, E&...) {
  using DT = typename Dst::DType;
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  for (int r = 0; r < vr; ++r) {
    const uint8_t* m = detail::mask_row(mask, r);
    DT* d = dst.data() + Dst::offset(r, 0);
    const auto* a = src0.data() + S0::offset(r, 0);
    const auto* b = src1.data() + S1::offset(r, 0);
    int c0 = 0;
#if defined(__AVX2__)
    if constexpr (detail::word_unit_cols_v<Dst> && detail::word_unit_cols_v<S0> && detail::word_unit_cols_v<S1>) {
      for (; c0 + 8 <= vc; c0 += 8)
        detail::select8(d + c0, a + c0, _mm256_loadu_ps(reinterpret_cast<const float*>(b + c0)), m[c0 >> 3]);
    }
#endif
#pragma omp simd
    for (int c = c0; c < vc; ++c) {
      const bool on = (m[c >> 3] >> (c & 7)) & 1;
      d[c * Dst::ColStride] = on ? std::bit_cast<DT>(a[c * S0::ColStride]) : std::bit_cast<DT>(b[c * S1::ColStride]);
    }
  }
  return {};
}
template <detail::TileT Dst, detail::TileT Mask, detail::TileT Src0, detail::TileT S1>
PTO_INST RecordEvent TSEL(Dst& dst, Mask& mask, Src0& src0, S1& src1) {
  return TSEL(dst, mask, src0, src1, dst);
}
// dst = mask ? src : scalar.
template <detail::TileT Dst, detail::TileT Mask, detail::TileT Src, detail::TileT Tmp, typename... E>
PTO_INST RecordEvent TSELS(Dst& dst, Mask& mask, Src& src, Tmp&, typename Src::DType scalar, E&...) {
  using DT = typename Dst::DType;
  const DT sv = std::bit_cast<DT>(scalar);
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  for (int r = 0; r < vr; ++r) {
    const uint8_t* m = detail::mask_row(mask, r);
    DT* d = dst.data() + Dst::offset(r, 0);
    const auto* a = src.data() + Src::offset(r, 0);
    int c0 = 0;
#if defined(__AVX2__)
    if constexpr (detail::word_unit_cols_v<Dst> && detail::word_unit_cols_v<Src>) {
      const __m256 s8 = _mm256_castsi256_ps(_mm256_set1_epi32(std::bit_cast<int32_t>(sv)));
      for (; c0 + 8 <= vc; c0 += 8) detail::select8(d + c0, a + c0, s8, m[c0 >> 3]);
    }
#endif
#pragma omp simd
    for (int c = c0; c < vc; ++c) {
      const bool on = (m[c >> 3] >> (c & 7)) & 1;
      d[c * Dst::ColStride] = on ? std::bit_cast<DT>(a[c * Src::ColStride]) : sv;
    }
  }
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
