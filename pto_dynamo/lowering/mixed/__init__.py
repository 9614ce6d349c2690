"""Mixed kernels: matmuls (cube stage) and their pointwise epilogue (vector stage) in one kernel,
exchanging tiles through a gm-pipe sharded per block."""
