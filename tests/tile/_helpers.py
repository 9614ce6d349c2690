"""Helpers of the tile tests: build a hand-built program's one-kernel region on the CPU target."""
from __future__ import annotations

import functools

from pto_dynamo.lowering.tile.region import single_kernel_region


@functools.lru_cache(maxsize=None)
def _load(source: str, name: str):
    from pto_dynamo.ascend_backend.cpu import load_library
    return load_library(source, name)


def build_region(program, graph: str = "tiletest"):
    """(DeviceRegion, RegionCallable) of a one-kernel region around `program`."""
    from pto_dynamo.ascend_backend.cpu import load_region
    from pto_dynamo.ascend_backend.render import render_translation_unit
    region = single_kernel_region(program, graph)
    lib = _load(render_translation_unit(region), program.name)
    return region, load_region(lib, region.name)




def cube_slot_times_y(kb, pipe, free_first: bool = False) -> None:
    """Emit a cube stage computing z = (the 16 x 16 f32 operand in `pipe`'s slot) @ y: TPOP, the
    operand loaded from the slot and y from its tensor, TMOV to Left/Right, TMATMUL, TFREE (before
    the TMATMUL with `free_first`), TSTORE z. The kernel declares tensors y and z."""
    from pto_dynamo.lowering.tile import F32, GmView, Role, TileLoc
    with kb.stage(Role.CUBE):
        for name, loc in (("pm", TileLoc.Mat), ("bm", TileLoc.Mat), ("l", TileLoc.Left), ("r", TileLoc.Right),
                          ("acc", TileLoc.Acc)):
            kb.tile(name, loc, F32, 16, 16, 16, 16)
        kb.emit("TPOP", pipe=pipe.name)
        kb.emit("TLOAD", "pm", GmView(pipe.slot(Role.CUBE), 0, 16, 16, 16))
        kb.emit("TLOAD", "bm", kb.view("y", 0, 16, 16, 16))
        kb.emit("TMOV", "l", "pm")
        kb.emit("TMOV", "r", "bm")
        if free_first:
            kb.emit("TFREE", pipe=pipe.name)
        kb.emit("TMATMUL", "acc", "l", "r")
        if not free_first:
            kb.emit("TFREE", pipe=pipe.name)
        kb.emit("TSTORE", kb.view("z", 0, 16, 16, 16), "acc")


def v2c_kernel(name: str):
    """(KernelBuilder, pipe) of a mixed kernel over 16 x 16 f32 tensors x, y (inputs) and z (the
    output) with one V2C pipe, `pipe0`, of 256-element slots: the vector stage hands the cube
    stage an operand (cube_slot_times_y)."""
    from pto_dynamo.lowering.tile import F32, Direction, KernelBuilder
    kb = KernelBuilder(name, kind="mixed")
    kb.tensor("x", F32, (16, 16), (16, 1))
    kb.tensor("y", F32, (16, 16), (16, 1))
    kb.tensor("z", F32, (16, 16), (16, 1), output=True)
    return kb, kb.pipe("pipe0", F32, 256, direction=Direction.V2C)


def check_doubled_times_y(program, name: str, block_num: int) -> None:
    """Run a v2c_kernel program on seeded x, y and check z == (2 x) @ y."""
    import torch
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 16, generator=g), torch.randn(16, 16, generator=g)
    z = torch.full((16, 16), float("nan"))
    _, call = build_region(program, name)
    call([x, y, z], [], block_num)
    torch.testing.assert_close(z, (2 * x) @ y)
