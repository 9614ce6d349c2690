// pto_dynamo CPU target: reductions (pto_isa.md §3.4) and broadcast ("expand") ops (§3.5).
#pragma once
#include "pto/cpu/elementwise.hpp"

#pragma GCC visibility push(hidden)

namespace pto::detail {
enum class Red { Sum, Max, Min };
inline constexpr int kSumLanes = 32;    // partial sums of a contiguous row sum (reduce_line)
inline constexpr int kSumMinRow = 256;  // from this row length on

// One row of valid length n reduced in the compute type; `#pragma omp simd reduction` lets GCC
// reassociate (sums are then pairwise-ish, as torch's vectorised reductions).
template <Red R, typename T> PTO_INLINE compute_t<T> reduce_line(const T* s, std::ptrdiff_t stride, int n) {
  using C = compute_t<T>;
  if constexpr (R == Red::Sum) {
    C acc = 0;
    int c0 = 0;
    if constexpr (std::is_floating_point_v<C>) {
      // Contiguous rows: kSumLanes independent partial sums (four AVX2 registers), so the adds do
      // not wait on one another (one accumulator left a float row sum latency-bound at ~3 cycles
      // per 8 elements); the partials are then added pairwise.
      // Rows shorter than kSumMinRow keep the plain loop: combining the partials costs more than
      // the latency saved (64 floats: 6 ns plain, 40 ns with a scalar combination).
      if (stride == 1 && n >= kSumMinRow) {
        C part[kSumLanes] = {};
        for (; c0 + kSumLanes <= n; c0 += kSumLanes) {
#pragma omp simd
          for (int j = 0; j < kSumLanes; ++j) part[j] += to_c(s[c0 + j]);
        }
#pragma omp simd
        for (int j = 0; j < kSumLanes / 2; ++j) part[j] += part[j + kSumLanes / 2];
#pragma omp simd
        for (int j = 0; j < kSumLanes / 4; ++j) part[j] += part[j + kSumLanes / 4];
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < kSumLanes / 4; ++j) acc += part[j];
      }
    }
#pragma omp simd reduction(+ : acc)
    for (int c = c0; c < n; ++c) acc += to_c(s[c * stride]);
    return acc;
  } else {
    C acc = to_c(s[0]);
    int nan = 0;   // an int `|` reduction vectorises; a bool `||` one made GCC emit a scalar loop
    if constexpr (R == Red::Max) {
#pragma omp simd reduction(max : acc) reduction(| : nan)
      for (int c = 0; c < n; ++c) { const C v = to_c(s[c * stride]); acc = v > acc ? v : acc; nan |= int(v != v); }
    } else {
#pragma omp simd reduction(min : acc) reduction(| : nan)
      for (int c = 0; c < n; ++c) { const C v = to_c(s[c * stride]); acc = v < acc ? v : acc; nan |= int(v != v); }
    }
    if constexpr (std::numeric_limits<C>::has_quiet_NaN) return nan ? std::numeric_limits<C>::quiet_NaN() : acc;
    else return acc;
  }
}

// dst(i, 0) = reduce_j src(i, j) over src's valid region; dst is R x 1 ColMajor or ND.
template <Red R, typename Dst, typename Src> PTO_INLINE void row_reduce(Dst& dst, Src& src) {
  static_assert(Dst::Loc == TileType::Vec && Src::Loc == TileType::Vec, "TROW*: Vec tiles");
  const int vr = src.GetValidRow(), vc = src.GetValidCol();
  for (int r = 0; r < vr; ++r)
    dst.data()[Dst::offset(r, 0)] =
        from_c<typename Dst::DType>(reduce_line<R>(src.data() + Src::offset(r, 0), Src::ColStride, vc));
}

// dst(0, j) = reduce_i src(i, j), vectorised across columns.
template <Red R, typename Dst, typename Src> PTO_INLINE void col_reduce(Dst& dst, Src& src) {
  using C = compute_t<typename Src::DType>;
  const int vr = src.GetValidRow(), vc = src.GetValidCol();
  C acc[Src::Cols];
  const typename Src::DType* s0 = src.data() + Src::offset(0, 0);
#pragma omp simd
  for (int c = 0; c < vc; ++c) acc[c] = vr > 0 ? to_c(s0[c * Src::ColStride]) : C(0);
  for (int r = 1; r < vr; ++r) {
    const typename Src::DType* s = src.data() + Src::offset(r, 0);
#pragma omp simd
    for (int c = 0; c < vc; ++c) {
      const C v = to_c(s[c * Src::ColStride]);
      if constexpr (R == Red::Sum) acc[c] += v;
      else if constexpr (R == Red::Max) acc[c] = (v > acc[c] || v != v) ? v : acc[c];
      else acc[c] = (v < acc[c] || v != v) ? v : acc[c];
    }
  }
  typename Dst::DType* d = dst.data() + Dst::offset(0, 0);
#pragma omp simd
  for (int c = 0; c < vc; ++c) d[c * Dst::ColStride] = from_c<typename Dst::DType>(acc[c]);
}

