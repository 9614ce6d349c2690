// pto_dynamo CPU target: fused V-op extensions (docs/device_abi.md "Project extensions"), an
// element-wise op and the row reduction, add or column scaling that reads its result, in one pass
// over the tile. The NPU runs each as its two PTO instructions (named in the comments); a CPU core reading
// a 64 x 128 f32 tile once instead of twice saves a pass over L1 per flash-attention step.
#pragma once
#include "pto/cpu/reduce_expand.hpp"

#pragma GCC visibility push(hidden)

namespace pto::detail {
#if defined(__AVX512F__)
// 16 lanes of f32 rounded to bf16 bits as f32_to_bf16_bits does (nearest even, NaN quiet), for
// lanes that are 0 or normal (AVX512_BF16's vcvtneps2bf16 reads denormals as 0).
PTO_INLINE __m256i bf16_bits16_normal(__m512 v) {
#if defined(__AVX512BF16__)
  return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
#else
  return bf16_bits16(v);
#endif
}

// exp on 16 lanes for results rounded to bf16 or fp16 next: a degree-5 polynomial on the reduced
// argument (relative error below 2^-22, as ATen's exp_u20), 0 below x = ln(2^-126) = -87.3365,
// where exp leaves the normal floats (so the bf16 conversion never meets a denormal). Against
// vexp16: 12 instructions instead of 18.
PTO_INLINE __m512 vexp16_narrow(__m512 x) {
  const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_NLT_UQ);   // nan: live
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(89.0f), x);                           // nan stays
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693147180559945309f), xc);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.008290315046906471f), r, _mm512_set1_ps(0.04189793020486832f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.1666763573884964f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.4999915063381195f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.9999997019767761f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(live, p, n);
}

// Store 16 f32 lanes (those in m) to a float or bfloat16_t row.
template <typename T> PTO_INLINE void store16(T* p, __mmask16 m, __m512 v) {
  if constexpr (std::is_same_v<T, float>) _mm512_mask_storeu_ps(p, m, v);
  else _mm256_mask_storeu_epi16(p, m, bf16_bits16_normal(v));
}
#endif

// A row's max of the values it stored (NaN when any is NaN; -inf for an empty row).
struct RowMax {
  float acc = -std::numeric_limits<float>::infinity();
  int nan = 0;
  PTO_INLINE void add(float v) { acc = v > acc ? v : acc; nan |= int(v != v); }
  PTO_INLINE float get() const { return nan ? std::numeric_limits<float>::quiet_NaN() : acc; }
};

// dst(i, j) = then(src0(i, j) * src1(i, 0), src2(i, j)) (src2(0, j) with PerCol), the row product
// rounded to dst's type first: TROWEXPANDMUL and the add or the column scaling that reads it.
struct AddThen {
  template <typename A, typename B> PTO_INLINE auto operator()(A a, B b) const { return a + b; }
#if defined(__AVX512F__)
  static PTO_INLINE __m512 v16(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
#endif
};
struct MulThen {
  template <typename A, typename B> PTO_INLINE auto operator()(A a, B b) const { return a * b; }
#if defined(__AVX512F__)
  static PTO_INLINE __m512 v16(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
#endif
};
template <bool PerCol, typename Dst, typename S0, typename S1, typename S2, typename Then>
PTO_INLINE void row_scaled_then(Dst& dst, S0& src0, S1& src1, S2& src2, Then then) {
  using DT = typename Dst::DType;
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  for (int r = 0; r < vr; ++r) {
    DT* d = dst.data() + Dst::offset(r, 0);
    const auto* x = src0.data() + S0::offset(r, 0);
    const auto* y = src2.data() + S2::offset(PerCol ? 0 : r, 0);
    const auto a = to_c(src1.data()[S1::offset(r, 0)]);
#if defined(__AVX512F__)
    if constexpr (f32_unit_cols_v<Dst, S0, S2> && std::is_same_v<typename S1::DType, float>) {
      const __m512 av = _mm512_set1_ps(a);
      for (int c = 0; c < vc; c += 16) {
        const __mmask16 k = lanes_below(vc - c);
        const __m512 prod = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + c), av);   // -std=c++20: no contraction
        _mm512_mask_storeu_ps(d + c, k, Then::v16(prod, _mm512_maskz_loadu_ps(k, y + c)));
      }
      continue;
    }
#endif
#pragma omp simd
    for (int c = 0; c < vc; ++c) {
      const auto prod = to_c(from_c<DT>(to_c(x[c * S0::ColStride]) * a));
      d[c * Dst::ColStride] = from_c<DT>(then(prod, to_c(y[c * S2::ColStride])));
    }
  }
}
}  // namespace pto::detail

