// pto_dynamo CPU target: what orchestration functions use (docs/device_abi.md "Orchestration"):
// PTO_LAUNCH runs a kernel's SPMD blocks on the process's OpenMP pool (inside torch: torch's
// libgomp, so torch.set_num_threads governs it), pto_workspace hands out scratch memory.
// PTO_LAUNCH_MIXED runs a mixed kernel's blocks as clusters (pipe.hpp) and pto_gm_pipe hands out
// its gm-pipe buffer, block_num x per_block_bytes, registered for the slot-ownership check.
#pragma once
#include <cstdint>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
#include <omp.h>
#include "pto/cpu/common.hpp"
#include "pto/cpu/state.hpp"
#include "pto/cpu/pipe.hpp"

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

// Deal blocks [0, block_num) to the OpenMP pool as launch_blocks does, without touching the
// thread's block state (run_block sets it).
template <typename RunBlock> inline void deal_blocks(int32_t block_num, RunBlock&& run_block) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads <= 1 || block_num <= 1) {
    for (int32_t b = 0; b < block_num; ++b) run_block(b);
    return;
  }
  const int team = threads < block_num ? threads : block_num;
#pragma omp parallel for num_threads(team) schedule(dynamic, 1)
  for (int32_t b = 0; b < block_num; ++b) run_block(b);
}

// The calling thread plays `role` (sub-block `sub` of `subs`) of block `block` in cluster `cl`
// for the lifetime of this object.
struct RoleScope {
  int32_t idx, num, sub, subs;
  int role;
  Cluster* cl;
  RoleScope(int32_t block, int32_t block_num, int r, int32_t s, int32_t ss, Cluster* c)
      : idx(t_block_idx), num(t_block_num), sub(t_subblock_idx), subs(t_subblock_num), role(t_role), cl(t_cluster) {
    t_block_idx = block; t_block_num = block_num; t_role = r; t_subblock_idx = s; t_subblock_num = ss; t_cluster = c;
  }
  ~RoleScope() {
    t_block_idx = idx; t_block_num = num; t_role = role; t_subblock_idx = sub; t_subblock_num = subs; t_cluster = cl;
  }
};

// Faithful mode of mixed kernels: PTO_CPU_MIXED=faithful (read at every launch).
inline bool faithful_mixed() {
  const char* mode = std::getenv("PTO_CPU_MIXED");
  return mode != nullptr && std::strcmp(mode, "faithful") == 0;
}

// Run a mixed kernel: body(block) once per role of every block's cluster (pipe.hpp). Fused mode:
// one thread plays all roles of a block. Faithful mode: the cube role on the dealing thread (so a
// BLAS call inside TMATMUL stays single-threaded as in launch_blocks) and AIV0/AIV1 on two threads
// of their own. Returns 0, or -1 when a block raised a kernel error (pto_last_error() says which).
// Type-erased (one instantiation of the thread and cluster machinery per translation unit, not per
// kernel): `run(ctx)` runs the kernel once on the calling thread's role.
inline int launch_mixed_blocks_erased(int32_t block_num, void (*run)(void*), void* ctx) {
  {
    std::lock_guard<std::mutex> guard(g_error.lock);
    g_error.pending = false;
    g_error.message.clear();
  }
  const bool faithful = faithful_mixed();
  deal_blocks(block_num, [&](int32_t b) {
    Cluster cl;
    cl.vector_roles = faithful ? 2 : 1;
    cl.threaded = faithful;
    auto play = [&](int role, int32_t sub) {
      RoleScope scope(b, block_num, role, sub, faithful ? 2 : 1, &cl);
      try {
        run(ctx);
      } catch (const KernelAbort&) {
        std::lock_guard<std::mutex> guard(cl.lock);
        cl.aborted = true;
        cl.cv.notify_all();
      }
    };
    if (!faithful) {
      play(kRoleAll, 0);
      return;
    }
    std::thread aiv0(play, kRoleVector, 0), aiv1(play, kRoleVector, 1);
    play(kRoleCube, 0);
    aiv0.join();
    aiv1.join();
  });
  std::lock_guard<std::mutex> guard(g_error.lock);
  return g_error.pending ? -1 : 0;
}

template <typename Body> inline int launch_mixed_blocks(int32_t block_num, Body&& body) {
  return launch_mixed_blocks_erased(block_num, [](void* ctx) { (*static_cast<std::remove_reference_t<Body>*>(ctx))(); },
                                    static_cast<void*>(&body));
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

// The gm-pipe buffer of workspace slot `slot`: block_num slices of per_block_bytes, registered so
// that every TALLOC/TPOP checks the slot it gets against the calling block's slice.
inline void* pto_gm_pipe(int64_t slot, int32_t block_num, int64_t per_block_bytes) {
  void* p = pto_workspace(slot, static_cast<int64_t>(block_num) * per_block_bytes);
  auto& reg = pto::cpu::g_gm_pipes;
  std::lock_guard<std::mutex> guard(reg.lock);
  const std::size_t s = static_cast<std::size_t>(slot);
  if (reg.buffers.size() <= s) reg.buffers.resize(s + 1, pto::cpu::GmPipeBuffer{nullptr, 0, 0});
  reg.buffers[s] = pto::cpu::GmPipeBuffer{static_cast<const unsigned char*>(p),
                                          static_cast<std::size_t>(per_block_bytes), block_num};
  return p;
}
#pragma GCC visibility pop

// The message of the last kernel error of this library (empty if none), for the host's exception.
extern "C" __attribute__((weak, visibility("default"))) const char* pto_last_error() {
  return pto::cpu::g_error.message.c_str();
}

// PTO_LAUNCH(kernel, block_num, args...) launches kernel(args..., block_num) once with block_num
// SPMD blocks.
#define PTO_LAUNCH(kernel, block_num, ...)                                                     \
  ::pto::cpu::launch_blocks(static_cast<int32_t>(block_num),                                   \
                            [&](int32_t) { kernel(__VA_ARGS__ __VA_OPT__(, ) static_cast<int32_t>(block_num)); })
// PTO_LAUNCH_MIXED(kernel, block_num, args...): the same for a mixed kernel; evaluates to 0, or -1
// when a block raised a kernel error.
#define PTO_LAUNCH_MIXED(kernel, block_num, ...)                                               \
  ::pto::cpu::launch_mixed_blocks(static_cast<int32_t>(block_num),                             \
                                  [&]() { kernel(__VA_ARGS__ __VA_OPT__(, ) static_cast<int32_t>(block_num)); })
