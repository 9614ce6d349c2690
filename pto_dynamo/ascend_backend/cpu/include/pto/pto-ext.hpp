// pto_dynamo CPU target: project extension V-ops (docs/device_abi.md "Project extensions"):
// element-wise functions the NPU composes from primitives, one call each so the CPU vectorises
// them. Same rules as V-ops: dst's valid region, Vec row-major tiles, fp32 math.
#pragma once
#include "pto/pto-inst.hpp"
#include "pto/cpu/fused.hpp"   // fused V-ops (TMULS_ROWMAX, TMUL_ROWSUM, ...)

#pragma GCC visibility push(hidden)
namespace pto {
#define PTO_EXT_UNARY(NAME, EXPR)                                                              \
  template <detail::TileT Dst, detail::TileT Src, typename... E>                              \
  PTO_INST RecordEvent NAME(Dst& dst, Src& src, E&...) {                                      \
    detail::ewise(dst, [](auto a) PTO_LAMBDA { const float x = float(a); return EXPR; }, src);           \
    return {};                                                                                 \
  }
PTO_EXT_UNARY(TTANH, vm::vtanh(x))
PTO_EXT_UNARY(TERF, vm::verf(x))
PTO_EXT_UNARY(TGELU, vm::vgelu(x))
PTO_EXT_UNARY(TFLOOR, vm::vfloor(x))
PTO_EXT_UNARY(TCEIL, vm::vceil(x))
PTO_EXT_UNARY(TTRUNC, vm::vtrunc(x))
PTO_EXT_UNARY(TROUND, __builtin_rintf(x))
PTO_EXT_UNARY(TSIGN, x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f))  // sign(nan) = 0, as torch
PTO_EXT_UNARY(TLOG1P, vm::vlog1p(x))
PTO_EXT_UNARY(TEXPM1, vm::vexpm1(x))
PTO_EXT_UNARY(TSIN, vm::vsin(x))
PTO_EXT_UNARY(TCOS, vm::vcos(x))
#undef PTO_EXT_UNARY

// sigmoid and silu with a 16-lane form (vexp16, bit for bit vexp, and an IEEE division): the
// SwiGLU gate's silu on a 16 x 128 tile 0.91 -> 0.54 us against GCC's vectorisation of vsilu.
namespace detail {
struct SigmoidOp {
  template <typename A> PTO_INLINE float operator()(A a) const { return vm::vsigmoid(float(a)); }
#if defined(__AVX512F__)
  static PTO_INLINE __m512 v16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, vm::vexp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
  }
#endif
};
struct SiluOp {
  template <typename A> PTO_INLINE float operator()(A a) const { return vm::vsilu(float(a)); }
#if defined(__AVX512F__)
  static PTO_INLINE __m512 v16(__m512 x) {
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), vm::vexp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
  }
#endif
};
}  // namespace detail
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TSIGMOID(Dst& dst, Src& src, E&...) {
  detail::ewise(dst, detail::SigmoidOp{}, src);
  return {};
}
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TSILU(Dst& dst, Src& src, E&...) {
  detail::ewise(dst, detail::SiluOp{}, src);
  return {};
}

// pow through libm's powf (correctly rounded-ish, as torch); not vectorised, rarely hot.
template <detail::TileT Dst, detail::TileT S0, detail::TileT S1, typename... E>
PTO_INST RecordEvent TPOW(Dst& dst, S0& src0, S1& src1, E&...) {
  detail::ewise(dst, [](auto a, auto b) PTO_LAMBDA { return std::pow(float(a), float(b)); }, src0, src1);
  return {};
}
// pow by a scalar exponent: the common exponents take exact fast paths (as torch does).
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST RecordEvent TPOWS(Dst& dst, Src& src, float s, E&...) {
  if (s == 1.0f) detail::ewise(dst, [](auto a) PTO_LAMBDA { return float(a); }, src);
  else if (s == 2.0f) detail::ewise(dst, [](auto a) PTO_LAMBDA { return float(a) * float(a); }, src);
  else if (s == 3.0f) detail::ewise(dst, [](auto a) PTO_LAMBDA { return float(a) * float(a) * float(a); }, src);
  else if (s == 0.5f) detail::ewise(dst, [](auto a) PTO_LAMBDA { return vm::vsqrt(float(a)); }, src);
  else if (s == -1.0f) detail::ewise(dst, [](auto a) PTO_LAMBDA { return 1.0f / float(a); }, src);
  else if (s == -0.5f) detail::ewise(dst, [](auto a) PTO_LAMBDA { return 1.0f / vm::vsqrt(float(a)); }, src);
  else if (s == 0.0f) detail::ewise(dst, [](auto) PTO_LAMBDA { return 1.0f; }, src);
  else detail::ewise(dst, [s](auto a) PTO_LAMBDA { return std::pow(float(a), s); }, src);
  return {};
}
}  // namespace pto
#pragma GCC visibility pop
