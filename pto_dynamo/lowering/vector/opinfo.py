"""What the vector lowering knows about each ATen op: its kind and how its operands are read.

kinds:
  pointwise  elementwise over broadcast operands (`tensor_args` are the positions of operands)
  reduction  reduces `dims` of operand 0 (`reduce` = sum | max | min)
  view       an affine view of operand 0 (index arithmetic on a load, no data movement)
  composite  expanded into primitives before fusion (softmax, mean, var, multi-dim reductions)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

aten = torch.ops.aten


@dataclass(frozen=True)
class VectorOp:
    kind: str
    tensor_args: tuple[int, ...] = (0,)
    reduce: str | None = None


POINTWISE_UNARY = [aten.exp.default, aten.log.default, aten.sqrt.default, aten.rsqrt.default, aten.reciprocal.default,
                   aten.abs.default, aten.neg.default, aten.relu.default, aten.sigmoid.default, aten.tanh.default,
                   aten.erf.default, aten.gelu.default, aten.silu.default, aten.clone.default,
                   aten._to_copy.default, torch.ops.prims.convert_element_type.default, aten.alias.default,
                   aten.pow.Tensor_Scalar, aten.clamp.default, aten.clamp_min.default, aten.clamp_max.default,
                   aten.add.Scalar, aten.sub.Scalar, aten.mul.Scalar, aten.div.Scalar, aten.exp2.default,
                   aten.log2.default, aten.log1p.default, aten.expm1.default, aten.sin.default, aten.cos.default,
                   aten.floor.default, aten.ceil.default, aten.round.default, aten.sign.default,
                   aten.leaky_relu.default, aten.hardtanh.default]
POINTWISE_BINARY = [aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor, aten.maximum.default,
                    aten.minimum.default, aten.pow.Tensor_Tensor, aten.copy.default]

VECTOR_OPS: dict = {}
for _op in POINTWISE_UNARY:
    VECTOR_OPS[_op] = VectorOp("pointwise", (0,))
for _op in POINTWISE_BINARY:
    VECTOR_OPS[_op] = VectorOp("pointwise", (0, 1))
VECTOR_OPS[aten.copy.default] = VectorOp("pointwise", (1,))          # copy(dst, src) = src in dst's meta
VECTOR_OPS[aten.sum.dim_IntList] = VectorOp("reduction", reduce="sum")
VECTOR_OPS[aten.amax.default] = VectorOp("reduction", reduce="max")
VECTOR_OPS[aten.amin.default] = VectorOp("reduction", reduce="min")
for _op in [aten.view.default, aten._unsafe_view.default, aten.reshape.default, aten.permute.default,
            aten.transpose.int, aten.t.default, aten.expand.default, aten.slice.Tensor, aten.select.int,
            aten.unsqueeze.default, aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default,
            aten.as_strided.default, aten.diagonal.default]:
    VECTOR_OPS[_op] = VectorOp("view")
for _op in [aten._softmax.default, aten._log_softmax.default, aten.mean.dim, aten.mean.default,
            aten.sum.default, aten.var.correction, aten.amax.default, aten.amin.default, aten.sum.dim_IntList]:
    VECTOR_OPS.setdefault(_op, VectorOp("composite"))

# Reductions are "composite" too when they reduce several dims (expanded into a chain first).
COMPOSITE_ALWAYS = {aten._softmax.default, aten._log_softmax.default, aten.mean.dim, aten.mean.default,
                    aten.sum.default, aten.var.correction}


def vector_op(target) -> VectorOp | None:
    return VECTOR_OPS.get(target)
