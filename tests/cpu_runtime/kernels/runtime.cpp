// Kernels and orchestrations exercising the cpu runtime itself: block identity, launch counting,
// workspace, error codes, the OpenMP pool, and an empty kernel for launch-overhead measurements.
#include <pto/pto-all.hpp>   // first: served from the precompiled header
#include <omp.h>
using namespace pto;

// Each block writes its index, the block count it sees, and the subblock identity.
extern "C" __global__ AICORE void block_ids(__gm__ int32_t* idx, __gm__ int32_t* num, __gm__ int32_t* sub,
                                            int32_t block_num) {
  const int32_t b = get_block_idx();
  idx[b] = b;
  num[b] = get_block_num() == block_num ? block_num : -1;
  sub[b] = get_subblockid() * 10 + get_subblockdim();
}

extern "C" __global__ AICORE void empty_kernel(int32_t block_num) {}

// out = x * 2 + 1 through a workspace intermediate and two launches.
extern "C" __global__ AICORE void scale2(__gm__ float* tmp, __gm__ const float* x, int64_t n, int32_t block_num) {
  for (int64_t i = get_block_idx(); i < n; i += get_block_num()) tmp[i] = x[i] * 2.0f;
}
extern "C" __global__ AICORE void add1(__gm__ float* out, __gm__ const float* tmp, int64_t n, int32_t block_num) {
  for (int64_t i = get_block_idx(); i < n; i += get_block_num()) out[i] = tmp[i] + 1.0f;
}

extern "C" int64_t region_block_ids(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(block_ids, bn, static_cast<int32_t*>(t[0]), static_cast<int32_t*>(t[1]), static_cast<int32_t*>(t[2]));
  return 1;
}
extern "C" int64_t region_empty(void* const* t, const int64_t* s, int32_t bn) {
  PTO_LAUNCH(empty_kernel, bn);
  return 1;
}
extern "C" int64_t region_workspace(void* const* t, const int64_t* s, int32_t bn) {
  const int64_t n = s[0];
  auto* tmp = static_cast<float*>(pto_workspace(0, n * int64_t(sizeof(float))));
  PTO_LAUNCH(scale2, bn, tmp, static_cast<const float*>(t[0]), n);
  PTO_LAUNCH(add1, bn, static_cast<float*>(t[1]), tmp, n);
  return 2;
}
extern "C" int64_t region_fail(void* const* t, const int64_t* s, int32_t bn) { return -3; }

// The OpenMP pool the library runs on: max threads, and how many distinct threads ran 64 blocks.
extern "C" int64_t region_omp_threads(void* const* t, const int64_t* s, int32_t bn) {
  auto* out = static_cast<int32_t*>(t[0]);
  out[0] = omp_get_max_threads();
  int32_t seen[256] = {};
  ::pto::cpu::launch_blocks(64, [&](int32_t b) {
    volatile double sink = 0;
    for (int i = 0; i < 200000; ++i) sink = sink + i;   // long enough that every thread takes blocks
    seen[omp_get_thread_num() & 255] = 1;
  });
  int32_t distinct = 0;
  for (int i = 0; i < 256; ++i) distinct += seen[i];
  out[1] = distinct;
  return 0;
}
