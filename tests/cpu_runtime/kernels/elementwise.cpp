// Hand-written kernels in PTO vocabulary for tests/cpu_runtime: element-wise ops, activations,
// casts. Every kernel deals R x C tiles of a row-major rows x cols matrix round-robin to blocks and
// handles ragged edges with dynamic valid regions (pto_isa.md §5.1).
#include <pto/pto-all.hpp>   // first: served from the precompiled header
using namespace pto;

constexpr int AR = 16, AC = 64;
using GShape = Shape<1, 1, 1, DYNAMIC, DYNAMIC>;
using GStride = Stride<1, 1, 1, DYNAMIC, 1>;
template <typename T> using GT = GlobalTensor<T, GShape, GStride, Layout::ND>;
template <typename T> using VT = Tile<TileType::Vec, T, AR, AC, BLayout::RowMajor, DYNAMIC, DYNAMIC>;

// Calls body(tile_row, tile_col, valid_rows, valid_cols, gm_offset) for this block's tiles.
template <typename Body>
inline void for_my_tiles(int64_t rows, int64_t cols, Body body) {
  const int64_t tilesR = (rows + AR - 1) / AR, tilesC = (cols + AC - 1) / AC;
  for (int64_t t = get_block_idx(); t < tilesR * tilesC; t += get_block_num()) {
    const int64_t tr = t / tilesC, tc = t % tilesC;
    const int vr = int(std::min<int64_t>(AR, rows - tr * AR)), vc = int(std::min<int64_t>(AC, cols - tc * AC));
    body(vr, vc, tr * AR * cols + tc * AC);
  }
}

// pto_isa.md §5.1: z = x + y.
extern "C" __global__ AICORE void vadd_f32(__gm__ float* z, __gm__ const float* x, __gm__ const float* y,
                                           int64_t rows, int64_t cols, int32_t block_num) {
  for_my_tiles(rows, cols, [&](int vr, int vc, int64_t off) {
    GT<float> gx(x + off, GShape(vr, vc), GStride(cols)), gy(y + off, GShape(vr, vc), GStride(cols)),
        gz(z + off, GShape(vr, vc), GStride(cols));
    VT<float> tx(vr, vc), ty(vr, vc), tz(vr, vc);
    TASSIGN(tx, 0x0);
    TASSIGN(ty, AR * AC * sizeof(float));
    TASSIGN(tz, 2 * AR * AC * sizeof(float));
    TLOAD(tx, gx);
    TLOAD(ty, gy);
    set_flag(PIPE_MTE2, PIPE_V, EVENT_ID0);
    wait_flag(PIPE_MTE2, PIPE_V, EVENT_ID0);
    TADD(tz, tx, ty);
    set_flag(PIPE_V, PIPE_MTE3, EVENT_ID0);
    wait_flag(PIPE_V, PIPE_MTE3, EVENT_ID0);
    TSTORE(gz, tz);
    pipe_barrier(PIPE_ALL);
  });
}

// out = op(x) for the unary instruction `op` (numbering shared with test_elementwise.py).
extern "C" __global__ AICORE void unary_f32(__gm__ float* out, __gm__ const float* x, int64_t rows, int64_t cols,
                                            int64_t op, int32_t block_num) {
  for_my_tiles(rows, cols, [&](int vr, int vc, int64_t off) {
    GT<float> gx(x + off, GShape(vr, vc), GStride(cols)), go(out + off, GShape(vr, vc), GStride(cols));
    VT<float> tx(vr, vc), ty(vr, vc);
    TASSIGN(tx, 0x0);
    TASSIGN(ty, AR * AC * sizeof(float));
    TLOAD(tx, gx);
    switch (op) {
      case 0: TEXP(ty, tx); break;
      case 1: TLOG(ty, tx); break;
      case 2: TTANH(ty, tx); break;
      case 3: TERF(ty, tx); break;
      case 4: TSIGMOID(ty, tx); break;
      case 5: TGELU(ty, tx); break;
      case 6: TSILU(ty, tx); break;
      case 7: TSQRT(ty, tx); break;
      case 8: TRSQRT(ty, tx); break;
      case 9: TRECIP(ty, tx); break;
      case 10: TABS(ty, tx); break;
      case 11: TNEG(ty, tx); break;
      case 12: TRELU(ty, tx); break;
      case 13: TLOG1P(ty, tx); break;
      case 14: TEXPM1(ty, tx); break;
      case 15: TSIN(ty, tx); break;
      case 16: TCOS(ty, tx); break;
      case 17: TFLOOR(ty, tx); break;
      case 18: TCEIL(ty, tx); break;
      case 19: TROUND(ty, tx); break;
      case 20: TSIGN(ty, tx); break;
      case 21: TPOWS(ty, tx, 2.0f); break;
      case 22: TPOWS(ty, tx, 1.7f); break;
      case 23: TTRUNC(ty, tx); break;
      // exp through the generic engine (GCC's vectorisation of vm::vexp), against which TEXP's
      // explicitly vectorised AVX-512 path must agree bit for bit
      case 24: pto::detail::ewise(ty, [](auto a) { return pto::vm::vexp(float(a)); }, tx); break;
      default: TEXPANDS(ty, -1.0f); break;
    }
    TSTORE(go, ty);
  });
}

