"""TileProgram: one SPMD kernel as tiles, tile instructions and tile loops (immutable).

A kernel is launched once with `block_num` blocks. Each block runs the same `body`; a `TileLoop`
deals its iterations to blocks (round-robin, or contiguous chunks), `SerialLoop`s run inside a
block, `Let` binds a readable name to a shape expression, `TileDecl` declares a tile (static
capacity, dynamic valid region) at the point where its valid region is known, and `TileInst` is
one PTO instruction. Tile placement (the `TASSIGN` byte offset of each tile) is planned by
`planner.plan_tiles` and stored in `TileProgram.placement`.

Scalars available to every expression: the kernel's scalar parameters, `block_idx`, `block_num`,
loop variables and `Let` names in scope; in a mixed kernel (one with pipes), also `subblock_idx`
and `subblock_num` (which vector core of the cluster runs it, and how many share the work; the
cube core sees 0).

A mixed kernel (cube and vector work in one kernel, DESIGN.md "Lowering to tiles") splits its body
into `Stage`s: a cube stage runs on the cluster's cube core, a vector stage on its vector cores.
They exchange tiles through a `Pipe`: a ring of `slot_num` slots in this block's slice of a gm-pipe
tensor parameter. The cube stage `TALLOC`s a slot, `TSTORE`s into it and `TPUSH`es it; the vector
stage `TPOP`s it, `TLOAD`s from it and `TFREE`s it. While a slot is held, GmViews name it by the
pipe's slot name (`Pipe.slot(role)`) instead of a tensor parameter.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Iterator, Union

import sympy

from pto_dynamo.lowering.tile.dtypes import ElemType
from pto_dynamo.lowering.tile.expr import Expr, as_expr, sym

BLOCK_IDX = sym("block_idx")
BLOCK_NUM = sym("block_num")
SUBBLOCK_IDX = sym("subblock_idx")
SUBBLOCK_NUM = sym("subblock_num")


class TileLoc(enum.Enum):
    """Where a tile lives: the on-chip memory of its `pto::TileType`."""

    Vec = "UB"       # unified buffer, vector core
    Mat = "L1"       # cube L1
    Left = "L0A"     # cube left operand
    Right = "L0B"    # cube right operand
    Acc = "L0C"      # cube accumulator

    @property
    def memory(self) -> str:
        return self.value


class Layout(enum.Enum):
    """Block layout of a tile (`BLayout`): Vec tiles are RowMajor, per-row values ColMajor R x 1."""

    RowMajor = "RowMajor"
    ColMajor = "ColMajor"


class Distribution(enum.Enum):
    """How a TileLoop's iterations are dealt to blocks."""

    CYCLIC = "cyclic"    # for t in range(block_idx, n, block_num)
    CHUNKED = "chunked"  # block b owns [b * ceil(n / block_num), min(n, (b + 1) * ceil(n / block_num)))


@dataclass(frozen=True)
class GlobalParam:
    """A global-memory tensor parameter: name, element type, shape and strides (in elements) as
    expressions over the kernel's scalar parameters; `is_output` when the kernel writes it."""

    name: str
    dtype: ElemType
    shape: tuple[Expr, ...]
    strides: tuple[Expr, ...]
    is_output: bool = False

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(as_expr(s) for s in self.shape))
        object.__setattr__(self, "strides", tuple(as_expr(s) for s in self.strides))
        if len(self.shape) != len(self.strides):
            raise ValueError(f"tile IR: tensor {self.name}: shape {self.shape} and strides {self.strides} differ in rank")


@dataclass(frozen=True)
class GmView:
    """A 2-D window of a global tensor: `rows x cols` elements starting `offset` elements from
    its base, `row_stride` elements between rows, `col_stride` between columns.

    `dn=False` is an ND (row-major) view and needs `col_stride == 1`; `dn=True` is a DN
    (column-major) view with `row_stride == 1`, used to move a per-row vector in and out of an
    `R x 1` ColMajor tile.
    """

    tensor: str
    offset: Expr
    rows: Expr
    cols: Expr
    row_stride: Expr
    col_stride: Expr = sympy.Integer(1)
    dn: bool = False

    def __post_init__(self):
        for f in ("offset", "rows", "cols", "row_stride", "col_stride"):
            object.__setattr__(self, f, as_expr(getattr(self, f)))

    @property
    def is_nd(self) -> bool:
        return not self.dn

    def exprs(self) -> tuple[Expr, ...]:
        return (self.offset, self.rows, self.cols, self.row_stride, self.col_stride)


