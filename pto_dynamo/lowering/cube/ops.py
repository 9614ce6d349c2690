"""The matmul ops the cube lowering computes, and how a region node reads as a batched matmul.

    mm(a[M, K], b[K, N])          -> c[M, N]
    bmm(a[B, M, K], b[B, K, N])   -> c[B, M, N]

addmm / baddbmm are expanded (cube/expand.py) into mm / bmm and vector ops, linear and matmul
reach the graph already decomposed into these by AOT autograd.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pto_dynamo.graph.dims import Dim

aten = torch.ops.aten

MATMUL_OPS = (aten.mm.default, aten.bmm.default)
EXPANDED_OPS = (aten.addmm.default, aten.baddbmm.default)


@dataclass(frozen=True)
class Operand:
    """A matmul operand read from a buffer: element (batch, row, col) at
    offset + batch * strides[0] + row * strides[1] + col * strides[2]."""

    buffer: str
    offset: Dim
    strides: tuple[Dim, Dim, Dim]


@dataclass(frozen=True)
class MatmulPlan:
    """c[b] = a[b] @ b[b] for b < batch: a is M x K, b is K x N, c is M x N."""

    a: Operand
    b: Operand
    c: Operand
    batch: Dim
    M: Dim
    N: Dim
    K: Dim


def static_value(dim: Dim) -> int | None:
    """A dim's value when it is a constant (int or sympy Integer), else None (a DynDim or an
    expression, whatever its value)."""
    if isinstance(dim, int) or getattr(dim, "is_Integer", False):
        return int(dim)
    return None


def is_one(stride: Dim) -> bool:
    """Is this stride the constant 1 (a DynDim or expression is not, whatever its value)?"""
    return static_value(stride) == 1


def batched(shape_or_stride: tuple, fill) -> tuple:
    """(batch, row, col) from a 2-d (mm) or 3-d (bmm) shape or stride tuple."""
    return tuple(shape_or_stride) if len(shape_or_stride) == 3 else (fill, *shape_or_stride)
