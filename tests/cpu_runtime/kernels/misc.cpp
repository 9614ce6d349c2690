// Hand-written kernels in PTO vocabulary for tests/cpu_runtime: TSTORE with AtomicAdd, TLOAD pad
// values, TCVT float -> int32 rounding modes, fp16 V-ops, TMOV with conversion, DN loads into
// column-major tiles, TEXPANDS.
#include <pto/pto-all.hpp>   // first: served from the precompiled header
using namespace pto;

using GShape = Shape<1, 1, 1, DYNAMIC, DYNAMIC>;
using GStride = Stride<1, 1, 1, DYNAMIC, 1>;
template <typename T> using GT = GlobalTensor<T, GShape, GStride, Layout::ND>;

// out[0:rows_out, :] += x[r, :] for every block's rows r (rows_out == 8; x is n x 64, n % 8 == 0):
// each block stores its 8 x 64 tiles with TSTORE<..., AtomicAdd> onto the same output.
extern "C" __global__ AICORE void atomic_rowsum(__gm__ float* out, __gm__ const float* x, int64_t n, int32_t block_num) {
  using Tt = Tile<TileType::Vec, float, 8, 64>;
  using G = GlobalTensor<float, Shape<1, 1, 1, 8, 64>, Stride<1, 1, 1, 64, 1>>;
  for (int64_t t = get_block_idx(); t < n / 8; t += get_block_num()) {
    Tt tile;
    TASSIGN(tile, 0);
    G gin(x + t * 8 * 64), gout(out);
    TLOAD(tile, gin);
    TSTORE<Tt, G, AtomicType::AtomicAdd>(gout, tile);
  }
}

// Loads a vr x vc window into an 8 x 64 tile padded with Max (pad == 1) or Min (pad == 2), or
// Zero (pad == 0) and stores the whole 8 x 64 tile.
extern "C" __global__ AICORE void pad_load(__gm__ float* out, __gm__ const float* x, int64_t vr, int64_t vc,
                                           int64_t pad, int32_t block_num) {
  if (get_block_idx() != 0) return;
  GT<float> gin(x, GShape(vr, vc), GStride(vc));
  using Full = GlobalTensor<float, Shape<1, 1, 1, 8, 64>, Stride<1, 1, 1, 64, 1>>;
  Full gout(out);
  auto run = [&](auto tile) {
    using T = decltype(tile);
    T t(static_cast<unsigned>(vr), static_cast<unsigned>(vc));
    TASSIGN(t, 0);
    TLOAD(t, gin);
    using FullT = Tile<TileType::Vec, float, 8, 64>;
    FullT whole;
    TASSIGN(whole, 0);   // the same bytes, seen whole
    TSTORE(gout, whole);
  };
  using Z = Tile<TileType::Vec, float, 8, 64, BLayout::RowMajor, DYNAMIC, DYNAMIC, SLayout::NoneBox, 512, PadValue::Zero>;
  using Mx = Tile<TileType::Vec, float, 8, 64, BLayout::RowMajor, DYNAMIC, DYNAMIC, SLayout::NoneBox, 512, PadValue::Max>;
  using Mn = Tile<TileType::Vec, float, 8, 64, BLayout::RowMajor, DYNAMIC, DYNAMIC, SLayout::NoneBox, 512, PadValue::Min>;
  if (pad == 1) run(Mx(1, 1)); else if (pad == 2) run(Mn(1, 1)); else run(Z(1, 1));
}

// out = int32(x) under round mode `mode` (RoundMode enum order), 1 x n, n <= 64.
extern "C" __global__ AICORE void cvt_i32(__gm__ int32_t* out, __gm__ const float* x, int64_t n, int64_t mode,
                                          int32_t block_num) {
  if (get_block_idx() != 0) return;
  using Ft = Tile<TileType::Vec, float, 1, 64, BLayout::RowMajor, 1, DYNAMIC>;
  using It = Tile<TileType::Vec, int32_t, 1, 64, BLayout::RowMajor, 1, DYNAMIC>;
  GT<float> gx(x, GShape(1, n), GStride(n));
  GT<int32_t> go(out, GShape(1, n), GStride(n));
  Ft f(static_cast<unsigned>(n));
  It i(static_cast<unsigned>(n));
  TASSIGN(f, 0);
  TASSIGN(i, 0x100);
  TLOAD(f, gx);
  TCVT(i, f, static_cast<RoundMode>(mode));
  TSTORE(go, i);
}

