// pto_dynamo CPU target: what orchestration functions use (docs/device_abi.md "Orchestration"):
// PTO_LAUNCH runs a kernel's SPMD blocks on the process's OpenMP pool (inside torch: torch's
// libgomp, so torch.set_num_threads governs it), pto_workspace hands out scratch memory.
#pragma once
#include <cstdint>
#include <cstddef>
#include <mutex>
#include <vector>
#include <omp.h>
#include "pto/cpu/common.hpp"
#include "pto/cpu/state.hpp"

#pragma GCC visibility push(hidden)
namespace pto::cpu {
// Run body(block) for block in [0, block_num); each block sees its index through get_block_idx().
// Blocks are dealt dynamically (a shared machine makes some threads late); block_num may exceed
// the thread count. A launch from inside a parallel region runs its blocks serially.
template <typename Body> inline void launch_blocks(int32_t block_num, Body&& body) {
  if (block_num <= 0) return;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads <= 1 || block_num == 1) {
    const int32_t saved_idx = t_block_idx, saved_num = t_block_num;
    t_block_num = block_num;
    for (int32_t b = 0; b < block_num; ++b) { t_block_idx = b; body(b); }
    t_block_idx = saved_idx;
    t_block_num = saved_num;
    return;
  }
  const int team = threads < block_num ? threads : block_num;
#pragma omp parallel num_threads(team)
  {
    t_block_num = block_num;
#pragma omp for schedule(dynamic, 1)
    for (int32_t b = 0; b < block_num; ++b) { t_block_idx = b; body(b); }
  }
}

// Grow-only scratch buffers, one per slot, per loaded library. Growth is geometric (x1.5) so a
// size that creeps up call by call (a decode loop's T) reallocates O(log T) times. An outgrown
// buffer is freed at once: an orchestration asks for each slot once per call, so no pointer handed
// out earlier in the same call can still be in use.
struct Workspace {
  std::mutex lock;
  std::vector<void*> slots;
  std::vector<std::size_t> sizes;
  ~Workspace() {
    for (void* p : slots) std::free(p);
  }
};
inline Workspace g_workspace;
}  // namespace pto::cpu

// Scratch memory of at least `bytes` bytes (64-byte aligned) for slot `slot`, valid until the
// orchestration returns. Contents are not preserved across calls.
inline void* pto_workspace(int64_t slot, int64_t bytes) {
  auto& ws = pto::cpu::g_workspace;
  std::lock_guard<std::mutex> guard(ws.lock);
  const std::size_t s = static_cast<std::size_t>(slot);
  if (ws.slots.size() <= s) { ws.slots.resize(s + 1, nullptr); ws.sizes.resize(s + 1, 0); }
  const std::size_t want = static_cast<std::size_t>(bytes < 64 ? 64 : bytes);
  if (ws.sizes[s] < want) {
    const std::size_t grown_min = ws.sizes[s] + ws.sizes[s] / 2;
    const std::size_t grown = ((want > grown_min ? want : grown_min) + 63) / 64 * 64;
    std::free(ws.slots[s]);
    ws.slots[s] = std::aligned_alloc(64, grown);
    ws.sizes[s] = ws.slots[s] ? grown : 0;
    if (!ws.slots[s]) pto::detail::fail("pto_workspace: out of memory", __FILE__, __LINE__);
  }
  return ws.slots[s];
}
#pragma GCC visibility pop

// PTO_LAUNCH(kernel, block_num, args...) launches kernel(args..., block_num) once with block_num
// SPMD blocks.
#define PTO_LAUNCH(kernel, block_num, ...)                                                     \
  ::pto::cpu::launch_blocks(static_cast<int32_t>(block_num),                                   \
                            [&](int32_t) { kernel(__VA_ARGS__ __VA_OPT__(, ) static_cast<int32_t>(block_num)); })
