// Hand-written kernels in PTO vocabulary for tests/cpu_runtime: row softmax (pto_isa.md §5.2),
// reductions, expand ops (mode 1 and mode 2), compare/select, TTRI, TTRANS, TRESHAPE, TSUBVIEW.
#include <pto/pto-all.hpp>   // first: served from the precompiled header
using namespace pto;

using GShape = Shape<1, 1, 1, DYNAMIC, DYNAMIC>;
using GStride = Stride<1, 1, 1, DYNAMIC, 1>;
using GT = GlobalTensor<float, GShape, GStride, Layout::ND>;
// A per-row vector of `n` floats seen as an n x 1 DN tensor (loads into R x 1 ColMajor tiles).
using VecShape = Shape<1, 1, 1, DYNAMIC, 1>;
using VecStride = Stride<1, 1, 1, 1, 1>;
using GCol = GlobalTensor<float, VecShape, VecStride, Layout::DN>;
// A per-column vector of `n` floats as a 1 x n ND tensor.
using RowShape = Shape<1, 1, 1, 1, DYNAMIC>;
using RowStride = Stride<1, 1, 1, 1, 1>;
using GRow = GlobalTensor<float, RowShape, RowStride, Layout::ND>;

constexpr int SR = 8, SC = 256;
using XT = Tile<TileType::Vec, float, SR, SC, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
using RT = Tile<TileType::Vec, float, SR, 1, BLayout::ColMajor, DYNAMIC, DYNAMIC>;     // mode 1
using BT = Tile<TileType::Vec, float, SR, 8, BLayout::RowMajor, DYNAMIC, DYNAMIC>;     // mode 2 (32 B/row)
using CT = Tile<TileType::Vec, float, 1, SC, BLayout::RowMajor, DYNAMIC, DYNAMIC>;     // 1 x C

// pto_isa.md §5.2, cols <= SC.
extern "C" __global__ AICORE void row_softmax_f32(__gm__ float* out, __gm__ const float* in, int64_t rows, int64_t cols,
                                                  int32_t block_num) {
  const int nTiles = int((rows + SR - 1) / SR);
  for (int t = get_block_idx(); t < nTiles; t += get_block_num()) {
    const int vr = int(std::min<int64_t>(SR, rows - int64_t(t) * SR));
    GT gin(in + int64_t(t) * SR * cols, GShape(vr, cols), GStride(cols));
    GT gout(out + int64_t(t) * SR * cols, GShape(vr, cols), GStride(cols));
    XT x(vr, cols), tmp(vr, cols);
    RT rmax(vr, 1), rsum(vr, 1);
    TASSIGN(x, 0x0);
    TASSIGN(tmp, 0x2000);
    TASSIGN(rmax, 0x4000);
    TASSIGN(rsum, 0x4100);
    TLOAD(x, gin);
    set_flag(PIPE_MTE2, PIPE_V, EVENT_ID0);
    wait_flag(PIPE_MTE2, PIPE_V, EVENT_ID0);
    TROWMAX(rmax, x, tmp);
    pipe_barrier(PIPE_V);
    TROWEXPANDSUB(x, x, rmax);
    TEXP(x, x);
    TROWSUM(rsum, x, tmp);
    TROWEXPANDDIV(x, x, rsum);
    set_flag(PIPE_V, PIPE_MTE3, EVENT_ID0);
    wait_flag(PIPE_V, PIPE_MTE3, EVENT_ID0);
    TSTORE(gout, x);
  }
}

// out[r] = reduce_c x[r, c]; op 0..2 = sum/max/min into R x 1 ColMajor, 3..5 the same into an
// ND R x 8 tile (column 0), stored through TRESHAPE'd / column views.
extern "C" __global__ AICORE void row_reduce_f32(__gm__ float* out, __gm__ const float* in, int64_t rows, int64_t cols,
                                                 int64_t op, int32_t block_num) {
  const int nTiles = int((rows + SR - 1) / SR);
  for (int t = get_block_idx(); t < nTiles; t += get_block_num()) {
    const int vr = int(std::min<int64_t>(SR, rows - int64_t(t) * SR));
    GT gin(in + int64_t(t) * SR * cols, GShape(vr, cols), GStride(cols));
    GCol gout(out + int64_t(t) * SR, VecShape(vr));
    XT x(vr, cols), tmp(vr, cols);
    RT r(vr, 1);
    BT nd(vr, 1);
    TASSIGN(x, 0x0);
    TASSIGN(tmp, 0x2000);
    TASSIGN(r, 0x4000);
    TASSIGN(nd, 0x4100);
    TLOAD(x, gin);
    switch (op) {
      case 0: TROWSUM(r, x, tmp); break;
      case 1: TROWMAX(r, x, tmp); break;
      case 2: TROWMIN(r, x, tmp); break;
      case 3: TROWSUM(nd, x, tmp); break;
      case 4: TROWMAX(nd, x, tmp); break;
      case 5: TROWMIN(nd, x, tmp); break;
    }
    if (op >= 3) {  // move column 0 of the ND result into the ColMajor tile, element by element
      for (int i = 0; i < vr; ++i) r.SetElement(i, 0, nd.GetElement(i, 0));
    }
    TSTORE(gout, r);
  }
}