// out = x op y (tile-tile) for op 0..5 = add sub mul div max min; in place into x's tile.
extern "C" __global__ AICORE void binary_f32(__gm__ float* out, __gm__ const float* x, __gm__ const float* y,
                                             int64_t rows, int64_t cols, int64_t op, int32_t block_num) {
  for_my_tiles(rows, cols, [&](int vr, int vc, int64_t off) {
    GT<float> gx(x + off, GShape(vr, vc), GStride(cols)), gy(y + off, GShape(vr, vc), GStride(cols)),
        go(out + off, GShape(vr, vc), GStride(cols));
    VT<float> tx(vr, vc), ty(vr, vc);
    TASSIGN(tx, 0x0);
    TASSIGN(ty, AR * AC * sizeof(float));
    TLOAD(tx, gx);
    TLOAD(ty, gy);
    switch (op) {
      case 0: TADD(tx, tx, ty); break;
      case 1: TSUB(tx, tx, ty); break;
      case 2: TMUL(tx, tx, ty); break;
      case 3: TDIV(tx, tx, ty); break;
      case 4: TMAX(tx, tx, ty); break;
      case 5: TMIN(tx, tx, ty); break;
      case 6: TPOW(tx, tx, ty); break;
    }
    TSTORE(go, tx);
  });
}

// out = x op s (tile-scalar) for op 0..6 = adds subs muls divs maxs mins, s / x.
extern "C" __global__ AICORE void scalar_f32(__gm__ float* out, __gm__ const float* x, int64_t rows, int64_t cols,
                                             int64_t op, int32_t block_num) {
  const float s = 1.5f;
  for_my_tiles(rows, cols, [&](int vr, int vc, int64_t off) {
    GT<float> gx(x + off, GShape(vr, vc), GStride(cols)), go(out + off, GShape(vr, vc), GStride(cols));
    VT<float> tx(vr, vc);
    TASSIGN(tx, 0x0);
    TLOAD(tx, gx);
    switch (op) {
      case 0: TADDS(tx, tx, s); break;
      case 1: TSUBS(tx, tx, s); break;
      case 2: TMULS(tx, tx, s); break;
      case 3: TDIVS(tx, tx, s); break;
      case 4: TMAXS(tx, tx, s); break;
      case 5: TMINS(tx, tx, s); break;
      case 6: TDIVS(tx, s, tx); break;
    }
    TSTORE(go, tx);
  });
}

// fp32 -> (bf16 | fp16) -> fp32 round trip: `low` receives the narrow values, `back` the widened.
template <typename Low>
inline void cast_roundtrip(Low* low, float* back, const float* x, int64_t rows, int64_t cols) {
  for_my_tiles(rows, cols, [&](int vr, int vc, int64_t off) {
    GT<float> gx(x + off, GShape(vr, vc), GStride(cols)), gb(back + off, GShape(vr, vc), GStride(cols));
    GT<Low> gl(low + off, GShape(vr, vc), GStride(cols));
    VT<float> tx(vr, vc), tb(vr, vc);
    VT<Low> tl(vr, vc);
    TASSIGN(tx, 0x0);
    TASSIGN(tb, AR * AC * sizeof(float));
    TASSIGN(tl, 2 * AR * AC * sizeof(float));
    TLOAD(tx, gx);
    TCVT(tl, tx, RoundMode::CAST_RINT);
    TCVT(tb, tl, RoundMode::CAST_NONE);
    TSTORE(gl, tl);
    TSTORE(gb, tb);
  });
}
extern "C" __global__ AICORE void cast_bf16(__gm__ bfloat16_t* low, __gm__ float* back, __gm__ const float* x,
                                            int64_t rows, int64_t cols, int32_t block_num) {
  cast_roundtrip(low, back, x, rows, cols);
}
extern "C" __global__ AICORE void cast_f16(__gm__ half* low, __gm__ float* back, __gm__ const float* x,
                                           int64_t rows, int64_t cols, int32_t block_num) {
  cast_roundtrip(low, back, x, rows, cols);
}

