"""What the vector lowering knows about each ATen op: its kind and how its operands are read.

kinds:
  pointwise  elementwise over broadcast operands (`tensor_args` are the positions of operands)
  reduction  reduces `dims` of operand 0 (`reduce` = sum | max | min)
  view       an affine view of operand 0 (index arithmetic on a load, no data movement)
  composite  expanded into primitives before fusion (softmax, mean, var, multi-dim reductions)
  cat        concatenation: each operand is copied into its slice of the result's buffer
  gather     rows of a table picked by an index operand (`tensor_args`: the index): MGATHER
             (`take`: elements of the flattened table, one index per output element)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

aten = torch.ops.aten
prims = torch.ops.prims


@dataclass(frozen=True)
class VectorOp:
    kind: str
    tensor_args: tuple[int, ...] = (0,)
    reduce: str | None = None


POINTWISE_UNARY = [aten.exp.default, aten.log.default, aten.sqrt.default, aten.rsqrt.default, aten.reciprocal.default,
                   aten.abs.default, aten.neg.default, aten.relu.default, aten.sigmoid.default, aten.tanh.default,
                   aten.erf.default, aten.gelu.default, aten.silu.default, aten.clone.default,
                   aten.lift_fresh_copy.default,
                   aten._to_copy.default, prims.convert_element_type.default, aten.alias.default,
                   aten.pow.Tensor_Scalar, aten.clamp.default, aten.clamp_min.default, aten.clamp_max.default,
                   aten.add.Scalar, aten.sub.Scalar, aten.mul.Scalar, aten.div.Scalar, aten.exp2.default,
                   aten.log2.default, aten.log1p.default, aten.expm1.default, aten.sin.default, aten.cos.default,
                   aten.floor.default, aten.ceil.default, aten.trunc.default, aten.round.default, aten.sign.default]
POINTWISE_BINARY = [aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor, aten.maximum.default,
                    aten.minimum.default, aten.pow.Tensor_Tensor, aten.copy.default]

VECTOR_OPS: dict = {}
for _op in POINTWISE_UNARY:
    VECTOR_OPS[_op] = VectorOp("pointwise", (0,))
for _op in POINTWISE_BINARY:
    VECTOR_OPS[_op] = VectorOp("pointwise", (0, 1))
VECTOR_OPS[aten.copy.default] = VectorOp("pointwise", (1,))          # copy(dst, src) = src in dst's meta
VECTOR_OPS[aten.pow.Scalar] = VectorOp("pointwise", (1,))             # number ** tensor (RoPE's 10000 ** (i / d))
# Integer division by a nonzero integer constant (x % b, x // b): integer results only (claims.py).
INT_DIVISION = [aten.remainder.Scalar, aten.div.Tensor_mode]
for _op in INT_DIVISION:
    VECTOR_OPS[_op] = VectorOp("pointwise", (0,))
VECTOR_OPS[aten.sum.dim_IntList] = VectorOp("reduction", reduce="sum")
VECTOR_OPS[aten.amax.default] = VectorOp("reduction", reduce="max")
VECTOR_OPS[aten.amin.default] = VectorOp("reduction", reduce="min")
for _op in [aten.view.default, aten._unsafe_view.default, aten.reshape.default, aten.permute.default,
            aten.transpose.int, aten.t.default, aten.expand.default, aten.slice.Tensor, aten.select.int,
            aten.unsqueeze.default, aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default,
            aten.as_strided.default, aten.diagonal.default]:
    VECTOR_OPS[_op] = VectorOp("view")
# Predicates and selection (bool values are f32 0/1 in tiles, see tile_rules).
COMPARE_TENSOR = [aten.eq.Tensor, aten.ne.Tensor, aten.lt.Tensor, aten.le.Tensor, aten.gt.Tensor, aten.ge.Tensor]
COMPARE_SCALAR = [aten.eq.Scalar, aten.ne.Scalar, aten.lt.Scalar, aten.le.Scalar, aten.gt.Scalar, aten.ge.Scalar]
LOGICAL_BINARY = [aten.logical_and.default, aten.logical_or.default, aten.logical_xor.default,
                  aten.bitwise_and.Tensor, aten.bitwise_or.Tensor, aten.bitwise_xor.Tensor]
LOGICAL_UNARY = [aten.logical_not.default, aten.bitwise_not.default]
for _op in COMPARE_TENSOR + LOGICAL_BINARY:
    VECTOR_OPS[_op] = VectorOp("pointwise", (0, 1))
for _op in COMPARE_SCALAR + LOGICAL_UNARY:
    VECTOR_OPS[_op] = VectorOp("pointwise", (0,))
VECTOR_OPS[aten.where.self] = VectorOp("pointwise", (0, 1, 2))
VECTOR_OPS[aten.clamp.Tensor] = VectorOp("pointwise", (0, 1, 2))
# Creation: pointwise over their output with no tensor operand (full_like reads only x's shape).
CREATION = [aten.full.default, aten.full_like.default, aten.scalar_tensor.default, aten.arange.default,
            aten.arange.start, aten.arange.start_step]
for _op in CREATION:
    VECTOR_OPS[_op] = VectorOp("pointwise", ())

for _op in [aten._softmax.default, aten._log_softmax.default, aten.mean.dim, aten.mean.default,
            aten.sum.default, aten.var.correction, aten.amax.default, aten.amin.default, aten.sum.dim_IntList,
            aten.any.default, aten.any.dim, aten.any.dims, aten.all.default, aten.all.dim, aten.all.dims]:
    VECTOR_OPS.setdefault(_op, VectorOp("composite"))

VECTOR_OPS[aten.cat.default] = VectorOp("cat", ())
VECTOR_OPS[aten.embedding.default] = VectorOp("gather", (1,))          # embedding(weight, indices)
VECTOR_OPS[aten.index_select.default] = VectorOp("gather", (2,))       # index_select(x, 0, indices)
VECTOR_OPS[aten.take.default] = VectorOp("gather", (1,))               # take(x, flat indices)

# Ops whose integer or bool results the lowering computes exactly (int32/int64 math in integer
# tiles, bool as 0/1); any other op with an integer or bool result stays on the host.
EXACT_INT = {aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.add.Scalar, aten.sub.Scalar, aten.mul.Scalar,
             aten.maximum.default, aten.minimum.default, aten.neg.default, aten.abs.default, aten.clamp.default,
             aten.clamp_min.default, aten.clamp_max.default, aten.clamp.Tensor, aten.sum.dim_IntList,
             aten.sum.default, *INT_DIVISION}
EXACT_BOOL = {*COMPARE_TENSOR, *COMPARE_SCALAR, *LOGICAL_BINARY, *LOGICAL_UNARY, aten.any.default, aten.any.dim,
              aten.any.dims, aten.all.default, aten.all.dim, aten.all.dims, aten.maximum.default,
              aten.minimum.default}
EXACT_ANY = {aten.where.self, aten.cat.default, aten.embedding.default, aten.index_select.default, aten.take.default,
             aten.clone.default, aten.lift_fresh_copy.default, aten._to_copy.default,
             prims.convert_element_type.default,
             aten.alias.default, aten.copy.default, aten.amax.default, aten.amin.default, *CREATION}

# Reductions are "composite" too when they reduce several dims (expanded into a chain first).
COMPOSITE_ALWAYS = {aten._softmax.default, aten._log_softmax.default, aten.mean.dim, aten.mean.default,
                    aten.sum.default, aten.var.correction}


def vector_op(target) -> VectorOp | None:
    return VECTOR_OPS.get(target)
