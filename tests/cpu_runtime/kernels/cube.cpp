// Hand-written kernels in PTO vocabulary for tests/cpu_runtime: a tiled GEMM in the shape of
// pto_isa.md §4 with ragged M/N/K (dynamic valid regions, TEXTRACT of K panels from L1, optional
// DN load of B^T, Acc -> GM conversion), and MGATHER / MSCATTER.
#include <pto/pto-all.hpp>   // first: served from the precompiled header
using namespace pto;

constexpr int BM = 32, BK = 32, BN = 32, KP = 2;   // KP K-panels of BK per L1 load

// c[M, N] = a[M, K] @ b (b: K x N row-major, or N x K row-major when trans_b), accumulating in fp32.
// InPlace: the operands are loaded with LoadHint::InPlace (b^T into a Zn Mat tile, its view read by
// columns; b into an Nz one, its view read by rows).
template <typename T, typename OutT, bool InPlace = false>
inline void gemm(OutT* c, const T* a, const T* b, int64_t M, int64_t K, int64_t N, bool trans_b) {
  using Dyn2 = Shape<1, 1, 1, DYNAMIC, DYNAMIC>;
  using Ld = Stride<1, 1, 1, DYNAMIC, 1>;
  using LdDN = Stride<1, 1, 1, 1, DYNAMIC>;
  using GA = GlobalTensor<T, Dyn2, Ld>;
  using GB = GlobalTensor<T, Dyn2, Ld>;
  using GBt = GlobalTensor<T, Dyn2, LdDN, Layout::DN>;
  using GC = GlobalTensor<OutT, Dyn2, Ld>;
  using MatA = Tile<TileType::Mat, T, BM, KP * BK, BLayout::ColMajor, DYNAMIC, DYNAMIC, SLayout::RowMajor, 512>;
  using MatB = Tile<TileType::Mat, T, KP * BK, BN, BLayout::ColMajor, DYNAMIC, DYNAMIC, SLayout::RowMajor, 512>;
  using MatBt = Tile<TileType::Mat, T, KP * BK, BN, BLayout::RowMajor, DYNAMIC, DYNAMIC, SLayout::ColMajor, 512>;
  constexpr LoadHint hint = InPlace ? LoadHint::InPlace : LoadHint::None;
  TileLeft<T, BM, BK, DYNAMIC, DYNAMIC> la;
  TileRight<T, BK, BN, DYNAMIC, DYNAMIC> rb;
  TileAcc<float, BM, BN, DYNAMIC, DYNAMIC> acc;
  MatA ma;
  MatB mb;
  MatBt mbt;
  TASSIGN(ma, 0x0);
  TASSIGN(mb, 0x10000);
  TASSIGN(mbt, 0x10000);
  TASSIGN(la, 0x0);
  TASSIGN(rb, 0x0);
  TASSIGN(acc, 0x0);
  const int64_t tilesN = (N + BN - 1) / BN, nTiles = ((M + BM - 1) / BM) * tilesN;
  for (int64_t t = get_block_idx(); t < nTiles; t += get_block_num()) {
    const int64_t m0 = (t / tilesN) * BM, n0 = (t % tilesN) * BN;
    const int vm = int(std::min<int64_t>(BM, M - m0)), vn = int(std::min<int64_t>(BN, N - n0));
    bool first = true;
    for (int64_t k0 = 0; k0 < K; k0 += KP * BK) {
      const int vk = int(std::min<int64_t>(KP * BK, K - k0));
      ma.SetValidShape(vm, vk);
      mb.SetValidShape(vk, vn);
      mbt.SetValidShape(vk, vn);
      GA ga(a + m0 * K + k0, Dyn2(vm, vk), Ld(K));
      TLOAD(ma, ga, hint);
      const bool zn = InPlace && trans_b;
      if (trans_b) {
        GBt gb(b + n0 * K + k0, Dyn2(vk, vn), LdDN(K));
        if (zn) TLOAD(mbt, gb, hint); else TLOAD(mb, gb);
      } else {
        GB gb(b + k0 * N + n0, Dyn2(vk, vn), Ld(N));
        TLOAD(mb, gb, hint);
      }
      set_flag(PIPE_MTE2, PIPE_MTE1, EVENT_ID0);
      wait_flag(PIPE_MTE2, PIPE_MTE1, EVENT_ID0);
      for (int p = 0; p < KP && p * BK < vk; ++p) {
        const int pk = std::min(BK, vk - p * BK);
        la.SetValidShape(vm, pk);
        rb.SetValidShape(pk, vn);
        TEXTRACT(la, ma, 0, p * BK);
        if (zn) TEXTRACT(rb, mbt, p * BK, 0); else TEXTRACT(rb, mb, p * BK, 0);
        if (first) TMATMUL(acc, la, rb); else TMATMUL_ACC(acc, acc, la, rb);
        first = false;
      }
    }
    acc.SetValidShape(vm, vn);
    GC gc(c + m0 * N + n0, Dyn2(vm, vn), Ld(N));
    TSTORE(gc, acc);
  }
}