// Broadcast ops. The broadcast operand B holds one value per row (TROWEXPAND*: B(i, 0), mode 1
// R x 1 ColMajor or mode 2 R x 32B row-major, column 0 read) or per column (TCOLEXPAND*: B(0, j)).
// `bcast_first` keeps operand order when src0 is the broadcast operand.
template <bool PerRow, bool BcastFirst, typename Dst, typename Full, typename B, typename Op>
PTO_INLINE void expand_binary(Dst& dst, Full& full, B& b, Op op) {
  using DT = typename Dst::DType;
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
#if defined(__AVX512F__)
  if constexpr (HasV16<Op, 2> && f32_unit_cols_v<Dst, Full> && std::is_same_v<typename B::DType, float> &&
                (PerRow || B::ColStride == 1)) {
    for (int r = 0; r < vr; ++r) {
      float* d = dst.data() + Dst::offset(r, 0);
      const float* f = full.data() + Full::offset(r, 0);
      const __m512 s = _mm512_set1_ps(b.data()[B::offset(PerRow ? r : 0, 0)]);
      for (int c = 0; c < vc; c += 16) {
        const __mmask16 m = lanes_below(vc - c);
        const __m512 x = _mm512_maskz_loadu_ps(m, f + c);
        const __m512 y = PerRow ? s : _mm512_maskz_loadu_ps(m, b.data() + B::offset(0, 0) + c);
        _mm512_mask_storeu_ps(d + c, m, BcastFirst ? Op::v16(y, x) : Op::v16(x, y));
      }
    }
    return;
  }
#endif
  for (int r = 0; r < vr; ++r) {
    DT* d = dst.data() + Dst::offset(r, 0);
    const typename Full::DType* f = full.data() + Full::offset(r, 0);
    if constexpr (PerRow) {
      const auto s = to_c(b.data()[B::offset(r, 0)]);
#pragma omp simd
      for (int c = 0; c < vc; ++c) {
        const auto x = to_c(f[c * Full::ColStride]);
        d[c * Dst::ColStride] = from_c<DT>(BcastFirst ? op(s, x) : op(x, s));
      }
    } else {
      const typename B::DType* brow = b.data() + B::offset(0, 0);
#pragma omp simd
      for (int c = 0; c < vc; ++c) {
        const auto x = to_c(f[c * Full::ColStride]);
        const auto s = to_c(brow[c * B::ColStride]);
        d[c * Dst::ColStride] = from_c<DT>(BcastFirst ? op(s, x) : op(x, s));
      }
    }
  }
}

// Which operand of a row-expand op is the broadcast one: src1 unless src0 is a ColMajor R x 1
// tile, or src1 has dst's valid shape while src0 does not.
template <typename Dst, typename S0, typename S1>
PTO_INLINE bool src0_is_broadcast(const Dst& dst, const S0& s0, const S1& s1) {
  if constexpr (!S1::isRowMajor && S1::Cols == 1) return false;
  else if constexpr (!S0::isRowMajor && S0::Cols == 1) return true;
  else
    return s1.GetValidCol() == dst.GetValidCol() && s1.GetValidRow() == dst.GetValidRow() &&
           s0.GetValidCol() != dst.GetValidCol();
}

template <bool PerRow, typename Dst, typename S0, typename S1, typename Op>
PTO_INLINE void expand_dispatch(Dst& dst, S0& src0, S1& src1, Op op) {
  if constexpr (PerRow) {
    if (src0_is_broadcast(dst, src0, src1)) expand_binary<true, true>(dst, src1, src0, op);
    else expand_binary<true, false>(dst, src0, src1, op);
  } else {
    if (src0.GetValidRow() != dst.GetValidRow() && src1.GetValidRow() == dst.GetValidRow())
      expand_binary<false, true>(dst, src1, src0, op);
    else expand_binary<false, false>(dst, src0, src1, op);
  }
}
}  // namespace pto::detail

