// pto_dynamo CPU target: MGATHER / MSCATTER (pto_isa.md §3.1): GM <-> tile through an index tile.
// The table is an ND GlobalTensor Shape<1,1,1,rows,width>; its row pitch is GetStride(3).
#pragma once
#include "pto/cpu/movement.hpp"

#pragma GCC visibility push(hidden)

namespace pto::detail {
// Resolve an index against [0, n) under an out-of-bounds policy; -1 = skip / produce zero.
template <typename Policy> PTO_INLINE int64_t resolve_index(int64_t i, int64_t n, Policy oob) {
  if constexpr (std::is_same_v<Policy, GatherOOB>) {
    if (oob == GatherOOB::Clamp) return i < 0 ? 0 : (i >= n ? n - 1 : i);
    if (oob == GatherOOB::Wrap) { const int64_t m = i % n; return m < 0 ? m + n : m; }
    if (oob == GatherOOB::Zero) return (i < 0 || i >= n) ? -1 : i;
    return i;
  } else {
    if (oob == ScatterOOB::Clamp) return i < 0 ? 0 : (i >= n ? n - 1 : i);
    if (oob == ScatterOOB::Wrap) { const int64_t m = i % n; return m < 0 ? m + n : m; }
    if (oob == ScatterOOB::Skip) return (i < 0 || i >= n) ? -1 : i;
    return i;
  }
}
template <typename Idx> PTO_INLINE int64_t index_at(Idx& idx, int r, int c) {
  return static_cast<int64_t>(idx.data()[Idx::offset(r, c)]);
}
template <ScatterAtomicOp Op, typename T> PTO_INLINE void scatter_store(T* p, T v) {
  if constexpr (Op == ScatterAtomicOp::None) {
    *p = v;
  } else if constexpr (Op == ScatterAtomicOp::Add) {
    atomic_add(p, v);
  } else {
    using U = std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>;
    std::atomic_ref<U> ref(*reinterpret_cast<U*>(p));
    U old = ref.load(std::memory_order_relaxed);
    for (;;) {
      const auto cur = to_c(std::bit_cast<T>(old)), nv = to_c(v);
      const bool take = Op == ScatterAtomicOp::Max ? nv > cur : nv < cur;
      if (!take || ref.compare_exchange_weak(old, std::bit_cast<U>(v), std::memory_order_relaxed)) break;
    }
  }
}
}  // namespace pto::detail

namespace pto {
// Elem: dst[r, c] = table_flat[idx[r, c]]; Row: dst[r, :] = table[idx[0, r], :] (1 x R index tile).
template <Coalesce Mode = Coalesce::Elem, GatherOOB OOB = GatherOOB::Undefined, detail::TileT Dst, detail::GlobalT G,
          detail::TileT Idx, typename... E>
PTO_INST RecordEvent MGATHER(Dst& dst, G& table, Idx& idx, E&...) {
  using DT = typename Dst::DType;
  const int vr = dst.GetValidRow(), vc = dst.GetValidCol();
  const int64_t rows = table.GetShape(3), width = table.GetShape(4), pitch = table.GetStride(3);
  const auto* base = table.data();
  for (int r = 0; r < vr; ++r) {
    DT* d = dst.data() + Dst::offset(r, 0);
    if constexpr (Mode == Coalesce::Row) {
      const int64_t i = detail::resolve_index(detail::index_at(idx, 0, r), rows, OOB);
      if (i < 0) {
        for (int c = 0; c < vc; ++c) d[c * Dst::ColStride] = detail::from_c<DT>(0);
      } else {
        detail::copy_line(d, Dst::ColStride, base + i * pitch, table.GetStride(4), vc);
      }
    } else {
      for (int c = 0; c < vc; ++c) {
        const int64_t i = detail::resolve_index(detail::index_at(idx, r, c), rows * width, OOB);
        d[c * Dst::ColStride] = i < 0 ? detail::from_c<DT>(0) : std::bit_cast<DT>(base[(i / width) * pitch + (i % width)]);
      }
    }
  }
  return {};
}

// Inverse of MGATHER. Duplicate indices: the last writer in row-major order wins (atomic ops
// accumulate); across blocks atomic ops are atomic.
template <Coalesce Mode = Coalesce::Elem, ScatterAtomicOp Op = ScatterAtomicOp::None, ScatterOOB OOB = ScatterOOB::Undefined,
          detail::GlobalT G, detail::TileT Src, detail::TileT Idx, typename... E>
PTO_INST RecordEvent MSCATTER(G& table, Src& src, Idx& idx, E&...) {
  using GT = std::remove_const_t<typename G::DType>;
  const int vr = src.GetValidRow(), vc = src.GetValidCol();
  const int64_t rows = table.GetShape(3), width = table.GetShape(4), pitch = table.GetStride(3);
  GT* base = table.data();
  for (int r = 0; r < vr; ++r) {
    const auto* s = src.data() + Src::offset(r, 0);
    if constexpr (Mode == Coalesce::Row) {
      const int64_t i = detail::resolve_index(detail::index_at(idx, 0, r), rows, OOB);
      if (i < 0) continue;
      for (int c = 0; c < vc; ++c)
        detail::scatter_store<Op>(base + i * pitch + c * table.GetStride(4), std::bit_cast<GT>(s[c * Src::ColStride]));
    } else {
      for (int c = 0; c < vc; ++c) {
        const int64_t i = detail::resolve_index(detail::index_at(idx, r, c), rows * width, OOB);
        if (i < 0) continue;
        detail::scatter_store<Op>(base + (i / width) * pitch + (i % width), std::bit_cast<GT>(s[c * Src::ColStride]));
      }
    }
  }
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
