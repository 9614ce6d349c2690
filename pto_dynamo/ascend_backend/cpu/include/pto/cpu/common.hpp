// pto_dynamo CPU target: attribute macros, enums and element types shared by every PTO header.
//
// Everything the header defines for itself is compiled with hidden visibility so that two kernel
// libraries loaded into one process never share (GNU-unique) inline variables such as the
// per-thread tile arenas or the block index; the kernels and orchestrations written by the
// renderers keep default visibility.
#pragma once
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

// ---- device attribute macros: empty on the CPU ---------------------------------------------
#ifndef __global__
#define __global__
#endif
#define AICORE
#define __aicore__
#define __gm__
#define __ubuf__
#define __cbuf__
#define __ca__
#define __cb__
#define __cc__
#define __in__
#define __out__
#define __tf__

// A tile instruction is one out-of-line function per instantiation (tile types, GM types): the
// kernels of a region that use the same instruction on the same types share its code, and g++
// optimises it once per translation unit instead of once per use (inlining every instruction into
// every kernel made a region's build twice as long; a call per tile-wide instruction costs nothing
// measurable). Helpers inside an instruction stay always_inline (PTO_INLINE), so its loops keep
// their static tile shapes. Instructions that only rebind a tile's address or view
// (TASSIGN, TRESHAPE, TSUBVIEW) are PTO_INST_TRIVIAL: inlined, so no tile escapes for them.
#define PTO_INST inline __attribute__((noinline))
#define PTO_INST_TRIVIAL inline __attribute__((always_inline))
#define PTO_INLINE inline __attribute__((always_inline))
// Lambdas handed to the loop engines must inline into the `omp simd` loop or it stays scalar
// (GCC stops inlining them in large kernels otherwise).
#define PTO_LAMBDA __attribute__((always_inline))

#pragma GCC visibility push(hidden)

// ---- element types: fp16 and bf16 are storage types, arithmetic is fp32 ----------------------
using half = _Float16;

namespace pto::detail {
// fp32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN with its sign.
// Written for the vectoriser: the nan test is one unordered compare (AVX2 has no unsigned 32-bit
// compare) and the select happens on the 32-bit value, so one narrowing serves both cases.
constexpr PTO_INLINE uint16_t f32_to_bf16_bits(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t r = !(f == f) ? (u | 0x00400000u) : u + 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(r >> 16);
}
// fp32 -> bf16 bits, truncating (round toward zero).
constexpr PTO_INLINE uint16_t f32_to_bf16_bits_trunc(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const bool is_nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
  return static_cast<uint16_t>(is_nan ? ((u >> 16) | 0x0040u) : (u >> 16));
}
constexpr PTO_INLINE float bf16_bits_to_f32(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}
}  // namespace pto::detail

// bfloat16: uint16 storage, converts to and from float (RNE), arithmetic through float.
struct bfloat16_t {
  uint16_t bits;
  bfloat16_t() = default;
  template <typename T>
    requires(std::is_arithmetic_v<T> || std::is_same_v<T, _Float16>)
  constexpr PTO_INLINE bfloat16_t(T v) : bits(pto::detail::f32_to_bf16_bits(static_cast<float>(v))) {}
  constexpr PTO_INLINE operator float() const { return pto::detail::bf16_bits_to_f32(bits); }
  static constexpr PTO_INLINE bfloat16_t from_bits(uint16_t b) {
    bfloat16_t r{};
    r.bits = b;
    return r;
  }
  PTO_INLINE bfloat16_t& operator+=(float v) { return *this = bfloat16_t(float(*this) + v); }
  PTO_INLINE bfloat16_t& operator-=(float v) { return *this = bfloat16_t(float(*this) - v); }
  PTO_INLINE bfloat16_t& operator*=(float v) { return *this = bfloat16_t(float(*this) * v); }
  PTO_INLINE bfloat16_t& operator/=(float v) { return *this = bfloat16_t(float(*this) / v); }
};
static_assert(sizeof(bfloat16_t) == 2);

