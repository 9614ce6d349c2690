"""Vector lowering: device claims of vector ops, their expansion into primitives, fusion of a
device region into kernels over iteration domains, and tiling of each kernel into a TileProgram."""
