"""Bounds checks for gathers the device runs (embedding, index_select, `x[idx]`, gather, take); the
scatters that run as selects get theirs from scatters.py, which knows which ones do.

Eager raises on an index outside the table. The device gather clamps instead (it never reads
outside the table), so this pass adds, before each such op whose indices are not in range by
construction (an `arange` that provably stays inside, as a flip's does), a check that raises the error:

    bad = any((idx < lo) | (idx >= size));  _assert_async(!bad, "<op>: index out of range ...")

with lo = 0, or -size for `x[idx]` and `take` (a negative index counts from the end, as in
Python). The comparisons and the `any` are device ops (they fuse into one small kernel); the
assert is a host runtime check. It runs before the graph returns and before any later in-place
update of an input (the partition orders updates after checks), so a bad index raises instead of
returning rows of the clamped index or writing them into a cache.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import sympy
import torch

from pto_dynamo.graph.dims import Dim
from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.graph.printer import dim_text, meta_text
from pto_dynamo.lowering.vector.expand import contiguous_meta

aten = torch.ops.aten


@dataclass(frozen=True)
class IndexedRows:
    """What a gather reads: `table`'s dim `dim` (of `size`; None: the flattened table) at the
    indices `idx`, which may be negative down to -size when `negative` is True."""

    table: Ref
    idx: Ref
    dim: int | None
    size: Dim
    negative: bool = False


def _rows(node: Node, graph: Graph, table_arg: int, index_arg: int, dim: int) -> IndexedRows:
    table, idx = node.args[table_arg], node.args[index_arg]
    meta = graph.meta_of(table.name)
    size = meta.shape[dim % meta.rank] if meta.rank else 1           # 0-d: one element
    return IndexedRows(table, idx, dim, size)


def single_leading_index(node: Node, graph: Graph) -> IndexedRows | None:
    """`x[idx]` (aten.index.Tensor with one integer index tensor, on dim 0): the rows it reads."""
    indices = node.args[1]
    if len(indices) != 1 or not isinstance(indices[0], Ref):
        return None
    meta = graph.meta_of(indices[0].name)
    if not isinstance(meta, TensorMeta) or meta.dtype not in (torch.int32, torch.int64):
        return None                                     # a bool mask: a data-dependent shape
    table = graph.meta_of(node.args[0].name)
    if not isinstance(table, TensorMeta) or table.rank == 0:
        return None
    return IndexedRows(node.args[0], indices[0], 0, table.shape[0], negative=True)


def element_gather(node: Node, graph: Graph) -> IndexedRows | None:
    """`gather(x, d, idx)`: the elements it reads along dim d (a 0-d x reads as one of size 1)."""
    x, idx = graph.meta_of(node.args[0].name), graph.meta_of(node.args[2].name)
    if (not isinstance(x, TensorMeta) or not isinstance(idx, TensorMeta) or idx.rank != max(x.rank, idx.rank)
            or (x.rank and idx.rank != x.rank) or idx.dtype not in (torch.int32, torch.int64)):
        return None                                     # (an empty index may have another dtype)
    d = node.args[1] % max(x.rank, 1)
    return IndexedRows(node.args[0], node.args[2], d, x.shape[d] if x.rank else 1)


def flat_take(node: Node, graph: Graph) -> IndexedRows | None:
    """`take(x, idx)`: the elements of x flattened, negative indices counting from the end."""
    x = graph.meta_of(node.args[0].name)
    if not isinstance(x, TensorMeta):
        return None
    return IndexedRows(node.args[0], node.args[1], None, math.prod(x.shape), negative=True)


# op -> what it reads (None: a form the device does not take; ATen's own checks apply on the host)
GATHERS = {aten.embedding.default: lambda node, graph: _rows(node, graph, 0, 1, 0),
           aten.index_select.default: lambda node, graph: _rows(node, graph, 0, 2, node.args[1]),
           aten.index.Tensor: single_leading_index,
           aten.gather.default: element_gather,
           aten.take.default: flat_take}


def _bool_meta(shape) -> TensorMeta:
    return contiguous_meta(tuple(shape), torch.bool)


def check_nodes(node: Node, graph: Graph, rows: IndexedRows) -> list[Node]:
    """The nodes that raise eager's error before `node` when an index of `rows` is out of range."""
    idx, size = rows.idx, rows.size
    lo = -size if rows.negative else 0
    op = str(node.target).split(".")[1]
    name = f"{node.name}__check"
    meta = graph.meta_of(idx.name)
    table_meta = graph.meta_of(rows.table.name)
    table = meta_text(table_meta)
    where = (f"an index into the {dim_text(size)} elements of the flattened tensor {table}" if rows.dim is None
             else f"an index into dim {rows.dim % max(table_meta.rank, 1)} (size {dim_text(size)}) "
                  f"of the indexed tensor {table}")
    message = (f"{op}: index out of range: {where} is outside [{dim_text(lo)}, {dim_text(size)}) "
               f"(indices: {meta_text(meta)}); eager raises IndexError here: check the indices")
    flat: list[Node] = []
    if (idx.name in graph.input_by_name and meta.rank > 1
            and meta.stride == contiguous_meta(tuple(meta.shape), meta.dtype).stride):
        numel = math.prod(meta.shape)              # an input's indices as one row: a one-kernel check
        flat = [Node(f"{name}_flat", aten.view.default, (idx, [numel]), (),
                     TensorMeta((numel,), meta.dtype, (1,), offset=meta.offset))]
        idx, meta = Ref(flat[0].name), flat[0].meta
    mask = _bool_meta(meta.shape)
    return flat + [
            Node(f"{name}_lo", aten.lt.Scalar, (idx, lo), (), mask),
            Node(f"{name}_hi", aten.ge.Scalar, (idx, size), (), mask),
            Node(f"{name}_bad", aten.logical_or.default, (Ref(f"{name}_lo"), Ref(f"{name}_hi")), (), mask),
            Node(f"{name}_any", aten.any.default, (Ref(f"{name}_bad"),), (), _bool_meta(())),
            Node(f"{name}_ok", aten.logical_not.default, (Ref(f"{name}_any"),), (), _bool_meta(())),
            Node(name, aten._assert_async.msg,
                 (Ref(f"{name}_ok"), message), ())]


