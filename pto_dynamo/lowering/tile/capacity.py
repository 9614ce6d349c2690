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
# instruction). Cube memories: 4x A2A3's, so that one TMATMUL is a product large enough for a
# CPU's GEMM kernel (256 x 256 x 256 f32 tiles instead of 128 x 128 x 128, cube/tiling.py's
# tile_shape: fewer calls, less per-call overhead); the header's arenas
# (cpu/include/pto/cpu/state.hpp) have these sizes.
CPU_CAPACITY = TargetCapacity(
    "cpu",
    ((TileLoc.Vec, 192 * KiB), (TileLoc.Mat, 2048 * KiB), (TileLoc.Left, 256 * KiB),
     (TileLoc.Right, 256 * KiB), (TileLoc.Acc, 512 * KiB)),
    alignment=32, tile_elems=2048, tile_cols=2048)
