"""Pattern stage: recognise attention in the ATen graph and replace it by `pto::attention`.

It runs before partitioning. The scores, in every spelling:

    s   = view(bmm(Q, Kt))                       Q, Kt: views of q and k^T (SDPA pre-scales both)
    s'  = s [* scale] [+ mask | masked_fill(s, drop, -inf) | where(drop, -inf, s)]
                                                 mask, drop: not computed from s (causal: arange/le/where)

then either SDPA's decomposition or an explicit softmax,

    p   = _softmax(s', -1, False)
    p'  = where(not(any(not(s' == -inf), -1)), full_like(p, 0), p)      (SDPA's _safe_softmax; optional)
    out = bmm(view(expand(p')), V)

or the unnormalised form with an attention sink (DeepSeek-V4's, einsums included):

    m   = amax(s', -1, keepdim);  e = exp(s' - m)
    l   = sum(e, -1, keepdim) [+ exp(sink - m)]
    out = view(bmm(view(e [.to(dt).to(f32)]), V)) / l

and becomes `pto::attention(Q, Kt, V, mask, scale, safe, causal, sink, p_dtype)` when every
intermediate (the scores, the probabilities, the statistics) is read only inside the pattern.
SDPA's causal mask becomes `causal=True` and no mask tensor (the kernel masks in place).
SDPA's pre-scaling of q and k^T (a scalar mul feeding only the views) folds into `scale`, so the
kernel reads q and k in place instead of a scaled copy. The dead intermediates go with the next DCE.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import replace

import torch

from pto_dynamo.graph.dims import same_layout
from pto_dynamo.graph.ir import Graph, Node, Ref
from pto_dynamo.lowering.attention.op import ATTENTION
from pto_dynamo.lowering.tile.expr import exprs_equal

aten = torch.ops.aten
_VIEWS = (aten.view.default, aten._unsafe_view.default, aten.expand.default, aten.alias.default)
# Views that keep the row-major order of the elements (einsum moves size-1 dims with these)
_ORDERED_VIEWS = (aten.view.default, aten._unsafe_view.default, aten.alias.default, aten.unsqueeze.default,
                  aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default, aten.permute.default)
_CASTS = (aten._to_copy.default, torch.ops.prims.convert_element_type.default)


class _Match:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes = graph.node_by_name
        self.users = graph.users
        self.inside: set[str] = set()         # intermediates the pattern consumes

    def node(self, value) -> Node | None:
        return self.nodes.get(value.name) if isinstance(value, Ref) else None

    def through_views(self, value):
        """Follow a chain of views back to the furthest source with the same matrices, batch dims
        regrouped only (SDPA's [B, H, T, S] <-> [B * H, T, S], einsum's size-1 dims moved)."""
        if not isinstance(value, Ref):
            return value
        meta = self.graph.meta_of(value.name)
        best, walked, n = value, [], self.node(value)
        while n is not None and isinstance(n.args[0], Ref) and (
                n.target in _VIEWS or (n.target in _ORDERED_VIEWS and _keeps_order(n, self.graph))):
            walked.append(n.name)
            if _same_matrices(self.graph.meta_of(n.args[0].name), meta):
                best = n.args[0]
                self.inside.update(walked)
            n = self.node(n.args[0])
        return best

    def private(self, result: str) -> bool:
        """Every intermediate (all but `result`) is read only by nodes of the pattern and is no
        graph output."""
        return all(set(self.users.get(name, ())) <= self.inside and name not in self.graph.output_names
                   for name in self.inside - {result})


def _same_matrices(a, b) -> bool:
    """Same last two dims and the same number of elements (batch dims regrouped, not expanded)."""
    if len(a.shape) < 2 or len(b.shape) < 2 or tuple(a.shape[-2:]) != tuple(b.shape[-2:]):
        return False
    na, nb = 1, 1
    for d in a.shape[:-2]:
        na = na * d
    for d in b.shape[:-2]:
        nb = nb * d
    return na == nb if isinstance(na, int) and isinstance(nb, int) else str(na) == str(nb)


def _keeps_order(n: Node, graph: Graph) -> bool:
    """A permute that moves only size-1 dims (the others keep their order); other ordered views."""
    if n.target is not aten.permute.default:
        return True
    shape = graph.meta_of(n.args[0].name).shape
    dims = [d % len(shape) for d in n.args[1]]
    kept = [d for d in dims if not (isinstance(shape[d], int) and shape[d] == 1)]
    return kept == sorted(kept)


def _batch_broadcast(mask_shape, scores_shape) -> bool:
    """A mask the kernel reads as [batch, M, S]: its leading dims (right-aligned to the scores)
    are all 1, or it has the scores' own 3-d shape."""
    if len(mask_shape) <= 2:
        return True
    if len(mask_shape) == 3 and len(scores_shape) == 3:
        return True
    return all(d == 1 for d in mask_shape[:-2])