// bf16 in, bf16 out: out = silu(x) * y computed in fp32, rounded once.
extern "C" __global__ AICORE void silu_mul_bf16(__gm__ bfloat16_t* out, __gm__ const bfloat16_t* x,
                                                __gm__ const bfloat16_t* y, int64_t rows, int64_t cols,
                                                int32_t block_num) {
  for_my_tiles(rows, cols, [&](int vr, int vc, int64_t off) {
    GT<bfloat16_t> gx(x + off, GShape(vr, vc), GStride(cols)), gy(y + off, GShape(vr, vc), GStride(cols)),
        go(out + off, GShape(vr, vc), GStride(cols));
    VT<bfloat16_t> bx(vr, vc), by(vr, vc);
    VT<float> fx(vr, vc), fy(vr, vc);
    TASSIGN(bx, 0x0);
    TASSIGN(by, 0x1000);
    TASSIGN(fx, 0x2000);
    TASSIGN(fy, 0x4000);
    TLOAD(bx, gx);
    TLOAD(by, gy);
    TCVT(fx, bx, RoundMode::CAST_NONE);
    TCVT(fy, by, RoundMode::CAST_NONE);
    TSILU(fx, fx);
    TMUL(fx, fx, fy);
    TCVT(bx, fx, RoundMode::CAST_RINT);
    TSTORE(go, bx);
  });
}

// ---- orchestrations -------------------------------------------------------------------------
extern "C" int64_t region_vadd(void* const* t, const int64_t* s, int32_t block_num) {
  PTO_LAUNCH(vadd_f32, block_num, static_cast<float*>(t[2]), static_cast<const float*>(t[0]),
             static_cast<const float*>(t[1]), s[0], s[1]);
  return 1;
}
extern "C" int64_t region_unary(void* const* t, const int64_t* s, int32_t block_num) {
  PTO_LAUNCH(unary_f32, block_num, static_cast<float*>(t[1]), static_cast<const float*>(t[0]), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_binary(void* const* t, const int64_t* s, int32_t block_num) {
  PTO_LAUNCH(binary_f32, block_num, static_cast<float*>(t[2]), static_cast<const float*>(t[0]),
             static_cast<const float*>(t[1]), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_scalar(void* const* t, const int64_t* s, int32_t block_num) {
  PTO_LAUNCH(scalar_f32, block_num, static_cast<float*>(t[1]), static_cast<const float*>(t[0]), s[0], s[1], s[2]);
  return 1;
}
extern "C" int64_t region_cast_bf16(void* const* t, const int64_t* s, int32_t block_num) {
  PTO_LAUNCH(cast_bf16, block_num, static_cast<bfloat16_t*>(t[1]), static_cast<float*>(t[2]),
             static_cast<const float*>(t[0]), s[0], s[1]);
  return 1;
}
extern "C" int64_t region_cast_f16(void* const* t, const int64_t* s, int32_t block_num) {
  PTO_LAUNCH(cast_f16, block_num, static_cast<half*>(t[1]), static_cast<float*>(t[2]),
             static_cast<const float*>(t[0]), s[0], s[1]);
  return 1;
}
extern "C" int64_t region_silu_mul_bf16(void* const* t, const int64_t* s, int32_t block_num) {
  PTO_LAUNCH(silu_mul_bf16, block_num, static_cast<bfloat16_t*>(t[2]), static_cast<const bfloat16_t*>(t[0]),
             static_cast<const bfloat16_t*>(t[1]), s[0], s[1]);
  return 1;
}
