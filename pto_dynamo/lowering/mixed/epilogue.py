"""Find matmul epilogues: a pointwise kernel that reads matmul results tile for tile becomes, with
those matmuls, one mixed kernel (`MixedPlan`).

After fusion (vector/fusion.py) a matmul is a cube kernel that stores its result to a workspace,
and the vector kernel after it (bias, activation, residual add, the SwiGLU gate
`silu(x @ w1^T) * (x @ w3^T)`) loads it back. The pair merges when

  - the vector kernel is pointwise (no reduction, no gather) over exactly the matmul's output
    domain (batch, M, N), and reads each matmul result at the same element it computes
    (identity access), so a cube tile feeds the vector tile of the same place;
  - each matmul result is a workspace nobody else reads (not a region output);
  - all the merged matmuls share (batch, M, N) and element type;
  - nothing between a matmul and the vector kernel writes the matmul's operands.

The mixed kernel runs where the vector kernel ran; the matmul results never reach memory beyond
the block's gm-pipe slots.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from pto_dynamo.lowering.cube.ops import MatmulPlan
from pto_dynamo.lowering.vector.fusion import KernelPlan, RegionPlan, _shape_eq


@dataclass
class MixedPlan:
    """Matmuls (cube stage) feeding one pointwise epilogue kernel (vector stage)."""

    index: int
    matmuls: list[tuple[str, MatmulPlan]]      # (the value the epilogue reads, its matmul), in slot order
    epilogue: KernelPlan

    @property
    def nodes(self):
        return self.epilogue.nodes


def _matmul_of(kernels: list[KernelPlan]) -> dict[str, tuple[int, KernelPlan]]:
    """Result value -> (position, cube kernel)."""
    return {k.matmul.c.buffer: (i, k) for i, k in enumerate(kernels) if k.matmul is not None}


def _readers(kernels: list[KernelPlan], buffer: str) -> list[int]:
    return [i for i, k in enumerate(kernels)
            if any(a.buffer == buffer for a in (*k.loads.values(), *k.tables.values()))]


def _epilogue_inputs(v: KernelPlan, pos: int, kernels, cube_of, plan: RegionPlan) -> list[tuple[str, str]]:
    """(value, matmul result buffer) of each matmul result vector kernel `v` (at position `pos`)
    can take over, [] if none."""
    if v.opaque or v.has_reduction or v.tables or not v.nodes:
        return []
    taken: list[tuple[str, str]] = []
    for (value, dmap), access in v.loads.items():
        if access.buffer not in cube_of or access.buffer in plan.outputs:
            continue
        mpos, k = cube_of[access.buffer]
        mm = k.matmul
        shape = (mm.batch, mm.M, mm.N) if v.rank == 3 else (mm.M, mm.N)
        keys = [key for key in v.loads if v.loads[key].buffer == access.buffer]
        if (dmap != tuple(range(v.rank)) or not _shape_eq(access.offset, 0) or len(keys) != 1
                or len(v.domain) != len(shape) or not all(_shape_eq(a, b) for a, b in zip(v.domain, shape))
                or _readers(kernels, access.buffer) != [pos] or mpos > pos):
            continue
        operands = {mm.a.buffer, mm.b.buffer}
        if any(a.buffer in operands for k2 in kernels[mpos + 1:pos] for a in k2.stores.values()):
            continue
        taken.append((value, access.buffer))
    if len(taken) > 1:       # one shared tiling: the same batch, M, N and element type
        first = cube_of[taken[0][1]][1].matmul
        dtype = plan.values[taken[0][1]].dtype
        taken = [(v_, b) for v_, b in taken if plan.values[b].dtype == dtype
                 and all(_shape_eq(getattr(cube_of[b][1].matmul, f), getattr(first, f)) for f in ("batch", "M", "N"))]
    return taken


def fuse_epilogues(plan: RegionPlan) -> tuple[list[KernelPlan | MixedPlan], RegionPlan]:
    """The region's kernels with each matmul + epilogue pair merged into a MixedPlan, and the plan
    without the workspaces of the merged matmul results."""
    kernels = plan.kernels
    cube_of = _matmul_of(kernels)
    merged: dict[int, MixedPlan] = {}
    absorbed: set[int] = set()
    for pos, v in enumerate(kernels):
        taken = _epilogue_inputs(v, pos, kernels, cube_of, plan)
        if taken:
            merged[pos] = MixedPlan(v.index, [(value, cube_of[b][1].matmul) for value, b in taken], v)
            absorbed.update(cube_of[b][0] for _, b in taken)
    out: list[KernelPlan | MixedPlan] = [merged.get(i, k) for i, k in enumerate(kernels) if i not in absorbed]
    gone = {mm.c.buffer for m in merged.values() for _, mm in m.matmuls}
    return out, replace(plan, workspaces=tuple(w for w in plan.workspaces if w not in gone))
