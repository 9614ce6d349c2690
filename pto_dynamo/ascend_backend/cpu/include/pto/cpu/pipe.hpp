// pto_dynamo CPU target: cube <-> vector pipes of mixed kernels (pto_isa.md §3.8): TPipe, TALLOC,
// TPUSH, TPOP, TFREE in their GM-slot form, the cluster roles, and the gm-pipe ownership check.
// A DIR_C2V pipe has the cube role as its one producer and every vector role as a consumer (each
// reads its rows of a slot, which is free once all have TFREEd it); a DIR_V2C pipe has every
// vector role as a producer (each writes its rows; the slot is ready once all have TPUSHed it) and
// the cube role as its one consumer.
//
// A mixed kernel runs per block as one cluster: a cube role and the vector roles (AIV0, AIV1).
//   fused mode (default): one thread plays every role of a block in program order, as the only
//     vector core (get_subblockdim() == 1); a wait that could never end is a deadlock and fails.
//   faithful mode (PTO_CPU_MIXED=faithful): the cube role and two vector roles run on three
//     threads exchanging slots through a real ring with waits; each vector role takes its share of
//     the rows by get_subblockid() (pto-runtime.hpp launch_mixed_blocks).
// The ring of a pipe lives in the block's slice of a gm-pipe buffer that the orchestration
// allocated with pto_gm_pipe(block_num x per_block_bytes). Every slot TALLOC or TPOP hands out is
// checked against the registered buffers: a slot in another block's slice is an ownership
// violation, reported as the kernel's error (the region call raises) instead of corrupting data.
#pragma once
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>
#include "pto/cpu/state.hpp"
#include "pto/cpu/tile.hpp"

#pragma GCC visibility push(hidden)

namespace pto {
enum Direction : uint8_t { DIR_C2V = 1, DIR_V2C = 2, DIR_BOTH = 3, DIR_V2C_CTRL = 4 };
enum class TileSplitAxis { TILE_NO_SPLIT, TILE_UP_DOWN, TILE_LEFT_RIGHT };
}  // namespace pto

namespace pto::cpu {
// ---- errors raised inside kernels ----------------------------------------------------------------
// The first error of a launch is kept here; the orchestration returns an error code when it is set
// (PTO_CHECK_LAUNCH) and the host reads the text through pto_last_error().
struct KernelAbort {};
struct ErrorState {
  std::mutex lock;
  std::string message;
  bool pending = false;
};
inline ErrorState g_error;

[[noreturn]] inline void kernel_error(const std::string& message) {
  {
    std::lock_guard<std::mutex> guard(g_error.lock);
    if (!g_error.pending) {
      g_error.pending = true;
      g_error.message = message;
    }
  }
  throw KernelAbort{};
}

// ---- gm-pipe buffers and their owners --------------------------------------------------------------
struct GmPipeBuffer {
  const unsigned char* base;
  std::size_t per_block_bytes;
  int32_t block_num;
};
struct GmPipeRegistry {
  std::mutex lock;
  std::vector<GmPipeBuffer> buffers;   // one per gm-pipe workspace slot (index = slot)
};
inline GmPipeRegistry g_gm_pipes;

// The calling block must own [p, p + bytes): the bytes lie in one registered gm-pipe buffer, inside
// the slice of block get_block_idx(). Read without the lock: the host registers a launch's buffers
// (pto_gm_pipe) before it starts the blocks, which only read them (a lock per TALLOC/TPOP, shared
// by every block, was 3% of a bf16 flash-attention prefill on one thread).
inline void check_slot_owner(const char* op, int flag, const void* p, std::size_t bytes) {
  const auto* q = static_cast<const unsigned char*>(p);
  for (const GmPipeBuffer& b : g_gm_pipes.buffers) {
    const std::size_t total = b.per_block_bytes * static_cast<std::size_t>(b.block_num);
    if (b.base == nullptr || q < b.base || q >= b.base + total) continue;
    const std::size_t off = static_cast<std::size_t>(q - b.base);
    const std::size_t owner = off / b.per_block_bytes;
    if (owner == static_cast<std::size_t>(t_block_idx) && off + bytes <= (owner + 1) * b.per_block_bytes) return;
    char text[320];
    std::snprintf(text, sizeof text,
                  "gm-pipe ownership violation: %s on pipe %d of block %d got the slot at byte %zu of a gm-pipe "
                  "buffer of %d x %zu bytes, in block %zu's slice; each block must offset its pipe by "
                  "block_idx x per_block_bytes",
                  op, flag, t_block_idx, off, b.block_num, b.per_block_bytes, owner);
    kernel_error(text);
  }
  char text[200];
  std::snprintf(text, sizeof text, "gm-pipe: %s on pipe %d of block %d got a slot outside every gm-pipe buffer",
                op, flag, t_block_idx);
  kernel_error(text);
}

// ---- one block's cluster: the rings of its pipes -----------------------------------------------------
constexpr int kMaxPipes = 16;   // hardware flag ids per cluster
// Per side, one counter per role of that side (the cube side has one role, the vector side one
// per vector role).
struct Ring {
  int64_t allocated[2] = {0, 0}, pushed[2] = {0, 0}, popped[2] = {0, 0}, freed[2] = {0, 0};
  static int64_t least(const int64_t* c, int n) { return n == 2 && c[1] < c[0] ? c[1] : c[0]; }
};
struct Cluster {
  std::mutex lock;
  std::condition_variable cv;
  Ring rings[kMaxPipes];
  int vector_roles = 1;     // vector roles of the cluster: 1 (fused) or 2 (faithful)
  bool threaded = false;    // faithful: roles on their own threads, waits really wait
  bool aborted = false;     // a role failed: the others stop waiting

