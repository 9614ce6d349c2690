"""Cube lowering: the matmul family as tiled TMATMUL kernels (claims, expansion, tiling)."""
