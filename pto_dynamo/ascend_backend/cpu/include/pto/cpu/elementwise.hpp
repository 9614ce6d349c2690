// pto_dynamo CPU target: element-wise V-ops (pto_isa.md §3.2), TCI, TEXPANDS and TCVT.
//
// One engine, `ewise`, walks dst's valid region row by row with `#pragma omp simd` over the
// columns (or over the whole tile as one flat loop when every operand is full and contiguous);
// operands are converted to their compute type (fp32 for fp16/bf16) and the result rounded once.
#pragma once
#include "pto/cpu/tile.hpp"
#include "pto/cpu/vmath.hpp"

#pragma GCC visibility push(hidden)

namespace pto::detail {
// True when row r of a tile is contiguous and row r+1 follows it directly.
template <typename T> constexpr bool dense_rows_v =
    (T::ColStride == 1 && T::RowStride == T::Cols) || (T::Cols == 1 && T::RowStride == 1);

// Operands of f32 elements with unit column stride (the explicitly vectorised paths take these).
template <typename... T> constexpr bool f32_unit_cols_v = ((std::is_same_v<typename T::DType, float> && T::ColStride == 1) && ...);

#if defined(__AVX512F__)
// An op with a 16-lane form `Op::v16(__m512...)` (vmath.hpp's vexp16 behind TEXP, EXPDIF) runs it
// over rows with unit column stride; the lanes past a row's valid columns are masked off. The
// operands are f32, or bf16 (with AVX512BW/VL: widened exactly when loaded, rounded as
// f32_to_bf16_bits when stored), the mixed forms lowering/tile/fuse.py makes from a TCVT and the
// op next to it.
template <typename Op, int N> concept HasV16 = (N == 1 && requires(__m512 a) { Op::v16(a); }) ||
                                               (N == 2 && requires(__m512 a) { Op::v16(a, a); });
PTO_INLINE __mmask16 lanes_below(int n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

#if defined(__AVX512BW__) && defined(__AVX512VL__)
template <typename T> constexpr bool f32_or_bf16_v = std::is_same_v<T, float> || std::is_same_v<T, bfloat16_t>;
#else
template <typename T> constexpr bool f32_or_bf16_v = std::is_same_v<T, float>;
#endif
template <typename... T> constexpr bool v16_unit_cols_v = ((f32_or_bf16_v<typename T::DType> && T::ColStride == 1) && ...);

// 16 f32 lanes rounded to bf16 bits exactly as f32_to_bf16_bits (nearest even, NaN quiet,
// denormals kept).
PTO_INLINE __m256i bf16_bits16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i rne = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)),
                                       _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  const __m512i r = _mm512_mask_blend_epi32(nan, rne, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

// The lanes in m of a float or bfloat16_t row as 16 f32 (0 elsewhere), and back (rounded once).
template <typename T> PTO_INLINE __m512 load16(const T* p, __mmask16 m) {
  if constexpr (std::is_same_v<T, float>) {
    return _mm512_maskz_loadu_ps(m, p);
  } else {
    static_assert(f32_or_bf16_v<T>, "load16: float or bfloat16_t");
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  }
}
template <typename T> PTO_INLINE void store16_exact(T* p, __mmask16 m, __m512 v) {
  if constexpr (std::is_same_v<T, float>) {
    _mm512_mask_storeu_ps(p, m, v);
  } else {
    static_assert(f32_or_bf16_v<T>, "store16_exact: float or bfloat16_t");
    _mm256_mask_storeu_epi16(p, m, bf16_bits16(v));
  }
}
#endif

// dst(r, c) = op(src_k(r, c)...) over dst's valid region.
template <typename Dst, typename Op, typename... Src>
PTO_INLINE void ewise(Dst& dst, Op op, Src&... src) {
  using DT = typename Dst::DType;
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  DT* __restrict__ d = dst.data();
#if defined(__AVX512F__)
  if constexpr (HasV16<Op, sizeof...(Src)> && v16_unit_cols_v<Dst, Src...>) {
    for (int r = 0; r < vr; ++r)
      for (int c = 0; c < vc; c += 16) {
        const __mmask16 m = lanes_below(vc - c);
        store16_exact(d + std::ptrdiff_t(r) * Dst::RowStride + c, m,
                      Op::v16(load16(src.data() + std::ptrdiff_t(r) * Src::RowStride + c, m)...));
      }
    return;
  }
#endif
  constexpr bool flat_ok = dense_rows_v<Dst> && ((dense_rows_v<Src> && Src::Cols == Dst::Cols) && ...);
  if constexpr (flat_ok) {
    if (vc == Dst::Cols) {
      const int n = vr * Dst::Cols;
      auto run = [&](const auto*... sp) PTO_LAMBDA {
#pragma omp simd
        for (int i = 0; i < n; ++i) d[i] = from_c<DT>(op(to_c(sp[i])...));
      };
      run(src.data()...);
      return;
    }
  }
  for (int r = 0; r < vr; ++r) {
    DT* dr = d + std::ptrdiff_t(r) * Dst::RowStride;
    auto run = [&](const auto*... sp) PTO_LAMBDA {
#pragma omp simd
      for (int c = 0; c < vc; ++c)
        dr[std::ptrdiff_t(c) * Dst::ColStride] = from_c<DT>(op(to_c(sp[std::ptrdiff_t(c) * Src::ColStride])...));
    };
    run((src.data() + std::ptrdiff_t(r) * Src::RowStride)...);
  }
}

template <typename T> using ctype_of = compute_t<typename T::DType>;

template <typename C> PTO_INLINE C abs_value(C a) {
  if constexpr (std::is_same_v<C, float>) return vm::vabs(a);
  else if constexpr (std::is_floating_point_v<C>) return std::fabs(a);
  else return a < 0 ? C(-a) : a;
}
}  // namespace pto::detail