// out[0, c] = reduce_r x[r, c] for rows <= 64; op 0..2 = sum/max/min.
extern "C" __global__ AICORE void col_reduce_f32(__gm__ float* out, __gm__ const float* in, int64_t rows, int64_t cols,
                                                 int64_t op, int32_t block_num) {
  constexpr int R = 64, C = 64;
  using Xt = Tile<TileType::Vec, float, R, C, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  using Ot = Tile<TileType::Vec, float, 1, C, BLayout::RowMajor, 1, DYNAMIC>;
  const int nTiles = int((cols + C - 1) / C);
  for (int t = get_block_idx(); t < nTiles; t += get_block_num()) {
    const int vc = int(std::min<int64_t>(C, cols - int64_t(t) * C));
    GT gin(in + int64_t(t) * C, GShape(rows, vc), GStride(cols));
    GRow gout(out + int64_t(t) * C, RowShape(vc));
    Xt x(static_cast<unsigned>(rows), static_cast<unsigned>(vc));
    Ot o(vc);
    TASSIGN(x, 0x0);
    TASSIGN(o, R * C * sizeof(float));
    TLOAD(x, gin);
    switch (op) {
      case 0: TCOLSUM(o, x); break;
      case 1: TCOLMAX(o, x); break;
      case 2: TCOLMIN(o, x); break;
    }
    TSTORE(gout, o);
  }
}

// out = x op v[r] (per-row). mode 1: v in an R x 1 ColMajor tile; mode 2: v broadcast by
// TROWEXPAND into an R x 8 row-major tile first. op 0..6 = add sub mul div max min expdif,
// 7 = TROWEXPAND (out = v[r]).
extern "C" __global__ AICORE void row_expand_f32(__gm__ float* out, __gm__ const float* in, __gm__ const float* v,
                                                 int64_t rows, int64_t cols, int64_t op, int64_t mode, int32_t block_num) {
  const int nTiles = int((rows + SR - 1) / SR);
  for (int t = get_block_idx(); t < nTiles; t += get_block_num()) {
    const int vr = int(std::min<int64_t>(SR, rows - int64_t(t) * SR));
    GT gin(in + int64_t(t) * SR * cols, GShape(vr, cols), GStride(cols));
    GT gout(out + int64_t(t) * SR * cols, GShape(vr, cols), GStride(cols));
    GCol gv(v + int64_t(t) * SR, VecShape(vr));
    XT x(vr, cols), y(vr, cols);
    RT r(vr, 1);
    BT b(vr, 8);
    TASSIGN(x, 0x0);
    TASSIGN(y, 0x2000);
    TASSIGN(r, 0x4000);
    TASSIGN(b, 0x4100);
    TLOAD(x, gin);
    TLOAD(r, gv);
    if (mode == 2) TROWEXPAND(b, r);
    auto apply = [&](auto& bc) {
      switch (op) {
        case 0: TROWEXPANDADD(y, x, bc); break;
        case 1: TROWEXPANDSUB(y, x, bc); break;
        case 2: TROWEXPANDMUL(y, x, bc); break;
        case 3: TROWEXPANDDIV(y, x, bc); break;
        case 4: TROWEXPANDMAX(y, x, bc); break;
        case 5: TROWEXPANDMIN(y, x, bc); break;
        case 6: TROWEXPANDEXPDIF(y, x, bc); break;
        case 7: TROWEXPAND(y, bc); break;
      }
    };
    if (mode == 2) apply(b); else apply(r);
    TSTORE(gout, y);
  }
}

