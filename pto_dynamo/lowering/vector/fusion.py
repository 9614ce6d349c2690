"""Fuse a device region's vector work into kernels over iteration domains.

A kernel iterates a domain `(outer..., row, col)` (rank >= 2). Every value it computes maps its
dims onto domain dims (`dmap`: value dim -> domain dim, None for a size-1 dim), so one kernel
holds full values `[.., row, col]`, per-row values `[.., row, 1]` (reductions over the col dim)
and broadcast values. The rule, applied to the nodes in order:

  pointwise  joins the kernel of one of its in-kernel operands when its output maps onto that
             kernel's domain, else the latest kernel when it maps onto that one's (sibling
             fusion), else starts a kernel whose domain is its output shape;
  reduction  joins the kernel of its operand when it reduces that kernel's col dim (a per-row
             value), or its row dim when the domain's rows x cols fit one tile (a per-column value:
             Sinkhorn's alternating row and column sums stay in one kernel); else starts a kernel
             whose domain is (kept dims..., reduced dim);
  view       of a buffer (region input, or a value some kernel stores) is an affine access and
             costs nothing; of an in-kernel value it relabels dims (permute, unsqueeze, squeeze,
             expand); any other view makes its operand stored and reads it back. A returned view
             that reinterprets a value of the region in the same memory order has the value
             computed straight into its buffer (`output_aliases`); another returned view of a
             buffer is copied out;
  gather     (embedding, index_select) starts a kernel over its output; its index operand is
             loaded per row, the table stays in memory for MGATHER;
  cat        gives the result its own buffer; each part is a copy placed as a pointwise node
             (fusing with the kernel that computes it) that stores into its slice;
  matmul     (mm, bmm) is a cube kernel of its own (`KernelPlan.matmul`): it reads its operands
             in place from their buffers, through their strides, and stores its result;
  attention  (`pto::attention`, from the pattern stage) is a mixed kernel of its own
             (`KernelPlan.attention`), reading and storing likewise.

A node never joins a kernel that one of its other operands depends on (no cycles). A value read
outside its kernel is stored: to the region output buffer the host program allocated, or to a
workspace. Residual + RMSNorm, softmax and `silu(a) * b` are each one kernel by this rule.
"""
from __future__ import annotations

import functools

import operator
from dataclasses import dataclass, field

import sympy
import torch

from pto_dynamo.graph.dims import Dim
from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.attention.op import ATTENTION
from pto_dynamo.lowering.attention.plan import AttentionPlan, broadcast_strides
from pto_dynamo.lowering.cube.ops import MATMUL_OPS, MatmulPlan, Operand, batched
from pto_dynamo.lowering.vector.access import Access, BufferView, access_for
from pto_dynamo.lowering.vector.claims import returned_alias
from pto_dynamo.lowering.vector.expand import expand_nodes
from pto_dynamo.lowering.vector.opinfo import vector_op

aten = torch.ops.aten
RELABEL_VIEWS = {aten.permute.default, aten.transpose.int, aten.t.default, aten.unsqueeze.default,
                 aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default, aten.view.default,
                 aten._unsafe_view.default, aten.expand.default, aten.alias.default}


class FusionError(RuntimeError):
    """A region node the vector lowering cannot place (a claim was too generous)."""