namespace pto {
// TMULS_ROWMAX(dst, max, src, s): dst = src * s; max(i, 0) = max_j dst(i, j) over dst's valid
// region (the NPU: TMULS, then TROWMAX(max, dst, tmp)). Flash attention's scaled scores and
// their row max.
template <detail::TileT Dst, detail::TileT Max, detail::TileT Src, typename... E>
PTO_INST RecordEvent TMULS_ROWMAX(Dst& dst, Max& mx, Src& src, typename Src::DType scalar, E&...) {
  static_assert(Dst::Loc == TileType::Vec && Max::Loc == TileType::Vec && Src::Loc == TileType::Vec, "TMULS_ROWMAX: Vec tiles");
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  const float s = detail::to_c(scalar);
  for (int r = 0; r < vr; ++r) {
    auto* d = dst.data() + Dst::offset(r, 0);
    const auto* x = src.data() + Src::offset(r, 0);
    float m;
#if defined(__AVX512F__)
    if constexpr (detail::f32_unit_cols_v<Dst, Src>) {
      const __m512 sv = _mm512_set1_ps(s);
      __m512 acc = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
      __mmask16 nan = 0;
      for (int c = 0; c < vc; c += 16) {
        const __mmask16 k = detail::lanes_below(vc - c);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + c), sv);
        _mm512_mask_storeu_ps(d + c, k, v);
        acc = _mm512_mask_max_ps(acc, k, acc, v);
        nan |= _mm512_mask_cmp_ps_mask(k, v, v, _CMP_UNORD_Q);
      }
      m = nan ? std::numeric_limits<float>::quiet_NaN() : _mm512_reduce_max_ps(acc);
    } else
#endif
    {
      detail::RowMax red;
      for (int c = 0; c < vc; ++c) {
        d[c * Dst::ColStride] = detail::from_c<typename Dst::DType>(detail::to_c(x[c * Src::ColStride]) * s);
        red.add(float(detail::to_c(d[c * Dst::ColStride])));
      }
      m = red.get();
    }
    mx.data()[Max::offset(r, 0)] = detail::from_c<typename Max::DType>(m);
  }
  return {};
}

// TROWEXPANDEXPDIF_ROWSUM(dst, sum, src0, src1): p = exp(src0(i, j) - src1(i, 0)) in f32;
// dst = p rounded to dst's type (bf16 as TCVT CAST_RINT); sum(i, 0) = sum_j p before the
// rounding (the NPU: TROWEXPANDEXPDIF into an f32 tile, TROWSUM, TCVT). Flash attention's
// probabilities, their row sum and P in v's dtype.
template <detail::TileT Dst, detail::TileT Sum, detail::TileT S0, detail::TileT S1, typename... E>
PTO_INST RecordEvent TROWEXPANDEXPDIF_ROWSUM(Dst& dst, Sum& sum, S0& src0, S1& src1, E&...) {
  static_assert(Dst::Loc == TileType::Vec && Sum::Loc == TileType::Vec && S0::Loc == TileType::Vec && S1::Loc == TileType::Vec,
                "TROWEXPANDEXPDIF_ROWSUM: Vec tiles");
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  for (int r = 0; r < vr; ++r) {
    auto* d = dst.data() + Dst::offset(r, 0);
    const auto* x = src0.data() + S0::offset(r, 0);
    const float b = detail::to_c(src1.data()[S1::offset(r, 0)]);
    float total = 0.0f;
#if defined(__AVX512F__)
    if constexpr (detail::f32_unit_cols_v<S0> && detail::f32_or_bf16_v<typename Dst::DType> && Dst::ColStride == 1) {
      const __m512 bv = _mm512_set1_ps(b);
      __m512 acc = _mm512_setzero_ps();
      for (int c = 0; c < vc; c += 16) {
        const __mmask16 k = detail::lanes_below(vc - c);
        const __m512 y = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c), bv);
        const __m512 p = std::is_same_v<typename Dst::DType, float> ? vm::vexp16(y) : detail::vexp16_narrow(y);
        detail::store16(d + c, k, p);
        acc = _mm512_mask_add_ps(acc, k, acc, p);
      }
      total = _mm512_reduce_add_ps(acc);
    } else
