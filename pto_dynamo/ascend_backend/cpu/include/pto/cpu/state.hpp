// pto_dynamo CPU target: per-thread execution state (block index, on-chip memory arenas) and the
// intra-core synchronisation calls, which are no-ops on the CPU.
#pragma once
#include "pto/cpu/common.hpp"

#pragma GCC visibility push(hidden)

namespace pto::cpu {
// The SPMD block the calling thread executes, and how many blocks the launch has.
inline thread_local int32_t t_block_idx = 0;
inline thread_local int32_t t_block_num = 1;

// The cluster role(s) the calling thread plays in a mixed kernel (pipe.hpp): every role (vector
// kernels, and the fused mode of mixed ones), or one of the cube core and the vector cores, and
// which vector core of how many (get_subblockid / get_subblockdim).
constexpr int kRoleCube = 1, kRoleVector = 2, kRoleAll = kRoleCube | kRoleVector;
inline thread_local int t_role = kRoleAll;
inline thread_local int32_t t_subblock_idx = 0;
inline thread_local int32_t t_subblock_num = 1;

// On-chip memories of one simulated core, one set per thread (manual TASSIGN placement).
// Capacities: the A2A3 ones for UB and the small buffers, 4x A2A3's for L1 and L0C, 8x for L0A
// and L0B (the cpu target's CPU_CAPACITY in lowering/tile/capacity.py; A2A3-sized programs fit
// too).
constexpr std::size_t kUbBytes = 192 * 1024, kL1Bytes = 2048 * 1024, kL0aBytes = 512 * 1024,
                      kL0bBytes = 512 * 1024, kL0cBytes = 512 * 1024, kBiasBytes = 1024,
                      kScalingBytes = 2048, kSmallBytes = 4096;

constexpr std::size_t arena_bytes(TileType loc) {
  switch (loc) {
    case TileType::Vec: return kUbBytes;
    case TileType::Mat: return kL1Bytes;
    case TileType::Left: return kL0aBytes;
    case TileType::Right: return kL0bBytes;
    case TileType::Acc: return kL0cBytes;
    case TileType::Bias: return kBiasBytes;
    case TileType::Scaling: return kScalingBytes;
    default: return kSmallBytes;
  }
}
constexpr int kNumMemories = 10;

// Arena bases of the calling thread. A plain (trivially destructible) thread_local array, so the
// fast path needs no TLS wrapper call; the owner below frees them at thread exit and is touched
// only when an arena is first allocated.
inline thread_local unsigned char* t_arena_base[kNumMemories] = {};
struct ArenaOwner {
  ~ArenaOwner() {
    for (auto*& p : t_arena_base) { std::free(p); p = nullptr; }
  }
};

// Base address of memory `loc` of the calling thread, allocated (64-byte aligned) on first use.
// The arena carries 64 bytes of slack so that vector loops may round a tail up.
inline unsigned char* arena(TileType loc) {
  unsigned char*& p = t_arena_base[static_cast<int>(loc)];
  if (__builtin_expect(p == nullptr, 0)) {
    static thread_local ArenaOwner owner;
    (void)owner;
    p = static_cast<unsigned char*>(std::aligned_alloc(64, arena_bytes(loc) + 64));
    if (!p) detail::fail("out of memory allocating a tile arena", __FILE__, __LINE__);
    std::memset(p, 0, arena_bytes(loc) + 64);
  }
  return p;
}
}  // namespace pto::cpu

#pragma GCC visibility pop

// ---- core identity (global namespace, as on the device) -----------------------------------
#pragma GCC visibility push(hidden)
PTO_INLINE int32_t get_block_idx() { return pto::cpu::t_block_idx; }
PTO_INLINE int32_t get_block_num() { return pto::cpu::t_block_num; }
PTO_INLINE int32_t get_subblockid() { return pto::cpu::t_subblock_idx; }
PTO_INLINE int32_t get_subblockdim() { return pto::cpu::t_subblock_num; }
// Whether the calling core runs a mixed kernel's cube / vector stage (on the device: the
// __DAV_CUBE__ / __DAV_VEC__ compilation of the kernel).
#define PTO_STAGE_CUBE ((::pto::cpu::t_role & ::pto::cpu::kRoleCube) != 0)
#define PTO_STAGE_VECTOR ((::pto::cpu::t_role & ::pto::cpu::kRoleVector) != 0)

// ---- pipes and events: no-ops on the CPU ---------------------------------------------------
enum pipe_t { PIPE_S, PIPE_V, PIPE_M, PIPE_MTE1, PIPE_MTE2, PIPE_MTE3, PIPE_FIX, PIPE_ALL };
enum event_t { EVENT_ID0, EVENT_ID1, EVENT_ID2, EVENT_ID3, EVENT_ID4, EVENT_ID5, EVENT_ID6, EVENT_ID7 };
PTO_INLINE void set_flag(pipe_t, pipe_t, event_t) {}
PTO_INLINE void set_flag(pipe_t, pipe_t, int) {}
PTO_INLINE void wait_flag(pipe_t, pipe_t, event_t) {}
PTO_INLINE void wait_flag(pipe_t, pipe_t, int) {}
PTO_INLINE void pipe_barrier(pipe_t) {}
PTO_INLINE void set_mask_norm() {}
PTO_INLINE void set_vector_mask(uint64_t, uint64_t) {}
#pragma GCC visibility pop