// out = x op w[c] (per-column vector of length cols <= SC); op as row_expand_f32.
extern "C" __global__ AICORE void col_expand_f32(__gm__ float* out, __gm__ const float* in, __gm__ const float* w,
                                                 int64_t rows, int64_t cols, int64_t op, int32_t block_num) {
  const int nTiles = int((rows + SR - 1) / SR);
  for (int t = get_block_idx(); t < nTiles; t += get_block_num()) {
    const int vr = int(std::min<int64_t>(SR, rows - int64_t(t) * SR));
    GT gin(in + int64_t(t) * SR * cols, GShape(vr, cols), GStride(cols));
    GT gout(out + int64_t(t) * SR * cols, GShape(vr, cols), GStride(cols));
    GRow gw(w, RowShape(cols));
    XT x(vr, cols), y(vr, cols);
    CT c(1, cols);
    TASSIGN(x, 0x0);
    TASSIGN(y, 0x2000);
    TASSIGN(c, 0x4000);
    TLOAD(x, gin);
    TLOAD(c, gw);
    switch (op) {
      case 0: TCOLEXPANDADD(y, x, c); break;
      case 1: TCOLEXPANDSUB(y, x, c); break;
      case 2: TCOLEXPANDMUL(y, x, c); break;
      case 3: TCOLEXPANDDIV(y, x, c); break;
      case 4: TCOLEXPANDMAX(y, x, c); break;
      case 5: TCOLEXPANDMIN(y, x, c); break;
      case 6: TCOLEXPANDEXPDIF(y, x, c); break;
      case 7: TCOLEXPAND(y, c); break;
    }
    TSTORE(gout, y);
  }
}

// sel = where(x <mode> y, x, y) via TCMP + TSEL; sels = where(x <mode> 0.25, x, -7) via TCMPS + TSELS.
extern "C" __global__ AICORE void cmp_sel_f32(__gm__ float* sel, __gm__ float* sels, __gm__ const float* x,
                                              __gm__ const float* y, int64_t rows, int64_t cols, int64_t mode,
                                              int32_t block_num) {
  constexpr int R = 8, C = 64;
  using Dt = Tile<TileType::Vec, float, R, C, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  using Mt = Tile<TileType::Vec, uint8_t, R, 32, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  using Tmp = Tile<TileType::Vec, uint32_t, 1, 16>;
  const int64_t tilesR = (rows + R - 1) / R, tilesC = (cols + C - 1) / C;
  const CmpMode cm = static_cast<CmpMode>(mode);
  for (int64_t t = get_block_idx(); t < tilesR * tilesC; t += get_block_num()) {
    const int64_t tr = t / tilesC, tc = t % tilesC;
    const int vr = int(std::min<int64_t>(R, rows - tr * R)), vc = int(std::min<int64_t>(C, cols - tc * C));
    const int64_t off = tr * R * cols + tc * C;
    GT gx(x + off, GShape(vr, vc), GStride(cols)), gy(y + off, GShape(vr, vc), GStride(cols));
    GT gs(sel + off, GShape(vr, vc), GStride(cols)), gss(sels + off, GShape(vr, vc), GStride(cols));
    Dt a(vr, vc), b(vr, vc), o(vr, vc);
    Mt m(vr, (vc + 7) / 8);
    Tmp tmp;
    TASSIGN(a, 0x0);
    TASSIGN(b, 0x800);
    TASSIGN(o, 0x1000);
    TASSIGN(m, 0x1800);
    TASSIGN(tmp, 0x1A00);
    TLOAD(a, gx);
    TLOAD(b, gy);
    TCMP(m, a, b, cm);
    TSEL(o, m, a, b, tmp);
    TSTORE(gs, o);
    TCMPS(m, a, 0.25f, cm);
    Dt o2(vr, vc);
    TASSIGN(o2, 0x1C00);
    TSELS(o2, m, a, o2, -7.0f);
    TSTORE(gss, o2);
  }
}

// out = TTRI<upper>(diagonal) over a rows x cols matrix (rows <= 8, cols <= 64 per tile).
extern "C" __global__ AICORE void tri_f32(__gm__ float* out, int64_t rows, int64_t cols, int64_t diagonal,
                                          int64_t upper, int32_t block_num) {
  using Tt = Tile<TileType::Vec, float, 64, 64, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  if (get_block_idx() != 0) return;
  GT go(out, GShape(rows, cols), GStride(cols));
  Tt t(static_cast<unsigned>(rows), static_cast<unsigned>(cols));
  TASSIGN(t, 0);
  if (upper) TTRI<Tt, 1>(t, int(diagonal)); else TTRI<Tt, 0>(t, int(diagonal));
  TSTORE(go, t);
}

