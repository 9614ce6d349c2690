// pto_dynamo CPU target: fp32 elementary functions written so that GCC vectorises them inside
// `#pragma omp simd` loops (branch-free: selects, bit casts, fma, rint), without -ffast-math.
// Accuracy: a few ulp over the whole float range (tests/cpu_runtime compare with torch at
// rtol 1.3e-6, atol 1e-5). Special values follow C: exp(-inf)=0, log(0)=-inf, log(<0)=nan, ...
#pragma once
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include "pto/cpu/common.hpp"

#pragma GCC visibility push(hidden)

namespace pto::vm {
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

PTO_INLINE float bits_to_f(uint32_t u) { return std::bit_cast<float>(u); }
PTO_INLINE uint32_t f_to_bits(float f) { return std::bit_cast<uint32_t>(f); }
PTO_INLINE float vabs(float x) { return bits_to_f(f_to_bits(x) & 0x7FFFFFFFu); }
PTO_INLINE float vcopysign(float mag, float sgn) {
  return bits_to_f((f_to_bits(mag) & 0x7FFFFFFFu) | (f_to_bits(sgn) & 0x80000000u));
}
PTO_INLINE bool visnan(float x) { return x != x; }

// e^x: Cody-Waite reduction by ln2, degree-7 Taylor polynomial on |r| <= ln2/2 evaluated in
// Estrin's scheme (a dependency chain of 4 fma instead of Horner's 8: the loop is latency-bound
// otherwise), and the scale 2^n applied as two factors so that subnormal results round once.
// |x| is clamped to 104 (e^104 overflows, e^-104 rounds to 0) as an integer min of its bits:
// float selects for the two bounds made GCC emit four compares and four blends, a fifth of the
// loop; a nan clamps too and is put back at the end. Below -103.98 (-inf among them: a masked
// score) the result is 0, computed from x = 0 instead: the scaled polynomial would underflow
// through a subnormal product, and on Intel cores every lane that does takes a microcode assist
// (a 64 x 64 tile with half its lanes at -inf: 3.5 instead of 0.43 ns per element).
PTO_INLINE float vexp(float x) {
  const bool zero = x < -103.98f;
  const uint32_t ux = zero ? 0u : f_to_bits(x);
  const int32_t mag = static_cast<int32_t>(ux & 0x7FFFFFFFu);
  const float xc = bits_to_f(static_cast<uint32_t>(mag < 0x42D00000 ? mag : 0x42D00000) | (ux & 0x80000000u));
  const float n = __builtin_rintf(xc * 1.44269504088896341f);
  float r = __builtin_fmaf(n, -0.693145751953125f, xc);
  r = __builtin_fmaf(n, -1.428606765330187045e-06f, r);
  const float r2 = r * r, r4 = r2 * r2;
  const float lo = __builtin_fmaf(r2, __builtin_fmaf(r, 1.0f / 6.0f, 0.5f), r + 1.0f);
  const float hi = __builtin_fmaf(r2, __builtin_fmaf(r, 1.0f / 5040.0f, 1.0f / 720.0f),
                                  __builtin_fmaf(r, 1.0f / 120.0f, 1.0f / 24.0f));
  const float p = __builtin_fmaf(r4, hi, lo);
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const float s1 = bits_to_f(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = bits_to_f(static_cast<uint32_t>(n2 + 127) << 23);
  const float res = (p * s1) * s2;
  return visnan(x) ? x : zero ? 0.0f : res;
}

#if defined(__AVX512F__)
// vexp on 16 lanes, written with AVX-512 intrinsics: the same reduction and polynomial, with the
// scale 2^n applied by vscalefps (one rounding, as vexp's two factors give) and the lanes below
// -103.98 zeroed by a mask, so every lane equals vexp's bit for bit (NaN payloads aside). About
// half the instructions of GCC's vectorisation of vexp (a 64 x 128 tile of exp(s - rowmax), Sapphire
// Rapids: 0.22 against 0.36 ns per element): the V-ops whose op has a `v16` form take it
// (elementwise.hpp, reduce_expand.hpp).
PTO_INLINE __m512 vexp16(__m512 x) {
  const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-103.98f), _CMP_NLT_UQ);   // nan: live
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(104.0f), _mm512_maskz_mov_ps(live, x));  // nan stays
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145751953125f), xc);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.428606765330187045e-06f), r);
  const __m512 r2 = _mm512_mul_ps(r, r), r4 = _mm512_mul_ps(r2, r2);
  const __m512 lo = _mm512_fmadd_ps(r2, _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f)),
                                    _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512 hi = _mm512_fmadd_ps(r2, _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 5040.0f), _mm512_set1_ps(1.0f / 720.0f)),
                                    _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 120.0f), _mm512_set1_ps(1.0f / 24.0f)));
  return _mm512_maskz_scalef_ps(live, _mm512_fmadd_ps(r4, hi, lo), n);
}
#endif

