"""Attention as one mixed kernel: a pattern stage recognises softmax(q @ k^T * s + mask) @ v (SDPA's
decomposition included) as `pto::attention`, and its lowering runs QK^T on the cube stage, the
online softmax on the vector stage and PV on the cube stage, tiles flowing through gm-pipes."""