  // Wait until ready(); in fused mode an unready wait is a deadlock of the program. `held` holds
  // the lock in faithful mode only: fused, the block's one thread is the only one on its rings.
  template <typename Ready> void wait(std::unique_lock<std::mutex>& held, const char* op, int flag, Ready ready) {
    if (!threaded) {
      if (!ready()) {
        if (held.owns_lock()) held.unlock();
        kernel_error(std::string("mixed kernel deadlock: ") + op + " on pipe " + std::to_string(flag) +
                     " can never proceed (the stages of a block run in program order)");
      }
      return;
    }
    cv.wait(held, [&] { return aborted || ready(); });
    if (aborted) throw KernelAbort{};
  }
};
inline thread_local Cluster* t_cluster = nullptr;

inline Cluster& cluster() {
  PTO_CHECK(t_cluster != nullptr, "a pipe instruction outside a mixed-kernel launch (PTO_LAUNCH_MIXED)");
  return *t_cluster;
}

// The number of roles on each side of a pipe.
struct Sides {
  int producers, consumers;
};
inline Sides sides(const Cluster& cl, bool vector_produces) {
  return vector_produces ? Sides{cl.vector_roles, 1} : Sides{1, cl.vector_roles};
}
}  // namespace pto::cpu

namespace pto {
// TPipe over this block's slice of a gm-pipe buffer: SlotNum slots of SlotSize bytes.
template <uint8_t FlagID, uint8_t DirType, uint32_t SlotSize, uint32_t SlotNum, uint32_t LocalSlotNum = 2,
          bool IsNoSplit = false, bool EN_UNIT_FLAG = false>
struct TPipe {
  static_assert(FlagID < cpu::kMaxPipes, "TPipe: FlagID must be < 16");
  static_assert(DirType == DIR_C2V || DirType == DIR_V2C, "cpu target: DIR_C2V or DIR_V2C pipes");
  static constexpr uint8_t kFlag = FlagID;
  static constexpr bool kVectorProduces = DirType == DIR_V2C;
  static constexpr uint32_t kSlotBytes = SlotSize, kSlotNum = SlotNum;
  unsigned char* slots;
  PTO_INLINE TPipe(__gm__ void* gmSlotBuffer, uint32_t /*c2vConsumerUbAddr*/, uint32_t /*v2cConsumerL1Addr*/)
      : slots(static_cast<unsigned char*>(gmSlotBuffer)) {}
  PTO_INLINE unsigned char* slot(int64_t seq) const { return slots + (seq % SlotNum) * SlotSize; }
};

}  // namespace pto