// fp16: out = exp(x + y) * 0.5 (half tiles, fp32 math, one rounding per instruction).
extern "C" __global__ AICORE void half_ops(__gm__ half* out, __gm__ const half* x, __gm__ const half* y, int64_t rows,
                                           int64_t cols, int32_t block_num) {
  using Ht = Tile<TileType::Vec, half, 16, 64, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  const int64_t n = (rows + 15) / 16;
  for (int64_t t = get_block_idx(); t < n; t += get_block_num()) {
    const int vr = int(std::min<int64_t>(16, rows - t * 16));
    GT<half> gx(x + t * 16 * cols, GShape(vr, cols), GStride(cols)), gy(y + t * 16 * cols, GShape(vr, cols), GStride(cols)),
        go(out + t * 16 * cols, GShape(vr, cols), GStride(cols));
    Ht a(vr, int(cols)), b(vr, int(cols));
    TASSIGN(a, 0);
    TASSIGN(b, 0x800);
    TLOAD(a, gx);
    TLOAD(b, gy);
    TADD(a, a, b);
    TEXP(a, a);
    TMULS(a, a, static_cast<half>(0.5f));
    TSTORE(go, a);
  }
}

// A DN view (x is cols x rows row-major, seen as its rows x cols transpose) loaded into a
// ColMajor tile, TMOV'd into a row-major bf16 tile (conversion), filled tail via TEXPANDS on a
// second tile and stored: out = bf16(x^T), out2 = 3.0 everywhere. rows <= 16, cols <= 32.
extern "C" __global__ AICORE void dn_mov(__gm__ bfloat16_t* out, __gm__ float* out2, __gm__ const float* x, int64_t rows,
                                         int64_t cols, int32_t block_num) {
  if (get_block_idx() != 0) return;
  using Cm = Tile<TileType::Vec, float, 16, 32, BLayout::ColMajor, DYNAMIC, DYNAMIC>;
  using Rm = Tile<TileType::Vec, bfloat16_t, 16, 32, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  using Fm = Tile<TileType::Vec, float, 16, 32, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  using GDn = GlobalTensor<float, GShape, Stride<1, 1, 1, 1, DYNAMIC>, Layout::DN>;
  GDn gx(x, GShape(rows, cols), Stride<1, 1, 1, 1, DYNAMIC>(rows));
  GT<bfloat16_t> go(out, GShape(rows, cols), GStride(cols));
  GT<float> go2(out2, GShape(rows, cols), GStride(cols));
  Cm c(static_cast<unsigned>(rows), static_cast<unsigned>(cols));
  Rm r(static_cast<unsigned>(rows), static_cast<unsigned>(cols));
  Fm f(static_cast<unsigned>(rows), static_cast<unsigned>(cols));
  TASSIGN(c, 0);
  TASSIGN(r, 0x1000);
  TASSIGN(f, 0x2000);
  TLOAD(c, gx);
  TMOV(r, c);
  TEXPANDS(f, 3.0f);
  TSTORE(go, r);
  TSTORE(go2, f);
}

// int32 V-ops: out = max(x + y, 3) * 2 - x (1 x n, n <= 64), tiles placed with TASSIGN<Addr>.
extern "C" __global__ AICORE void int_ops(__gm__ int32_t* out, __gm__ const int32_t* x, __gm__ const int32_t* y,
                                          int64_t n, int32_t block_num) {
  if (get_block_idx() != 0) return;
  using It = Tile<TileType::Vec, int32_t, 1, 64, BLayout::RowMajor, 1, DYNAMIC>;
  GT<int32_t> gx(x, GShape(1, n), GStride(n)), gy(y, GShape(1, n), GStride(n)), go(out, GShape(1, n), GStride(n));
  It a(static_cast<unsigned>(n)), b(static_cast<unsigned>(n));
  TASSIGN<0x0>(a);
  TASSIGN<0x100>(b);
  TLOAD(a, gx);
  TLOAD(b, gy);
  TADD(b, a, b);
  TMAXS(b, b, 3);
  TMULS(b, b, 2);
  TSUB(b, b, a);
  TSTORE(go, b);
}

