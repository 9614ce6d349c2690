"""DeviceRegion: the orchestration of one device region — kernels launched in order.

The host program calls a region with its input and output tensors (in `tensors` order) and the
values of its scalars (dynamic dims, runtime strides). Intermediates between kernels live in
workspaces, sized by expressions over the region's scalars and carved at run time. Every launch
runs its kernel once with `block_num` SPMD blocks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from pto_dynamo.lowering.tile.dtypes import ElemType
from pto_dynamo.lowering.tile.expr import Expr, as_expr, free_names
from pto_dynamo.lowering.tile.ir import TileProgram


@dataclass(frozen=True)
class RegionTensor:
    """An input or output of the region (allocated by the host program)."""

    name: str
    dtype: ElemType
    shape: tuple[Expr, ...]
    is_output: bool = False

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(as_expr(s) for s in self.shape))


@dataclass(frozen=True)
class Workspace:
    """An intermediate buffer of `numel` elements, carved from workspace slot `index in region`."""

    name: str
    dtype: ElemType
    numel: Expr

    def __post_init__(self):
        object.__setattr__(self, "numel", as_expr(self.numel))


@dataclass(frozen=True)
class GmPipeBuffer:
    """The gm-pipe buffer of a mixed kernel's pipe: `block_num x per_block_elems` elements, carved
    at run time with the launch's block_num (no rebuild when it changes); block b's slice starts
    at b x per_block_elems."""

    name: str
    dtype: ElemType
    per_block_elems: int


@dataclass(frozen=True)
class Launch:
    """Run `kernel` once with block_num blocks: its tensor parameters bound to region tensors or
    workspaces (`tensors`, by name, in parameter order), its scalars to expressions over the
    region's scalars (`scalars`, in parameter order)."""

    kernel: TileProgram
    tensors: tuple[str, ...]
    scalars: tuple[Expr, ...]

    def __post_init__(self):
        object.__setattr__(self, "scalars", tuple(as_expr(s) for s in self.scalars))


@dataclass(frozen=True)
class DeviceRegion:
    """One device region of a graph: its tensors, scalars, workspaces and launches."""

    graph: str
    index: int
    tensors: tuple[RegionTensor, ...]
    scalars: tuple[sympy.Symbol, ...]
    launches: tuple[Launch, ...]
    workspaces: tuple[Workspace, ...] = ()
    gm_pipes: tuple[GmPipeBuffer, ...] = ()

    @property
    def name(self) -> str:
        """The orchestration entry point: `pto_region_<graph>_<index>`."""
        return f"pto_region_{c_identifier(self.graph)}_{self.index}"

    def kernels(self) -> list[TileProgram]:
        """Distinct kernels in first-launch order."""
        seen: dict[str, TileProgram] = {}
        for launch in self.launches:
            seen.setdefault(launch.kernel.name, launch.kernel)
        return list(seen.values())

    def validate(self) -> None:
        """Raise ValueError if launches bind unknown buffers, the wrong arity or unbound scalars."""
        buffers = {t.name for t in self.tensors} | {w.name for w in self.workspaces} | {g.name for g in self.gm_pipes}
        scalars = {s.name for s in self.scalars}
        for i, launch in enumerate(self.launches):
            k = launch.kernel
            where = f"region {self.name}, launch #{i} ({k.name})"
            if len(launch.tensors) != len(k.params) or len(launch.scalars) != len(k.scalars):
                raise ValueError(f"{where}: kernel takes {len(k.params)} tensors and {len(k.scalars)} scalars; "
                                 f"launch passes {len(launch.tensors)} and {len(launch.scalars)}")
            unknown = [n for n in launch.tensors if n not in buffers]
            if unknown:
                raise ValueError(f"{where}: unknown buffer(s) {unknown}; region has {sorted(buffers)}")
            for pipe in k.pipes:                 # a gm-pipe tensor binds a gm-pipe buffer of its size
                bound = dict(zip((p.name for p in k.params), launch.tensors)).get(pipe.tensor)
                gm = next((g for g in self.gm_pipes if g.name == bound), None)
                if gm is None or gm.per_block_elems != pipe.per_block_elems or gm.dtype != pipe.dtype:
                    raise ValueError(f"{where}: pipe {pipe.name} needs a gm-pipe buffer of {pipe.per_block_elems} "
                                     f"{pipe.dtype} per block; {pipe.tensor} is bound to {bound!r}")
            for e in launch.scalars:
                if free_names(e) - scalars:
                    raise ValueError(f"{where}: scalar {e} uses symbols outside the region's scalars {sorted(scalars)}")
        for w in self.workspaces:
            if free_names(w.numel) - scalars:
                raise ValueError(f"region {self.name}: workspace {w.name} size {w.numel} uses unbound symbols")


def c_identifier(text: str) -> str:
    """`text` with every character that is not [A-Za-z0-9_] replaced by `_`."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return out if out and not out[0].isdigit() else "_" + out


def single_kernel_region(kernel: TileProgram, graph: str | None = None, index: int = 0) -> DeviceRegion:
    """A region that launches one kernel: tensors are the kernel's inputs then its outputs (its
    gm-pipe tensors are gm-pipe buffers of the region), scalars are the kernel's scalars (handy
    for tests and hand-built programs)."""
    pipes = {p.tensor for p in kernel.pipes}
    params = [p for p in kernel.params if not p.is_output] + [p for p in kernel.params if p.is_output]
    params = [p for p in params if p.name not in pipes]
    tensors = tuple(RegionTensor(p.name, p.dtype, p.shape, p.is_output) for p in params)
    gm_pipes = tuple(GmPipeBuffer(p.tensor, p.dtype, p.per_block_elems) for p in kernel.pipes)
    launch = Launch(kernel, tuple(p.name for p in kernel.params), tuple(kernel.scalars))
    return DeviceRegion(graph or kernel.graph, index, tensors, tuple(kernel.scalars), (launch,), gm_pipes=gm_pipes)
