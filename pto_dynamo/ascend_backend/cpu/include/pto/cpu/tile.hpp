// pto_dynamo CPU target: Tile, GlobalTensor/Shape/Stride and the placement instructions
// TASSIGN, TRESHAPE, TSUBVIEW (pto_isa.md §2, §3.1).
//
// Storage on the CPU: an unboxed row-major tile stores (r, c) at r*Cols + c and an unboxed
// column-major tile at c*Rows + r, exactly as the device, so TRESHAPE of an R x 1 ColMajor tile to
// a 1 x R row vector aliases the same elements. Boxed (fractal) tiles (Mat/Left/Right/Acc) keep
// their layout the CPU's own business and every instruction reads them through
// RowStride/ColStride: Nz and Zz boxes (Left, Acc, an Nz Mat) are stored row-major, r*Cols + c,
// and Zn boxes (Right, a Zn Mat) column-major, c*Rows + r, so that a DN global view (the
// transpose of a row-major weight) loads into a Zn Mat tile, moves to a Right tile and feeds the
// matmul kernel with unit-stride copies only. Aliasing between tiles of one layout class behaves.
#pragma once
#include "pto/cpu/state.hpp"

#pragma GCC visibility push(hidden)

namespace pto {
namespace detail {
template <int V> struct ValidRowHolder {
  static constexpr int GetValidRow() { return V; }
  PTO_INLINE void set_valid_row(int) {}
};
template <> struct ValidRowHolder<DYNAMIC> {
  int valid_row_ = 0;
  PTO_INLINE int GetValidRow() const { return valid_row_; }
  PTO_INLINE void set_valid_row(int v) { valid_row_ = v; }
};
template <int V> struct ValidColHolder {
  static constexpr int GetValidCol() { return V; }
  PTO_INLINE void set_valid_col(int) {}
};
template <> struct ValidColHolder<DYNAMIC> {
  int valid_col_ = 0;
  PTO_INLINE int GetValidCol() const { return valid_col_; }
  PTO_INLINE void set_valid_col(int v) { valid_col_ = v; }
};
// A matmul operand tile (Mat, Left, Right) may hold, instead of a copy, a view of the global
// window it was loaded from (TLOAD with LoadHint::InPlace, movement.hpp): its first valid element,
// the distance between its lines and whether those lines are columns ((r, c) at c * ld + r) or
// rows ((r, c) at r * ld + c), which may differ from the tile's own storage order. TMOV/TEXTRACT
// pass the view on, TMATMUL reads through it (matmul.hpp); any other reader of such a tile fails
// its check in data().
template <bool Operand> struct OperandView {
  static constexpr bool kHasView = false;
  PTO_INLINE bool has_view() const { return false; }
};
template <> struct OperandView<true> {
  static constexpr bool kHasView = true;
  const void* view_ = nullptr;
  std::ptrdiff_t view_ld_ = 0;
  bool view_cols_ = false;
  PTO_INLINE bool has_view() const { return view_ != nullptr; }
  PTO_INLINE void set_view(const void* p, std::ptrdiff_t ld, bool cols) { view_ = p; view_ld_ = ld; view_cols_ = cols; }
  PTO_INLINE void clear_view() { view_ = nullptr; }
  // the view's offset of element (r, c)
  PTO_INLINE std::ptrdiff_t view_at(int r, int c) const {
    return view_cols_ ? std::ptrdiff_t(c) * view_ld_ + r : std::ptrdiff_t(r) * view_ld_ + c;
  }
};
// A Vec tile loaded with LoadHint::InPlace may point its data_ at the global window itself (a
// kernel input that no instruction writes through the tile, movement.hpp tload_vec_in_place);
// home_ keeps its own storage meanwhile, and the next copying TLOAD or TASSIGN takes it back.
template <bool Vec> struct VecWindow {
  static constexpr bool kCanPointAtGm = false;
};
template <> struct VecWindow<true> {
  static constexpr bool kCanPointAtGm = true;
  void* home_ = nullptr;
};
}  // namespace detail

template <TileType Loc_, typename Element_, int Rows_, int Cols_, BLayout BFractal_ = BLayout::RowMajor,
          int RowValid_ = Rows_, int ColValid_ = Cols_, SLayout SFractal_ = SLayout::NoneBox,
          int SFractalSize_ = TileConfig::fractalABSize, auto PadVal_ = PadValue::Null,
          CompactMode Compact_ = CompactMode::Null>
struct Tile : detail::ValidRowHolder<RowValid_>, detail::ValidColHolder<ColValid_>,
              detail::OperandView<Loc_ == TileType::Mat || Loc_ == TileType::Left || Loc_ == TileType::Right>,
              detail::VecWindow<Loc_ == TileType::Vec> {
  using DType = Element_;
  static constexpr TileType Loc = Loc_;
  static constexpr int Rows = Rows_;
  static constexpr int Cols = Cols_;
  static constexpr int ValidRow = RowValid_;
  static constexpr int ValidCol = ColValid_;
  static constexpr int Numel = Rows_ * Cols_;
  static constexpr BLayout BFractal = BFractal_;
  static constexpr SLayout SFractal = SFractal_;
  static constexpr int SFractalSize = SFractalSize_;
  static constexpr auto PadVal = PadVal_;
  static constexpr CompactMode Compact = Compact_;
  static constexpr bool isRowMajor = BFractal_ == BLayout::RowMajor;
  static constexpr bool isBoxed = SFractal_ != SLayout::NoneBox;
  static constexpr int InnerRows =
      !isBoxed ? 1 : SFractalSize_ == 1024 ? 16 : SFractal_ == SLayout::RowMajor ? 16 : 32 / int(sizeof(Element_));
  static constexpr int InnerCols =
      !isBoxed ? 1 : SFractalSize_ == 1024 ? 16 : SFractal_ == SLayout::RowMajor ? 32 / int(sizeof(Element_)) : 16;
  // CPU storage strides in elements (see the file comment).
  static constexpr bool isColumnStored = isBoxed ? SFractal_ == SLayout::ColMajor : !isRowMajor;
  static constexpr int RowStride = isColumnStored ? 1 : Cols_;
  static constexpr int ColStride = isColumnStored ? Rows_ : 1;
  static constexpr std::size_t Bytes = std::size_t(Rows_) * Cols_ * sizeof(Element_);

  static_assert(Rows_ > 0 && Cols_ > 0, "Tile capacity must be positive");
  static_assert(RowValid_ == DYNAMIC || (RowValid_ >= 0 && RowValid_ <= Rows_), "Tile: static valid rows exceed capacity");
  static_assert(ColValid_ == DYNAMIC || (ColValid_ >= 0 && ColValid_ <= Cols_), "Tile: static valid cols exceed capacity");
  static_assert(isBoxed || !isRowMajor || (Cols_ * sizeof(Element_)) % TileConfig::alignedSize == 0 || Loc_ != TileType::Vec,
                "Tile: an unboxed row-major tile needs Cols * sizeof(T) to be a multiple of 32 bytes");
  static_assert(isBoxed || isRowMajor || (Rows_ * sizeof(Element_)) % TileConfig::alignedSize == 0 || Loc_ != TileType::Vec,
                "Tile: an unboxed column-major tile needs Rows * sizeof(T) to be a multiple of 32 bytes");
  static_assert(!isBoxed || Cols_ % InnerCols == 0, "Tile: boxed tile needs Cols % InnerCols == 0");
  static_assert(!isBoxed || Rows_ % InnerRows == 0 || Loc_ == TileType::Vec || Rows_ == 1,
                "Tile: boxed tile needs Rows % InnerRows == 0");

  DType* data_ = nullptr;

  Tile() = default;
  PTO_INLINE Tile(unsigned vr, unsigned vc)
    requires(RowValid_ == DYNAMIC && ColValid_ == DYNAMIC)
  { this->set_valid_row(int(vr)); this->set_valid_col(int(vc)); }
  PTO_INLINE explicit Tile(unsigned v)
    requires((RowValid_ == DYNAMIC) != (ColValid_ == DYNAMIC))
  {
    if constexpr (RowValid_ == DYNAMIC) this->set_valid_row(int(v)); else this->set_valid_col(int(v));
  }

  // The tile's own storage. A tile holding an in-place view (OperandView) has none to offer.
  PTO_INLINE DType* data() const {
    PTO_CHECK(!this->has_view(), "a matmul operand tile loaded with LoadHint::InPlace is read only by TMOV, "
                                 "TEXTRACT and TMATMUL (it holds a view of global memory, not a copy)");
    return data_;
  }
  PTO_INLINE void SetValidRow(unsigned v) requires(RowValid_ == DYNAMIC) { this->set_valid_row(int(v)); }
  PTO_INLINE void SetValidCol(unsigned v) requires(ColValid_ == DYNAMIC) { this->set_valid_col(int(v)); }
  PTO_INLINE void SetValidShape(unsigned r, unsigned c) { this->set_valid_row(int(r)); this->set_valid_col(int(c)); }
  static constexpr PTO_INLINE std::ptrdiff_t offset(int r, int c) {
    return std::ptrdiff_t(r) * RowStride + std::ptrdiff_t(c) * ColStride;
  }
  PTO_INLINE DType GetElement(int r, int c) const { return data_[offset(r, c)]; }
  PTO_INLINE void SetElement(int r, int c, DType v) { data_[offset(r, c)] = v; }
};

// L0 aliases (pto_isa.md §2.1, CPU layouts): Left Nz, Right Zn, Acc Nz with 16x16 boxes.
template <typename E, int R, int C, int RV = R, int CV = C>
using TileLeft = Tile<TileType::Left, E, R, C, BLayout::ColMajor, RV, CV, SLayout::RowMajor, TileConfig::fractalABSize>;
template <typename E, int R, int C, int RV = R, int CV = C>
using TileRight = Tile<TileType::Right, E, R, C, BLayout::RowMajor, RV, CV, SLayout::ColMajor, TileConfig::fractalABSize>;
template <typename E, int R, int C, int RV = R, int CV = C>
using TileAcc = Tile<TileType::Acc, E, R, C, BLayout::ColMajor, RV, CV, SLayout::RowMajor, TileConfig::fractalCSize>;
template <typename E, int R, int C, int RV = R, int CV = C>
using TileLeftCompact = TileLeft<E, R, C, RV, CV>;
template <typename E, int R, int C, int RV = R, int CV = C>
using TileRightCompact = TileRight<E, R, C, RV, CV>;
template <typename E, int R, int C, int RV = R, int CV = C>
using TileAccCompact = TileAcc<E, R, C, RV, CV>;

namespace detail {
template <typename T> struct is_tile : std::false_type {};
template <TileType L, typename E, int R, int C, BLayout B, int RV, int CV, SLayout S, int SS, auto P, CompactMode M>
struct is_tile<Tile<L, E, R, C, B, RV, CV, S, SS, P, M>> : std::true_type {};
template <typename T> concept TileT = is_tile<std::remove_cv_t<T>>::value;
}  // namespace detail

// ---- Shape / Stride: 5-D, each entry static or DYNAMIC ---------------------------------------
namespace detail {
template <int64_t... V> struct Dims5 {
  static_assert(sizeof...(V) == 5, "Shape/Stride have 5 entries");
  static constexpr int64_t kStatic[5] = {V...};
  static constexpr int kNumDynamic = ((V == DYNAMIC ? 1 : 0) + ...);
  int64_t dyn_[5] = {V == DYNAMIC ? 1 : V...};

  constexpr Dims5() = default;
  template <typename... A>
    requires(sizeof...(A) == kNumDynamic && kNumDynamic > 0 && kNumDynamic < 5 && (std::is_integral_v<A> && ...))
  constexpr PTO_INLINE Dims5(A... values) {
    const int64_t given[] = {int64_t(values)...};
    int k = 0;
    for (int i = 0; i < 5; ++i) dyn_[i] = kStatic[i] == DYNAMIC ? given[k++] : kStatic[i];
  }
  template <typename... A>
    requires(sizeof...(A) == 5 && (std::is_integral_v<A> && ...))
  constexpr PTO_INLINE Dims5(A... values) {
    const int64_t given[] = {int64_t(values)...};
    for (int i = 0; i < 5; ++i) dyn_[i] = kStatic[i] == DYNAMIC ? given[i] : kStatic[i];
  }
  // Static entries fold to constants after inlining.
  PTO_INLINE int64_t get(int i) const { return kStatic[i] != DYNAMIC ? kStatic[i] : dyn_[i]; }
};
}  // namespace detail

template <int64_t N1 = DYNAMIC, int64_t N2 = DYNAMIC, int64_t N3 = DYNAMIC, int64_t N4 = DYNAMIC, int64_t N5 = DYNAMIC>
struct Shape : detail::Dims5<N1, N2, N3, N4, N5> {
  using detail::Dims5<N1, N2, N3, N4, N5>::Dims5;
};
template <int64_t S1 = DYNAMIC, int64_t S2 = DYNAMIC, int64_t S3 = DYNAMIC, int64_t S4 = DYNAMIC, int64_t S5 = DYNAMIC>
struct Stride : detail::Dims5<S1, S2, S3, S4, S5> {
  using detail::Dims5<S1, S2, S3, S4, S5>::Dims5;
};

template <typename T, int R, int C, Layout L = Layout::ND> using TileShape2D = Shape<1, 1, 1, R, C>;
template <typename T, int R, int C, Layout L = Layout::ND>
using BaseShape2D = std::conditional_t<L == Layout::DN, Stride<R * C, R * C, R * C, 1, R>, Stride<R * C, R * C, R * C, C, 1>>;

template <typename Element_, typename Shape_, typename Stride_, Layout Layout_ = Layout::ND>
struct GlobalTensor {
  using DType = Element_;
  using ShapeType = Shape_;
  using StrideType = Stride_;
  static constexpr Layout layout = Layout_;
  using Ptr = std::remove_const_t<Element_>*;

