"""Renderers: TileProgram -> PTO-ISA C++ kernel source; DeviceRegion -> orchestration source.

One renderer per artifact kind, all reading the tile IR; no renderer asks which target it writes
for (targets differ in headers, compiler and launcher only).
"""
from pto_dynamo.ascend_backend.render.inst_rules import RENDER_RULES, render_rule
from pto_dynamo.ascend_backend.render.kernel import KernelSource, render_kernel
from pto_dynamo.ascend_backend.render.orchestration import render_orchestration, render_translation_unit

__all__ = ["RENDER_RULES", "render_rule", "KernelSource", "render_kernel", "render_orchestration",
           "render_translation_unit"]
