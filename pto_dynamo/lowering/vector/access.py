"""Affine accesses: how a kernel reads or writes a buffer over its iteration domain.

A buffer is a region input, a region output or a workspace (an intermediate between kernels).
A value stored in a buffer, or a view of it, is read at
    offset + sum_k domain_index[k] * strides[k]
elements from the buffer's base, one stride per domain dim (0 where the value is broadcast).
"""
from __future__ import annotations

from dataclasses import dataclass

from pto_dynamo.graph.dims import Dim
from pto_dynamo.graph.ir import TensorMeta


@dataclass(frozen=True)
class Access:
    buffer: str
    offset: Dim
    strides: tuple[Dim, ...]


@dataclass(frozen=True)
class BufferView:
    """A value's place in memory: its buffer, and its own strides and offset there."""

    buffer: str
    meta: TensorMeta
    base_offset: Dim = 0

    @property
    def offset(self) -> Dim:
        return self.meta.offset - self.base_offset


def access_for(view: BufferView, dmap: tuple, rank: int) -> Access:
    """The access that reads `view` where value dim j sits at domain dim dmap[j] (None: size 1)."""
    strides: list[Dim] = [0] * rank
    for j, k in enumerate(dmap):
        if k is not None:
            strides[k] = strides[k] + view.meta.stride[j]
    return Access(view.buffer, view.offset, tuple(strides))
