"""On-chip capacities of a target, the parameters of tile planning and verification."""
from __future__ import annotations

from dataclasses import dataclass

from pto_dynamo.lowering.tile.ir import TileLoc


@dataclass(frozen=True)
class TargetCapacity:
    """Bytes available per tile location and the placement alignment.

    A target object passes one of these to the planner and the verifier; nothing in lowering
    assumes particular numbers.
    """

    name: str
    bytes_per_loc: tuple[tuple[TileLoc, int], ...]
    alignment: int = 32
    # Vector tiling preferences: the elements of one tile the tiler aims for, and the widest tile
    # of a kernel without reductions (which tiles columns too).
    tile_elems: int = 16384
    tile_cols: int = 1024
    # The longest K step and the most rows of a matmul tile (cube/tiling.py's tile_shape), where
    # the memories would allow more; None: as many as they allow.
    max_k_step: int | None = None
    max_m_step: int | None = None
    # The longest K step of 2-byte operands whose A rows lie a static number of bytes apart that
    # is not a multiple of `aliased_row_bytes` (rows that far apart share a few of the core's L1
    # sets); None: no such bound.
    spread_k_step: int | None = None
    aliased_row_bytes: int | None = None
    # The most rows of a bf16 matmul with a dynamic M that take the few-rows tile loop
    # (cube/tiling.py's few_rows_limit); None: FEW_ROWS, as other types.
    few_rows_bf16: int | None = None

    def capacity(self, loc: TileLoc) -> int:
        for l, n in self.bytes_per_loc:
            if l is loc:
                return n
        raise KeyError(f"tile IR: target {self.name} has no {loc.name} ({loc.memory}) memory")


KiB = 1024

# Ascend A2A3 (910B/910C, dav-c220): UB 192 KiB, L1 512 KiB, L0A/L0B 64 KiB, L0C 128 KiB.
A2A3_CAPACITY = TargetCapacity(
    "a2a3",
    ((TileLoc.Vec, 192 * KiB), (TileLoc.Mat, 512 * KiB), (TileLoc.Left, 64 * KiB),
     (TileLoc.Right, 64 * KiB), (TileLoc.Acc, 128 * KiB)),
    alignment=32,
)

# The cpu target. Vector memory: A2A3's unified buffer (vector kernels stay valid A2A3 tile
# programs) with tiles sized for a CPU core's L1 data cache (8 KiB of f32: a kernel's few live
# tiles stay in L1 between instructions, where 64 KiB tiles stream through L2 on every
# instruction). Cube memories: 4x A2A3's (L0A and L0B 8x), so that one TMATMUL is a product large
# enough for a CPU's GEMM kernel (256 x 256 x 512 f32 tiles instead of 128 x 128 x 128,
# cube/tiling.py's tile_shape: fewer calls, less per-call overhead, C read and written once per
# 512 steps of K: 1 thread, Sapphire Rapids, [256, 1024] x [1024, 2816] through the packed kernel
# 150 GF/s with K steps of 256, 157 with 512; the SwiGLU MLP at T=256 2-3% faster), K steps at
# most 512 and rows at most 256, the bf16 tiles these memories took before (linear [2048, 4096] x
# [4096, 4096]^T bf16 on AMX: 256 x 256 x 1024 or 512 x 128 x 512 tiles 1.2x slower than
# 256 x 256 x 512); the header's arenas (cpu/include/pto/cpu/state.hpp) have these sizes.
# bf16 K steps of 256 where A's rows are not a multiple of 2 KiB apart: a core's L1 (48 KiB,
# 64 sets of 64-byte lines) then holds a 32-row block of A and the B panel of the AMX kernel
# (16 KiB each at 256, 32 KiB each at 512); rows 2 KiB x n apart fall into 2 of the 64 sets, and
# A misses L1 at either step. 1 thread, Sapphire Rapids, linear [256, K] x [K, N]^T bf16, the
# time with steps of 256 over 512: K = 2816, N = 1024 / 2048 / 4096: 0.91 / 0.89 / 0.86; K =
# 11008, N = 1024: 0.86; K = 1536, 2560, 5632: 0.93, 0.92, 0.87; where rows are 2 KiB x n apart:
# K = 1024, 4096, 8192 (N = 1024): 1.03, 0.99, 1.01, [256, 4096] x [4096, 4096]^T 1.03 and
# [2048, 4096] x [4096, 4096]^T 1.06; without AMX (the vdpbf16ps kernels) 1.01 either way.
# f16 (2 bytes too) takes the same steps; its packed f32 kernel was not measured at 256.
# bf16 products of 7-16 rows take the big tiles, where the AMX kernel runs them from 5 rows on
# (cpu/include/pto/cpu/matmul.hpp's use_amx): its cost is packing the weight, the same for 7 rows
# or 16, where the dot products of the few-rows tiles grow with the rows. 1 thread, Sapphire
# Rapids, the bf16 SwiGLU MLP [T, 1024] -> 2816 -> 1024 with T dynamic, few-rows loop up to 16
# rows against up to 4 (in one process, ms): T = 5: 1.41 / 1.64, 6: 1.63 / 1.69, 7: 1.72 / 1.68,
# 8: 1.96 / 1.71, 16: 3.44 / 1.62 (inductor 1.72). Without AMX the big tiles run the same dot
# kernels (not measured there).
CPU_CAPACITY = TargetCapacity(
    "cpu",
    ((TileLoc.Vec, 192 * KiB), (TileLoc.Mat, 2048 * KiB), (TileLoc.Left, 512 * KiB),
     (TileLoc.Right, 512 * KiB), (TileLoc.Acc, 512 * KiB)),
    alignment=32, tile_elems=2048, tile_cols=2048, max_k_step=512, max_m_step=256, spread_k_step=256,
    aliased_row_bytes=2048, few_rows_bf16=6)