# arange overloads -> (start, end, step) from their args (a default step may be left out)
_ARANGES = {aten.arange.default: lambda a, kw: (0, a[0], 1), aten.arange.start: lambda a, kw: (a[0], a[1], 1),
            aten.arange.start_step: lambda a, kw: (a[0], a[1], a[2] if len(a) > 2 else kw.get("step", 1))}


def _proven(expr) -> bool:
    """Is the integer expression `expr >= 0` for every value of its dims (which are >= 0)?"""
    return sympy.sympify(expr).is_nonnegative is True


def in_range_by_construction(graph: Graph, rows: IndexedRows) -> bool:
    """Are the indices an `arange` whose every value provably lies in [lo, size)? (A flip's
    `arange(n - 1, -1, -1)` along a dim of size n needs no check.)"""
    node = graph.node_by_name.get(rows.idx.name)
    if node is None or node.target not in _ARANGES:
        return False
    start, end, step = _ARANGES[node.target](node.args, node.kwargs_dict())
    lo = -rows.size if rows.negative else 0
    if not (isinstance(step, int) and step != 0 and all(isinstance(v, (int, sympy.Expr)) for v in (start, end))):
        return False
    if step > 0:     # values start, .., < end
        return _proven(start - lo) and _proven(rows.size - end)
    return _proven(rows.size - 1 - start) and _proven(end + 1 - lo)     # values start, .., > end


def add_index_checks(graph: Graph) -> Graph:
    """The graph with a bounds check before every gather this module knows (GATHERS), unless its
    indices are in range by construction."""
    if not any(n.target in GATHERS for n in graph.nodes):
        return graph
    out: list[Node] = []
    for node in graph.nodes:
        rows = GATHERS[node.target](node, graph) if node.target in GATHERS else None
        if rows is not None and not in_range_by_construction(graph, rows):
            out += check_nodes(node, graph, rows)
        out.append(node)
    return graph.replace_nodes(out)