// e^x - 1: Taylor series to x^10 for |x| < 0.5 (no cancellation), exp(x) - 1 elsewhere.
PTO_INLINE float vexpm1(float x) {
  float p = 1.0f / 3628800.0f;
  p = __builtin_fmaf(p, x, 1.0f / 362880.0f);
  p = __builtin_fmaf(p, x, 1.0f / 40320.0f);
  p = __builtin_fmaf(p, x, 1.0f / 5040.0f);
  p = __builtin_fmaf(p, x, 1.0f / 720.0f);
  p = __builtin_fmaf(p, x, 1.0f / 120.0f);
  p = __builtin_fmaf(p, x, 1.0f / 24.0f);
  p = __builtin_fmaf(p, x, 1.0f / 6.0f);
  p = __builtin_fmaf(p, x, 0.5f);
  const float small = __builtin_fmaf(p * x, x, x);
  const float big = vexp(x) - 1.0f;
  return vabs(x) < 0.5f ? small : big;
}

// ln(x) = e*ln2 + 2*atanh(s), s = (m-1)/(m+1), m in [sqrt(1/2), sqrt(2)); |s| <= 0.1716.
// Written with float selects only (GCC if-converts these; integer selects made it give up).
PTO_INLINE float vlog(float x) {
  const bool sub = x < 1.17549435e-38f;                    // subnormal: scale by 2^23 first
  const float xs = x * (sub ? 8388608.0f : 1.0f);
  const uint32_t u = f_to_bits(xs);
  const int32_t e0 = static_cast<int32_t>(u >> 23) - 127;  // garbage for x < 0: masked below
  const float m0 = bits_to_f((u & 0x007FFFFFu) | 0x3F800000u);
  const bool hi = m0 > 1.41421356237f;
  const float m = hi ? m0 * 0.5f : m0;
  const float fe = static_cast<float>(e0) + (hi ? 1.0f : 0.0f) - (sub ? 23.0f : 0.0f);
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  float p = 1.0f / 13.0f;
  p = __builtin_fmaf(p, s2, 1.0f / 11.0f);
  p = __builtin_fmaf(p, s2, 1.0f / 9.0f);
  p = __builtin_fmaf(p, s2, 1.0f / 7.0f);
  p = __builtin_fmaf(p, s2, 1.0f / 5.0f);
  p = __builtin_fmaf(p, s2, 1.0f / 3.0f);
  const float two_s = 2.0f * s;
  const float log_m = __builtin_fmaf(two_s * s2, p, two_s);
  float res = __builtin_fmaf(fe, 0.693145751953125f, __builtin_fmaf(fe, 1.428606765330187045e-06f, log_m));
  res = x == kInf ? kInf : res;
  res = x == 0.0f ? -kInf : res;
  res = !(x >= 0.0f) ? kNaN : res;   // x < 0 or nan
  return res;
}

// ln(1+x) with the correction u = 1+x: log(u) * x / (u-1) (exact where u-1 == x).
PTO_INLINE float vlog1p(float x) {
  const float u = 1.0f + x;
  const float d = u - 1.0f;
  const float lu = vlog(u);
  float res = (d == 0.0f) ? x : lu * (x / d);
  res = (u == kInf) ? lu : res;  // x = +inf or overflow of 1+x
  return res;
}

// tanh via expm1: t = -expm1(-2|x|) / (expm1(-2|x|) + 2), sign restored.
PTO_INLINE float vtanh(float x) {
  const float e = vexpm1(-2.0f * vabs(x));
  const float t = -e / (e + 2.0f);
  return vcopysign(t, x);
}

PTO_INLINE float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }
PTO_INLINE float vsilu(float x) { return x / (1.0f + vexp(-x)); }

// erfc(z) for z >= 0 (Chebyshev fit with fractional error < 1.2e-7 everywhere, in the form of
// Numerical Recipes' erfcc); used for |x| >= 1 where erf = 1 - erfc does not cancel.
PTO_INLINE float verfc_pos(float z) {
  const float t = 1.0f / __builtin_fmaf(0.5f, z, 1.0f);
  float p = 0.17087277f;
  p = __builtin_fmaf(p, t, -0.82215223f);
  p = __builtin_fmaf(p, t, 1.48851587f);
  p = __builtin_fmaf(p, t, -1.13520398f);
  p = __builtin_fmaf(p, t, 0.27886807f);
  p = __builtin_fmaf(p, t, -0.18628806f);
  p = __builtin_fmaf(p, t, 0.09678418f);
  p = __builtin_fmaf(p, t, 0.37409196f);
  p = __builtin_fmaf(p, t, 1.00002368f);
  p = __builtin_fmaf(p, t, -1.26551223f);
  return t * vexp(__builtin_fmaf(-z, z, p));
}