extern "C" __global__ AICORE void gemm_f32(__gm__ float* c, __gm__ const float* a, __gm__ const float* b, int64_t M,
                                           int64_t K, int64_t N, int64_t trans_b, int32_t block_num) {
  gemm<float, float>(c, a, b, M, K, N, trans_b != 0);
}
extern "C" __global__ AICORE void gemm_in_place_f32(__gm__ float* c, __gm__ const float* a, __gm__ const float* b,
                                                    int64_t M, int64_t K, int64_t N, int64_t trans_b, int32_t block_num) {
  gemm<float, float, true>(c, a, b, M, K, N, trans_b != 0);
}
extern "C" __global__ AICORE void gemm_in_place_bf16(__gm__ bfloat16_t* c, __gm__ const bfloat16_t* a,
                                                     __gm__ const bfloat16_t* b, int64_t M, int64_t K, int64_t N,
                                                     int64_t trans_b, int32_t block_num) {
  gemm<bfloat16_t, bfloat16_t, true>(c, a, b, M, K, N, trans_b != 0);
}
extern "C" __global__ AICORE void gemm_bf16(__gm__ bfloat16_t* c, __gm__ const bfloat16_t* a,
                                            __gm__ const bfloat16_t* b, int64_t M, int64_t K, int64_t N,
                                            int64_t trans_b, int32_t block_num) {
  gemm<bfloat16_t, bfloat16_t>(c, a, b, M, K, N, trans_b != 0);
}

// Row gather (embedding): out[r, :] = table[idx[r], :]; 16 rows per tile, width <= 64.
// Element gather: out2[r, c] = table_flat[idx2[r, c]] with a rows x width index matrix.
extern "C" __global__ AICORE void gather_f32(__gm__ float* out, __gm__ float* out2, __gm__ const float* table,
                                             __gm__ const int32_t* idx, __gm__ const int32_t* idx2, int64_t n,
                                             int64_t table_rows, int64_t width, int32_t block_num) {
  constexpr int R = 16, W = 64;
  using GTab = GlobalTensor<float, Shape<1, 1, 1, DYNAMIC, DYNAMIC>, Stride<1, 1, 1, DYNAMIC, 1>>;
  using GOut = GTab;
  using GIdxRow = GlobalTensor<int32_t, Shape<1, 1, 1, 1, DYNAMIC>, Stride<1, 1, 1, 1, 1>>;
  using GIdx = GlobalTensor<int32_t, Shape<1, 1, 1, DYNAMIC, DYNAMIC>, Stride<1, 1, 1, DYNAMIC, 1>>;
  using Dt = Tile<TileType::Vec, float, R, W, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  using It = Tile<TileType::Vec, int32_t, 1, R, BLayout::RowMajor, 1, DYNAMIC>;
  using It2 = Tile<TileType::Vec, int32_t, R, W, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  GTab tab(table, GTab::ShapeType(table_rows, width), GTab::StrideType(width));
  const int64_t nTiles = (n + R - 1) / R;
  for (int64_t t = get_block_idx(); t < nTiles; t += get_block_num()) {
    const int vr = int(std::min<int64_t>(R, n - t * R));
    Dt d(vr, int(width)), d2(vr, int(width));
    It i1(vr);
    It2 i2(vr, int(width));
    TASSIGN(d, 0x0);
    TASSIGN(d2, 0x1000);
    TASSIGN(i1, 0x2000);
    TASSIGN(i2, 0x3000);
    GIdxRow gi(idx + t * R, GIdxRow::ShapeType(vr));
    GIdx gi2(idx2 + t * R * width, GIdx::ShapeType(vr, width), GIdx::StrideType(width));
    TLOAD(i1, gi);
    TLOAD(i2, gi2);
    MGATHER<Coalesce::Row>(d, tab, i1);
    MGATHER<Coalesce::Elem, GatherOOB::Clamp>(d2, tab, i2);
    GOut go(out + t * R * width, GOut::ShapeType(vr, width), GOut::StrideType(width));
    GOut go2(out2 + t * R * width, GOut::ShapeType(vr, width), GOut::StrideType(width));
    TSTORE(go, d);
    TSTORE(go2, d2);
  }
}

// index_add: table[idx[r], :] += src[r, :] (atomic across blocks).
extern "C" __global__ AICORE void scatter_add_f32(__gm__ float* table, __gm__ const float* src,
                                                  __gm__ const int32_t* idx, int64_t n, int64_t table_rows,
                                                  int64_t width, int32_t block_num) {
  constexpr int R = 16, W = 64;
  using G2 = GlobalTensor<float, Shape<1, 1, 1, DYNAMIC, DYNAMIC>, Stride<1, 1, 1, DYNAMIC, 1>>;
  using GIdxRow = GlobalTensor<int32_t, Shape<1, 1, 1, 1, DYNAMIC>, Stride<1, 1, 1, 1, 1>>;
  using Dt = Tile<TileType::Vec, float, R, W, BLayout::RowMajor, DYNAMIC, DYNAMIC>;
  using It = Tile<TileType::Vec, int32_t, 1, R, BLayout::RowMajor, 1, DYNAMIC>;
  G2 tab(table, G2::ShapeType(table_rows, width), G2::StrideType(width));
  const int64_t nTiles = (n + R - 1) / R;
  for (int64_t t = get_block_idx(); t < nTiles; t += get_block_num()) {
    const int vr = int(std::min<int64_t>(R, n - t * R));
    Dt s(vr, int(width));
    It i(vr);
    TASSIGN(s, 0x0);
    TASSIGN(i, 0x2000);
    G2 gs(src + t * R * width, G2::ShapeType(vr, width), G2::StrideType(width));
    GIdxRow gi(idx + t * R, GIdxRow::ShapeType(vr));
    TLOAD(s, gs);
    TLOAD(i, gi);
    MSCATTER<Coalesce::Row, ScatterAtomicOp::Add>(tab, s, i);
  }
}