// out (cols x rows) = x^T, 16 x 64 tiles.
extern "C" __global__ AICORE void trans_f32(__gm__ float* out, __gm__ const float* in, int64_t rows, int64_t cols,
                                            int32_t block_num) {
  constexpr int R = 16, C = 64;
  using St = Tile<TileType::Vec, float, R, C, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  using Dt = Tile<TileType::Vec, float, C, R, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  const int64_t tilesR = (rows + R - 1) / R, tilesC = (cols + C - 1) / C;
  for (int64_t t = get_block_idx(); t < tilesR * tilesC; t += get_block_num()) {
    const int64_t tr = t / tilesC, tc = t % tilesC;
    const int vr = int(std::min<int64_t>(R, rows - tr * R)), vc = int(std::min<int64_t>(C, cols - tc * C));
    GT gi(in + tr * R * cols + tc * C, GShape(vr, vc), GStride(cols));
    GT go(out + tc * C * rows + tr * R, GShape(vc, vr), GStride(rows));
    St s(vr, vc), tmp(vr, vc);
    Dt d(vc, vr);
    TASSIGN(s, 0x0);
    TASSIGN(d, 0x1000);
    TASSIGN(tmp, 0x2000);
    TLOAD(s, gi);
    TTRANS(d, s, tmp);
    TSTORE(go, d);
  }
}

// Aliasing: rowmax into an 8 x 1 ColMajor tile, TRESHAPE to 1 x 8, TMULS by 2 through the alias
// (out_max[r] = 2 * max_c x[r, c]); TSUBVIEW of the loaded 8 x 64 tile at (2, 16) with valid 3 x 20
// stored to `window`. One 8 x 64 tile, rows == 8, cols == 64.
extern "C" __global__ AICORE void alias_f32(__gm__ float* out_max, __gm__ float* window, __gm__ const float* in,
                                            int32_t block_num) {
  using Xt = Tile<TileType::Vec, float, 8, 64>;
  using Wt = Tile<TileType::Vec, float, 8, 64, BLayout::RowMajor, 3, 20>;
  using Col = Tile<TileType::Vec, float, 8, 1, BLayout::ColMajor>;
  using Row = Tile<TileType::Vec, float, 1, 8>;
  if (get_block_idx() != 0) return;
  using G8x64 = GlobalTensor<float, Shape<1, 1, 1, 8, 64>, Stride<1, 1, 1, 64, 1>>;
  G8x64 gin(in);
  GlobalTensor<float, Shape<1, 1, 1, 1, 8>, Stride<1, 1, 1, 8, 1>> gmax(out_max);
  GlobalTensor<float, Shape<1, 1, 1, 3, 20>, Stride<1, 1, 1, 20, 1>> gwin(window);
  Xt x, tmp;
  Wt w;
  Col c;
  Row r;
  TASSIGN(x, 0x0);
  TASSIGN(tmp, 0x800);
  TASSIGN(c, 0x1000);
  TLOAD(x, gin);
  TROWMAX(c, x, tmp);
  TRESHAPE(r, c);
  TMULS(r, r, 2.0f);
  TSTORE(gmax, r);
  TSUBVIEW(w, x, 2, 16);
  TSTORE(gwin, w);
}

// ---- orchestrations -------------------------------------------------------------------------
#define F(i) static_cast<float*>(t[i])
extern "C" int64_t region_softmax(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(row_softmax_f32, bn, F(1), F(0), s[0], s[1]);
  return 1;
}
extern "C" int64_t region_row_reduce(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(row_reduce_f32, bn, F(1), F(0), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_col_reduce(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(col_reduce_f32, bn, F(1), F(0), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_row_expand(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(row_expand_f32, bn, F(2), F(0), F(1), s[0], s[1], s[2], s[3]);
  return 1;
}
extern "C" int64_t region_col_expand(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(col_expand_f32, bn, F(2), F(0), F(1), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_cmp_sel(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(cmp_sel_f32, bn, F(2), F(3), F(0), F(1), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_tri(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(tri_f32, bn, F(0), s[0], s[1], s[2], s[3]);
  return 1;
}
extern "C" int64_t region_trans(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(trans_f32, bn, F(1), F(0), s[0], s[1]);
  return 1;
}
extern "C" int64_t region_alias(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(alias_f32, bn, F(1), F(2), F(0));
  return 1;
}
