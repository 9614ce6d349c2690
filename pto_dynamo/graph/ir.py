"""The graph IR: typed, immutable nodes over functional ATen ops with symbolic shapes.

A `Graph` is a tuple of `Node`s in topological order. Node arguments are plain values (ints,
floats, dtypes, `DimExpr`s), `Ref`s to earlier values, or tuples of those. Passes never mutate a
graph; they build a new one (`Graph.replace_nodes`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterator, Union

import torch

from pto_dynamo.graph.dims import Dim, DynDim


@dataclass(frozen=True)
class TensorMeta:
    """Shape (ints and DimExprs), dtype, strides and storage offset of a tensor value.

    Strides and offset are in elements, relative to the storage the value lives in (for a view,
    the storage of its base), so a chain of views is one affine access.
    `placement` is reserved for the distributed layer (where a tensor lives across ranks);
    None means an ordinary local tensor.
    """

    shape: tuple[Dim, ...]
    dtype: torch.dtype
    stride: tuple[Dim, ...]
    placement: str | None = None
    offset: Dim = 0

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class ScalarMeta:
    """A Python scalar value (int, float or bool); `expr` is its symbolic value when known."""

    kind: str                     # "int" | "float" | "bool"
    expr: Any = None


Meta = Union[TensorMeta, ScalarMeta, tuple, None]


@dataclass(frozen=True)
class Ref:
    """A use of the value named `name` (a graph input or a node)."""

    name: str

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class GraphInput:
    """A graph parameter: its name and meta (TensorMeta, or ScalarMeta for an int/float input).

    `label` is where the value comes from in the user's program (Dynamo's source, `L['x']`), when
    known; it is for people and is not part of the structural text.
    """

    name: str
    meta: Meta
    label: str | None = None


@dataclass(frozen=True)
class Node:
    """One operation. `target` is an ATen OpOverload (or `operator.getitem` for tuple outputs,
    or a symbol-binding op); `args`/`kwargs` hold plain values, `Ref`s and tuples of those."""

    name: str
    target: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...] = ()
    meta: Meta = None

    def kwargs_dict(self) -> dict[str, Any]:
        return dict(self.kwargs)

    def inputs(self) -> list[str]:
        """Names of the values this node reads, in order of first use, without repeats."""
        seen: dict[str, None] = {}
        for ref in iter_refs((self.args, tuple(v for _, v in self.kwargs))):
            seen.setdefault(ref.name, None)
        return list(seen)

    def with_(self, **changes: Any) -> "Node":
        return dataclasses.replace(self, **changes)


def iter_refs(value: Any) -> Iterator[Ref]:
    """Every Ref inside a (nested) argument value."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from iter_refs(v)


def map_refs(value: Any, fn: Callable[[Ref], Any]) -> Any:
    """Rebuild a (nested) argument value with every Ref replaced by fn(ref)."""
    if isinstance(value, Ref):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(map_refs(v, fn) for v in value)
    if isinstance(value, list):
        return [map_refs(v, fn) for v in value]
    return value


@dataclass(frozen=True)
class Graph:
    """A functional ATen graph with symbolic shapes.

    name:     readable, unique per compiled graph (`g0_inference`, `g1_backward`, ...)
    inputs:   parameters in calling order
    nodes:    operations in topological order
    outputs:  returned values (Refs, or constants / DimExprs for scalar outputs)
    dyndims:  every DynDim that shapes may mention, with binding sources
    """

    name: str
    inputs: tuple[GraphInput, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[Any, ...]
    dyndims: tuple[DynDim, ...] = ()

    def replace_nodes(self, nodes, outputs=None) -> "Graph":
        """A new graph with other nodes (and optionally other outputs)."""
        return dataclasses.replace(self, nodes=tuple(nodes),
                                   outputs=self.outputs if outputs is None else tuple(outputs))

    @cached_property
    def node_by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def input_by_name(self) -> dict[str, GraphInput]:
        return {i.name: i for i in self.inputs}

    def meta_of(self, name: str) -> Meta:
        """The meta of an input or node value."""
        if name in self.input_by_name:
            return self.input_by_name[name].meta
        return self.node_by_name[name].meta

    @cached_property
    def users(self) -> dict[str, list[str]]:
        """value name -> names of the nodes that read it (graph outputs not included)."""
        out: dict[str, list[str]] = {i.name: [] for i in self.inputs}
        for n in self.nodes:
            out.setdefault(n.name, [])
            for name in n.inputs():
                out.setdefault(name, []).append(n.name)
        return out

    @cached_property
    def output_names(self) -> set[str]:
        return {r.name for r in iter_refs(self.outputs)}

    @cached_property
    def dyndim_by_name(self) -> dict[str, DynDim]:
        return {d.name: d for d in self.dyndims}

    @cached_property
    def dims_produced_by(self) -> dict[str, list[DynDim]]:
        """node name -> the DynDims whose values that node produces (data-dependent sizes)."""
        out: dict[str, list[DynDim]] = {}
        for d in self.dyndims:
            if d.produced_by is not None:
                out.setdefault(d.produced_by[0], []).append(d)
        return out