  Ptr ptr_ = nullptr;
  Shape_ shape_{};
  Stride_ stride_{};

  GlobalTensor() = default;
  // Kernels pass `__gm__ const T*` inputs as well as mutable outputs.
  PTO_INLINE GlobalTensor(const std::remove_const_t<Element_>* ptr, const Shape_& shape = {}, const Stride_& stride = {})
      : ptr_(const_cast<Ptr>(ptr)), shape_(shape), stride_(stride) {}

  PTO_INLINE Ptr data() const { return ptr_; }
  PTO_INLINE int64_t GetShape(int dim) const { return shape_.get(dim); }
  PTO_INLINE int64_t GetShape(GlobalTensorDim dim) const { return shape_.get(int(dim)); }
  PTO_INLINE int64_t GetStride(int dim) const { return stride_.get(dim); }
  PTO_INLINE int64_t GetStride(GlobalTensorDim dim) const { return stride_.get(int(dim)); }
  template <int D> static constexpr int64_t GetShape() {
    static_assert(Shape_::kStatic[D] != DYNAMIC, "GetShape<dim>() needs a static dim");
    return Shape_::kStatic[D];
  }
  template <int D> static constexpr int64_t GetStride() {
    static_assert(Stride_::kStatic[D] != DYNAMIC, "GetStride<dim>() needs a static dim");
    return Stride_::kStatic[D];
  }
};

namespace detail {
template <typename T> struct is_global : std::false_type {};
template <typename E, typename S, typename St, Layout L> struct is_global<GlobalTensor<E, S, St, L>> : std::true_type {};
template <typename T> concept GlobalT = is_global<std::remove_cv_t<T>>::value;
}  // namespace detail

// ---- TASSIGN --------------------------------------------------------------------------------
// Offset into the calling thread's arena of the tile's memory; an address beyond the arena is
// taken as a host pointer (how kernels carve views: (uint64_t)other.data() + bytes).
template <detail::TileT TileData, typename... E>
PTO_INST_TRIVIAL RecordEvent TASSIGN(TileData& tile, uint64_t addr, E&...) {
  constexpr std::size_t cap = cpu::arena_bytes(TileData::Loc);
  if constexpr (TileData::kHasView) tile.clear_view();
  if constexpr (TileData::kCanPointAtGm) tile.home_ = nullptr;
  if (addr < cap) {
    PTO_CHECK(addr + TileData::Bytes <= cap, "TASSIGN: tile does not fit in its on-chip memory");
    tile.data_ = reinterpret_cast<typename TileData::DType*>(cpu::arena(TileData::Loc) + addr);
  } else {
    // Host pointers live far above any on-chip capacity; a small out-of-range offset is a bug.
    PTO_CHECK(addr >= (uint64_t(1) << 24), "TASSIGN: offset beyond the tile's on-chip memory");
    tile.data_ = reinterpret_cast<typename TileData::DType*>(static_cast<uintptr_t>(addr));
  }
  return {};
}
template <uint64_t Addr, detail::TileT TileData>
PTO_INST_TRIVIAL RecordEvent TASSIGN(TileData& tile) {
  static_assert(Addr % TileConfig::alignedSize == 0, "TASSIGN<Addr>: address must be 32-byte aligned");
  static_assert(Addr + TileData::Bytes <= cpu::arena_bytes(TileData::Loc), "TASSIGN<Addr>: tile exceeds its memory");
  return TASSIGN(tile, Addr);
}
template <detail::GlobalT G, typename P>
  requires std::is_pointer_v<P>
PTO_INST_TRIVIAL RecordEvent TASSIGN(G& gt, P ptr) {
  gt.ptr_ = const_cast<typename G::Ptr>(ptr);
  return {};
}

// ---- TRESHAPE / TSUBVIEW: aliases -------------------------------------------------------------
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST_TRIVIAL RecordEvent TRESHAPE(Dst& dst, Src& src, E&...) {
  static_assert(Dst::Loc == Src::Loc, "TRESHAPE: tiles must live in the same memory");
  static_assert(Dst::Bytes == Src::Bytes, "TRESHAPE: tiles must have the same total bytes");
  static_assert(Dst::isBoxed == Src::isBoxed, "TRESHAPE: both tiles boxed or both unboxed");
  dst.data_ = reinterpret_cast<typename Dst::DType*>(src.data());
  return {};
}
template <detail::TileT Dst, detail::TileT Src, typename... E>
PTO_INST_TRIVIAL RecordEvent TSUBVIEW(Dst& dst, Src& src, uint16_t rowIdx, uint16_t colIdx, E&...) {
  static_assert(Dst::Loc == Src::Loc, "TSUBVIEW: tiles must have the same TileType");
  static_assert(Dst::Rows == Src::Rows && Dst::Cols == Src::Cols, "TSUBVIEW: tiles must have the same capacity");
  static_assert(Dst::BFractal == Src::BFractal && Dst::SFractal == Src::SFractal, "TSUBVIEW: same layout");
  static_assert(std::is_same_v<typename Dst::DType, typename Src::DType>, "TSUBVIEW: same element type");
  dst.data_ = src.data() + Src::offset(rowIdx, colIdx);
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