def _scalar(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _safe_softmax(m: _Match, p: Node, scores: Ref) -> Node | None:
    """The `where` of SDPA's _safe_softmax around softmax node `p`, if that is who reads it."""
    users = m.users.get(p.name, [])
    if len(users) != 2:
        return None
    where = next((m.nodes[u] for u in users if m.nodes[u].target is aten.where.self), None)
    full = next((m.nodes[u] for u in users if m.nodes[u].target is aten.full_like.default), None)
    if where is None or full is None or where.args[1] != Ref(full.name) or where.args[2] != Ref(p.name) \
            or full.args[1] != 0:
        return None
    chain = [m.node(where.args[0])]                       # logical_not(any(logical_not(eq(s, -inf))))
    for target in (aten.logical_not.default, aten.any.dim, aten.logical_not.default, aten.eq.Scalar):
        n = chain[-1]
        if n is None or n.target is not target:
            return None
        chain.append(m.node(n.args[0]))
    eq = chain[-2]
    if eq.args[0] != scores or not (isinstance(eq.args[1], float) and eq.args[1] == -math.inf):
        return None
    m.inside.update(n.name for n in chain[:-1])
    m.inside.add(full.name)
    return where


def _is_ninf(m: _Match, value) -> bool:
    n = m.node(value)
    if n is not None and n.target is aten.scalar_tensor.default:
        value = n.args[0]
    return isinstance(value, float) and value == -math.inf


def _scores(m: _Match, scores):
    """(the q @ k^T bmm, scale, mask) of the masked, scaled scores `scores`, or None. A bool mask
    drops the keys where it is True."""
    mask, scale, drop = None, 1.0, False
    n = m.node(scores)
    masked = n.meta if n is not None else None
    if n is not None and n.target is aten.add.Tensor and isinstance(n.args[1], Ref):
        m.inside.add(n.name)
        mask, scores = n.args[1], n.args[0]
    elif n is not None and n.target is aten.masked_fill.Scalar and _is_ninf(m, n.args[2]):
        m.inside.add(n.name)
        mask, scores, drop = n.args[1], n.args[0], True
    elif n is not None and n.target is aten.where.self and _is_ninf(m, n.args[1]) and isinstance(n.args[2], Ref):
        m.inside.add(n.name)
        mask, scores, drop = n.args[0], n.args[2], True
    if mask is not None and tuple(masked.shape) != tuple(m.graph.meta_of(scores.name).shape):
        return None                                             # the mask broadcasts the scores up
    n = m.node(scores)
    if n is not None and n.target in (aten.mul.Tensor, aten.mul.Scalar) and _scalar(n.args[1]):
        m.inside.add(n.name)
        scale, scores = float(n.args[1]), n.args[0]
    qk = m.node(m.through_views(scores))
    if qk is None or qk.target is not aten.bmm.default:
        return None
    m.inside.add(qk.name)
    if mask is not None:
        mm = m.graph.meta_of(mask.name)
        wanted = (torch.bool,) if drop else (torch.float32, torch.bfloat16, torch.float16)
        if mm.dtype not in wanted or not _batch_broadcast(tuple(mm.shape), tuple(masked.shape)):
            return None
    return qk, scale, mask


def _softmax_probs(m: _Match, pv: Node):
    """(scores, safe) of SDPA's or an explicit softmax feeding `pv`'s probabilities, or None."""
    p_node = m.node(m.through_views(pv.args[0]))
    safe = False
    if p_node is not None and p_node.target is aten.where.self:
        soft = m.node(p_node.args[2])
        if soft is None or soft.target is not aten._softmax.default:
            return None
        m.inside.add(p_node.name)
        if _safe_softmax(m, soft, soft.args[0]) is not p_node:
            return None
        safe, p_node = True, soft
    if p_node is None or p_node.target is not aten._softmax.default or p_node.args[1] not in (-1, 2) \
            or p_node.args[2]:
        return None
    m.inside.add(p_node.name)
    return p_node.args[0], safe


def _last_dim(m: _Match, dims, value) -> bool:
    rank = len(m.graph.meta_of(value.name).shape)
    return isinstance(dims, (list, tuple)) and len(dims) == 1 and dims[0] % rank == rank - 1


def _sink_probs(m: _Match, div: Node):
    """(pv, scores, sink, p_dtype) of the unnormalised form `bmm(e', v) / l` ending in `div`."""
    if div.target is not aten.div.Tensor or not isinstance(div.args[1], Ref):
        return None
    pv = m.node(m.through_views(div.args[0]))
    if pv is None or pv.target is not aten.bmm.default or pv.meta.dtype != div.meta.dtype:
        return None                                             # (a division that promotes stays)
    m.inside.add(pv.name)
    e_ref, p_dtype = m.through_views(pv.args[0]), None
    up = m.node(e_ref)
    if up is not None and up.target in _CASTS and isinstance(up.args[0], Ref):    # e.to(dt).to(f32)
        down = m.node(up.args[0])
        if down is None or down.target not in _CASTS or not isinstance(down.args[0], Ref) \
                or m.graph.meta_of(down.args[0].name).dtype != up.meta.dtype:
            return None
        m.inside.update((up.name, down.name))
        e_ref, p_dtype = down.args[0], down.meta.dtype
    e = m.node(e_ref)
    sub = m.node(e.args[0]) if e is not None and e.target is aten.exp.default else None
    amax = m.node(sub.args[1]) if sub is not None and sub.target is aten.sub.Tensor else None
    if amax is None or amax.target is not aten.amax.default or amax.args[0] != sub.args[0] \
            or not _last_dim(m, amax.args[1], amax.args[0]) or not (len(amax.args) > 2 and amax.args[2]):
        return None
    m.inside.update((e.name, sub.name, amax.name))
    denom, sink = m.node(div.args[1]), None
    if denom is not None and denom.target is aten.add.Tensor and all(isinstance(a, Ref) for a in denom.args[:2]):
        m.inside.add(denom.name)
        total, extra = (m.node(a) for a in denom.args[:2])
        if extra is not None and extra.target is aten.sum.dim_IntList:
            total, extra = extra, total
        sink_sub = m.node(extra.args[0]) if extra is not None and extra.target is aten.exp.default else None
        if sink_sub is None or sink_sub.target is not aten.sub.Tensor or sink_sub.args[1] != Ref(amax.name) \
                or not isinstance(sink_sub.args[0], Ref):
            return None
        m.inside.update((extra.name, sink_sub.name))
        sink, denom = sink_sub.args[0], total
        sm = m.graph.meta_of(sink.name)
        if sm.dtype not in (torch.float32, torch.bfloat16, torch.float16) or len(sm.shape) > 3 \
                or not _batch_broadcast(tuple(sm.shape), tuple(amax.meta.shape)):
            return None
    if denom is None or denom.target is not aten.sum.dim_IntList or denom.args[0] != e_ref \
            or not _last_dim(m, denom.args[1], e_ref) or not (len(denom.args) > 2 and denom.args[2]):
        return None
    m.inside.add(denom.name)
    return pv, sub.args[0], sink, p_dtype


def _match(m: _Match, end: Node):
    """The nodes replacing the attention ending in `end` (the P @ V bmm, or the division of the
    unnormalised form), or None."""
    sink, p_dtype = None, None
    if end.target is aten.bmm.default:
        found = _softmax_probs(m, end)
        if found is None:
            return None
        (scores, safe), pv = found, end
    else:
        found = _sink_probs(m, end)
        if found is None:
            return None
        (pv, scores, sink, p_dtype), safe = found, False
    found = _scores(m, scores)
    if found is None:
        return None
    qk, scale, mask = found
    q, kt, v = qk.args[0], qk.args[1], pv.args[1]
    metas = [m.graph.meta_of(x.name) for x in (q, kt, v)]
    if len({x.dtype for x in metas}) != 1 or any(len(x.shape) != 3 for x in metas):
        return None
    m.inside.add(end.name)
    if not m.private(end.name):
        return None
    rewritten: dict[str, Node] = {}
    for operand in (q, kt):                      # SDPA scales q and k^T: fold that into `scale`
        folded = _fold_scale(m, operand)
        if folded is not None:
            nodes, factor = folded
            rewritten.update((node.name, node) for node in nodes)
            scale *= factor
    causal = mask is not None and _is_causal(m, mask)
    if causal:                                   # the node applies it: the mask's nodes go with DCE
        mask = None
    narrowed = _narrowed(m, (q, kt, v), pv, rewritten) if end is pv and sink is None and p_dtype is None else None
    if narrowed is not None:                     # bf16 attention computed in f32: the kernel takes bf16
        (q, kt, v), nodes, pv_meta = narrowed
        rewritten.update((node.name, node) for node in nodes)
        rewritten[pv.name] = Node(pv.name, ATTENTION, (q, kt, v, mask, scale, safe, causal, sink, p_dtype), (), pv_meta)
        return rewritten
    args = (q, kt, v, mask, scale, safe, causal, sink, p_dtype)
    if end is pv:
        rewritten[pv.name] = Node(pv.name, ATTENTION, args, (), pv.meta)
    elif tuple(end.meta.shape) == tuple(pv.meta.shape):        # the division becomes the attention
        rewritten[end.name] = Node(end.name, ATTENTION, args, (), end.meta)
    else:                                                       # ... or reads it through its views
        rewritten[pv.name] = Node(pv.name, ATTENTION, args, (), pv.meta)
        rewritten[end.name] = Node(end.name, aten.alias.default, (end.args[0],), (), m.graph.meta_of(end.args[0].name))
    return rewritten


def _arange_from_zero(m: _Match, value) -> bool:
    n = m.node(value)
    if n is None:
        return False
    if n.target is aten.arange.default:
        return True
    return n.target is aten.arange.start_step and n.args[0] == 0 and (len(n.args) < 3 or n.args[2] == 1)


def _is_causal(m: _Match, mask: Ref) -> bool:
    """Is `mask` SDPA's top-left causal mask, where(j - i <= 0 [and True], 0, -inf) over aranges?
    Then every key after a query tile's last row is masked for the whole tile."""
    w = m.node(mask)
    if w is None or w.target is not aten.where.self:
        return False
    zero, ninf = m.node(w.args[1]), m.node(w.args[2])
    if any(x is None or x.target is not aten.scalar_tensor.default for x in (zero, ninf)) \
            or zero.args[0] != 0 or ninf.args[0] != -math.inf:
        return False
    cond = m.node(w.args[0])
    if cond is not None and cond.target is aten.logical_and.default:
        other = m.node(cond.args[1])
        if other is None or other.target is not aten.full.default or other.args[1] is not True:
            return False
        cond = m.node(cond.args[0])
    if cond is None or cond.target is not aten.le.Scalar or cond.args[1] != 0:
        return False
    sub = m.node(cond.args[0])
    if sub is None or sub.target is not aten.sub.Tensor:
        return False
    cols, rows = m.node(sub.args[0]), m.node(sub.args[1])
    return (cols is not None and rows is not None and cols.target is rows.target is aten.unsqueeze.default
            and cols.args[1] == -2 and rows.args[1] == -1
            and _arange_from_zero(m, cols.args[0]) and _arange_from_zero(m, rows.args[0]))


def _fold_scale(m: _Match, operand: Ref):
    """For an operand view(expand(mul(x, s))) whose every step only feeds the next: the views
    rewritten to read x (same shape, strides and dtype as the product), and s. None otherwise.
    The views then live in x's storage: their offsets move by x's (a view of `k[1]` starts past
    k[0]; kept at the product's 0, the kernel read k[0])."""
    chain, n = _view_chain(m, operand, {}, _VIEWS)
    if not chain or n is None or n.target not in (aten.mul.Tensor, aten.mul.Scalar) or not _scalar(n.args[1]) \
            or not isinstance(n.args[0], Ref):
        return None
    x, product = m.graph.meta_of(n.args[0].name), n.meta
    if x.dtype != product.dtype or not same_layout(x.shape, x.stride, product.shape, product.stride):
        return None
    if any(len(m.users.get(c.name, ())) != 1 for c in (n, *chain)) or n.name in m.graph.output_names:
        return None
    return _reroot(chain, n.args[0], x.offset - product.offset), float(n.args[1])


def _reroot(chain: list[Node], source: Ref, shift, dtype=None) -> list[Node]:
    """`chain` (the operand's own node first, the one reading the old source last) rewritten to
    read `source`: offsets moved by `shift` up to a copy (a clone's views read a tensor of its
    own), the element type made `dtype` when one is given."""
    moved = []
    for c in reversed(chain):                    # from the source up
        meta = c.meta if dtype is None else replace(c.meta, dtype=dtype)
        if c.target is aten.clone.default:
            shift = 0
        elif not exprs_equal(shift, 0):
            meta = replace(meta, offset=meta.offset + shift)
        moved.append(c if meta == c.meta else c.with_(meta=meta))
    moved[0] = moved[0].with_(args=(source, *moved[0].args[1:]))
    return moved


_LOW = (torch.bfloat16, torch.float16)


# What a cast commutes with: views, and copies that only move elements (GQA's expanded k and v)
_MOVES = _VIEWS + _ORDERED_VIEWS + (aten.clone.default,)


def _view_chain(m: _Match, value, overlay: dict[str, Node], moves=_MOVES):
    """The nodes of `moves` from `value` back to the first node that is none (value's own first),
    and it; nodes already rewritten (`overlay`, the views of a folded scale) read as rewritten."""
    def node(v):
        return overlay.get(v.name) or m.node(v) if isinstance(v, Ref) else None
    chain, n = [], node(value)
    while n is not None and n.target in moves and isinstance(n.args[0], Ref):
        chain.append(n)
        n = node(n.args[0])
    return chain, n


def _narrowed(m: _Match, operands, pv: Node, overlay: dict[str, Node]):
    """SDPA on bf16 (or f16) tensors decomposes into f32 attention between casts: q, k and v
    widened to f32 (read through views), the result narrowed back. The node then takes the narrow
    tensors and returns the narrow result, computing as ATen's CPU flash attention does (scores and
    sums in f32, the probabilities rounded to v's dtype for P @ V, the result rounded once): the
    kernel reads bf16 in place and runs bf16 products (AMX on Sapphire Rapids) instead of a
    widening pass per operand and f32 products. Returns (operands, rewritten views and the cast
    made an alias, the node's meta) when every operand and the result take such casts and every
    step feeds only the next; else None."""
    nodes, new_operands, low = [], [], None
    for operand in operands:
        chain, cast = _view_chain(m, operand, overlay)
        if cast is None or cast.target not in _CASTS or not isinstance(cast.args[0], Ref):
            return None
        x, wide = m.graph.meta_of(cast.args[0].name), cast.meta
        if wide.dtype != torch.float32 or x.dtype not in _LOW or low not in (None, x.dtype) \
                or not same_layout(x.shape, x.stride, wide.shape, wide.stride) \
                or any(len(m.users.get(c.name, ())) != 1 for c in (cast, *chain)) or cast.name in m.graph.output_names:
            return None
        low = x.dtype
        if chain:
            nodes += _reroot(chain, cast.args[0], x.offset - wide.offset, low)
        new_operands.append(operand if chain else cast.args[0])
    out, name = [], pv.name                      # the result: views, then the narrowing cast
    while True:
        users = m.users.get(name, ())
        if len(users) != 1 or name in m.graph.output_names:
            return None
        user = m.nodes[users[0]]
        if user.target in _CASTS and user.meta.dtype == low:
            src = m.graph.meta_of(name)          # the alias must lie as the cast's result did
            if not same_layout(src.shape, src.stride, user.meta.shape, user.meta.stride):
                return None
            break
        if user.target not in _MOVES:
            return None
        out.append(user.with_(meta=replace(user.meta, dtype=low)))
        name = user.name
    source = out[-1] if out else None
    nodes += out
    pv_meta = replace(pv.meta, dtype=low)
    nodes.append(Node(user.name, aten.alias.default, (Ref(name),), (), source.meta if source else pv_meta))
    return tuple(new_operands), nodes, pv_meta


def recognise_attention(graph: Graph) -> Graph:
    """Replace every recognised attention's final node (the P @ V bmm, or the division of the
    unnormalised form) by a `pto::attention` node (and let the views of q and k^T read the
    unscaled tensors when the scale folds into the node)."""
    replaced: dict[str, Node] = {}
    for node in graph.nodes:
        if node.target in (aten.bmm.default, aten.div.Tensor):
            new = _match(_Match(graph), node)
            if new is not None:
                replaced.update(new)
    if not replaced:
        return graph
    return graph.replace_nodes([replaced.get(n.name, n) for n in graph.nodes])