#endif
    {
#pragma omp simd reduction(+ : total)
      for (int c = 0; c < vc; ++c) {
        const float p = vm::vexp(float(detail::to_c(x[c * S0::ColStride])) - b);
        d[c * Dst::ColStride] = detail::from_c<typename Dst::DType>(p);
        total += p;
      }
    }
    sum.data()[Sum::offset(r, 0)] = detail::from_c<typename Sum::DType>(total);
  }
  return {};
}

// TROWEXPANDMUL_ADD(dst, src0, src1, src2): dst = src0(i, j) * src1(i, 0) + src2(i, j), the
// product rounded before the add (the NPU: TROWEXPANDMUL, then TADD). Flash attention's
// o = o * alpha + P @ V.
template <detail::TileT Dst, detail::TileT S0, detail::TileT S1, detail::TileT S2, typename... E>
PTO_INST RecordEvent TROWEXPANDMUL_ADD(Dst& dst, S0& src0, S1& src1, S2& src2, E&...) {
  static_assert(Dst::Loc == TileType::Vec && S0::Loc == TileType::Vec && S1::Loc == TileType::Vec && S2::Loc == TileType::Vec,
                "TROWEXPANDMUL_ADD: Vec tiles");
  detail::row_scaled_then<false>(dst, src0, src1, src2, detail::AddThen{});
  return {};
}

// TMUL_ROWSUM(dst, sum, src0, src1): dst = src0 * src1; sum(i, 0) = sum_j dst(i, j) over dst's
// valid region (the NPU: TMUL, then TROWSUM(sum, dst, tmp)). RMSNorm's squares and their sum.
template <detail::TileT Dst, detail::TileT Sum, detail::TileT S0, detail::TileT S1, typename... E>
PTO_INST RecordEvent TMUL_ROWSUM(Dst& dst, Sum& sum, S0& src0, S1& src1, E&...) {
  static_assert(Dst::Loc == TileType::Vec && Sum::Loc == TileType::Vec && S0::Loc == TileType::Vec && S1::Loc == TileType::Vec,
                "TMUL_ROWSUM: Vec tiles");
  using DT = typename Dst::DType;
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  for (int r = 0; r < vr; ++r) {
    DT* d = dst.data() + Dst::offset(r, 0);
    const auto* x = src0.data() + S0::offset(r, 0);
    const auto* y = src1.data() + S1::offset(r, 0);
    float total = 0.0f;
#if defined(__AVX512F__)
    if constexpr (detail::f32_unit_cols_v<Dst, S0, S1>) {
      __m512 acc = _mm512_setzero_ps();
      for (int c = 0; c < vc; c += 16) {
        const __mmask16 k = detail::lanes_below(vc - c);
        const __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + c), _mm512_maskz_loadu_ps(k, y + c));
        _mm512_mask_storeu_ps(d + c, k, p);
        acc = _mm512_add_ps(acc, p);   // masked-off lanes are 0 * 0
      }
      total = _mm512_reduce_add_ps(acc);
    } else
#endif
    {
#pragma omp simd reduction(+ : total)
      for (int c = 0; c < vc; ++c) {
        const DT p = detail::from_c<DT>(detail::to_c(x[c * S0::ColStride]) * detail::to_c(y[c * S1::ColStride]));
        d[c * Dst::ColStride] = p;
        total += float(detail::to_c(p));
      }
    }
    sum.data()[Sum::offset(r, 0)] = detail::from_c<typename Sum::DType>(total);
  }
  return {};
}

// TROWEXPANDMUL_COLEXPANDMUL(dst, src0, src1, src2): dst = src0(i, j) * src1(i, 0) * src2(0, j),
// the row product rounded before the column one (the NPU: TROWEXPANDMUL, then TCOLEXPANDMUL).
// RMSNorm's normalisation and its weight.
template <detail::TileT Dst, detail::TileT S0, detail::TileT S1, detail::TileT S2, typename... E>
PTO_INST RecordEvent TROWEXPANDMUL_COLEXPANDMUL(Dst& dst, S0& src0, S1& src1, S2& src2, E&...) {
  static_assert(Dst::Loc == TileType::Vec && S0::Loc == TileType::Vec && S1::Loc == TileType::Vec && S2::Loc == TileType::Vec,
                "TROWEXPANDMUL_COLEXPANDMUL: Vec tiles");
  detail::row_scaled_then<true>(dst, src0, src1, src2, detail::MulThen{});
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