@dataclass(frozen=True)
class TileDecl:
    """Declares tile `name`: location, element type, static capacity `rows x cols`, layout, and the
    valid region `valid_rows x valid_cols` (expressions evaluated where the declaration stands)."""

    name: str
    loc: TileLoc
    dtype: ElemType
    rows: int
    cols: int
    valid_rows: Expr
    valid_cols: Expr
    layout: Layout = Layout.RowMajor

    def __post_init__(self):
        object.__setattr__(self, "valid_rows", as_expr(self.valid_rows))
        object.__setattr__(self, "valid_cols", as_expr(self.valid_cols))

    @property
    def nbytes(self) -> int:
        return self.rows * self.cols * self.dtype.itemsize

    @property
    def boxed(self) -> bool:
        """Cube tiles (Mat/Left/Right/Acc) use fractal boxes; Vec tiles are unboxed."""
        return self.loc is not TileLoc.Vec


@dataclass(frozen=True)
class FloatImm:
    """A scalar operand: a float/int constant, or an expression over scalars evaluated as float."""

    value: Union[float, int, Expr]

    def is_const(self) -> bool:
        return isinstance(self.value, (int, float))


Operand = Union[str, GmView, FloatImm]   # tile name | global window | scalar


@dataclass(frozen=True)
class TileInst:
    """One PTO instruction: opcode, operands written (`outs`), read (`ins`), scratch tiles
    (`tmps`) and attributes (`attrs`, e.g. the rounding mode of TCVT) as sorted (key, value) pairs."""

    op: str
    outs: tuple[Operand, ...]
    ins: tuple[Operand, ...] = ()
    tmps: tuple[str, ...] = ()
    attrs: tuple[tuple[str, object], ...] = ()

    def attr(self, key: str, default=None):
        return dict(self.attrs).get(key, default)

    def tiles(self) -> Iterator[str]:
        """Names of every tile operand."""
        for o in (*self.outs, *self.ins, *self.tmps):
            if isinstance(o, str):
                yield o

    def with_attrs(self, **changes) -> "TileInst":
        """This instruction with the given attrs set (a value of None removes one), still sorted."""
        attrs = dict(self.attrs)
        for key, value in changes.items():
            if value is None:
                attrs.pop(key, None)
            else:
                attrs[key] = value
        return replace(self, attrs=tuple(sorted(attrs.items(), key=lambda kv: kv[0])))


@dataclass(frozen=True)
class Let:
    """`const int64_t name = value;` — a readable name for a shape expression."""

    var: sympy.Symbol
    value: Expr

    def __post_init__(self):
        object.__setattr__(self, "value", as_expr(self.value))


@dataclass(frozen=True)
class TileLoop:
    """The SPMD loop: iterations `0..count-1`, dealt to blocks by `distribution`."""

    var: sympy.Symbol
    count: Expr
    body: tuple["Stmt", ...]
    distribution: Distribution = Distribution.CYCLIC

    def __post_init__(self):
        object.__setattr__(self, "count", as_expr(self.count))


@dataclass(frozen=True)
class SerialLoop:
    """A loop every block runs in full: `for var in range(start, stop, step)`."""

    var: sympy.Symbol
    start: Expr
    stop: Expr
    step: int
    body: tuple["Stmt", ...]

    def __post_init__(self):
        object.__setattr__(self, "start", as_expr(self.start))
        object.__setattr__(self, "stop", as_expr(self.stop))


class Role(enum.Enum):
    """The core of an A2A3 cluster a Stage runs on."""

    CUBE = "cube"       # AIC: Mat/Left/Right/Acc tiles, TMATMUL
    VECTOR = "vector"   # AIV0 and AIV1: Vec tiles; each takes its share of rows by subblock_idx


@dataclass(frozen=True)
class Stage:
    """Statements only the cores of `role` run (the others skip them). A tile that several stages
    of one core share (an online softmax's running max) is declared before them, outside any stage."""

    role: Role
    body: tuple["Stmt", ...]


class Direction(enum.Enum):
    """Which way a pipe's slots flow (`Direction::DIR_C2V` / `DIR_V2C`)."""

    C2V = "DIR_C2V"     # the cube core produces (an accumulator tile), the vector cores consume
    V2C = "DIR_V2C"     # the vector cores produce (each its rows of the slot), the cube consumes


