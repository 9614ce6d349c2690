"""Lower one device region of the partition into a tile-level DeviceRegion: fuse, tile every
kernel, bind its buffers, size the workspaces."""
from __future__ import annotations

import sympy

from pto_dynamo.graph.ir import Graph, TensorMeta
from pto_dynamo.lowering.partition import DeviceRegion as PartitionRegion
from pto_dynamo.lowering.cube.tiling import tile_matmul
from pto_dynamo.lowering.attention.tiling import tile_attention
from pto_dynamo.lowering.mixed.epilogue import MixedPlan, fuse_epilogues
from pto_dynamo.lowering.mixed.tiling import mm_name, tile_mixed
from pto_dynamo.lowering.tile import DeviceRegion, GmPipeBuffer, Launch, RegionTensor, Workspace, elem_type, sym
from pto_dynamo.lowering.tile.capacity import TargetCapacity
from pto_dynamo.lowering.tile.region import c_identifier
from pto_dynamo.lowering.vector.fusion import KernelPlan, RegionPlan, plan_region
from pto_dynamo.lowering.vector.tiling import normalize_expr, tile_kernel


def storage_numel(meta: TensorMeta):
    """Elements a buffer with this shape and stride spans (its allocation size)."""
    return normalize_expr(sympy.sympify(1 + sum((sympy.sympify(s) - 1) * st for s, st in zip(meta.shape, meta.stride))))


def kernel_name(parts: list[str], index: int) -> str:
    return "pto_vec_" + "_".join(parts[:5] or ["copy"]) + f"_{index}"


def _tile_cube(k: KernelPlan, plan: RegionPlan, label: str, capacity: TargetCapacity):
    """A cube kernel: pto_cube_mm_<i>, pto_cube_bmm_<i>."""
    op, what = k.nodes[0], k.nodes[0].target.__name__.split(".")[0]
    return tile_matmul(k.matmul, plan.values, f"pto_cube_{what}_{k.index}", label, capacity, f"{op.name} = {what}")


def _tile_vector(k: KernelPlan, plan: RegionPlan, label: str, capacity: TargetCapacity):
    program, tiler = tile_kernel(k, plan.values, kernel_name(k.name_parts(), k.index), label, capacity)
    return program, list(tiler.params)


def _tile_mixed(k: MixedPlan, plan: RegionPlan, label: str, capacity: TargetCapacity):
    """A mixed kernel: pto_mixed_mm_silu_mul_<i>."""
    parts = [mm_name(mm) for _, mm in k.matmuls][:2] + k.epilogue.name_parts()[:4]
    program, tiler = tile_mixed(k, plan.values, "pto_mixed_" + "_".join(parts) + f"_{k.index}", label, capacity)
    return program, list(tiler.params)


def _tile_attention(k: KernelPlan, plan: RegionPlan, label: str, capacity: TargetCapacity):
    """An attention kernel: pto_mixed_attention_<i>."""
    return tile_attention(k.attention, plan.values, f"pto_mixed_attention_{k.index}", label, capacity)


def _tiler_of(k):
    if isinstance(k, MixedPlan):
        return _tile_mixed
    if k.attention is not None:
        return _tile_attention
    return _tile_cube if k.matmul is not None else _tile_vector


def lower_vector_region(graph: Graph, region: PartitionRegion, scalar_names: tuple[str, ...], label: str,
                        capacity: TargetCapacity) -> DeviceRegion:
    """The tile DeviceRegion of `region`; `label` (stable across processes) names it."""
    plan = plan_region(graph, list(region.nodes), region.inputs, region.outputs)
    kernels, plan = fuse_epilogues(plan)
    launches, gm_pipes = [], []
    for k in kernels:
        program, buffers = _tiler_of(k)(k, plan, label, capacity)
        bound = {c_identifier(buf): c_identifier(buf) for buf in buffers}   # tensor parameter -> region buffer
        for pipe in program.pipes:               # each mixed kernel's gm-pipe: a buffer of its own
            gm = GmPipeBuffer(f"{pipe.tensor}_{k.index}", pipe.dtype, pipe.per_block_elems)
            gm_pipes.append(gm)
            bound[pipe.tensor] = gm.name
        launches.append(Launch(program, tuple(bound[p.name] for p in program.params), tuple(program.scalars)))
    tensors = tuple(RegionTensor(c_identifier(n), elem_type(plan.buffers[n].dtype), plan.buffers[n].shape)
                    for n in region.inputs) + \
        tuple(RegionTensor(c_identifier(n), elem_type(plan.buffers[n].dtype), plan.buffers[n].shape, is_output=True)
              for n in region.outputs)
    workspaces = tuple(Workspace(c_identifier(n), elem_type(plan.buffers[n].dtype), storage_numel(plan.buffers[n]))
                       for n in plan.workspaces)
    out = DeviceRegion(label, region.index, tensors, tuple(sym(n) for n in scalar_names), tuple(launches), workspaces,
                       tuple(gm_pipes))
    out.validate()
    return out
