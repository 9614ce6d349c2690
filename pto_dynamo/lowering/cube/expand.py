"""addmm / baddbmm as a matmul and vector ops:

    addmm(bias, a, b, beta, alpha)   -> alpha * mm(a, b) + beta * bias    (beta = 0 ignores bias)

The matmul runs as a cube kernel that stores its f32 accumulator; the scaling and the bias add run
as a vector kernel over that product, rounded once to the result dtype as eager's fused addmm
does. (Fusing the epilogue into the matmul kernel is the mixed-kernel lowering's job.)
"""
from __future__ import annotations

import torch

from pto_dynamo.graph.ir import Graph, Node
from pto_dynamo.lowering.vector.expand import _Builder, contiguous_meta, expander

aten = torch.ops.aten
prims = torch.ops.prims


@expander(aten.addmm.default, aten.baddbmm.default)
def _expand_addmm(node: Node, graph: Graph):
    bias, a, b = node.args[:3]
    kw = node.kwargs_dict()
    beta, alpha = kw.get("beta", 1), kw.get("alpha", 1)
    mm = aten.mm.default if node.target is aten.addmm.default else aten.bmm.default
    out = node.meta
    bld = _Builder(node.name)
    if beta == 0 and alpha == 1:
        bld.add(mm, (a, b), out, node.name)
        return bld.nodes
    # the product stays f32 (the accumulator) until the bias is added: one rounding, as eager
    acc = contiguous_meta(out.shape, torch.float32)
    prod = bld.add(mm, (a, b), acc)
    if alpha != 1:
        prod = bld.add(aten.mul.Scalar, (prod, alpha), acc)
    if beta != 0:
        if beta != 1:
            bias = bld.add(aten.mul.Scalar, (bias, beta), contiguous_meta(graph.meta_of(bias.name).shape, torch.float32))
        prod = bld.add(aten.add.Tensor, (prod, bias), acc)
    bld.add(prims.convert_element_type.default, (prod, out.dtype), out, node.name)
    return bld.nodes
