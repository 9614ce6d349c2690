"""Lower one device region of the partition into a tile-level DeviceRegion: fuse, tile every
kernel, bind its buffers, size the workspaces."""
from __future__ import annotations

import sympy

from pto_dynamo.graph.ir import Graph, TensorMeta
from pto_dynamo.lowering.partition import DeviceRegion as PartitionRegion
from pto_dynamo.lowering.cube.tiling import tile_matmul
from pto_dynamo.lowering.tile import DeviceRegion, Launch, RegionTensor, Workspace, elem_type, sym
from pto_dynamo.lowering.tile.capacity import TargetCapacity
from pto_dynamo.lowering.tile.region import c_identifier
from pto_dynamo.lowering.vector.fusion import plan_region
from pto_dynamo.lowering.vector.tiling import normalize_expr, tile_kernel


def storage_numel(meta: TensorMeta):
    """Elements a buffer with this shape and stride spans (its allocation size)."""
    return normalize_expr(1 + sum((sympy.sympify(s) - 1) * st for s, st in zip(meta.shape, meta.stride)))


def kernel_name(parts: list[str], index: int) -> str:
    return "pto_vec_" + "_".join(parts[:5] or ["copy"]) + f"_{index}"


def lower_vector_region(graph: Graph, region: PartitionRegion, scalar_names: tuple[str, ...], label: str,
                        capacity: TargetCapacity) -> DeviceRegion:
    """The tile DeviceRegion of `region`; `label` (stable across processes) names it."""
    plan = plan_region(graph, list(region.nodes), region.inputs, region.outputs)
    launches = []
    for k in plan.kernels:
        if k.matmul is not None:                           # a cube kernel: pto_cube_mm_<i>, pto_cube_bmm_<i>
            op, what = k.nodes[0], k.nodes[0].target.__name__.split(".")[0]
            program, buffers = tile_matmul(k.matmul, plan.values, f"pto_cube_{what}_{k.index}", label, capacity,
                                           f"{op.name} = {what}")
        else:
            program, tiler = tile_kernel(k, plan.values, kernel_name(k.name_parts(), k.index), label, capacity)
            buffers = list(tiler.params)
        tensors = tuple(c_identifier(buf) for buf in buffers)
        launches.append(Launch(program, tensors, tuple(program.scalars)))
    tensors = tuple(RegionTensor(c_identifier(n), elem_type(plan.buffers[n].dtype), plan.buffers[n].shape)
                    for n in region.inputs) + \
        tuple(RegionTensor(c_identifier(n), elem_type(plan.buffers[n].dtype), plan.buffers[n].shape, is_output=True)
              for n in region.outputs)
    workspaces = tuple(Workspace(c_identifier(n), elem_type(plan.buffers[n].dtype), storage_numel(plan.buffers[n]))
                       for n in plan.workspaces)
    out = DeviceRegion(label, region.index, tensors, tuple(sym(n) for n in scalar_names), tuple(launches), workspaces)
    out.validate()
    return out
