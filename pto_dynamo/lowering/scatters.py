"""Small scatters rewritten as chains of selects the device fuses into one kernel.

`scatter(x, d, idx, src)` writes src[p] into x at p with p[d] replaced by idx[p], for every
position p of idx. With few index entries per output line (k = idx.shape[d] <= 16: DeepSeek's
router writing its k expert weights into a row of zeros) it is k selects over x, in index order,
so that a later entry wins as in eager's sequential scatter:

    out = x;  for j < k:  out = where(arange(n_d) == idx[.., j, ..], combine(out, src[.., j, ..]), out)

`combine(out, s)` is s itself for a plain scatter, and out + s, out * s, max(out, s) or
min(out, s) for the reducing forms (`scatter(..., reduce="add" | "multiply")`, `scatter_add`,
`scatter_reduce` with "sum" | "prod" | "amax" | "amin"; "mean" is the sum over the number of
values summed, for floats). `scatter_reduce(..., include_self=False)` keeps a mask of the
elements written so far; the first write of an element takes s itself.
Where idx covers only the leading part of x in another dim (torch allows idx.shape[k] <= x.shape[k]
there), the selects run on that leading block of x and the rest of x is concatenated back (a cat,
whose parts the device writes in place). A 0-d scatter is the same over x viewed as [1].

`index_put(x, [i], v, accumulate)` (`x[i] = v`, `x.index_put_(...)`) with one integer index of at
most 16 entries on dim 0 writes whole rows: the same chain with hit_j = (arange(n) == i[j]) over
dim 0 and v's row j (or all of v, when it broadcasts along the indexed dim); negative indices count
from the end. With a bool mask over x's leading dims and a v that broadcasts along the selected
elements, it is one select: where(mask, v, x) (x + where(mask, v, 0) when accumulating).

`slice_scatter(x, src, d, a, b)` with step 1 is cat([x[:a], src, x[b:]] along d): views of x and a
cat the device writes in place (the whole range of a dynamic dim is src itself).

Each rewritten scatter starts with the bounds check eager makes ([0, x.shape[d]) for scatter,
[-n, n) for index_put; index_checks.check_nodes), so a bad index raises instead of writing
nothing; a scatter left to the host has ATen's own check. A scatter with more entries per line, a symbolic partial
extent, an integer mean, or an update of a graph input in place (see
rewrite_scatters) stays on the host. (An MSCATTER kernel over src's domain
would take any size: see docs/notes_opinfo.md.)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch

from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.gathers import Rewrite, wrapped
from pto_dynamo.lowering.index_checks import check_nodes, element_gather, single_leading_index
from pto_dynamo.lowering.reinplace import reinplace_candidate
from pto_dynamo.lowering.tile.expr import exprs_equal
from pto_dynamo.lowering.vector.expand import contiguous_meta

aten = torch.ops.aten

SCATTER_MAX_WRITES = 16     # index entries per output line a scatter may have to run as selects

# reduce= name -> the op combining the element with the written value (None: the value replaces it)
COMBINE: dict[str | None, Any] = {
    None: None,
    "add": aten.add.Tensor, "sum": aten.add.Tensor,
    "multiply": aten.mul.Tensor, "prod": aten.mul.Tensor,
    "amax": aten.maximum.default, "amin": aten.minimum.default,
}


@dataclass(frozen=True)
class _Writes:
    """k writes into `x` along dim `d`: write j puts `value(j)` where `hit(j)` holds, combined
    with the element by `combine` (None: replace; `include_self=False`: the first write replaces)."""

    x: Ref
    d: int
    k: int
    hit: Callable[[int], Ref]
    value: Callable[[int], Ref]
    combine: Any
    include_self: bool = True


def _slice_meta(meta: TensorMeta, dim: int, start, end) -> TensorMeta:
    shape = tuple(end - start if j == dim else s for j, s in enumerate(meta.shape))
    return TensorMeta(shape, meta.dtype, meta.stride, offset=meta.offset + start * meta.stride[dim])


def _slice(b: Rewrite, step: str, ref: Ref, meta: TensorMeta, dim: int, start, end) -> tuple[Ref, TensorMeta]:
    sliced = _slice_meta(meta, dim, start, end)
    return b.add(step, aten.slice.Tensor, (ref, dim, start, end), sliced), sliced


def _as_1d(b: Rewrite, step: str, ref: Ref, meta: TensorMeta) -> tuple[Ref, TensorMeta]:
    """A 0-d tensor viewed as [1] (at its own offset)."""
    viewed = TensorMeta((1,), meta.dtype, (1,), offset=meta.offset)
    return b.add(step, aten.view.default, (ref, [1]), viewed), viewed


def _iota_along(b: Rewrite, x: TensorMeta, d: int, dtype: torch.dtype) -> tuple[Ref, tuple]:
    """arange(x.shape[d]) lined up along dim d of x (size 1 elsewhere), and that shape."""
    lined = tuple(x.shape[d] if j == d else 1 for j in range(x.rank))
    iota = b.add("iota", aten.arange.default, (x.shape[d],), contiguous_meta((x.shape[d],), dtype), (("dtype", dtype),))
    return b.add("iota_view", aten.view.default, (iota, list(lined)), contiguous_meta(lined, dtype)), lined


def _select_chain(b: Rewrite, w: _Writes, shape: tuple, dtype: torch.dtype) -> Ref:
    """out = x; then each write as a select, in order."""
    meta = contiguous_meta(shape, dtype)
    mask = contiguous_meta(shape, torch.bool)
    out, touched = w.x, None
    for j in range(w.k):
        hit, value = w.hit(j), w.value(j)
        if w.combine is not None and (w.include_self or touched is not None):
            combined = b.add(f"comb{j}", w.combine, (out, value), meta)
            if not w.include_self:                         # the first write of an element replaces it
                combined = b.add(f"first{j}", aten.where.self, (touched, combined, value), meta)
            value = combined
        if not w.include_self:
            touched = hit if touched is None else b.add(f"touched{j}", aten.logical_or.default, (touched, hit), mask)
        out = b.add(f"out{j}", aten.where.self, (hit, value, out), meta)
    return out if w.k else b.add("copy", aten.clone.default, (w.x,), meta)


def _mean(b: Rewrite, w: _Writes, shape: tuple, dtype: torch.dtype) -> Ref:
    """scatter_reduce "mean": the chain's sum over the number of values summed (with x itself when
    include_self; an element nothing writes keeps x)."""
    total = _select_chain(b, w, shape, dtype)
    meta = contiguous_meta(shape, dtype)
    count = None
    for j in range(w.k):
        one = b.add(f"n{j}", torch.ops.prims.convert_element_type.default, (w.hit(j), dtype), meta)
        count = one if count is None else b.add(f"count{j}", aten.add.Tensor, (count, one), meta)
    if count is None:
        return total
    count = b.add("count", aten.add.Tensor, (count, 1), meta) if w.include_self else \
        b.add("count", aten.clamp_min.default, (count, 1), meta)
    return b.add("mean", aten.div.Tensor, (total, count), meta)


def _scatter_form(node: Node) -> tuple[Any, str | None, bool] | None:
    """(src, reduce, include_self) of a scatter-family node; None for a reduction it lacks."""
    kwargs = node.kwargs_dict()
    if node.target is aten.scatter_add.default:
        reduce, include_self = "add", True
    elif node.target is aten.scatter_reduce.two:
        reduce = node.args[4]
        include_self = node.args[5] if len(node.args) > 5 else kwargs.get("include_self", True)
    else:
        reduce, include_self = kwargs.get("reduce"), True
    if reduce not in COMBINE and reduce != "mean":
        return None
    return node.args[3], reduce, include_self


def _scatter_by_selects(node: Node, graph: Graph) -> list[Node] | None:
    form = _scatter_form(node)
    rows = element_gather(node, graph)
    if form is None or rows is None:
        return None
    src, reduce, include_self = form
    x, idx = graph.meta_of(node.args[0].name), graph.meta_of(node.args[2].name)
    if (x.rank == 0 and idx.rank) or (reduce == "mean" and not x.dtype.is_floating_point):
        return None                                            # an integer mean rounds down: host
    b = Rewrite(node)
    b.nodes += check_nodes(node, graph, rows)
    xr, ir, sr = node.args[0], node.args[2], src
    smeta = graph.meta_of(src.name) if isinstance(src, Ref) else None
    if x.rank == 0:                                            # a 0-d scatter: as [1]
        xr, x = _as_1d(b, "x1", xr, x)
        ir, idx = _as_1d(b, "idx1", ir, idx)
        if smeta is not None:
            sr, smeta = _as_1d(b, "src1", sr, smeta)
    d, k = rows.dim, idx.shape[rows.dim]
    if not isinstance(k, int) or k > SCATTER_MAX_WRITES:
        return None
    partial = [j for j in range(x.rank) if j != d and not exprs_equal(idx.shape[j], x.shape[j])]
    if any(not isinstance(idx.shape[j], int) or not isinstance(x.shape[j], int) for j in partial):
        return None                                            # a symbolic partial extent: host
    block, bmeta = xr, x
    for j in partial:                                          # the leading block of x that idx covers
        block, bmeta = _slice(b, f"block{j}", block, bmeta, j, 0, idx.shape[j])
    if smeta is not None:
        for j, size in enumerate(idx.shape):                   # src may be larger than idx: its leading part
            if not exprs_equal(smeta.shape[j], size):
                sr, smeta = _slice(b, f"src{j}", sr, smeta, j, 0, size)
    else:
        sr = b.add("value", aten.scalar_tensor.default, (src,), contiguous_meta((), x.dtype), (("dtype", x.dtype),))
    iota, _ = _iota_along(b, x, d, idx.dtype)
    shape = tuple(bmeta.shape)

    @functools.cache                                           # the mean reads each hit twice
    def hit(j: int) -> Ref:
        i_j, _ = _slice(b, f"idx{j}", ir, idx, d, j, j + 1)
        return b.add(f"hit{j}", aten.eq.Tensor, (iota, i_j), contiguous_meta(shape, torch.bool))

    def value(j: int) -> Ref:
        return sr if smeta is None else _slice(b, f"src_at{j}", sr, smeta, d, j, j + 1)[0]

    if reduce == "mean":
        out = _mean(b, _Writes(block, d, k, hit, value, aten.add.Tensor, include_self), shape, x.dtype)
    else:
        out = _select_chain(b, _Writes(block, d, k, hit, value, COMBINE[reduce], include_self), shape, x.dtype)
    for n, j in enumerate(partial):                            # concatenate the rest of x back, dim by dim
        rest, rmeta = _slice(b, f"rest{j}", xr, x, j, idx.shape[j], x.shape[j])
        for later in partial[n + 1:]:
            rest, rmeta = _slice(b, f"rest{j}_{later}", rest, rmeta, later, 0, idx.shape[later])
        shape = tuple(x.shape[j] if q == j else s for q, s in enumerate(shape))
        out = b.add(f"cat{j}", aten.cat.default, ([out, rest], j), contiguous_meta(shape, x.dtype))
    if node.meta.rank == 0:
        out = b.add("as_0d", aten.view.default, (out, []), node.meta)
    return b.finish_last()


def _index_put_mask(node: Node, graph: Graph, accumulate: bool) -> list[Node] | None:
    """index_put(x, [mask], v, accumulate) with a bool mask over x's leading dims and a v that does
    not depend on how many elements the mask selects (it broadcasts along them): a select,
    where(mask, v, x), or x + where(mask, v, 0) when accumulating."""
    (mask,) = node.args[1]
    x, mmeta = graph.meta_of(node.args[0].name), graph.meta_of(mask.name)
    v = node.args[2]
    vmeta = graph.meta_of(v.name) if isinstance(v, Ref) else None
    rest = x.rank - mmeta.rank
    if (not isinstance(vmeta, TensorMeta) or mmeta.rank == 0 or rest < 0
            or any(not exprs_equal(a, b) for a, b in zip(mmeta.shape, x.shape))
            or vmeta.rank > rest + 1 or (vmeta.rank == rest + 1 and not exprs_equal(vmeta.shape[0], 1))):
        return None
    b = Rewrite(node)
    lined = tuple(mmeta.shape) + (1,) * rest
    if rest:
        mask = b.add("mask", aten.view.default, (mask, list(lined)),
                     TensorMeta(lined, torch.bool, tuple(mmeta.stride) + (1,) * rest, offset=mmeta.offset))
    if vmeta.rank == rest + 1:
        v = b.add("row", aten.select.int, (v, 0, 0),
                  TensorMeta(tuple(vmeta.shape[1:]), vmeta.dtype, tuple(vmeta.stride[1:]), offset=vmeta.offset))
    if not accumulate:
        return b.finish(aten.where.self, (mask, v, node.args[0]))
    zero = b.add("zero", aten.scalar_tensor.default, (0,), contiguous_meta((), x.dtype), (("dtype", x.dtype),))
    added = b.add("added", aten.where.self, (mask, v, zero), contiguous_meta(tuple(x.shape), x.dtype))
    return b.finish(aten.add.Tensor, (node.args[0], added))


def _index_put_rows(node: Node, graph: Graph) -> list[Node] | None:
    """index_put(x, [i], v, accumulate) with one integer index on dim 0: whole rows."""
    accumulate = node.args[3] if len(node.args) > 3 else node.kwargs_dict().get("accumulate", False)
    indices = node.args[1]
    if len(indices) == 1 and isinstance(indices[0], Ref) and graph.meta_of(indices[0].name).dtype == torch.bool:
        return _index_put_mask(node, graph, accumulate)
    rows = single_leading_index(node, graph)
    if rows is None:
        return None
    x, imeta = graph.meta_of(node.args[0].name), graph.meta_of(rows.idx.name)
    v = node.args[2]
    vmeta = graph.meta_of(v.name) if isinstance(v, Ref) else None
    if imeta.rank != 1 or not isinstance(imeta.shape[0], int) or imeta.shape[0] > SCATTER_MAX_WRITES \
            or not isinstance(vmeta, TensorMeta) or vmeta.rank > x.rank:
        return None
    k = imeta.shape[0]
    per_row = vmeta.rank == x.rank and not exprs_equal(vmeta.shape[0], 1)   # v[j] for index j
    b = Rewrite(node)
    b.nodes += check_nodes(node, graph, rows)
    idx = wrapped(b, rows, graph)
    iota, lined = _iota_along(b, x, 0, imeta.dtype)

    def hit(j: int) -> Ref:                                    # [n, 1, ..] == [1]
        i_j, _ = _slice(b, f"idx{j}", idx, contiguous_meta((k,), imeta.dtype), 0, j, j + 1)
        return b.add(f"hit{j}", aten.eq.Tensor, (iota, i_j), contiguous_meta(lined, torch.bool))

    def value(j: int) -> Ref:
        return _slice(b, f"v{j}", v, vmeta, 0, j, j + 1)[0] if per_row else v

    writes = _Writes(node.args[0], 0, k, hit, value, aten.add.Tensor if accumulate else None)
    _select_chain(b, writes, tuple(x.shape), x.dtype)
    return b.finish_last()


def _slice_scatter_as_cat(node: Node, graph: Graph) -> list[Node] | None:
    """`slice_scatter(x, src, d, start, end)` (step 1; a backward's `cat` or slice gradient into a
    zero tensor, `x[:, a:b] = v` on an intermediate) as cat([x[:start], src, x[end:]], d): the parts
    of x are views, the cat a kernel the device writes in place. A dynamic dim d stays on the host
    unless the scatter covers all of it (then the result is src)."""
    given = {**dict(zip(("dim", "start", "end", "step"), node.args[2:])), **node.kwargs_dict()}
    x, src = node.args[:2]
    d, start, end, step = given.get("dim", 0), given.get("start"), given.get("end"), given.get("step", 1)
    xm = graph.meta_of(x.name)
    d = d % xm.rank
    size = xm.shape[d]
    whole = start in (None, 0) and (end is None or (isinstance(end, int) and end >= 2 ** 62) or exprs_equal(end, size))
    if step == 1 and whole:                                 # (a dynamic dim, functionalized `y[:, a:b] = v`)
        return Rewrite(node).finish(aten.clone.default, (src,))
    if step != 1 or not isinstance(size, int) or not all(v is None or isinstance(v, int) for v in (start, end)):
        return None
    start = min(max(start + size if start is not None and start < 0 else (start or 0), 0), size)
    end = size if end is None else min(max(end + size if end < 0 else end, start), size)
    b = Rewrite(node)
    parts = [_slice(b, "head", x, xm, d, 0, start)[0]] if start > 0 else []
    parts.append(src)
    if end < size:
        parts.append(_slice(b, "tail", x, xm, d, end, size)[0])
    if len(parts) == 1:
        return b.finish(aten.clone.default, (src,))
    return b.finish(aten.cat.default, (parts, d))


REWRITES: dict[object, Callable[[Node, Graph], list[Node] | None]] = {
    aten.slice_scatter.default: _slice_scatter_as_cat,
    aten.scatter.src: _scatter_by_selects,
    aten.scatter.value: _scatter_by_selects,
    aten.scatter.reduce: _scatter_by_selects,
    aten.scatter.value_reduce: _scatter_by_selects,
    aten.scatter_add.default: _scatter_by_selects,
    aten.scatter_reduce.two: _scatter_by_selects,
    aten.index_put.default: _index_put_rows,
}


def rewrite_scatters(graph: Graph) -> Graph:
    """The graph with every scatter the rules above take as selects, but for the updates of a graph
    input in place (`cache.index_copy_(0, pos, new)`, `x[i] = v` on an input), which `reinplace`
    turns back into in-place ops: they cost the rows they write, where selects cost all of x."""
    in_place = {p.name for n in graph.nodes if (p := reinplace_candidate(n, graph)) is not None}
    out: list[Node] = []
    changed = False
    for node in graph.nodes:
        nodes = REWRITES[node.target](node, graph) if node.target in REWRITES and node.name not in in_place else None
        changed |= nodes is not None
        out += nodes if nodes is not None else [node]
    return graph.replace_nodes(out) if changed else graph
