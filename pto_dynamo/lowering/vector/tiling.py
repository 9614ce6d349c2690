"""Tile one fused vector kernel (`KernelPlan`) into a TileProgram.

Tiles cover R rows x C columns of the domain's last two dims; each SPMD tile-loop iteration owns
one index of the outer dims, one row tile and (for kernels without reductions) one column tile.
Values take one of three forms in tiles (in their compute type, see tile_rules):

  full  [R, C]          varies along rows and columns
  row   [RP, 1] ColMajor one value per row (reductions over the col dim, per-row operands), with
                         a RowMajor [1, RP] alias (TRESHAPE) for elementwise math on it
  col   [1, C]          one value per column (a weight vector broadcast over rows)

A kernel with reductions whose col dim fits one tile runs in one pass. Otherwise it runs in
phases: phase p loops over column tiles, recomputing the full values the depth-p reductions read
and accumulating them; a final loop computes and stores the full results. Tile sizes start large
and halve until the planner fits every live tile into the target's UB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import sympy
import torch
from torch.utils._sympy.functions import Max as TorchMax, Min as TorchMin

from pto_dynamo.graph.ir import Node, Ref
from pto_dynamo.lowering.tile import (F32, I32, U8, Distribution, GmView, KernelBuilder, Layout, PlanningError, TileLoc, ceil_div, elem_type,
                                      emin, emod, floor_div)
from pto_dynamo.lowering.tile.capacity import TargetCapacity
from pto_dynamo.lowering.tile.in_place_loads import read_inputs_in_place
from pto_dynamo.lowering.tile.region import c_identifier
from pto_dynamo.lowering.tile.verifier import verify_program
from pto_dynamo.lowering.vector.access import Access
from pto_dynamo.lowering.vector.fusion import KernelPlan
from pto_dynamo.lowering.vector.opinfo import vector_op
from pto_dynamo.lowering.vector.tile_rules import TILE_RULES, TileVal, TilingError, compute_type, expand

Vec = TileLoc.Vec


def _is(expr, value) -> bool:
    return sympy.simplify(sympy.sympify(expr) - value) == 0


def normalize_expr(e):
    """torch's sympy Max/Min (from ShapeEnv expressions) as sympy's, which the tile printer knows."""
    return e.replace(lambda x: isinstance(x, (TorchMax, TorchMin)),
                     lambda x: (sympy.Max if isinstance(x, TorchMax) else sympy.Min)(*x.args))


def kernel_expr(kb, scalars: dict, bound: set, e):
    """`e` as a kernel expression, its free DynDims registered as scalar parameters of `kb` (in
    `scalars`); names the kernel binds itself (`bound`: lets, loop variables) are not parameters."""
    e = normalize_expr(sympy.sympify(e))
    for s in sorted(e.free_symbols, key=lambda s: s.name):
        if s.name not in scalars and s.name not in bound:
            scalars[s.name] = kb.scalar(s.name)
    return e


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


@dataclass
class _Col:
    """The current column window: first column and valid width (expressions)."""

    c0: object
    vc: object


class KernelTiler:
    """Emits one kernel through KernelBuilder; `TILE_RULES` emit each node's instructions."""

    def __init__(self, plan: KernelPlan, metas: dict, name: str, graph: str, R: int, C: int, align: int = 16):
        self.plan, self.metas, self.R, self.C = plan, metas, R, C
        self.RP = _round_up(R, align)     # per-row tiles: whole 32-byte blocks of the narrowest type
        # With a transposed (DN) access, full tiles take RP rows so TMOV sees equal capacities.
        accesses = list(plan.loads.values()) + list(plan.stores.values())
        transposed = any(not _is(a.strides[-1], 1) and not _is(a.strides[-1], 0) for a in accesses)
        self.full_rows = self.RP if transposed and R > 1 else R
        self.kb = KernelBuilder(name, graph=graph, pass_name="lowering.vector",
                                description=self._describe())
        self.counter = 0
        self.values: dict[str, TileVal] = {}      # value name -> tile, valid in the current scope
        self.row_values: dict[str, TileVal] = {}  # per-row values (live across column tiles)
        self.params: dict[str, str] = {}          # buffer -> kernel tensor parameter name
        self.scalars: dict[str, sympy.Symbol] = {}
        self.bound: set[str] = {"t"}               # names the kernel binds: lets, loop variables
        self._row_stored: set[str] = set()

    def _describe(self) -> str:
        return "; ".join(f"{n.name} = {getattr(n.target, '__name__', n.target)}" for n in self.plan.nodes)[:300]

    # -- names, tiles, scalars ---------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """A new tile name; the `tl<n>_` prefix keeps tiles apart from tensor parameters (graph
        value names such as `_to_copy_1`)."""
        self.counter += 1
        return f"tl{self.counter}_{c_identifier(base).lstrip('_')[:24]}"

    def _expr(self, e):
        return kernel_expr(self.kb, self.scalars, self.bound, e)

    def let(self, name: str, value):
        self.bound.add(name)
        return self.kb.let(name, value)

    def tile(self, form: str, dtype=F32, base: str = "t") -> TileVal:
        name = self.fresh(base)
        if form == "full":
            self.kb.tile(name, Vec, dtype, self.full_rows, self.C, self.vr, self.col.vc)
            return TileVal(name, "full", dtype=dtype)
        if form == "col":
            self.kb.tile(name, Vec, dtype, 1, self.C, 1, self.col.vc)
            return TileVal(name, "col", dtype=dtype)
        self.kb.tile(name, Vec, dtype, self.RP, 1, self.vr, 1, Layout.ColMajor)
        alias = name + "_r"
        self.kb.tile(alias, Vec, dtype, 1, self.RP, 1, self.vr)
        self.kb.emit("TRESHAPE", alias, name)
        return TileVal(name, "row", alias, dtype=dtype)

    def mask(self, form: str) -> str:
        """A u8 compare mask for values of `form` (one bit per element of the `vec` tile)."""
        rows, cols, vr, vc = {"full": (self.full_rows, self.C, self.vr, self.col.vc),
                              "col": (1, self.C, 1, self.col.vc), "row": (1, self.RP, 1, self.vr)}[form]
        name = self.fresh("mask")
        self.kb.tile(name, Vec, U8, rows, _round_up(max(1, -(-cols // 8)), 32), vr, ceil_div(vc, 8))
        return name

    def sel_tmp(self, dtype) -> str:
        """The scratch tile TSEL/TSELS take on A2A3."""
        name = self.fresh("sel_tmp")
        self.kb.tile(name, Vec, dtype, 1, 32 // dtype.itemsize * 2, 1, 32 // dtype.itemsize * 2)
        return name

    def iota(self, form: str, start) -> TileVal:
        """int32 positions start + k along the `vec` tile of a col or row value (TCI)."""
        val = self.tile(form, I32, base="pos")
        self.emit("TCI", val.vec, start, descending=False)      # start: the tile's r0 or c0
        return val

    def emit(self, op: str, *operands, **attrs):
        return self.kb.emit(op, *operands, **attrs)

    # -- forms -------------------------------------------------------------------------------
    def form_of(self, dmap: tuple) -> str:
        has_row = self.plan.rank - 2 in dmap
        has_col = self.plan.col in dmap
        return "full" if has_row and has_col else "col" if has_col else "row"

    # -- loads and stores --------------------------------------------------------------------
    def param(self, buffer: str, output: bool = False) -> str:
        if buffer not in self.params:
            meta = self.metas[buffer]
            name = c_identifier(buffer)
            self.params[buffer] = name
            self.kb.tensor(name, elem_type(meta.dtype), tuple(self._expr(s) for s in meta.shape),
                           tuple(self._expr(s) for s in meta.stride), output=output)
        return self.params[buffer]

    def _offset(self, access: Access):
        off = self._expr(access.offset)
        for k, idx in enumerate(self.outer_idx):
            off = off + idx * self._expr(access.strides[k])
        off = off + self.r0 * self._expr(access.strides[-2]) + self.col.c0 * self._expr(access.strides[-1])
        return off

    def load(self, value: str, dmap: tuple) -> TileVal:
        key = (value, dmap)
        if key in self.values:
            return self.values[key]
        access = self.plan.loads[key]
        meta = self.metas[access.buffer]
        storage = elem_type(meta.dtype)
        form = self.form_of(dmap)
        gm = self.param(access.buffer)
        row_stride, col_stride = (self._expr(s) for s in access.strides[-2:])
        off = self._offset(access)
        if form == "full" and _is(col_stride, 0):
            # an expanded buffer (`expand(tangents, [T, D])` of a backward graph, `x.expand(3, ...)`)
            # read across its expanded dim: one value per row, broadcast over the columns
            raw = self.tile("row", storage, base=value)
            self.emit("TLOAD", raw.name, self.kb.column_view(gm, off, self.vr, row_stride))
            return self._loaded(key, meta, raw, storage, full=True)
        raw = self.tile(form, storage, base=value) if _is(col_stride, 1) or form == "row" else None
        if form == "full" and not _is(col_stride, 1) and self.R == 1:
            raw = self._load_strided_row(value, storage, gm, off, col_stride, "full")
        elif form == "full" and not _is(col_stride, 1):
            raw = self._load_transposed(value, storage, gm, off, row_stride, col_stride)
        elif form == "full":
            self.emit("TLOAD", raw.name, self.kb.view(gm, off, self.vr, self.col.vc, row_stride), prefetch_next=True)
        elif form == "col" and not _is(col_stride, 1):
            raw = self._load_strided_row(value, storage, gm, off, col_stride, "col")
        elif form == "col":
            self.emit("TLOAD", raw.name, self.kb.view(gm, off, 1, self.col.vc, row_stride))
        else:
            self.emit("TLOAD", raw.name, self.kb.column_view(gm, off, self.vr, row_stride))
        return self._loaded(key, meta, raw, storage)

    def _loaded(self, key, meta, raw: TileVal, storage, full: bool = False) -> TileVal:
        """The loaded tile in its compute type (expanded to a full tile with `full`), remembered
        under `key` in the current scope (a load inside a column loop stays there)."""
        want = compute_type(meta.dtype)
        val = raw if storage == want else self.convert(raw, want)
        if meta.dtype == torch.bool:
            val = replace(val, boolean=True)
        if full:
            val = expand(self, val)
        self.values[key] = val
        return val

    def _colmajor(self, dtype, base: str) -> str:
        """A ColMajor [RP, C] tile (column-major storage, for DN transfers), valid [vr, vc]."""
        name = self.fresh(base + "_dn")
        self.kb.tile(name, Vec, dtype, self.RP, self.C, self.vr, self.col.vc, Layout.ColMajor)
        return name

    def _dn_row(self, dtype, base: str) -> str:
        """A ColMajor [C, 1] tile (one row's C elements, for DN transfers of a strided row), valid
        [vc, 1]; its bytes are those of a RowMajor [1, C] tile."""
        name = self.fresh(base + "_dn")
        self.kb.tile(name, Vec, dtype, self.C, 1, self.col.vc, 1, Layout.ColMajor)
        return name

    def _load_transposed(self, value, dtype, gm, off, row_stride, col_stride) -> TileVal:
        """A full operand whose rows are contiguous in memory (a transposed view): DN load into a
        ColMajor tile, then TMOV to a RowMajor tile."""
        if not _is(row_stride, 1):
            raise TilingError(f"{value}: neither rows nor columns are contiguous (strides {row_stride}, {col_stride})")
        cm = self._colmajor(dtype, value)
        self.emit("TLOAD", cm, GmView(gm, off, self.vr, self.col.vc, 1, col_stride, dn=True))
        dst = self.fresh(value + "_nd")
        self.kb.tile(dst, Vec, dtype, self.RP, self.C, self.vr, self.col.vc)
        self.emit("TMOV", dst, cm)
        return TileVal(dst, "full", dtype=dtype)

    def _load_strided_row(self, value, dtype, gm, off, col_stride, form: str) -> TileVal:
        """One row whose elements are `col_stride` apart (a per-column operand read across a
        reduced dim, or any operand of a one-row-tile kernel, e.g. `x[..., ::2]`): a DN load into
        a [C, 1] ColMajor tile, read as its [1, C] RowMajor alias (the same bytes)."""
        cm = self._dn_row(dtype, value)
        self.emit("TLOAD", cm, self.kb.column_view(gm, off, self.col.vc, col_stride))
        alias = self.fresh(value + "_row")
        self.kb.tile(alias, Vec, dtype, 1, self.C, self.vr if form == "full" else 1, self.col.vc)
        self.emit("TRESHAPE", alias, cm)
        return TileVal(alias, form, dtype=dtype)

    def gather(self, node: Node, idx: TileVal) -> TileVal:
        """The full tile of table rows idx (a row value) over the current column window."""
        table = self.plan.tables[node.name]
        meta = self.metas[node.args[0].name]        # the table as the op sees it (a view of its buffer)
        row_stride, col_stride = (self._expr(st) for st in table.strides)
        view = GmView(self.param(table.buffer), self._expr(table.offset) + self.col.c0 * col_stride,
                      self._expr(meta.shape[0]), self.col.vc, row_stride)
        return self._mgather(node, meta, view, idx, "Row")

    def take(self, node: Node, idx: TileVal) -> TileVal:
        """The full tile of elements of the (contiguous) table at the flat indices idx (a full value)."""
        table = self.plan.tables[node.name]
        meta = self.metas[node.args[0].name]
        view = GmView(self.param(table.buffer), self._expr(table.offset), self._expr(math.prod(meta.shape)), 1, 1)
        return self._mgather(node, meta, view, idx, "Elem")

    def _mgather(self, node: Node, meta, view: GmView, idx: TileVal, coalesce: str) -> TileVal:
        raw = self.tile("full", elem_type(meta.dtype), base=node.name)
        self.emit("MGATHER", raw.name, view, idx.vec, coalesce=coalesce, oob="Clamp")
        want = compute_type(meta.dtype)
        val = raw if raw.dtype == want else self.convert(raw, want)
        return replace(val, boolean=meta.dtype == torch.bool)

    def convert(self, src: TileVal, dtype, round: str = "CAST_RINT") -> TileVal:
        dst = self.tile(src.form, dtype, base="cvt")
        self.emit("TCVT", dst.vec, src.vec, round=round)
        return dst

    def store(self, value: str) -> None:
        access = self.plan.stores[value]
        meta = self.metas[access.buffer]
        val = self.get(value)
        gm = self.param(access.buffer, output=True)
        row_stride, col_stride = (self._expr(s) for s in access.strides[-2:])
        if _is(self.plan.domain[-1], 1):
            col_stride = 1           # a one-column domain (an [n, 1] value): any column stride will do
        out = val if elem_type(meta.dtype) == val.dtype else self.convert(val, elem_type(meta.dtype))
        off = self._offset(access)
        one_row = val.form == "col" or (val.form == "full" and self.R == 1)
        if one_row and not _is(col_stride, 1):
            cm = self._dn_row(out.dtype, value)          # one row, elements col_stride apart
            self.emit("TRESHAPE", cm, out.name)
            self.emit("TSTORE", self.kb.column_view(gm, off, self.col.vc, col_stride), cm)
        elif val.form == "full" and not _is(col_stride, 1):
            if not _is(row_stride, 1):
                raise TilingError(f"{value}: stored with neither rows nor columns contiguous")
            cm = self._colmajor(elem_type(meta.dtype), value)
            src = out.name
            self.emit("TMOV", cm, src)
            self.emit("TSTORE", GmView(gm, off, self.vr, self.col.vc, 1, col_stride, dn=True), cm)
        elif val.form == "full":
            self.emit("TSTORE", self.kb.view(gm, off, self.vr, self.col.vc, row_stride), out.name,
                      stream_bytes=self._expr(_numel(meta) * elem_type(meta.dtype).itemsize))
        elif val.form == "col":
            self.emit("TSTORE", self.kb.view(gm, off, 1, self.col.vc, row_stride), out.name)
        else:
            self.emit("TSTORE", self.kb.column_view(gm, off, self.vr, row_stride), out.name)

    # -- values ------------------------------------------------------------------------------
    def meta_of(self, name: str):
        return self.metas[name]

    def get(self, name: str) -> TileVal:
        if name in self.values:
            return self.values[name]
        return self.row_values[name]

    def operand(self, node: Node, arg) -> TileVal:
        """The tile of a tensor operand of `node` (in-kernel value or load)."""
        if arg.name in self.plan.dmaps:
            return self.get(arg.name)
        key = (arg.name, self.plan.uses[(node.name, arg.name)])
        if key in self.plan.loads:
            return self.load(*key)
        raise TilingError(f"{node.name}: operand {arg.name} is neither computed nor loaded here")

    # -- structure ---------------------------------------------------------------------------
    def depth(self) -> dict[str, int]:
        depth: dict[str, int] = {}
        for n in self.plan.nodes:
            d = max((depth.get(r.name, 0) for r in n.args if isinstance(r, Ref)), default=0)
            info = vector_op(n.target)
            depth[n.name] = d + (1 if info and info.kind == "reduction" else 0)
        return depth

    def build(self, tile_cols: bool) -> KernelBuilder:
        plan, kb = self.plan, self.kb
        dom = [self._expr(d) for d in plan.domain]
        rows, cols = dom[-2], dom[-1]
        n_row_tiles = ceil_div(rows, self.R)
        n_col_tiles = ceil_div(cols, self.C)
        outer = dom[:-2]
        count = math.prod(outer) * n_row_tiles * (n_col_tiles if tile_cols else 1)
        # An empty domain (a static 0 dim) runs no iteration; its divisors only need to be nonzero.
        n_col_tiles, n_row_tiles = _nonzero(n_col_tiles), _nonzero(n_row_tiles)
        if not tile_cols and _is(n_col_tiles, 1):
            self._hoist_invariant_loads(cols, len(outer))
        # chunked: each block walks a contiguous run of tiles, so memory is read in order
        with kb.tile_loop("t", count, Distribution.CHUNKED) as t:
            rest = t
            if tile_cols:
                ct = self.let("ct", emod(rest, n_col_tiles))
                rest = floor_div(rest, n_col_tiles)
            rt = self.let("rt", emod(rest, n_row_tiles))
            rest = floor_div(rest, n_row_tiles)
            self.outer_idx = []
            for k in reversed(range(len(outer))):
                self.outer_idx.insert(0, self.let(f"o{k}", emod(rest, _nonzero(outer[k]))))
                rest = floor_div(rest, _nonzero(outer[k]))
            self.r0 = self.let("r0", rt * self.R)
            self.vr = self.let("vr", emin(self.R, rows - self.r0))
            if tile_cols:
                c0 = self.let("c0", ct * self.C)
                self.col = _Col(c0, self.let("vc", emin(self.C, cols - c0)))
                self._body(self.plan.nodes, final=True)
            elif _is(n_col_tiles, 1):
                self.col = _Col(0, cols)
                self._body(self.plan.nodes, final=True)
            else:
                self._phases(n_col_tiles, cols)
        return kb

    def _hoist_invariant_loads(self, cols, n_outer: int) -> None:
        """Per-column operands that every tile reads whole (a norm's weight vector, when one tile
        spans the row): loaded once before the tile loop instead of once per tile."""
        self.col, self.r0, self.outer_idx = _Col(0, cols), 0, [0] * n_outer
        for (value, dmap), access in self.plan.loads.items():
            if self.form_of(dmap) == "col" and all(_is(st, 0) for st in access.strides[:-1]):
                self.load(value, dmap)

    def _body(self, nodes, final: bool, reduce_into: dict | None = None) -> None:
        """Emit `nodes` for the current column window; store what is stored (when final)."""
        for node in nodes:
            if node.name in self.row_values:
                continue
            TILE_RULES[_rule_key(node)](self, node, reduce_into)
            if final and node.name in self.plan.stores:
                self.store(node.name)
        if final:
            for name in self.plan.stores:
                if name in self.row_values and name not in self._row_stored:
                    self._row_stored.add(name)
                    self.store(name)

    def _phases(self, n_col_tiles, cols) -> None:
        """Multi-pass form: one column loop per reduction depth, then the final loop."""
        depth = self.depth()
        nodes = self.plan.nodes
        max_depth = max(depth.values())
        for p in range(1, max_depth + 1):
            reductions = [n for n in nodes if depth[n.name] == p and vector_op(n.target).kind == "reduction"]
            needed = _ancestors(reductions, nodes, stop=self.row_values)
            accs = {n.name: self._init_acc(n) for n in reductions}
            self.bound.add(f"j{p}")
            with self.kb.serial_loop(f"j{p}", 0, n_col_tiles) as j:
                c0 = self.let(f"c0_{p}", j * self.C)
                self.col = _Col(c0, self.let(f"vc_{p}", emin(self.C, cols - c0)))
                saved = dict(self.values)
                self._body([n for n in nodes if n.name in needed and n.name not in accs], final=False)
                self._body(reductions, final=False, reduce_into=accs)
                self.values = saved
            for n in reductions:
                self.row_values[n.name] = accs[n.name]
            self._finish_rows(depth, p)
        self.bound.add("jf")
        with self.kb.serial_loop("jf", 0, n_col_tiles) as j:
            c0 = self.let("c0_f", j * self.C)
            self.col = _Col(c0, self.let("vc_f", emin(self.C, cols - c0)))
            self._body(nodes, final=True)

    def _finish_rows(self, depth: dict, p: int) -> None:
        """Per-row values of depth p that need no column loop (pointwise on per-row values)."""
        for n in self.plan.nodes:
            if depth[n.name] == p and n.name not in self.row_values and self.form_of(self.plan.dmaps[n.name]) == "row":
                ins = [r.name for r in n.args if isinstance(r, Ref)]
                if all(i in self.row_values or (i not in self.plan.dmaps) for i in ins):
                    TILE_RULES[_rule_key(n)](self, n, None)
                    self.row_values[n.name] = self.values.pop(n.name)

    def _init_acc(self, node: Node) -> TileVal:
        dtype = node.meta.dtype
        acc = replace(self.tile("row", compute_type(dtype), base=node.name + "_acc"), boolean=dtype == torch.bool)
        self.emit("TEXPANDS", acc.vec, _identity(vector_op(node.target).reduce, dtype))
        return acc


def _numel(meta):
    return math.prod(meta.shape)


def _identity(kind: str, dtype: torch.dtype):
    """The start value of a `kind` reduction in `dtype`'s compute type."""
    if kind == "sum":
        return 0.0 if dtype.is_floating_point or dtype == torch.bool else 0
    if dtype == torch.bool:
        return 0.0 if kind == "max" else 1.0
    if dtype.is_floating_point:
        return -math.inf if kind == "max" else math.inf
    info = torch.iinfo(dtype)
    return info.min if kind == "max" else info.max


def _nonzero(n):
    return 1 if _is(n, 0) else n


def _rule_key(node: Node):
    return node.target if node.target in TILE_RULES else vector_op(node.target).kind


def _ancestors(roots, nodes, stop) -> set[str]:
    by_name = {n.name: n for n in nodes}
    out, todo = set(), [r.name for r in roots]
    while todo:
        name = todo.pop()
        for a in by_name[name].args:
            if isinstance(a, Ref) and a.name in by_name and a.name not in out and a.name not in stop:
                out.add(a.name)
                todo.append(a.name)
    return out


def tile_kernel(plan: KernelPlan, metas: dict, name: str, graph: str, capacity: TargetCapacity):
    """The planned, verified TileProgram of `plan`, and its scalar parameter names in order."""
    cols = plan.domain[-1]
    rows = plan.domain[-2]
    tile_cols = not plan.has_reduction
    static_cols = cols if isinstance(cols, int) else None
    # a row of every tile spans whole 32-byte blocks: 32 u8 (bool) columns, 16 bf16 or f32 ones
    itemsize = min([elem_type(metas[a.buffer].dtype).itemsize for a in (*plan.loads.values(), *plan.stores.values())]
                   + [2])
    align = 32 // itemsize
    C = _round_up(min(static_cols, 4096), align) if static_cols else 1024
    if tile_cols:
        C = min(C, capacity.tile_cols)
    attempts = []
    # an access with neither unit column nor unit row stride (x[..., ::2]) is read a row at a time
    strided = any(not _is(a.strides[-1], 1) and not _is(a.strides[-1], 0) and not _is(a.strides[-2], 1)
                  for a in (*plan.loads.values(), *plan.stores.values()))
    while C >= 16:
        R = 1 if strided else max(1, min(64, capacity.tile_elems // C))
        if isinstance(rows, int):
            R = min(R, max(rows, 1))
        if plan.col_reductions and (R < rows or C < cols):
            raise TilingError(f"kernel {name}: a reduction over rows needs all {rows} x {cols} of the domain "
                              f"in one tile (R={R}, C={C})")
        while R >= 1:
            tiler = KernelTiler(plan, metas, name, graph, R, C, align)
            try:
                kb = tiler.build(tile_cols)
                program = read_inputs_in_place(kb.build(capacity, verify=False))
                verify_program(program, capacity)
                return program, tiler
            except PlanningError as err:
                attempts.append(f"R={R} C={C}: {err}")
                if plan.col_reductions:
                    break
                R //= 2
        C //= 2
    raise TilingError(f"kernel {name}: no tile size fits the target's memory:\n  " + "\n  ".join(attempts[-3:]))
