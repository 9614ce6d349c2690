"""Verifier rules of mixed kernels: stages, pipe slots, and the per-block gm-pipe sharding.

A mixed kernel's cube stage and vector stage exchange tiles through pipes whose slots live in a
gm-pipe tensor: block b owns the slice [base(b), base(b) + per_block_elems). Results are silently
corrupted when two blocks share a slot, so the verifier proves, for every pipe, that

    base(b) = base(0) + step * b  with  step >= per_block_elems   (no two slices overlap), and
    base(block_num - 1) + per_block_elems <= the gm-pipe tensor's length   (the last one fits),

that nothing reads or writes the gm-pipe tensor except through its pipe, and that a slot is used
only between its TALLOC and TPUSH (cube) or TPOP and TFREE (vector). The cpu runtime checks the
same ownership again at run time for every slot it hands out (pto/cpu/pipe.hpp).
"""
from __future__ import annotations

import sympy

from pto_dynamo.lowering.tile.ir import BLOCK_IDX, BLOCK_NUM, GmView, Role, TileDecl, TileInst, TileLoc
from pto_dynamo.lowering.tile.ops import PIPE_OPS
from pto_dynamo.lowering.tile.printer import fmt_expr
from pto_dynamo.lowering.tile.specs import verify_rule


def check_sharding(ctx) -> None:
    """Every pipe's slices are disjoint across blocks and inside its gm-pipe tensor."""
    program = ctx.program
    params = {p.name: p for p in program.params}
    for pipe in program.pipes:
        ctx.where = f"pipe {pipe.name}"
        param = params.get(pipe.tensor)
        if param is None:
            ctx.error(f"its gm-pipe tensor {pipe.tensor} is not a tensor parameter")
            continue
        if param.dtype != pipe.dtype or len(param.shape) != 1:
            ctx.error(f"gm-pipe tensor {pipe.tensor} must be a 1-d {pipe.dtype} tensor, is "
                      f"{len(param.shape)}-d {param.dtype}")
        if pipe.slot_elems < 1 or pipe.slot_num < 1:
            ctx.error(f"{pipe.slot_num} slots of {pipe.slot_elems} elements: both must be positive")
            continue
        base = sympy.expand(pipe.base)
        step = sympy.expand(sympy.diff(base, BLOCK_IDX))
        start = sympy.expand(base - step * BLOCK_IDX)
        if BLOCK_IDX in start.free_symbols or BLOCK_IDX in step.free_symbols or not step.is_Integer:
            ctx.error(f"slice base {fmt_expr(pipe.base)} is not block_idx times a constant plus an offset; "
                      f"the verifier cannot prove that blocks own disjoint slices")
            continue
        if int(step) < pipe.per_block_elems:
            ctx.error(f"two blocks could touch the same slot: the slice base {fmt_expr(pipe.base)} advances "
                      f"{int(step)} elements per block but each block's slice holds {pipe.per_block_elems} "
                      f"({pipe.slot_num} slots x {pipe.slot_elems}); shard it as block_idx * {pipe.per_block_elems}")
            continue
        last_end = base.subs(BLOCK_IDX, BLOCK_NUM - 1) + pipe.per_block_elems
        spare = sympy.expand(param.shape[0] - last_end)
        if not (spare.is_number and spare >= 0 or _nonneg_in_block_num(spare)):
            ctx.error(f"gm-pipe tensor {pipe.tensor} holds {fmt_expr(param.shape[0])} elements, the last block's "
                      f"slice ends at {fmt_expr(last_end)}; allocate block_num x {pipe.per_block_elems}")


def _nonneg_in_block_num(e) -> bool:
    """True when `e` is a polynomial in block_num alone, nonnegative for every block_num >= 1."""
    if e.free_symbols - {BLOCK_NUM}:
        return False
    poly = sympy.Poly(sympy.expand(e.subs(BLOCK_NUM, BLOCK_NUM + 1)), BLOCK_NUM)
    return all(c >= 0 for c in poly.all_coeffs())