// pto_isa.md §4 as written there (static tile shapes, M % 32 == N % 32 == K % 16 == 0).
extern "C" __global__ AICORE void gemm_isa_example(__gm__ float* c, __gm__ float* a, __gm__ float* b, int M, int K,
                                                   int N, int32_t block_num) {
  constexpr int BM = 32, BK = 16, BN = 32;
  using LdStride = Stride<1, 1, 1, DYNAMIC, 1>;
  using GA = GlobalTensor<float, Shape<1, 1, 1, BM, BK>, LdStride>;
  using GB = GlobalTensor<float, Shape<1, 1, 1, BK, BN>, LdStride>;
  using GC = GlobalTensor<float, Shape<1, 1, 1, BM, BN>, LdStride>;
  using MatA = Tile<TileType::Mat, float, BM, BK, BLayout::ColMajor, BM, BK, SLayout::RowMajor, 512>;
  using MatB = Tile<TileType::Mat, float, BK, BN, BLayout::ColMajor, BK, BN, SLayout::RowMajor, 512>;
  MatA ma; MatB mb; TileLeft<float, BM, BK> la; TileRight<float, BK, BN> rb; TileAcc<float, BM, BN> acc;
  TASSIGN(ma, 0x0); TASSIGN(mb, 0x10000);
  TASSIGN(la, 0x0); TASSIGN(rb, 0x0); TASSIGN(acc, 0x0);
  const int tilesN = N / BN, nTiles = (M / BM) * tilesN;
  for (int t = get_block_idx(); t < nTiles; t += get_block_num()) {
    const int m0 = (t / tilesN) * BM, n0 = (t % tilesN) * BN;
    for (int k0 = 0; k0 < K; k0 += BK) {
      GA ga(a + m0 * K + k0, {}, LdStride(K));
      GB gb(b + k0 * N + n0, {}, LdStride(N));
      TLOAD(ma, ga);  TLOAD(mb, gb);
      TMOV(la, ma);   TMOV(rb, mb);
      if (k0 == 0) TMATMUL(acc, la, rb); else TMATMUL_ACC(acc, acc, la, rb);
    }
    GC gc(c + m0 * N + n0, {}, LdStride(N));
    TSTORE(gc, acc);
  }
}

extern "C" int64_t region_gemm_isa_example(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(gemm_isa_example, bn, static_cast<float*>(t[2]), static_cast<float*>(t[0]), static_cast<float*>(t[1]),
             int(s[0]), int(s[1]), int(s[2]));
  return 1;
}
extern "C" int64_t region_gemm_f32(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(gemm_f32, bn, static_cast<float*>(t[2]), static_cast<const float*>(t[0]),
             static_cast<const float*>(t[1]), s[0], s[1], s[2], s[3]);
  return 1;
}
extern "C" int64_t region_gemm_bf16(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(gemm_bf16, bn, static_cast<bfloat16_t*>(t[2]), static_cast<const bfloat16_t*>(t[0]),
             static_cast<const bfloat16_t*>(t[1]), s[0], s[1], s[2], s[3]);
  return 1;
}
extern "C" int64_t region_gemm_in_place_f32(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(gemm_in_place_f32, bn, static_cast<float*>(t[2]), static_cast<const float*>(t[0]),
             static_cast<const float*>(t[1]), s[0], s[1], s[2], s[3]);
  return 1;
}
extern "C" int64_t region_gemm_in_place_bf16(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(gemm_in_place_bf16, bn, static_cast<bfloat16_t*>(t[2]), static_cast<const bfloat16_t*>(t[0]),
             static_cast<const bfloat16_t*>(t[1]), s[0], s[1], s[2], s[3]);
  return 1;
}
extern "C" int64_t region_gather(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(gather_f32, bn, static_cast<float*>(t[3]), static_cast<float*>(t[4]), static_cast<const float*>(t[0]),
             static_cast<const int32_t*>(t[1]), static_cast<const int32_t*>(t[2]), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_scatter_add(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(scatter_add_f32, bn, static_cast<float*>(t[0]), static_cast<const float*>(t[1]),
             static_cast<const int32_t*>(t[2]), s[0], s[1], s[2]);
  return 1;
}