@dataclass
class KernelPlan:
    """One vector kernel: its domain, the nodes it computes, what it loads and stores.

    loads:  (value, use dmap) -> Access, for every operand read from a buffer
    stores: value -> Access, for every value written to a buffer
    uses:   (node, operand) -> the dmap the node reads the operand with
    tables: gather node -> Access of the table it picks rows from (strides: row, column)
    col_reductions: reductions over the row dim (per-column results, see _place_reduction)
    matmul: for a cube kernel, the matmul it computes (its only node)
    attention: for an attention kernel, the attention it computes (its only node)
    """

    index: int
    domain: tuple[Dim, ...]
    nodes: list[Node] = field(default_factory=list)
    dmaps: dict[str, tuple] = field(default_factory=dict)
    loads: dict[tuple, Access] = field(default_factory=dict)
    stores: dict[str, Access] = field(default_factory=dict)
    uses: dict[tuple, tuple] = field(default_factory=dict)
    tables: dict[str, Access] = field(default_factory=dict)
    matmul: MatmulPlan | None = None
    attention: AttentionPlan | None = None
    col_reductions: set[str] = field(default_factory=set)

    @property
    def opaque(self) -> bool:
        """A matmul or attention kernel: one node, its operands read in place, nothing joins it."""
        return self.matmul is not None or self.attention is not None

    @property
    def rank(self) -> int:
        return len(self.domain)

    @property
    def col(self) -> int:
        return len(self.domain) - 1

    @property
    def has_reduction(self) -> bool:
        return any(vector_op(n.target) and vector_op(n.target).kind == "reduction" for n in self.nodes)

    def name_parts(self) -> list[str]:
        parts = []
        for n in self.nodes:
            op = getattr(n.target, "__name__", str(n.target)).split(".")[0].lstrip("_")
            if op not in parts and op not in ("view", "alias", "unsqueeze", "squeeze", "expand", "permute"):
                parts.append(op)
        return parts


@dataclass
class RegionPlan:
    """The kernels of one device region in launch order, every buffer they touch, and the meta
    of every value (buffers, computed values, views)."""

    kernels: list[KernelPlan]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    workspaces: tuple[str, ...]
    buffers: dict[str, TensorMeta]
    values: dict[str, TensorMeta]


def _shape_eq(a: Dim, b: Dim) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return a == b or _symbolic_eq(a, b)


@functools.lru_cache(maxsize=4096)
def _symbolic_eq(a: Dim, b: Dim) -> bool:
    """Equal for every value of the symbols (sympy's simplify is slow: a model asks thousands of
    times about the same few dims, so the answers are kept)."""
    return sympy.simplify(sympy.sympify(a) - sympy.sympify(b)) == 0


def _statically_empty(shape) -> bool:
    return any(isinstance(d, int) and d == 0 for d in shape)


def _may_join(k: KernelPlan, node: Node) -> bool:
    """A kernel over an empty domain (a static 0 extent) runs no iteration: a node with elements to
    write must not join it (a bounds check of a flip's indices beside an empty tensor's index
    arithmetic was never computed, and the check read whatever its buffer held). Dynamic dims are
    at least 1 (Dynamo specialises 0)."""
    return not _statically_empty(k.domain) or _statically_empty(node.meta.shape)


def _tensor_operands(node: Node) -> list[Ref]:
    info = vector_op(node.target)
    positions = info.tensor_args if info else (0,)
    return [node.args[i] for i in positions if i < len(node.args) and isinstance(node.args[i], Ref)]


