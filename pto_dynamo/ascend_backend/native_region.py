"""Device regions as native code on the cpu target: render the tile DeviceRegion to one C++
translation unit (kernels + orchestration), build it once per source, call it per region call."""
from __future__ import annotations

from pto_dynamo.ascend_backend.cpu import load_library, load_region
from pto_dynamo.ascend_backend.render import render_translation_unit


class NativeRegion:
    """`runner(tensors, scalars)`; `source` is the translation unit, `kernel_names` what it launches."""

    def __init__(self, source: str, symbol: str, kernel_names: tuple[str, ...], block_num: int | None = None):
        self.source, self.symbol, self.kernel_names = source, symbol, tuple(kernel_names)
        self.library = load_library(source, symbol)
        self._call = load_region(self.library, symbol, block_num)

    def __call__(self, tensors, scalars) -> None:
        self._call(tensors, scalars)


def render_region(tile_region) -> tuple[str, str, tuple[str, ...]]:
    """(source, entry symbol, kernel names) of a tile DeviceRegion."""
    return render_translation_unit(tile_region), tile_region.name, tuple(k.name for k in tile_region.kernels())
