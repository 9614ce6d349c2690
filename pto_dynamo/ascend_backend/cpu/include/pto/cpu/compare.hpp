// pto_dynamo CPU target: TCMP, TCMPS, TSEL, TSELS (pto_isa.md §3.3).
//
// Mask packing on the CPU: the predicate of element (r, c) is bit c % 8 of byte c / 8 of mask
// row r (least-significant bit = lowest column). Row r of the mask starts at mask.data() +
// r * Mask::RowStride, so a mask tile needs >= ceil(Cols / 8) bytes of row capacity (and, being a
// row-major uint8 tile, a multiple of 32). TCMP/TCMPS write every bit of the bytes covering the
// source's valid columns (bits past the valid width are 0); TSEL/TSELS read the same positions.
#pragma once
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

template <CmpMode M, typename Mask, typename Src, typename RhsAt>
PTO_INLINE void pack_compare(Mask& mask, Src& src, RhsAt rhs_at) {
  const int vr = src.GetValidRow(), vc = src.GetValidCol();
  const int nbytes = (vc + 7) / 8;
  for (int r = 0; r < vr; ++r) {
    const typename Src::DType* s = src.data() + Src::offset(r, 0);
    uint8_t* m = reinterpret_cast<uint8_t*>(mask.data()) + Mask::offset(r, 0);
    for (int k = 0; k < nbytes; ++k) {
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
}  // namespace pto::detail

namespace pto {
template <detail::TileT Mask, detail::TileT S0, detail::TileT S1, typename... E>
PTO_INST RecordEvent TCMP(Mask& mask, S0& src0, S1& src1, CmpMode mode, E&...) {
  auto rhs = [&](int r, int c) PTO_LAMBDA { return detail::to_c(src1.data()[S1::offset(r, c)]); };
  switch (mode) {
    case CmpMode::EQ: detail::pack_compare<CmpMode::EQ>(mask, src0, rhs); break;
    case CmpMode::NE: detail::pack_compare<CmpMode::NE>(mask, src0, rhs); break;
    case CmpMode::LT: detail::pack_compare<CmpMode::LT>(mask, src0, rhs); break;
    case CmpMode::LE: detail::pack_compare<CmpMode::LE>(mask, src0, rhs); break;
    case CmpMode::GT: detail::pack_compare<CmpMode::GT>(mask, src0, rhs); break;
    case CmpMode::GE: detail::pack_compare<CmpMode::GE>(mask, src0, rhs); break;
  }
  return {};
}
template <detail::TileT Mask, detail::TileT Src, typename... E>
PTO_INST RecordEvent TCMPS(Mask& mask, Src& src, typename Src::DType scalar, CmpMode mode, E&...) {
  const auto s = detail::to_c(scalar);
  auto rhs = [s](int, int) PTO_LAMBDA { return s; };
  switch (mode) {
    case CmpMode::EQ: detail::pack_compare<CmpMode::EQ>(mask, src, rhs); break;
    case CmpMode::NE: detail::pack_compare<CmpMode::NE>(mask, src, rhs); break;
    case CmpMode::LT: detail::pack_compare<CmpMode::LT>(mask, src, rhs); break;
    case CmpMode::LE: detail::pack_compare<CmpMode::LE>(mask, src, rhs); break;
    case CmpMode::GT: detail::pack_compare<CmpMode::GT>(mask, src, rhs); break;
    case CmpMode::GE: detail::pack_compare<CmpMode::GE>(mask, src, rhs); break;
  }
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
#pragma omp simd
    for (int c = 0; c < vc; ++c) {
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
#pragma omp simd
    for (int c = 0; c < vc; ++c) {
      const bool on = (m[c >> 3] >> (c & 7)) & 1;
      d[c * Dst::ColStride] = on ? std::bit_cast<DT>(a[c * Src::ColStride]) : sv;
    }
  }
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