#pragma GCC visibility pop

#pragma GCC visibility push(hidden)
namespace pto {

// ---- binary tile-tile -------------------------------------------------------------------------
#define PTO_BINARY_OP(NAME, EXPR)                                                              \
  template <detail::TileT Dst, detail::TileT S0, detail::TileT S1, typename... E>             \
  PTO_INST RecordEvent NAME(Dst& dst, S0& src0, S1& src1, E&...) {                            \
    detail::ewise(dst, [](auto a, auto b) PTO_LAMBDA { return EXPR; }, src0, src1);                      \
    return {};                                                                                 \
  }
PTO_BINARY_OP(TADD, a + b)
PTO_BINARY_OP(TSUB, a - b)
PTO_BINARY_OP(TMUL, a * b)
PTO_BINARY_OP(TMAX, ((a > b) | (a != a)) ? a : b)   // NaN propagates, as torch.maximum
PTO_BINARY_OP(TMIN, ((a < b) | (a != a)) ? a : b)
PTO_BINARY_OP(TAND, a & b)
PTO_BINARY_OP(TOR, a | b)
#undef PTO_BINARY_OP

template <DivAlgorithm Alg = DivAlgorithm::DEFAULT, detail::TileT Dst, detail::TileT S0, detail::TileT S1, typename... E>
PTO_INST RecordEvent TDIV(Dst& dst, S0& src0, S1& src1, E&...) {
  detail::ewise(dst, [](auto a, auto b) PTO_LAMBDA { return a / b; }, src0, src1);
  return {};
}

// ---- tile-scalar --------------------------------------------------------------------------------
#define PTO_SCALAR_OP(NAME, EXPR)                                                              \
  template <detail::TileT Dst, detail::TileT Src, typename... E>                              \
  PTO_INST RecordEvent NAME(Dst& dst, Src& src, typename Src::DType scalar, E&...) {          \
    const detail::ctype_of<Src> s = detail::to_c(scalar);                                     \
    detail::ewise(dst, [s](auto a) PTO_LAMBDA { return EXPR; }, src);                                    \
    return {};                                                                                 \
  }
PTO_SCALAR_OP(TADDS, a + s)
PTO_SCALAR_OP(TSUBS, a - s)
PTO_SCALAR_OP(TMULS, a * s)
PTO_SCALAR_OP(TMAXS, ((a > s) | (a != a)) ? a : s)
PTO_SCALAR_OP(TMINS, ((a < s) | (a != a)) ? a : s)
#undef PTO_SCALAR_OP

template <DivAlgorithm Alg = DivAlgorithm::DEFAULT, detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TDIVS(Dst& dst, Src& src, typename Src::DType scalar, E&...) {
  const detail::ctype_of<Src> s = detail::to_c(scalar);
  detail::ewise(dst, [s](auto a) PTO_LAMBDA { return a / s; }, src);
  return {};
}
template <DivAlgorithm Alg = DivAlgorithm::DEFAULT, detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TDIVS(Dst& dst, typename Src::DType scalar, Src& src, E&...) {
  const detail::ctype_of<Src> s = detail::to_c(scalar);
  detail::ewise(dst, [s](auto a) PTO_LAMBDA { return s / a; }, src);
  return {};
}

// ---- unary --------------------------------------------------------------------------------------
#define PTO_UNARY_OP(NAME, EXPR)                                                               \
  template <detail::TileT Dst, detail::TileT Src, typename... E>                              \
  PTO_INST RecordEvent NAME(Dst& dst, Src& src, E&...) {                                      \
    detail::ewise(dst, [](auto a) PTO_LAMBDA { return EXPR; }, src);                                     \
    return {};                                                                                 \
  }
#define PTO_UNARY_OP_ALG(NAME, ALG, EXPR)                                                      \
  template <ALG Alg = ALG::DEFAULT, detail::TileT Dst, detail::TileT Src, typename... E>      \
  PTO_INST RecordEvent NAME(Dst& dst, Src& src, E&...) {                                      \
    detail::ewise(dst, [](auto a) PTO_LAMBDA { return EXPR; }, src);                                     \
    return {};                                                                                 \
  }
namespace detail {
struct ExpOp {
  template <typename A> PTO_INLINE auto operator()(A a) const { return vm::vexp(float(a)); }
#if defined(__AVX512F__)
  static PTO_INLINE __m512 v16(__m512 a) { return vm::vexp16(a); }
#endif
};
}  // namespace detail
template <ExpAlgorithm Alg = ExpAlgorithm::DEFAULT, detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TEXP(Dst& dst, Src& src, E&...) {
  detail::ewise(dst, detail::ExpOp{}, src);
  return {};
}
PTO_UNARY_OP_ALG(TLOG, LogAlgorithm, vm::vlog(float(a)))
PTO_UNARY_OP_ALG(TSQRT, SqrtAlgorithm, vm::vsqrt(float(a)))
PTO_UNARY_OP_ALG(TRSQRT, RsqrtAlgorithm, 1.0f / vm::vsqrt(float(a)))
PTO_UNARY_OP_ALG(TRECIP, RecipAlgorithm, decltype(a)(1) / a)
PTO_UNARY_OP(TABS, detail::abs_value(a))
PTO_UNARY_OP(TNEG, -a)
PTO_UNARY_OP(TRELU, ((a > 0) | (a != a)) ? a : decltype(a)(0))
PTO_UNARY_OP(TNOT, ~a)
#undef PTO_UNARY_OP
#undef PTO_UNARY_OP_ALG

// ---- TCI: contiguous integers S +/- k over the valid columns of row 0 (pto_isa TCI) -------------
template <typename Dst, typename T, int descending, typename... E>
PTO_INST RecordEvent TCI(Dst& dst, T start, E&...) {
  static_assert(std::is_same_v<typename Dst::DType, T>, "TCI: the tile's element type is the scalar's");
  static_assert(std::is_integral_v<T> && sizeof(T) <= 4, "TCI: int32/uint32/int16/uint16 tiles");
  static_assert(Dst::Cols != 1, "TCI: a tile with more than one column");
  T* d = dst.data();
  const int vc = dst.GetValidCol();
#pragma omp simd
  for (int c = 0; c < vc; ++c) d[std::ptrdiff_t(c) * Dst::ColStride] = descending ? T(start - c) : T(start + c);
  return {};
}

// ---- TEXPANDS: fill (Vec: valid region; other memories: the whole tile) -----------------------
template <detail::TileT Dst, typename... E>
PTO_INST RecordEvent TEXPANDS(Dst& dst, typename Dst::DType scalar, E&...) {
  using DT = typename Dst::DType;
  if constexpr (Dst::Loc == TileType::Vec) {
    const auto s = detail::to_c(scalar);
    detail::ewise(dst, [s](auto) PTO_LAMBDA { return s; }, dst);
  } else {
    DT* d = dst.data();
#pragma omp simd
    for (int i = 0; i < Dst::Numel; ++i) d[i] = scalar;
  }
  return {};
}

// ---- TCVT ---------------------------------------------------------------------------------------
namespace detail {
template <typename DT, RoundMode Mode> PTO_INLINE DT convert_rounded(float v) {
  if constexpr (std::is_same_v<DT, bfloat16_t>) {
    if constexpr (Mode == RoundMode::CAST_TRUNC) return bfloat16_t::from_bits(f32_to_bf16_bits_trunc(v));
    else return bfloat16_t::from_bits(f32_to_bf16_bits(v));
  } else if constexpr (std::is_floating_point_v<DT> || std::is_same_v<DT, half>) {
    return static_cast<DT>(v);
  } else {  // float -> integer
    if constexpr (Mode == RoundMode::CAST_RINT || Mode == RoundMode::CAST_NONE) return static_cast<DT>(__builtin_rintf(v));
    else if constexpr (Mode == RoundMode::CAST_ROUND) return static_cast<DT>(__builtin_roundf(v));
    else if constexpr (Mode == RoundMode::CAST_FLOOR) return static_cast<DT>(vm::vfloor(v));
    else if constexpr (Mode == RoundMode::CAST_CEIL) return static_cast<DT>(vm::vceil(v));
    else return static_cast<DT>(v);
  }
}
template <RoundMode Mode, typename Dst, typename Src> PTO_INLINE void tcvt(Dst& dst, Src& src) {
  using DT = typename Dst::DType;
  using ST = typename Src::DType;
  if constexpr (std::is_floating_point_v<ST> || is_float16_v<ST>) {
    if constexpr (std::is_same_v<ST, double>)
      ewise(dst, [](auto a) PTO_LAMBDA { return convert_rounded<DT, Mode>(float(a)); }, src);
    else
      ewise(dst, [](auto a) PTO_LAMBDA { return convert_rounded<DT, Mode>(a); }, src);
  } else {  // integer sources convert exactly (or by C++ rules) to the destination
    ewise(dst, [](auto a) PTO_LAMBDA { return a; }, src);
  }
}
}  // namespace detail

// Round modes for fp32 -> bf16: CAST_TRUNC truncates, every other mode rounds to nearest even.
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TCVT(Dst& dst, Src& src, RoundMode mode, E&...) {
  switch (mode) {
    case RoundMode::CAST_NONE: detail::tcvt<RoundMode::CAST_NONE>(dst, src); break;
    case RoundMode::CAST_RINT: detail::tcvt<RoundMode::CAST_RINT>(dst, src); break;
    case RoundMode::CAST_ROUND: detail::tcvt<RoundMode::CAST_ROUND>(dst, src); break;
    case RoundMode::CAST_FLOOR: detail::tcvt<RoundMode::CAST_FLOOR>(dst, src); break;
    case RoundMode::CAST_CEIL: detail::tcvt<RoundMode::CAST_CEIL>(dst, src); break;
    case RoundMode::CAST_TRUNC: detail::tcvt<RoundMode::CAST_TRUNC>(dst, src); break;
    case RoundMode::CAST_ODD: detail::tcvt<RoundMode::CAST_RINT>(dst, src); break;
  }
  return {};
}
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TCVT(Dst& dst, Src& src, E&...) {
  return TCVT(dst, src, RoundMode::CAST_RINT);
}
}  // namespace pto
#pragma GCC visibility pop