namespace pto {
using ::bfloat16_t;
using ::half;

// ---- enums of the PTO vocabulary (pto_isa.md §2, §3) ------------------------------------------
constexpr int DYNAMIC = -1;

enum class TileType { Vec, Mat, Left, Right, Acc, Bias, Scaling, ScaleLeft, ScaleRight, Ctrl };
enum class BLayout { RowMajor, ColMajor };
enum class SLayout { NoneBox, RowMajor, ColMajor };
enum class PadValue { Null, Zero, Max, Min };
enum class CompactMode { Null, Normal, RowPlusOne };
enum class Layout { ND, DN, NZ };
enum class RoundMode { CAST_NONE, CAST_RINT, CAST_ROUND, CAST_FLOOR, CAST_CEIL, CAST_TRUNC, CAST_ODD };
enum class SaturationMode { OFF, ON };
enum class CmpMode { EQ, NE, LT, LE, GT, GE };
enum class AccPhase { Unspecified, Partial, Final };
enum class STPhase { Unspecified, Partial, Final };
enum class AtomicType { AtomicNone, AtomicAdd };
enum class Coalesce { Elem, Row };
enum class GatherOOB { Undefined, Clamp, Wrap, Zero };
enum class ScatterAtomicOp { None, Add, Max, Min };
enum class ScatterOOB { Undefined, Skip, Clamp, Wrap };
enum class DivAlgorithm { DEFAULT, HIGH_PRECISION };
enum class ExpAlgorithm { DEFAULT, HIGH_PRECISION };
enum class LogAlgorithm { DEFAULT, HIGH_PRECISION };
enum class SqrtAlgorithm { DEFAULT, HIGH_PRECISION };
enum class RsqrtAlgorithm { DEFAULT, HIGH_PRECISION };
enum class RecipAlgorithm { DEFAULT, HIGH_PRECISION };
enum class GlobalTensorDim { DIM_0 = 0, DIM_1 = 1, DIM_2 = 2, DIM_3 = 3, DIM_4 = 4 };

struct TileConfig {
  static constexpr int alignedSize = 32;
  static constexpr int fixedRowSize = 16;
  static constexpr int fixedColSize = 16;
  static constexpr int fractalABSize = 512;
  static constexpr int fractalCSize = 1024;
  static constexpr int fractalMxSize = 32;
};

// Every instruction returns a RecordEvent; on the CPU it carries nothing.
struct RecordEvent {};

namespace detail {
// The type arithmetic happens in: fp32 for the 16-bit float storage types, else the type itself.
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<half> { using type = float; };
template <> struct compute_type<bfloat16_t> { using type = float; };
template <typename T> using compute_t = typename compute_type<std::remove_cv_t<T>>::type;

template <typename T> constexpr bool is_float16_v =
    std::is_same_v<std::remove_cv_t<T>, half> || std::is_same_v<std::remove_cv_t<T>, bfloat16_t>;

template <typename T> PTO_INLINE compute_t<T> to_c(T v) {
  if constexpr (std::is_same_v<std::remove_cv_t<T>, bfloat16_t>) return bf16_bits_to_f32(v.bits);
  else if constexpr (std::is_same_v<std::remove_cv_t<T>, half>) return static_cast<float>(v);
  else return v;
}
// Convert a computed value to storage type T (RNE for fp16/bf16, C++ conversion otherwise).
template <typename T, typename C> PTO_INLINE T from_c(C v) {
  if constexpr (std::is_same_v<T, C>) return v;  // already rounded (TCVT's convert_rounded)
  else if constexpr (std::is_same_v<T, bfloat16_t>) return bfloat16_t::from_bits(f32_to_bf16_bits(static_cast<float>(v)));
  else if constexpr (std::is_same_v<T, half>) return static_cast<half>(static_cast<float>(v));
  else return static_cast<T>(v);
}

[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "pto cpu: %s (%s:%d)\n", what, file, line);
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail
}  // namespace pto

// Runtime contract checks (cheap, once per instruction); -DPTO_NO_CHECKS removes them.
#ifndef PTO_NO_CHECKS
#define PTO_CHECK(cond, msg) \
  do { if (__builtin_expect(!(cond), 0)) ::pto::detail::fail(msg, __FILE__, __LINE__); } while (0)
#else
#define PTO_CHECK(cond, msg) do { } while (0)
#endif

#pragma GCC visibility pop