// erf(x) for |x| < 1: Taylor series in x^2, 12 terms (truncation < 1e-9).
PTO_INLINE float verf_series(float x) {
  const float z = x * x;
  // 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
  float p = -1.0f / (39916800.0f * 23.0f);
  p = __builtin_fmaf(p, z, 1.0f / (3628800.0f * 21.0f));
  p = __builtin_fmaf(p, z, -1.0f / (362880.0f * 19.0f));
  p = __builtin_fmaf(p, z, 1.0f / (40320.0f * 17.0f));
  p = __builtin_fmaf(p, z, -1.0f / (5040.0f * 15.0f));
  p = __builtin_fmaf(p, z, 1.0f / (720.0f * 13.0f));
  p = __builtin_fmaf(p, z, -1.0f / (120.0f * 11.0f));
  p = __builtin_fmaf(p, z, 1.0f / (24.0f * 9.0f));
  p = __builtin_fmaf(p, z, -1.0f / (6.0f * 7.0f));
  p = __builtin_fmaf(p, z, 1.0f / (2.0f * 5.0f));
  p = __builtin_fmaf(p, z, -1.0f / 3.0f);
  p = __builtin_fmaf(p, z, 1.0f);
  return x * p * 1.12837916709551257f;
}

// erf: the series for |x| < 1, 1 - erfc(|x|) (sign restored) beyond.
PTO_INLINE float verf(float x) {
  const float small = verf_series(x);
  const float big = vcopysign(1.0f - verfc_pos(vabs(x)), x);
  return vabs(x) < 1.0f ? small : big;
}

// gelu (erf form) x/2 * (1 + erf(x/sqrt2)); for |x/sqrt2| >= 1, 1 + erf is 2 - erfc(|y|) or
// erfc(|y|) (no cancellation for negative x). One erfc and one series evaluation per element.
PTO_INLINE float vgelu(float x) {
  const float y = x * 0.70710678118654752f;
  const float a = vabs(y);
  const float ec = verfc_pos(a);
  const float one_plus_erf_small = 1.0f + verf_series(y);
  const float one_plus_erf_big = y > 0.0f ? 2.0f - ec : ec;
  return 0.5f * x * (a < 1.0f ? one_plus_erf_small : one_plus_erf_big);
}

// sin/cos: reduction by pi/2 in three parts (accurate for |x| up to ~1e4), Taylor polynomials
// on |r| <= pi/4, quadrant selection by select.
PTO_INLINE void vsincos_reduce(float x, float& r, int32_t& q) {
  const float j = __builtin_rintf(x * 0.636619772367581343f);
  r = __builtin_fmaf(j, -1.5703125f, x);
  r = __builtin_fmaf(j, -4.837512969970703125e-4f, r);
  r = __builtin_fmaf(j, -7.54978995489188216e-8f, r);
  q = static_cast<int32_t>(j) & 3;
}
PTO_INLINE float vsin_poly(float r) {
  const float z = r * r;
  float p = -1.0f / 6227020800.0f;
  p = __builtin_fmaf(p, z, 1.0f / 39916800.0f);
  p = __builtin_fmaf(p, z, -1.0f / 362880.0f);
  p = __builtin_fmaf(p, z, 1.0f / 5040.0f);
  p = __builtin_fmaf(p, z, -1.0f / 120.0f);
  p = __builtin_fmaf(p, z, 1.0f / 6.0f);
  return __builtin_fmaf(-r * z, p, r);
}
PTO_INLINE float vcos_poly(float r) {
  const float z = r * r;
  float p = 1.0f / 87178291200.0f;
  p = __builtin_fmaf(p, z, -1.0f / 479001600.0f);
  p = __builtin_fmaf(p, z, 1.0f / 3628800.0f);
  p = __builtin_fmaf(p, z, -1.0f / 40320.0f);
  p = __builtin_fmaf(p, z, 1.0f / 720.0f);
  p = __builtin_fmaf(p, z, -1.0f / 24.0f);
  p = __builtin_fmaf(p, z, 0.5f);
  return __builtin_fmaf(-z, p, 1.0f);
}
PTO_INLINE float vsin(float x) {
  float r; int32_t q;
  vsincos_reduce(x, r, q);
  const float s = vsin_poly(r), c = vcos_poly(r);
  const float v = (q & 1) ? c : s;
  const float res = (q & 2) ? -v : v;
  return vabs(x) == kInf ? kNaN : res;
}
PTO_INLINE float vcos(float x) {
  float r; int32_t q;
  vsincos_reduce(x, r, q);
  const float s = vsin_poly(r), c = vcos_poly(r);
  const float v = (q & 1) ? s : c;
  const float res = ((q + 1) & 2) ? -v : v;
  return vabs(x) == kInf ? kNaN : res;
}

PTO_INLINE float vsqrt(float x) { return __builtin_sqrtf(x); }

// floor/ceil from rint (GCC inlines rint as vrndscale but keeps floor/ceil as libm calls while
// -ftrapping-math is on); exact for every float, nan and inf pass through.
PTO_INLINE float vfloor(float x) { const float r = __builtin_rintf(x); return r > x ? r - 1.0f : r; }
PTO_INLINE float vceil(float x) { const float r = __builtin_rintf(x); return r < x ? r + 1.0f : r; }
PTO_INLINE float vtrunc(float x) { return x < 0.0f ? vceil(x) : vfloor(x); }
}  // namespace pto::vm

#pragma GCC visibility pop