// out = a @ b + bias (M x K @ K x N, M, N <= 32, K <= 64) with TMATMUL_BIAS.
extern "C" __global__ AICORE void matmul_bias(__gm__ float* out, __gm__ const float* a, __gm__ const float* b,
                                              __gm__ const float* bias, int64_t M, int64_t K, int64_t N,
                                              int32_t block_num) {
  if (get_block_idx() != 0) return;
  using MatA = Tile<TileType::Mat, float, 32, 64, BLayout::ColMajor, DYNAMIC, DYNAMIC, SLayout::RowMajor, 512>;
  using MatB = Tile<TileType::Mat, float, 64, 32, BLayout::ColMajor, DYNAMIC, DYNAMIC, SLayout::RowMajor, 512>;
  using BiasT = Tile<TileType::Bias, float, 1, 32, BLayout::RowMajor, 1, DYNAMIC>;
  MatA ma(static_cast<unsigned>(M), static_cast<unsigned>(K));
  MatB mb(static_cast<unsigned>(K), static_cast<unsigned>(N));
  TileLeft<float, 32, 64, DYNAMIC, DYNAMIC> la(static_cast<unsigned>(M), static_cast<unsigned>(K));
  TileRight<float, 64, 32, DYNAMIC, DYNAMIC> rb(static_cast<unsigned>(K), static_cast<unsigned>(N));
  TileAcc<float, 32, 32, DYNAMIC, DYNAMIC> acc(static_cast<unsigned>(M), static_cast<unsigned>(N));
  BiasT bt(static_cast<unsigned>(N));
  TASSIGN(ma, 0x0);
  TASSIGN(mb, 0x8000);
  TASSIGN(la, 0x0);
  TASSIGN(rb, 0x0);
  TASSIGN(acc, 0x0);
  TASSIGN(bt, 0x0);
  GT<float> ga(a, GShape(M, K), GStride(K)), gb(b, GShape(K, N), GStride(N)), gc(out, GShape(M, N), GStride(N));
  GT<float> gbias(bias, GShape(1, N), GStride(N));
  TLOAD(ma, ga);
  TLOAD(mb, gb);
  TMOV(la, ma);
  TMOV(rb, mb);
  Tile<TileType::Vec, float, 1, 32, BLayout::RowMajor, 1, DYNAMIC> vb(static_cast<unsigned>(N));
  TASSIGN(vb, 0x0);
  TLOAD(vb, gbias);
  TMOV(bt, vb);
  TMATMUL_BIAS(acc, la, rb, bt);
  TSTORE(gc, acc);
}

// out[rows, cols] (row stride ld_out) = x[rows, cols] (row stride ld_x) through 4 x 2048 tiles,
// rows dealt cyclically over blocks, with the CPU cache hints: hint bit 0 streams the TSTOREs,
// bit 1 has the TLOADs prefetch the next tile.
template <typename T>
PTO_INLINE void hinted_copy_impl(T* out, const T* x, int64_t rows, int64_t cols, int64_t ld_out, int64_t ld_x,
                                 int64_t hint) {
  using Tt = Tile<TileType::Vec, T, 4, 2048, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  for (int64_t t = get_block_idx(); t * 4 < rows; t += get_block_num()) {
    const int64_t vr = std::min<int64_t>(4, rows - t * 4);
    Tt tile(static_cast<unsigned>(vr), static_cast<unsigned>(cols));
    TASSIGN(tile, 0);
    GT<T> gin(const_cast<T*>(x) + t * 4 * ld_x, GShape(vr, cols), GStride(ld_x));
    GT<T> gout(out + t * 4 * ld_out, GShape(vr, cols), GStride(ld_out));
    if (hint & 2) TLOAD(tile, gin, LoadHint::PrefetchNext); else TLOAD(tile, gin);
    if (hint & 1) TSTORE(gout, tile, StoreHint::Stream); else TSTORE(gout, tile);
  }
}
extern "C" __global__ AICORE void hinted_copy_f32(__gm__ float* out, __gm__ const float* x, int64_t rows, int64_t cols,
                                                  int64_t ld_out, int64_t ld_x, int64_t hint, int32_t block_num) {
  hinted_copy_impl(out, x, rows, cols, ld_out, ld_x, hint);
}
extern "C" __global__ AICORE void hinted_copy_bf16(__gm__ bfloat16_t* out, __gm__ const bfloat16_t* x, int64_t rows,
                                                   int64_t cols, int64_t ld_out, int64_t ld_x, int64_t hint,
                                                   int32_t block_num) {
  hinted_copy_impl(out, x, rows, cols, ld_out, ld_x, hint);
}

#define P(T, i) static_cast<T*>(t[i])
extern "C" int64_t region_atomic(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(atomic_rowsum, bn, P(float, 1), P(const float, 0), s[0]);
  return 1;
}
extern "C" int64_t region_pad(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(pad_load, bn, P(float, 1), P(const float, 0), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_cvt_i32(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(cvt_i32, bn, P(int32_t, 1), P(const float, 0), s[0], s[1]);
  return 1;
}
extern "C" int64_t region_half(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(half_ops, bn, P(half, 2), P(const half, 0), P(const half, 1), s[0], s[1]);
  return 1;
}
extern "C" int64_t region_dn_mov(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(dn_mov, bn, P(bfloat16_t, 1), P(float, 2), P(const float, 0), s[0], s[1]);
  return 1;
}
extern "C" int64_t region_int_ops(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(int_ops, bn, P(int32_t, 2), P(const int32_t, 0), P(const int32_t, 1), s[0]);
  return 1;
}
extern "C" int64_t region_matmul_bias(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(matmul_bias, bn, P(float, 3), P(const float, 0), P(const float, 1), P(const float, 2), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_hinted_copy_f32(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(hinted_copy_f32, bn, P(float, 1), P(const float, 0), s[0], s[1], s[2], s[3], s[4]);
  return 1;
}
extern "C" int64_t region_hinted_copy_bf16(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(hinted_copy_bf16, bn, P(bfloat16_t, 1), P(const bfloat16_t, 0), s[0], s[1], s[2], s[3], s[4]);
  return 1;
}