def check_decl_stage(ctx, d: TileDecl) -> None:
    """A tile declared in a stage lives in its core's memory (a tile that several stages of one
    core share, e.g. the running max of an online softmax, is declared before them)."""
    if ctx.role is Role.CUBE and d.loc is TileLoc.Vec:
        ctx.error(f"Vec tile {d.name} in the cube stage: the cube core has no unified buffer")
    elif ctx.role is Role.VECTOR and d.loc is not TileLoc.Vec:
        ctx.error(f"{d.loc.name} tile {d.name} in the vector stage: vector cores hold only Vec tiles")


def check_inst_stage(ctx, inst: TileInst) -> None:
    """In a mixed kernel an instruction runs inside a stage, on tiles of its core; pipe ops on
    their own side of the pipe."""
    if ctx.program.pipes and ctx.role is None and inst.op != "TRESHAPE":     # an alias binds, runs nothing
        ctx.error(f"in a mixed kernel {inst.op} must sit inside a cube or vector stage")
    if ctx.role is not None:
        for name in inst.tiles():
            d = ctx.decls.get(name)
            if d is not None and (d.loc is TileLoc.Vec) != (ctx.role is Role.VECTOR):
                ctx.error(f"{inst.op} in the {ctx.role.value} stage on {d.loc.name} tile {d.name}")
    side = PIPE_OPS.get(inst.op)
    if side is None or ctx.role is None:
        return
    try:
        pipe = ctx.program.pipe(inst.attr("pipe"))
    except KeyError:
        return                                        # reported by the op's rule
    role = pipe.producer if side == "producer" else pipe.consumer
    if ctx.role is not role:
        ctx.error(f"{inst.op} on {pipe.direction.value} pipe {pipe.name} belongs in the {role.value} stage, "
                  f"not the {ctx.role.value} stage")


def check_slot_view(ctx, view: GmView) -> bool:
    """A view of a pipe slot is legal only while its side holds the slot."""
    pipe, role = ctx.program.slots()[view.tensor]
    if view.tensor not in ctx.held:
        ctx.error(f"view of {view.tensor} while the {role.value} side of pipe {pipe.name} holds no slot "
                  f"({'TALLOC' if role is pipe.producer else 'TPOP'} it first)")
        return False
    return True


def check_param_view(ctx, view: GmView) -> bool:
    """The gm-pipe tensor itself is reached only through its pipe's slots."""
    for pipe in ctx.program.pipes:
        if view.tensor == pipe.tensor:
            ctx.error(f"{view.tensor} is pipe {pipe.name}'s gm-pipe buffer: use TALLOC/TPOP slots, not a direct view")
            return False
    return True


def _pipe_of(inst: TileInst, ctx):
    name = inst.attr("pipe")
    try:
        return ctx.program.pipe(name)
    except KeyError:
        ctx.error(f"{inst.op}: no pipe {name!r} (pipes: {[p.name for p in ctx.program.pipes]})")
        return None


@verify_rule("TALLOC", "TPOP")
def _acquire(inst: TileInst, ctx) -> None:
    pipe = _pipe_of(inst, ctx)
    if pipe is None or ctx.role is None:
        return
    slot = pipe.slot(ctx.role)
    if slot in ctx.held:
        ctx.error(f"{inst.op}: the {ctx.role.value} side of pipe {pipe.name} already holds a slot")
    ctx.held.add(slot)


@verify_rule("TPUSH", "TFREE")
def _release(inst: TileInst, ctx) -> None:
    pipe = _pipe_of(inst, ctx)
    if pipe is None or ctx.role is None:
        return
    slot = pipe.slot(ctx.role)
    if slot not in ctx.held:
        ctx.error(f"{inst.op}: the {ctx.role.value} side of pipe {pipe.name} holds no slot")
    ctx.held.discard(slot)
