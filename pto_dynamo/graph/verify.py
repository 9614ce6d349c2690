"""Graph verifier: run after every pass in tests (and on request in the pipeline).

Checks: unique names; every Ref names an input or an earlier node (topological order); every
DynDim a shape mentions is declared and bound (by an input source or by a node of that name);
tensor metas have matching rank of shape and stride; a view that keeps its source's storage
offset (view, permute, expand, ...) has that offset in its meta (a pass that rewires a view to
another source must move its offset too, or the lowering reads the wrong elements).
"""
from __future__ import annotations

import sympy
import torch

from pto_dynamo.graph.dims import free_dim_names
from pto_dynamo.graph.ir import Graph, Ref, TensorMeta, iter_refs

aten = torch.ops.aten
# Views whose result starts where their source does (select, slice, diagonal, as_strided move it).
OFFSET_KEEPING_VIEWS = frozenset({
    aten.view.default, aten._unsafe_view.default, aten.reshape.default, aten.permute.default,
    aten.transpose.int, aten.t.default, aten.expand.default, aten.unsqueeze.default, aten.squeeze.dim,
    aten.squeeze.dims, aten.squeeze.default, aten.alias.default})


class GraphVerifyError(AssertionError):
    """The graph breaks an IR invariant."""


def _metas(meta):
    if isinstance(meta, tuple):
        for m in meta:
            yield from _metas(m)
    elif meta is not None:
        yield meta


def verify_graph(graph: Graph) -> None:
    """Raise GraphVerifyError naming the graph, the node and the broken rule."""
    def fail(where: str, msg: str) -> None:
        raise GraphVerifyError(f"graph {graph.name}: {where}: {msg}")

    declared = {d.name for d in graph.dyndims}
    bound = {d.name for d in graph.dyndims if d.sources}
    defined: set[str] = set()
    for inp in graph.inputs:
        if inp.name in defined:
            fail(f"input {inp.name}", "duplicate name")
        defined.add(inp.name)
    for node in graph.nodes:
        if node.name in defined:
            fail(f"node {node.name}", "duplicate name")
        for ref in iter_refs((node.args, tuple(v for _, v in node.kwargs))):
            if ref.name not in defined:
                fail(f"node {node.name}", f"uses {ref.name} before it is defined")
        for meta in _metas(node.meta):
            if isinstance(meta, TensorMeta):
                if len(meta.shape) != len(meta.stride):
                    fail(f"node {node.name}", f"shape {meta.shape} and stride {meta.stride} differ in rank")
                _check_dims(fail, f"node {node.name}", free_dim_names(meta.shape + meta.stride), declared)
        _check_dims(fail, f"node {node.name}", free_dim_names(node.args), bound)
        _check_view_offset(fail, graph, node)
        defined.add(node.name)
        bound |= {d.name for d in graph.dims_produced_by.get(node.name, ())}
    for ref in iter_refs(graph.outputs):
        if ref.name not in defined:
            fail("output", f"returns undefined value {ref.name}")
    _check_dims(fail, "output", free_dim_names(graph.outputs), bound)


def _check_dims(fail, where: str, names: set[str], known: set[str]) -> None:
    missing = sorted(names - known)
    if missing:
        fail(where, f"mentions dynamic dim(s) {', '.join(missing)} that are not declared/bound at this point")


def _check_view_offset(fail, graph: Graph, node) -> None:
    if node.target not in OFFSET_KEEPING_VIEWS or not node.args or not isinstance(node.args[0], Ref):
        return
    src, meta = graph.meta_of(node.args[0].name), node.meta
    if isinstance(src, TensorMeta) and isinstance(meta, TensorMeta) and _provably_different(src.offset, meta.offset):
        fail(f"node {node.name}", f"a view at storage offset {meta.offset} of {node.args[0].name} at {src.offset}")


def _provably_different(a, b) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a != b
    diff = sympy.expand(sympy.sympify(a) - sympy.sympify(b))
    return diff.is_number and diff != 0
