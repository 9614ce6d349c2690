"""The reference interpreter of TileProgram: the living semantics of the tile IR.

It runs a kernel block by block (block 0 .. block_num-1, one after another) on real torch
tensors, exactly as the SPMD launch would, and is the oracle for the renderer tests:
- a tile is a `rows x cols` tensor of its element type; its valid region is evaluated where the
  tile is declared; instructions read and write only valid regions (dst's, or src's for
  reductions), like the CPU header;
- fp16/bf16 are storage types: every instruction computes in fp32 and rounds its result once into
  the destination type;
- TLOAD first fills the whole tile with zeros (the CPU simulator's pad) and then copies the window;
- tile storage persists across loop iterations of a block (an arena), and starts as NaN (floats)
  so that reading a never-written element shows up in results;
- global views are bounds-checked against the tensor's storage (an out-of-bounds window is an IR
  bug that C++ would not report), views of a pipe slot against the slot;
- a mixed kernel runs as the fused cpu mode does: each block plays its cube stage and then its
  vector stage in program order, as the only vector core (`subblock_num` = 1); pipe slots form a
  ring in the block's gm-pipe slice and every slot handed out is checked to lie in the block's
  own slice (interp_pipes.py).
Per-opcode behaviour lives in interp_rules.py, registered with `@interp_rule`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch

from pto_dynamo.lowering.tile import interp_pipes, interp_rules  # noqa: F401  (registers the per-op rules)
from pto_dynamo.lowering.tile.dtypes import compute_dtype
from pto_dynamo.lowering.tile.expr import evaluate, evaluate_float
from pto_dynamo.lowering.tile.ir import (BLOCK_IDX, BLOCK_NUM, SUBBLOCK_IDX, SUBBLOCK_NUM, Distribution, FloatImm,
                                         GmView, Layout, Let, SerialLoop, Stage, Stmt, TileDecl, TileInst,
                                         TileLoc, TileLoop, TileProgram)
from pto_dynamo.lowering.tile.printer import fmt_inst
from pto_dynamo.lowering.tile.region import DeviceRegion
from pto_dynamo.lowering.tile.specs import INTERP_RULES, lookup_rule


class InterpreterError(RuntimeError):
    """The program did something undefined (out-of-bounds view, undeclared tile, ...)."""


@dataclass
class TileState:
    """A tile's bytes as a flat tensor in the device's element order (row-major, or column-major
    for ColMajor Vec tiles, so that TRESHAPE aliases exactly), and its current valid region."""

    decl: TileDecl
    flat: torch.Tensor
    valid_rows: int = 0
    valid_cols: int = 0

    @property
    def storage(self) -> torch.Tensor:
        """The logical rows x cols view."""
        d = self.decl
        if d.layout is Layout.ColMajor and d.loc is TileLoc.Vec:
            return self.flat.view(d.cols, d.rows).t()
        return self.flat.view(d.rows, d.cols)


@dataclass
class Machine:
    """One block's state: scalar environment, tiles, and the kernel's tensors."""

    program: TileProgram
    tensors: Mapping[str, torch.Tensor]
    env: dict[str, int]
    tiles: dict[str, TileState] = field(default_factory=dict)
    pipes: dict[str, "interp_pipes.PipeState"] = field(default_factory=dict)
    slot_elems: dict[str, int] = field(default_factory=dict)    # held slot name -> its length

    # --- tiles ------------------------------------------------------------------------
    def state(self, name: str) -> TileState:
        try:
            return self.tiles[name]
        except KeyError:
            raise InterpreterError(f"kernel {self.program.name}: tile {name} used before its declaration") from None

    def read(self, name: str) -> torch.Tensor:
        """The valid region of tile `name` in its compute dtype (fp32 for floats)."""
        st = self.state(name)
        return st.storage[: st.valid_rows, : st.valid_cols].to(compute_dtype(st.decl.dtype))

    def read_region(self, name: str, rows: int, cols: int) -> torch.Tensor:
        st = self.state(name)
        return st.storage[:rows, :cols].to(compute_dtype(st.decl.dtype))

    def write(self, name: str, value: torch.Tensor, rows: int | None = None, cols: int | None = None) -> None:
        """Store `value` into tile `name` (its valid region unless rows/cols given), rounding once."""
        st = self.state(name)
        rows = st.valid_rows if rows is None else rows
        cols = st.valid_cols if cols is None else cols
        st.storage[:rows, :cols] = value.expand(rows, cols).to(st.storage.dtype)

    def valid(self, name: str) -> tuple[int, int]:
        st = self.state(name)
        return st.valid_rows, st.valid_cols

    # --- scalars and views ------------------------------------------------------------
    def scalar(self, imm: FloatImm, dtype: torch.dtype | None = None) -> float:
        """A scalar operand; rounded to `dtype` first when given (a bf16 tile's scalar is bf16)."""
        value = float(imm.value) if imm.is_const() else evaluate_float(imm.value, self.env)
        if dtype is not None and dtype.is_floating_point:
            value = float(torch.tensor(value, dtype=dtype))
        return value

    def view(self, v: GmView) -> torch.Tensor:
        """The torch view of a global window, bounds-checked."""
        t = self.tensors.get(v.tensor)
        if t is None:
            raise InterpreterError(f"kernel {self.program.name}: view of {v.tensor}, which is not bound here "
                                   f"(a pipe slot outside TALLOC..TPUSH / TPOP..TFREE?)")
        off, rows, cols, rs, cs = (evaluate(e, self.env) for e in v.exprs())
        if rows == 0 or cols == 0:
            return t.as_strided((rows, cols), (rs, cs), t.storage_offset())
        last = off + (rows - 1) * rs + (cols - 1) * cs
        avail = self.slot_elems.get(v.tensor, t.untyped_storage().nbytes() // t.element_size() - t.storage_offset())
        if off < 0 or last >= avail:
            raise InterpreterError(
                f"kernel {self.program.name}: view of {v.tensor} at offset {off}, {rows}x{cols}, strides ({rs}, {cs}) "
                f"reaches element {last} of a buffer of {avail} elements (block {self.env[BLOCK_IDX.name]}, "
                f"env {self.env})")
        return t.as_strided((rows, cols), (rs, cs), t.storage_offset() + off)


def _run(m: Machine, body: Sequence[Stmt]) -> None:
    for s in body:
        if isinstance(s, TileInst):
            try:
                lookup_rule(INTERP_RULES, s.op, "interpreter")(s, m)
            except InterpreterError:
                raise
            except Exception as exc:
                raise InterpreterError(f"kernel {m.program.name}: `{fmt_inst(s)}` failed: {exc}") from exc
        elif isinstance(s, TileDecl):
            st = m.tiles.get(s.name)
            if st is None:
                flat = torch.empty(s.rows * s.cols, dtype=s.dtype.torch_dtype)
                flat.fill_(float("nan") if s.dtype.is_float else 0)
                st = m.tiles[s.name] = TileState(s, flat)
            st.valid_rows, st.valid_cols = evaluate(s.valid_rows, m.env), evaluate(s.valid_cols, m.env)
            if not (0 <= st.valid_rows <= s.rows and 0 <= st.valid_cols <= s.cols):
                raise InterpreterError(f"kernel {m.program.name}: tile {s.name} valid region "
                                       f"{st.valid_rows}x{st.valid_cols} exceeds its capacity {s.rows}x{s.cols}")
        elif isinstance(s, Let):
            m.env[s.var.name] = evaluate(s.value, m.env)
        elif isinstance(s, TileLoop):
            _run_loop(m, s.var.name, _tile_range(s, m.env), s.body)
        elif isinstance(s, SerialLoop):
            r = range(evaluate(s.start, m.env), evaluate(s.stop, m.env), s.step)
            _run_loop(m, s.var.name, r, s.body)
        elif isinstance(s, Stage):
            _run(m, s.body)
        else:
            raise InterpreterError(f"unknown statement {s!r}")


def _run_loop(m: Machine, var: str, iterations: range, body) -> None:
    outer = dict(m.env)
    for i in iterations:
        m.env = dict(outer)
        m.env[var] = i
        _run(m, body)
    m.env = outer


def _tile_range(loop: TileLoop, env: Mapping[str, int]) -> range:
    """The iterations of an SPMD loop that block `block_idx` runs."""
    n, b, nb = evaluate(loop.count, env), env[BLOCK_IDX.name], env[BLOCK_NUM.name]
    if loop.distribution is Distribution.CYCLIC:
        return range(b, n, nb)
    chunk = -(-n // nb)
    return range(b * chunk, min(n, (b + 1) * chunk))


def _as_list(values, names: Sequence[str], what: str, kernel: str) -> list:
    if isinstance(values, Mapping):
        missing = [n for n in names if n not in values]
        if missing:
            raise InterpreterError(f"kernel {kernel}: missing {what} {missing}")
        return [values[n] for n in names]
    values = list(values)
    if len(values) != len(names):
        raise InterpreterError(f"kernel {kernel}: expected {len(names)} {what} ({', '.join(names)}), got {len(values)}")
    return values


def interpret(program: TileProgram, tensors, scalars, block_num: int) -> None:
    """Run `program` with `block_num` blocks; `tensors`/`scalars` as lists in parameter order or
    dicts by name. Output tensors are written in place."""
    if block_num < 1:
        raise InterpreterError(f"block_num must be >= 1, got {block_num}")
    tensor_list = _as_list(tensors, [p.name for p in program.params], "tensors", program.name)
    scalar_list = _as_list(scalars, [s.name for s in program.scalars], "scalars", program.name)
    by_name = {}
    for p, t in zip(program.params, tensor_list):
        if t.dtype != p.dtype.torch_dtype and not (p.dtype.name == "u8" and t.dtype == torch.bool):
            raise InterpreterError(f"kernel {program.name}: tensor {p.name} is {t.dtype}, expected {p.dtype.torch_dtype}")
        by_name[p.name] = t
    base_env = {s.name: int(v) for s, v in zip(program.scalars, scalar_list)}
    base_env[BLOCK_NUM.name] = block_num
    if program.pipes:          # the fused mode: one vector core takes every row
        base_env.update({SUBBLOCK_IDX.name: 0, SUBBLOCK_NUM.name: 1})
    for b in range(block_num):
        env = dict(base_env)
        env[BLOCK_IDX.name] = b
        m = Machine(program, dict(by_name), env)
        _run(m, program.body)
        interp_pipes.check_drained(m)


def interpret_region(region: DeviceRegion, tensors: Sequence[torch.Tensor], scalars: Sequence[int],
                     block_num: int) -> int:
    """Run a device region's launches in order (workspaces are fresh NaN-filled buffers);
    returns the number of launches, as the orchestration does."""
    region.validate()
    if len(tensors) != len(region.tensors) or len(scalars) != len(region.scalars):
        raise InterpreterError(f"region {region.name}: expected {len(region.tensors)} tensors and "
                               f"{len(region.scalars)} scalars, got {len(tensors)} and {len(scalars)}")
    env = {s.name: int(v) for s, v in zip(region.scalars, scalars)}
    buffers = {t.name: x for t, x in zip(region.tensors, tensors)}
    for w in region.workspaces:
        buf = torch.empty(evaluate(w.numel, env), dtype=w.dtype.torch_dtype)
        buffers[w.name] = buf.fill_(float("nan") if w.dtype.is_float else 0)
    for g in region.gm_pipes:
        buffers[g.name] = torch.full((block_num * g.per_block_elems,), float("nan"), dtype=g.dtype.torch_dtype)
    for launch in region.launches:
        interpret(launch.kernel, [buffers[n] for n in launch.tensors],
                  [evaluate(e, env) for e in launch.scalars], block_num)
    return len(region.launches)