namespace pto {
// ---- reductions ---------------------------------------------------------------------------------
#define PTO_ROW_REDUCE(NAME, KIND)                                                             \
  template <detail::TileT Dst, detail::TileT Src, detail::TileT Tmp, typename... E>           \
  PTO_INST RecordEvent NAME(Dst& dst, Src& src, Tmp&, E&...) {                                \
    detail::row_reduce<detail::Red::KIND>(dst, src);                                          \
    return {};                                                                                 \
  }                                                                                            \
  template <detail::TileT Dst, detail::TileT Src>                                             \
  PTO_INST RecordEvent NAME(Dst& dst, Src& src) {                                             \
    detail::row_reduce<detail::Red::KIND>(dst, src);                                          \
    return {};                                                                                 \
  }
PTO_ROW_REDUCE(TROWSUM, Sum)
PTO_ROW_REDUCE(TROWMAX, Max)
PTO_ROW_REDUCE(TROWMIN, Min)
#undef PTO_ROW_REDUCE

#define PTO_COL_REDUCE(NAME, KIND)                                                             \
  template <detail::TileT Dst, detail::TileT Src, typename... E>                              \
  PTO_INST RecordEvent NAME(Dst& dst, Src& src, E&...) {                                      \
    detail::col_reduce<detail::Red::KIND>(dst, src);                                          \
    return {};                                                                                 \
  }
PTO_COL_REDUCE(TCOLMAX, Max)
PTO_COL_REDUCE(TCOLMIN, Min)
#undef PTO_COL_REDUCE
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TCOLSUM(Dst& dst, Src& src, E&...) {
  detail::col_reduce<detail::Red::Sum>(dst, src);
  return {};
}
template <detail::TileT Dst, detail::TileT Src, detail::TileT Tmp, typename... E>
PTO_INST RecordEvent TCOLSUM(Dst& dst, Src& src, Tmp&, bool /*isBinary*/, E&...) {
  detail::col_reduce<detail::Red::Sum>(dst, src);
  return {};
}

// ---- expands --------------------------------------------------------------------------------------
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TROWEXPAND(Dst& dst, Src& src, E&...) {
  detail::expand_binary<true, false>(dst, dst, src, [](auto, auto s) PTO_LAMBDA { return s; });
  return {};
}
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TCOLEXPAND(Dst& dst, Src& src, E&...) {
  detail::expand_binary<false, false>(dst, dst, src, [](auto, auto s) PTO_LAMBDA { return s; });
  return {};
}

#define PTO_EXPAND_OP(NAME, PERROW, EXPR)                                                      \
  template <detail::TileT Dst, detail::TileT S0, detail::TileT S1, typename... E>             \
  PTO_INST RecordEvent NAME(Dst& dst, S0& src0, S1& src1, E&...) {                            \
    detail::expand_dispatch<PERROW>(dst, src0, src1, [](auto a, auto b) PTO_LAMBDA { return EXPR; });    \
    return {};                                                                                 \
  }
PTO_EXPAND_OP(TROWEXPANDADD, true, a + b)
PTO_EXPAND_OP(TROWEXPANDSUB, true, a - b)
PTO_EXPAND_OP(TROWEXPANDMUL, true, a * b)
PTO_EXPAND_OP(TROWEXPANDMAX, true, ((a > b) | (a != a)) ? a : b)
PTO_EXPAND_OP(TROWEXPANDMIN, true, ((a < b) | (a != a)) ? a : b)
PTO_EXPAND_OP(TCOLEXPANDADD, false, a + b)
PTO_EXPAND_OP(TCOLEXPANDSUB, false, a - b)
PTO_EXPAND_OP(TCOLEXPANDMUL, false, a * b)
PTO_EXPAND_OP(TCOLEXPANDDIV, false, a / b)
PTO_EXPAND_OP(TCOLEXPANDMAX, false, ((a > b) | (a != a)) ? a : b)
PTO_EXPAND_OP(TCOLEXPANDMIN, false, ((a < b) | (a != a)) ? a : b)
#undef PTO_EXPAND_OP
namespace detail {
struct ExpDifOp {   // exp(a - b)
  template <typename A, typename B> PTO_INLINE auto operator()(A a, B b) const { return vm::vexp(float(a - b)); }
#if defined(__AVX512F__)
  static PTO_INLINE __m512 v16(__m512 a, __m512 b) { return vm::vexp16(_mm512_sub_ps(a, b)); }
#endif
};
}  // namespace detail
template <detail::TileT Dst, detail::TileT S0, detail::TileT S1, typename... E>
PTO_INST RecordEvent TROWEXPANDEXPDIF(Dst& dst, S0& src0, S1& src1, E&...) {
  detail::expand_dispatch<true>(dst, src0, src1, detail::ExpDifOp{});
  return {};
}
template <detail::TileT Dst, detail::TileT S0, detail::TileT S1, typename... E>
PTO_INST RecordEvent TCOLEXPANDEXPDIF(Dst& dst, S0& src0, S1& src1, E&...) {
  detail::expand_dispatch<false>(dst, src0, src1, detail::ExpDifOp{});
  return {};
}
template <DivAlgorithm Alg = DivAlgorithm::DEFAULT, detail::TileT Dst, detail::TileT S0, detail::TileT S1, typename... E>
PTO_INST RecordEvent TROWEXPANDDIV(Dst& dst, S0& src0, S1& src1, E&...) {
  detail::expand_dispatch<true>(dst, src0, src1, [](auto a, auto b) PTO_LAMBDA { return a / b; });
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
