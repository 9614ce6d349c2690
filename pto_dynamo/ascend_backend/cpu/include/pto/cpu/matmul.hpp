// pto_dynamo CPU target: TMATMUL, TMATMUL_ACC, TMATMUL_BIAS (pto_isa.md §3.6).
//
// M = left.GetValidRow(), K = left.GetValidCol(), N = right.GetValidCol(); accumulation in the
// accumulator type (fp32 for half/bf16/float inputs, int32 for int8). L0 tiles are stored
// row-major on the CPU, so C(i, :) += A(i, k) * B(k, :) runs along contiguous rows. The kernel is
// register-blocked: 4 rows x 32 columns of C live in registers across the whole K loop.
#pragma once
#include "pto/cpu/tile.hpp"

#pragma GCC visibility push(hidden)

namespace pto::detail {
template <int MR, int NR, bool Full, typename CT, typename AT, typename BT>
PTO_INLINE void mm_block(CT* __restrict__ c, std::ptrdiff_t ldc, const CT* __restrict__ cin, std::ptrdiff_t ldcin,
                         const AT* __restrict__ a, std::ptrdiff_t lda, const BT* __restrict__ b, std::ptrdiff_t ldb,
                         int K, int nr) {
  CT acc[MR][NR];
  for (int i = 0; i < MR; ++i) {
#pragma omp simd
    for (int j = 0; j < NR; ++j) acc[i][j] = cin ? cin[i * ldcin + j] : CT(0);
  }
  for (int k = 0; k < K; ++k) {
    const BT* brow = b + std::ptrdiff_t(k) * ldb;
    for (int i = 0; i < MR; ++i) {
      const CT aik = static_cast<CT>(to_c(a[i * lda + k]));
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += aik * static_cast<CT>(to_c(brow[j]));
    }
  }
  for (int i = 0; i < MR; ++i) {
    if constexpr (Full) {
#pragma omp simd
      for (int j = 0; j < NR; ++j) c[i * ldc + j] = acc[i][j];
    } else {
      for (int j = 0; j < nr; ++j) c[i * ldc + j] = acc[i][j];
    }
  }
}

template <typename Acc, typename Left, typename Right>
PTO_INLINE void matmul(Acc& acc, const typename Acc::DType* cin, Left& left, Right& right) {
  static_assert(Left::Rows == Acc::Rows && Left::Cols == Right::Rows && Right::Cols == Acc::Cols,
                "TMATMUL: Left::Rows == Acc::Rows, Left::Cols == Right::Rows, Right::Cols == Acc::Cols");
  using CT = typename Acc::DType;
  static_assert(Acc::ColStride == 1 && Left::ColStride == 1 && Right::ColStride == 1, "L0 tiles are row-major on the CPU");
  const int M = left.GetValidRow(), K = left.GetValidCol(), N = right.GetValidCol();
  constexpr int MR = 4, NR = 32;
  CT* c = acc.data();
  const auto* a = left.data();
  const auto* b = right.data();
  constexpr std::ptrdiff_t ldc = Acc::RowStride, lda = Left::RowStride, ldb = Right::RowStride;
  int j = 0;
  for (; j + NR <= N; j += NR) {
    int i = 0;
    for (; i + MR <= M; i += MR)
      mm_block<MR, NR, true>(c + i * ldc + j, ldc, cin ? cin + i * ldc + j : nullptr, ldc, a + i * lda, lda, b + j, ldb, K, NR);
    for (; i < M; ++i)
      mm_block<1, NR, true>(c + i * ldc + j, ldc, cin ? cin + i * ldc + j : nullptr, ldc, a + i * lda, lda, b + j, ldb, K, NR);
  }
  if (j < N) {  // ragged column tail: a narrower register block over the remaining columns
    const int nr = N - j;
    for (int i = 0; i < M; ++i) {
      CT row[NR];
      for (int jj = 0; jj < nr; ++jj) row[jj] = cin ? cin[i * ldc + j + jj] : CT(0);
      for (int k = 0; k < K; ++k) {
        const CT aik = static_cast<CT>(to_c(a[i * lda + k]));
        const auto* brow = b + std::ptrdiff_t(k) * ldb + j;
#pragma omp simd
        for (int jj = 0; jj < nr; ++jj) row[jj] += aik * static_cast<CT>(to_c(brow[jj]));
      }
      for (int jj = 0; jj < nr; ++jj) c[i * ldc + j + jj] = row[jj];
    }
  }
}
}  // namespace pto::detail

namespace pto {
template <AccPhase Phase = AccPhase::Unspecified, detail::TileT Acc, detail::TileT Left, detail::TileT Right, typename... E>
PTO_INST RecordEvent TMATMUL(Acc& acc, Left& left, Right& right, E&...) {
  detail::matmul(acc, nullptr, left, right);
  return {};
}
// accOut = accIn + A * B (accOut may be accIn).
template <AccPhase Phase = AccPhase::Unspecified, detail::TileT Acc, detail::TileT AccIn, detail::TileT Left,
          detail::TileT Right, typename... E>
PTO_INST RecordEvent TMATMUL_ACC(Acc& accOut, AccIn& accIn, Left& left, Right& right, E&...) {
  static_assert(std::is_same_v<typename Acc::DType, typename AccIn::DType> && Acc::RowStride == AccIn::RowStride,
                "TMATMUL_ACC: accumulators of one type and shape");
  detail::matmul(accOut, accIn.data(), left, right);
  return {};
}
template <AccPhase Phase = AccPhase::Unspecified, detail::TileT Acc, detail::TileT Left, detail::TileT Right>
PTO_INST RecordEvent TMATMUL_ACC(Acc& acc, Left& left, Right& right) {
  detail::matmul(acc, acc.data(), left, right);
  return {};
}
// acc = A * B + bias (bias: a row of N values).
template <AccPhase Phase = AccPhase::Unspecified, detail::TileT Acc, detail::TileT Left, detail::TileT Right,
          detail::TileT Bias, typename... E>
PTO_INST RecordEvent TMATMUL_BIAS(Acc& acc, Left& left, Right& right, Bias& bias, E&...) {
  detail::matmul(acc, nullptr, left, right);
  const int M = left.GetValidRow(), N = right.GetValidCol();
  for (int i = 0; i < M; ++i) {
    auto* c = acc.data() + Acc::offset(i, 0);
#pragma omp simd
    for (int j = 0; j < N; ++j) c[j] += static_cast<typename Acc::DType>(detail::to_c(bias.data()[Bias::offset(0, j)]));
  }
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