@dataclass(frozen=True)
class Pipe:
    """A cube <-> vector FIFO (`TPipe`) over this block's slice of gm-pipe tensor `tensor`.

    The slice starts `base` elements into the tensor and holds `slot_num` slots of `slot_elems`
    elements. Sharding: `base` must be `block_idx * per_block_elems` (or any other placement in
    which no two blocks' slices overlap); the verifier proves it and the cpu runtime checks every
    slot it hands out against the block's own slice.
    """

    name: str
    tensor: str
    dtype: ElemType
    slot_elems: int
    slot_num: int
    base: Expr
    direction: Direction = Direction.C2V

    def __post_init__(self):
        object.__setattr__(self, "base", as_expr(self.base))

    @property
    def producer(self) -> Role:
        """The side that TALLOCs and TPUSHes slots; the other TPOPs and TFREEs them."""
        return Role.CUBE if self.direction is Direction.C2V else Role.VECTOR

    @property
    def consumer(self) -> Role:
        return Role.VECTOR if self.direction is Direction.C2V else Role.CUBE

    @property
    def per_block_elems(self) -> int:
        return self.slot_elems * self.slot_num

    def slot(self, role: Role) -> str:
        """The name GmViews use for the slot this pipe's `role` side currently holds."""
        return f"{self.name}_slot_{'c' if role is Role.CUBE else 'v'}"


Stmt = Union[TileDecl, TileInst, Let, TileLoop, SerialLoop, Stage]


@dataclass(frozen=True)
class TileProgram:
    """One kernel.

    name:        C identifier saying what it holds (`pto_vec_add_rmsnorm_0`).
    params:      global tensors, in argument order.
    scalars:     int64 scalar parameters (dims, strides), in argument order after the tensors;
                 `block_num` follows them implicitly.
    body:        statements run by every block.
    placement:   tile name -> TASSIGN byte offset in the tile's memory (filled by the planner).
    graph, pass_name, description: provenance for the generated file's header comment.
    """

    name: str
    params: tuple[GlobalParam, ...]
    scalars: tuple[sympy.Symbol, ...]
    body: tuple[Stmt, ...]
    placement: tuple[tuple[str, int], ...] = ()
    graph: str = "<hand-built>"
    pass_name: str = "tile"
    description: str = ""
    kind: str = "vector"
    pipes: tuple[Pipe, ...] = ()

    def param(self, name: str) -> GlobalParam:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"tile IR: kernel {self.name} has no tensor parameter {name!r}")

    def pipe(self, name: str) -> Pipe:
        for p in self.pipes:
            if p.name == name:
                return p
        raise KeyError(f"tile IR: kernel {self.name} has no pipe {name!r}")

    def slots(self) -> dict[str, tuple[Pipe, Role]]:
        """Slot name -> (its pipe, the role that holds it)."""
        return {p.slot(r): (p, r) for p in self.pipes for r in Role}

    def gm_dtype(self, name: str) -> ElemType:
        """Element type of a GmView's tensor: a tensor parameter or a pipe slot."""
        slot = self.slots().get(name)
        return slot[0].dtype if slot else self.param(name).dtype

    def offsets(self) -> dict[str, int]:
        return dict(self.placement)

    def tile_decls(self) -> dict[str, TileDecl]:
        """Every TileDecl of the body by name (a name is declared once)."""
        return {s.name: s for s in walk(self.body) if isinstance(s, TileDecl)}

    def instructions(self) -> list[TileInst]:
        return [s for s in walk(self.body) if isinstance(s, TileInst)]

    def aliases(self) -> dict[str, str]:
        """Tiles bound by TRESHAPE (no storage of their own) -> the tile whose bytes they alias."""
        return alias_map(self.body)

    def aliased(self) -> set[str]:
        """Every tile on either side of a TRESHAPE alias (the alias and the tile it aliases)."""
        aliases = self.aliases()
        return set(aliases) | set(aliases.values())


def alias_map(body: tuple["Stmt", ...]) -> dict[str, str]:
    """alias tile -> root tile (following chains of TRESHAPE)."""
    direct = {s.outs[0]: s.ins[0] for s in walk(body) if isinstance(s, TileInst) and s.op == "TRESHAPE"}
    out = {}
    for a, src in direct.items():
        seen = {a}
        while src in direct and src not in seen:
            seen.add(src)
            src = direct[src]
        out[a] = src
    return out


def children(s: Stmt) -> tuple[Stmt, ...]:
    """The statements nested in `s` (a loop's or a stage's body), else ()."""
    return s.body if isinstance(s, (TileLoop, SerialLoop, Stage)) else ()


def map_insts(body: tuple[Stmt, ...], fn) -> tuple[Stmt, ...]:
    """`body` with every TileInst replaced by fn(inst), nested loops and stages rebuilt."""
    def one(s: Stmt) -> Stmt:
        if isinstance(s, TileInst):
            return fn(s)
        if isinstance(s, (TileLoop, SerialLoop, Stage)):
            return replace(s, body=map_insts(s.body, fn))
        return s
    return tuple(one(s) for s in body)


def walk(body: tuple[Stmt, ...]) -> Iterator[Stmt]:
    """Every statement of `body`, depth first, loops and stages before their bodies."""
    for s in body:
        yield s
        yield from walk(children(s))