class _Fuser:
    def __init__(self, graph: Graph, region_inputs, region_outputs):
        self.graph = graph
        self.metas: dict[str, TensorMeta] = {}
        self.kernels: list[KernelPlan] = []
        self.kernel_of: dict[str, int] = {}
        self.buffers: dict[str, BufferView] = {}
        self.deps: dict[str, frozenset[int]] = {}
        self.region_outputs = list(region_outputs)
        self.workspaces: list[str] = []
        self.output_aliases = output_aliases(graph, region_inputs, region_outputs)
        for name in region_inputs:
            meta = graph.meta_of(name)
            self.metas[name] = meta
            self.buffers[name] = BufferView(name, meta, meta.offset)
            self.deps[name] = frozenset()

    # -- helpers -----------------------------------------------------------------------------
    def _new_kernel(self, domain) -> KernelPlan:
        domain = (1,) * (2 - len(domain)) + tuple(domain)
        k = KernelPlan(len(self.kernels), domain)
        self.kernels.append(k)
        return k

    def _deps_of(self, names, kernel: int | None) -> frozenset[int]:
        out = frozenset({kernel}) if kernel is not None else frozenset()
        for u in names:
            out |= self.deps[u]
        return out

    def _legal(self, k: KernelPlan, operands: list[str]) -> bool:
        """May a node reading `operands` join k? Not when an operand computed elsewhere depends
        on k: through its own inputs (`deps`), or because its kernel, which runs as a whole, already
        loads something k stores (k gained that reader after the operand was placed)."""
        for u in operands:
            j = self.kernel_of.get(u)
            if j == k.index:
                continue
            if k.index in self.deps[u] or (j is not None and self._reaches(j, k.index)):
                return False
        return True

    def _reaches(self, start: int, target: int) -> bool:
        """Does kernel `start` run after kernel `target` (loads, transitively, what it stores)?"""
        deps = _load_deps(self.kernels)
        seen, todo = set(), [start]
        while todo:
            i = todo.pop()
            if i == target:
                return True
            if i not in seen:
                seen.add(i)
                todo += deps[i]
        return False

    def _own_buffer(self, name: str, meta: TensorMeta) -> BufferView:
        """A buffer for value `name` computed here: its own (a region output, or a workspace), or
        the buffer of the returned view it is computed into (`output_aliases`)."""
        buffer = self.output_aliases.get(name, name)
        if buffer == name and name not in self.region_outputs:
            self.workspaces.append(name)
        view = BufferView(buffer, meta, meta.offset)
        self.buffers[name] = view
        return view

    def materialize(self, name: str) -> BufferView:
        """Make sure value `name` lives in a buffer; returns where."""
        if name in self.buffers:
            return self.buffers[name]
        k = self.kernels[self.kernel_of[name]]
        view = self._own_buffer(name, self.metas[name])
        k.stores[name] = access_for(view, k.dmaps[name], k.rank)
        return view

    def _load(self, k: KernelPlan, name: str, dmap: tuple) -> None:
        view = self.materialize(name)
        k.loads[(name, dmap)] = access_for(view, dmap, k.rank)

    # -- dmaps -------------------------------------------------------------------------------
    def _pointwise_dmap(self, k: KernelPlan, node: Node, operands: list[str]):
        """The output dmap of a pointwise node placed in k, and each operand's use dmap; None if
        the node does not fit k's domain. Operands broadcast by right-aligned dims; an in-kernel
        operand is broadcast along its dims that map to no domain dim."""
        shape = node.meta.shape
        rank = len(shape)
        out: list = [None] * rank
        inside = [u for u in operands if self.kernel_of.get(u) == k.index]
        for u in inside:                                   # in-kernel operands fix output dims
            um = self.dmaps_of(u)
            for j, m in enumerate(um):
                jo = rank - len(um) + j
                if m is None:
                    continue
                if jo < 0 or (out[jo] is not None and out[jo] != m):
                    return None
                if out[jo] is None and m in out:           # one domain dim for two output dims
                    return None
                out[jo] = m
        used = {d for d in out if d is not None}
        for j in range(rank):                              # the rest align right with the domain
            if out[j] is None and not _shape_eq(shape[j], 1):
                pos = k.rank - rank + j
                if pos < 0 or pos in used:
                    return None
                out[j] = pos
                used.add(pos)
        if any(d is not None and not _shape_eq(k.domain[d], shape[j]) for j, d in enumerate(out)):
            return None
        uses = {u: self.dmaps_of(u) for u in inside}
        for u in operands:
            if u not in uses:
                ushape = self.metas[u].shape
                uses[u] = tuple(None if _shape_eq(ushape[j], 1) else out[rank - len(ushape) + j]
                                for j in range(len(ushape)))
        return tuple(out), uses

    def dmaps_of(self, name: str) -> tuple:
        return self.kernels[self.kernel_of[name]].dmaps[name]

    # -- node kinds --------------------------------------------------------------------------
    def place(self, node: Node) -> None:
        self.metas[node.name] = node.meta
        if node.target in MATMUL_OPS:
            self._place_matmul(node)
            return
        if node.target is ATTENTION:
            self._place_attention(node)
            return
        info = vector_op(node.target)
        if node.target is operator.getitem or info is None:
            raise FusionError(f"vector lowering: no rule for {node.target} (node {node.name})")
        if info.kind == "view":
            self._place_view(node)
        elif info.kind == "cat":
            self._place_cat(node)
        elif info.kind == "gather":
            self._place_gather(node)
        elif info.kind == "reduction":
            self._place_reduction(node)
        else:
            self._place_pointwise(node)

    def _place_pointwise(self, node: Node) -> None:
        operands = [r.name for r in _tensor_operands(node)]
        candidates = [self.kernel_of[u] for u in operands if u in self.kernel_of]
        if self.kernels and not self.kernels[-1].opaque:
            candidates.insert(0, self.kernels[-1].index)   # else sibling fusion with the latest kernel
        for ki in dict.fromkeys(reversed(candidates)):
            k = self.kernels[ki]
            fit = self._pointwise_dmap(k, node, operands)
            if fit is not None and _may_join(k, node) and self._legal(k, operands):
                self._commit(k, node, fit[0], fit[1], operands)
                return
        k = self._new_kernel(node.meta.shape)
        for ki in dict.fromkeys(self.kernel_of[u] for u in operands if u in self.kernel_of):
            self._absorb(self.kernels[ki], k)
        fit = self._pointwise_dmap(k, node, operands)
        if fit is None:
            raise FusionError(f"vector lowering: {node.name} does not fit its own domain {k.domain}")
        self._commit(k, node, fit[0], fit[1], operands)

    def _absorb(self, small: KernelPlan, k: KernelPlan) -> None:
        """Move a pure pointwise kernel that stores nothing (e.g. `w.abs() + 1` over a broadcast
        operand) into the new kernel k, so its values are computed per tile of k instead of being
        stored and reloaded. Left alone if any of its nodes does not fit k's domain."""
        if small.stores or small.index == k.index or any(
                vector_op(n.target).kind != "pointwise" for n in small.nodes):
            return
        moved: list[tuple[Node, tuple, dict, list[str]]] = []
        saved = {n.name: self.kernel_of[n.name] for n in small.nodes}
        for n in small.nodes:
            ops = [r.name for r in _tensor_operands(n)]
            fit = self._pointwise_dmap(k, n, ops)
            if fit is None or not _may_join(k, n):
                self.kernel_of.update(saved)
                for m, *_ in moved:
                    del k.dmaps[m.name]
                return
            moved.append((n, fit[0], fit[1], ops))
            self.kernel_of[n.name] = k.index          # later nodes of `small` see it in k
            k.dmaps[n.name] = fit[0]
        self.kernel_of.update(saved)
        for n, dmap, uses, ops in moved:
            self._commit(k, n, dmap, uses, ops)
            self.deps[n.name] = (self.deps[n.name] - {small.index}) | {k.index}
        small.nodes, small.dmaps, small.loads, small.uses = [], {}, {}, {}

    def _commit(self, k: KernelPlan, node: Node, dmap, uses: dict, operands: list[str]) -> None:
        for u in operands:
            k.uses[(node.name, u)] = uses[u]
            if self.kernel_of.get(u) != k.index:
                self._load(k, u, uses[u])
        k.nodes.append(node)
        k.dmaps[node.name] = dmap
        self.kernel_of[node.name] = k.index
        self.deps[node.name] = self._deps_of(operands, k.index)

    def _place_reduction(self, node: Node) -> None:
        x = node.args[0].name
        xm = self.metas[x]
        d = node.args[1][0] % max(xm.rank, 1)
        keepdim = node.args[2] if len(node.args) > 2 else False
        if x in self.kernel_of:
            k = self.kernels[self.kernel_of[x]]
            xd = self.dmaps_of(x)
            over_rows = xd[d] == k.rank - 2 and k.col in xd and _one_tile_block(k.domain)
            if (xd[d] == k.col or over_rows) and _may_join(k, node) and self._legal(k, [x]):
                out = tuple(None if j == d else m for j, m in enumerate(xd) if keepdim or j != d)
                self._commit(k, node, out, {x: xd}, [x])
                if over_rows:
                    k.col_reductions.add(node.name)
                return
        kept = [j for j in range(xm.rank) if j != d]
        k = self._new_kernel(tuple(xm.shape[j] for j in kept) + (xm.shape[d],))
        off = k.rank - 1 - len(kept)
        use = tuple((k.col if j == d else off + kept.index(j)) for j in range(xm.rank))
        use = tuple(None if _shape_eq(xm.shape[j], 1) and j != d else m for j, m in enumerate(use))
        out = tuple(None if j == d else use[j] for j in range(xm.rank) if keepdim or j != d)
        self._commit(k, node, out, {x: use}, [x])

    def _place_cat(self, node: Node) -> None:
        """cat(parts, dim): the result gets its own buffer and part i is a copy stored straight
        into its slice (computed parts fuse into the kernel that computes them: no extra pass)."""
        meta = node.meta
        dim = (node.args[1] if len(node.args) > 1 else node.kwargs_dict().get("dim", 0)) % meta.rank
        buffer = self._own_buffer(node.name, meta).buffer
        deps, start = frozenset(), 0
        for i, part in enumerate(node.args[0]):
            shape = self.metas[part.name].shape
            part_meta = TensorMeta(tuple(shape), meta.dtype, meta.stride, offset=meta.offset + start * meta.stride[dim])
            start = start + shape[dim]
            name = f"{node.name}__part{i}"
            self._place_pointwise(Node(name, aten.alias.default, (part,), (), part_meta))
            k = self.kernels[self.kernel_of[name]]
            view = BufferView(buffer, part_meta, meta.offset)
            k.stores[name] = access_for(view, k.dmaps[name], k.rank)
            deps |= self.deps[name]
        self.deps[node.name] = deps

    def _place_gather(self, node: Node) -> None:
        """out[..., :] = table[idx[...], :]: a new kernel over the output's shape whose index
        operand maps to the output's leading dims; the table is read by MGATHER, not tiled."""
        idx = _tensor_operands(node)[0].name
        k = self._new_kernel(node.meta.shape)
        pad = k.rank - node.meta.rank
        out = tuple(None if _shape_eq(s, 1) else pad + j for j, s in enumerate(node.meta.shape))
        ishape = self.metas[idx].shape
        use = tuple(None if _shape_eq(s, 1) else out[j] for j, s in enumerate(ishape))
        table = self.materialize(node.args[0].name)
        k.tables[node.name] = Access(table.buffer, table.offset, tuple(table.meta.stride))
        self._commit(k, node, out, {idx: use}, [idx])
        self.deps[node.name] |= self.deps[node.args[0].name]

    def _place_matmul(self, node: Node) -> None:
        """mm / bmm: a cube kernel over (batch, M, N) that reads both operands in place from
        their buffers (a transposed operand through its strides) and stores its own result. An
        empty K makes it `full(0)`."""
        a, b = node.args[0].name, node.args[1].name
        if _shape_eq(self.metas[a].shape[-1], 0):          # K = 0: a product of zeros
            self._place_pointwise(Node(node.name, aten.full.default, (tuple(node.meta.shape), 0.0), (), node.meta))
            return
        va, vb = self.materialize(a), self.materialize(b)
        meta = node.meta
        out = self._own_buffer(node.name, meta)
        k = self._new_kernel(batched(meta.shape, 1))
        ops = [Operand(v.buffer, v.offset, batched(v.meta.stride, 0)) for v in (va, vb, out)]
        am, bm = self.metas[a], self.metas[b]
        k.matmul = MatmulPlan(*ops, batch=k.domain[0], M=am.shape[-2], N=bm.shape[-1], K=am.shape[-1])
        k.nodes.append(node)
        for name, op in ((a, ops[0]), (b, ops[1])):
            k.loads[(name, "cube")] = Access(op.buffer, op.offset, op.strides)
        k.stores[node.name] = Access(out.buffer, ops[2].offset, ops[2].strides)
        self.deps[node.name] = self.deps[a] | self.deps[b] | {k.index}

    def _place_attention(self, node: Node) -> None:
        """pto::attention: a kernel over (batch, M, Dv) that reads q, k^T, v, the mask and the sink
        in place and stores its own result (rows_first: an [M, batch, Dv] one, stored through its
        strides as the (batch, M, Dv) values)."""
        q, kt, v, mask = node.args[:4]
        views = [self.materialize(x.name) for x in (q, kt, v)]
        meta = node.meta
        out = self._own_buffer(node.name, meta)
        rows_first = len(node.args) > 9 and node.args[9]
        out_strides = tuple(meta.stride[i] for i in (1, 0, 2)) if rows_first else tuple(meta.stride)
        k = self._new_kernel(tuple(meta.shape[i] for i in (1, 0, 2)) if rows_first else meta.shape)
        ops = [Operand(x.buffer, x.offset, tuple(x.meta.stride)) for x in views] + [Operand(out.buffer, out.offset, out_strides)]
        deps = frozenset({k.index}).union(*(self.deps[x.name] for x in (q, kt, v)))
        sink = node.args[7] if len(node.args) > 7 else None
        broadcast = {}                           # the mask and the sink: read with broadcast strides
        for value in (mask, sink):
            if value is not None:
                mv = self.materialize(value.name)
                broadcast[value.name] = Operand(mv.buffer, mv.offset, broadcast_strides(mv.meta.shape, mv.meta.stride))
                deps |= self.deps[value.name]
        qm, vm = self.metas[q.name], self.metas[v.name]
        k.attention = AttentionPlan(*ops, broadcast[mask.name] if mask is not None else None, batch=qm.shape[0],
                                    M=qm.shape[1], S=vm.shape[1], D=qm.shape[2], Dv=vm.shape[2],
                                    scale=node.args[4], safe=node.args[5], causal=len(node.args) > 6 and node.args[6],
                                    sink=broadcast[sink.name] if sink is not None else None,
                                    p_dtype=node.args[8] if len(node.args) > 8 else None)
        k.nodes.append(node)
        for name, op in [(q.name, ops[0]), (kt.name, ops[1]), (v.name, ops[2]), *broadcast.items()]:
            k.loads[(name, "attention")] = Access(op.buffer, op.offset, op.strides)
        k.stores[node.name] = Access(out.buffer, ops[3].offset, ops[3].strides)
        self.deps[node.name] = deps

    def _place_view(self, node: Node) -> None:
        src = node.args[0].name
        if src in self.kernel_of and src not in self.buffers and node.target in RELABEL_VIEWS:
            dmap = self._relabel(node, src)
            if dmap is not None:
                k = self.kernels[self.kernel_of[src]]
                k.nodes.append(node)
                k.dmaps[node.name] = dmap
                self.kernel_of[node.name] = k.index
                self.deps[node.name] = self.deps[src]
                return
        base = self.materialize(src)
        self.buffers[node.name] = BufferView(base.buffer, node.meta, base.base_offset)
        self.deps[node.name] = self.deps[src]
        if node.name in self.region_outputs and base.buffer != node.name:   # a returned view: copy it out
            self._copy_out(node)

    def _relabel(self, node: Node, src: str):
        """dmap of a pure relabelling view of an in-kernel value, or None."""
        sm, om = self.metas[src], node.meta
        sd = self.dmaps_of(src)
        if node.target in (aten.permute.default, aten.transpose.int, aten.t.default):
            perm = _permutation(node, sm.rank)
            return tuple(sd[p] for p in perm)
        nonone_src = [(s, m) for s, m in zip(sm.shape, sd) if not _shape_eq(s, 1)]
        nonone_out = [s for s in om.shape if not _shape_eq(s, 1)]
        if node.target is aten.expand.default:             # expanded dims are broadcast: None
            pad = len(om.shape) - len(sm.shape)
            for j, size in enumerate(om.shape):
                src_size = sm.shape[j - pad] if j >= pad else 1
                if not (_shape_eq(size, src_size) or _shape_eq(src_size, 1)):
                    return None
            return (None,) * pad + tuple(m if not _shape_eq(sm.shape[j], 1) else None for j, m in enumerate(sd))
        if len(nonone_src) != len(nonone_out) or not all(_shape_eq(a, b) for (a, _), b in zip(nonone_src, nonone_out)):
            return None
        it = iter(m for _, m in nonone_src)
        return tuple(None if _shape_eq(s, 1) else next(it) for s in om.shape)

    def _copy_out(self, node: Node) -> None:
        """A region output that is a view of a buffer: a copy kernel writes it to its own buffer."""
        src_name = f"{node.name}__view"
        self.buffers[src_name] = self.buffers.pop(node.name)
        self.metas[src_name] = node.meta
        self.deps[src_name] = self.deps[node.name]
        copy = Node(node.name, aten.alias.default, (Ref(src_name),), (), node.meta)
        self._place_pointwise(copy)
        self.materialize(node.name)


