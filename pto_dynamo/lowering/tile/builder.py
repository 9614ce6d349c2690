"""KernelBuilder: write a TileProgram as straight-line Python with `with` blocks for loops.

    kb = KernelBuilder("pto_vec_add_0", description="z = x + y")
    T = kb.scalar("T")
    kb.tensor("x", F32, (T, 64), (64, 1)); kb.tensor("z", F32, (T, 64), (64, 1), output=True)
    with kb.tile_loop("t", ceil_div(T, 16)) as t:
        vr = kb.let("vr", emin(16, T - 16 * t))
        kb.tile("tx", TileLoc.Vec, F32, 16, 64, vr, 64)
        kb.emit("TLOAD", "tx", kb.view("x", 16 * 64 * t, vr, 64, 64))
        ...
    program = kb.build(capacity)        # plans tile offsets and verifies
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import sympy

from pto_dynamo.lowering.tile.dtypes import ElemType, elem_type
from pto_dynamo.lowering.tile.expr import ExprLike, as_expr, sym
from pto_dynamo.lowering.tile.ir import (BLOCK_IDX, Direction, Distribution, FloatImm, GlobalParam, GmView, Layout, Let,
                                         Pipe, Role, SerialLoop, Stage, Stmt, TileDecl, TileInst, TileLoc,
                                         TileLoop, TileProgram)
from pto_dynamo.lowering.tile.specs import SCALAR, op_spec


class KernelBuilder:
    """Accumulates parameters and statements; `build()` returns the frozen TileProgram."""

    def __init__(self, name: str, *, graph: str = "<hand-built>", pass_name: str = "tile",
                 description: str = "", kind: str = "vector"):
        self.name, self.graph, self.pass_name = name, graph, pass_name
        self.description, self.kind = description, kind
        self._params: list[GlobalParam] = []
        self._scalars: list[sympy.Symbol] = []
        self._pipes: list[Pipe] = []
        self._stack: list[list[Stmt]] = [[]]

    # --- parameters ---------------------------------------------------------------------
    def scalar(self, name: str) -> sympy.Symbol:
        """Add an int64 scalar parameter (a dim or a stride) and return its symbol."""
        s = sym(name)
        self._scalars.append(s)
        return s

    def tensor(self, name: str, dtype: ElemType, shape, strides, *, output: bool = False) -> str:
        """Add a global tensor parameter; returns its name."""
        self._params.append(GlobalParam(name, elem_type(dtype), tuple(shape), tuple(strides), output))
        return name

    def is_output(self, tensor: str) -> bool:
        """Whether tensor parameter `tensor` is written by the kernel."""
        return any(g.is_output for g in self._params if g.name == tensor)

    def pipe(self, name: str, dtype: ElemType, slot_elems: int, slot_num: int = 2,
             direction: Direction = Direction.C2V) -> Pipe:
        """A cube <-> vector pipe over its own gm-pipe tensor parameter (`gm_<name>`), sharded per
        block: block b's slice starts at b * slot_num * slot_elems."""
        tensor = f"gm_{name}"
        per_block = slot_elems * slot_num
        self.tensor(tensor, dtype, (per_block * sym("block_num"),), (1,), output=True)
        pipe = Pipe(name, tensor, elem_type(dtype), slot_elems, slot_num, BLOCK_IDX * per_block, direction)
        self._pipes.append(pipe)
        return pipe

    # --- statements ---------------------------------------------------------------------
    def _add(self, stmt: Stmt) -> None:
        self._stack[-1].append(stmt)

    def let(self, name: str, value: ExprLike) -> sympy.Symbol:
        """Bind `name` to an expression; returns the symbol to use in later expressions."""
        s = sym(name)
        self._add(Let(s, as_expr(value)))
        return s

    def tile(self, name: str, loc: TileLoc, dtype, rows: int, cols: int, valid_rows: ExprLike,
             valid_cols: ExprLike, layout: Layout = Layout.RowMajor) -> str:
        """Declare a tile here; returns its name."""
        self._add(TileDecl(name, loc, elem_type(dtype), rows, cols, valid_rows, valid_cols, layout))
        return name

    def view(self, tensor: str, offset: ExprLike, rows: ExprLike, cols: ExprLike, row_stride: ExprLike,
             col_stride: ExprLike = 1) -> GmView:
        """An ND (row-major) 2-D window of a tensor parameter (see GmView)."""
        return GmView(tensor, offset, rows, cols, row_stride, col_stride)

    def column_view(self, tensor: str, offset: ExprLike, rows: ExprLike, stride: ExprLike = 1) -> GmView:
        """A DN window of `rows` elements `stride` apart, one per row of an `R x 1` ColMajor tile."""
        return GmView(tensor, offset, rows, 1, stride, rows, dn=True)

    def emit(self, op: str, *operands, **attrs) -> TileInst:
        """Append instruction `op`; operands in spec order: outs, ins, then scratch tiles.

        Numbers and non-tile expressions in scalar positions become FloatImm.
        """
        spec = op_spec(op)
        n_out, n_in = len(spec.outs), len(spec.ins)
        if len(operands) != n_out + n_in + spec.n_tmps:
            raise TypeError(f"{op} takes {n_out} output(s), {n_in} input(s) and {spec.n_tmps} scratch "
                            f"tile(s); got {len(operands)} operands")
        kinds = spec.outs + spec.ins
        ops = [FloatImm(o) if kind == SCALAR and not isinstance(o, FloatImm) else o
               for kind, o in zip(kinds, operands[:n_out + n_in])]
        inst = TileInst(op, tuple(ops[:n_out]), tuple(ops[n_out:]), tuple(operands[n_out + n_in:]),
                        tuple(sorted(attrs.items())))
        self._add(inst)
        return inst

    @contextlib.contextmanager
    def tile_loop(self, var: str, count: ExprLike,
                  distribution: Distribution = Distribution.CYCLIC) -> Iterator[sympy.Symbol]:
        """The SPMD loop over `count` tiles; yields the loop variable."""
        s = sym(var)
        self._stack.append([])
        yield s
        body = self._stack.pop()
        self._add(TileLoop(s, as_expr(count), tuple(body), distribution))

    @contextlib.contextmanager
    def serial_loop(self, var: str, start: ExprLike, stop: ExprLike, step: int = 1) -> Iterator[sympy.Symbol]:
        """A loop each block runs in full; yields the loop variable."""
        s = sym(var)
        self._stack.append([])
        yield s
        body = self._stack.pop()
        self._add(SerialLoop(s, as_expr(start), as_expr(stop), step, tuple(body)))

    @contextlib.contextmanager
    def stage(self, role: Role) -> Iterator[None]:
        """Statements only the cores of `role` run (a mixed kernel's cube or vector stage)."""
        self._stack.append([])
        yield
        body = self._stack.pop()
        self._add(Stage(role, tuple(body)))

    def build(self, capacity=None, *, verify: bool = True) -> TileProgram:
        """The TileProgram; with a capacity, exact conversion round trips are dropped and
        instruction pairs the ISA does as one merged (peephole.py), V-ops fused with the reduction,
        conversion or add that reads their result (fuse.py), loads from held pipe slots
        that may read in place marked so (in_place_loads.py), as are results stored into held
        slots (slot_stores.py), tiles are planned and the program verified."""
        if len(self._stack) != 1:
            raise RuntimeError("KernelBuilder.build() inside an open loop")
        program = TileProgram(self.name, tuple(self._params), tuple(self._scalars), tuple(self._stack[0]),
                              graph=self.graph, pass_name=self.pass_name, description=self.description,
                              kind=self.kind, pipes=tuple(self._pipes))
        if capacity is not None:
            from pto_dynamo.lowering.tile.fuse import fuse_vops
            from pto_dynamo.lowering.tile.in_place_loads import read_slots_in_place
            from pto_dynamo.lowering.tile.peephole import drop_round_trips, merge_pairs
            from pto_dynamo.lowering.tile.planner import plan_tiles
            from pto_dynamo.lowering.tile.slot_stores import store_results_in_slots
            from pto_dynamo.lowering.tile.verifier import verify_program
            program = fuse_vops(merge_pairs(drop_round_trips(program)))
            program = plan_tiles(store_results_in_slots(read_slots_in_place(program)), capacity)
            if verify:
                verify_program(program, capacity)
        return program

