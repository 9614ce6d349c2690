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