# A reduction over the row dim joins its operand's kernel (a per-column value, TCOLSUM) when
# every row and column of the domain fits one tile on every target (A2A3's 2048-element tiles):
# then the tiler takes all rows at once (tiling.py checks it) and the sum needs no second pass.
COL_REDUCE_MAX_ELEMS = 2048


def _one_tile_block(domain) -> bool:
    rows, cols = domain[-2], domain[-1]
    if not (isinstance(rows, int) and isinstance(cols, int)):
        return False
    # no rows: the tile loop would run no iteration and leave the per-column result unwritten
    return 1 <= rows <= 64 and rows * -(-cols // 16) * 16 <= COL_REDUCE_MAX_ELEMS


def _permutation(node: Node, rank: int) -> list[int]:
    if node.target is aten.permute.default:
        return [p % rank for p in node.args[1]]
    perm = list(range(rank))
    a, b = (node.args[1] % rank, node.args[2] % rank) if node.target is aten.transpose.int else (0, 1)
    perm[a], perm[b] = perm[b], perm[a]
    return perm[:rank]


def _load_deps(kernels: list[KernelPlan]) -> dict[int, set[int]]:
    """kernel index -> the other kernels that store a buffer it loads (or gathers from)."""
    producers: dict[str, set[int]] = {}                   # buffer -> kernels that write it
    for k in kernels:
        for access in k.stores.values():
            producers.setdefault(access.buffer, set()).add(k.index)
    return {k.index: set().union(*(producers.get(a.buffer, set()) for a in (*k.loads.values(), *k.tables.values())))
            - {k.index} for k in kernels}


def _order(kernels: list[KernelPlan], fuser: _Fuser) -> list[KernelPlan]:
    """Kernels in dependency order (a kernel runs after every kernel whose stores it loads)."""
    deps = _load_deps(kernels)
    order, done = [], set()
    while len(order) < len(kernels):
        ready = [k for k in kernels if k.index not in done and deps[k.index] <= done]
        if not ready:
            stuck = "; ".join(f"kernel {k.index} ({', '.join(n.name for n in k.nodes[:3])}...) waits for "
                              f"{sorted(deps[k.index] - done)}" for k in kernels if k.index not in done)
            raise FusionError(f"vector lowering: kernels depend on each other in a cycle: {stuck}")
        order.append(ready[0])
        done.add(ready[0].index)
    return order


def output_aliases(graph: Graph, inputs, outputs) -> dict[str, str]:
    """value -> the region output it is computed into: for a returned view that reinterprets a
    value computed in the region in the same memory order (claims.returned_alias), when the value
    itself is not returned. The host allocates the view's tensor; the value's kernel stores into it
    with the value's own strides, which address the same elements."""
    out: dict[str, str] = {}
    for name in outputs:
        node = graph.node_by_name.get(name)
        if node is None or not returned_alias(node, graph):
            continue
        src = node.args[0].name
        if src not in inputs and src not in outputs and src not in out:
            out[src] = name
    return out


def plan_region(graph: Graph, nodes: list[str], inputs: tuple[str, ...], outputs: tuple[str, ...]) -> RegionPlan:
    """Expand, fuse and order the kernels of one device region."""
    fuser = _Fuser(graph, inputs, outputs)
    for node in expand_nodes(graph, nodes):
        fuser.place(node)
    for name in outputs:
        fuser.materialize(name)
    kernels = [k for k in _order(fuser.kernels, fuser) if k.nodes]
    buffers = {name: fuser.metas[name] for name in (*inputs, *outputs, *fuser.workspaces)}
    return RegionPlan(kernels, tuple(inputs), tuple(outputs), tuple(fuser.workspaces), buffers, dict(fuser.metas))