namespace pto::cpu {
// The calling role's index on the producing (produce = true) or consuming side of pipe `P`.
template <typename P> PTO_INLINE int my_index(bool produce) {
  return produce == P::kVectorProduces ? t_subblock_idx : 0;
}

// Wait until `ready(ring, sides)`, take the slot `counter(ring)` numbers (post-incremented), check
// that the calling block owns it and point `gm` at it (TALLOC and TPOP).
template <typename P, typename GmT, typename Counter, typename Ready>
inline void take_slot(P& pipe, GmT& gm, const char* op, Counter counter, Ready ready) {
  auto& cl = cluster();
  const Sides s = sides(cl, P::kVectorProduces);
  std::unique_lock<std::mutex> held(cl.lock, std::defer_lock);
  if (cl.threaded) held.lock();
  Ring& ring = cl.rings[P::kFlag];
  cl.wait(held, op, P::kFlag, [&] { return ready(ring, s); });
  unsigned char* p = pipe.slot(counter(ring)++);
  if (held.owns_lock()) held.unlock();
  check_slot_owner(op, P::kFlag, p, P::kSlotBytes);
  gm = GmT(reinterpret_cast<typename GmT::DType*>(p));
}

// Count a slot as `counter(ring)` (TPUSH, TFREE) and wake the cluster's waiters.
template <typename P, typename Counter> inline void count_slot(Counter counter) {
  auto& cl = cluster();
  if (!cl.threaded) {
    ++counter(cl.rings[P::kFlag]);
    return;
  }
  {
    std::lock_guard<std::mutex> held(cl.lock);
    ++counter(cl.rings[P::kFlag]);
  }
  cl.cv.notify_all();
}
}  // namespace pto::cpu

namespace pto {
// Producer: wait for a free slot and point `gm` at it.
template <typename Pipe, typename GmT, TileSplitAxis Split = TileSplitAxis::TILE_NO_SPLIT>
inline RecordEvent TALLOC(Pipe& pipe, GmT& gm) {
  const int me = cpu::my_index<Pipe>(true);
  cpu::take_slot(pipe, gm, "TALLOC", [me](cpu::Ring& r) -> int64_t& { return r.allocated[me]; },
                 [me](const cpu::Ring& r, const cpu::Sides& s) {
                   return r.allocated[me] - cpu::Ring::least(r.freed, s.consumers) < Pipe::kSlotNum;
                 });
  return {};
}

// Producer: commit the slot to the consumers.
template <typename Pipe, typename GmT, TileSplitAxis Split = TileSplitAxis::TILE_NO_SPLIT>
inline RecordEvent TPUSH(Pipe&, GmT&) {
  const int me = cpu::my_index<Pipe>(true);
  cpu::count_slot<Pipe>([me](cpu::Ring& r) -> int64_t& { return r.pushed[me]; });
  return {};
}

// Consumer: wait for the next slot every producer committed and point `gm` at it.
template <typename Pipe, typename GmT, TileSplitAxis Split = TileSplitAxis::TILE_NO_SPLIT>
inline RecordEvent TPOP(Pipe& pipe, GmT& gm) {
  const int me = cpu::my_index<Pipe>(false);
  cpu::take_slot(pipe, gm, "TPOP", [me](cpu::Ring& r) -> int64_t& { return r.popped[me]; },
                 [me](const cpu::Ring& r, const cpu::Sides& s) {
                   return r.popped[me] < cpu::Ring::least(r.pushed, s.producers);
                 });
  return {};
}

// Consumer: give the slot back (free once every consumer gave it back).
template <typename Pipe, typename GmT, TileSplitAxis Split = TileSplitAxis::TILE_NO_SPLIT>
inline RecordEvent TFREE(Pipe&, GmT&) {
  const int me = cpu::my_index<Pipe>(false);
  cpu::count_slot<Pipe>([me](cpu::Ring& r) -> int64_t& { return r.freed[me]; });
  return {};
}
}  // namespace pto

#pragma GCC visibility pop
