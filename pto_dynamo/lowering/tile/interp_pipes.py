"""Interpreter rules of the cube -> vector pipe: TALLOC, TPUSH, TPOP, TFREE.

Each block keeps, per pipe, how many slots its cube side allocated and pushed and its vector side
popped and freed; slot k of the ring is `base + (k % slot_num) * slot_elems` in the gm-pipe
tensor. The interpreter runs a block's stages in program order on one thread, so a wait that
could never end (a TALLOC with every slot pushed but not freed, a TPOP with nothing pushed) is a
deadlock of the program and raises. Every slot handed out must lie inside the block's own slice
of the gm-pipe tensor (`block_idx * per_block_elems`), as the cpu runtime checks too.
"""
from __future__ import annotations

from dataclasses import dataclass

from pto_dynamo.lowering.tile.expr import evaluate
from pto_dynamo.lowering.tile.ir import BLOCK_IDX, Pipe, Role, TileInst
from pto_dynamo.lowering.tile.specs import interp_rule


@dataclass
class PipeState:
    allocated: int = 0
    pushed: int = 0
    popped: int = 0
    freed: int = 0


def _error(m, message: str):
    from pto_dynamo.lowering.tile.interpreter import InterpreterError
    return InterpreterError(f"kernel {m.program.name}, block {m.env[BLOCK_IDX.name]}: {message}")


def _bind(m, pipe: Pipe, role: Role, seq: int) -> None:
    """Point the slot name of `role` at slot `seq % slot_num` of the block's ring."""
    t = m.tensors[pipe.tensor]
    block = m.env[BLOCK_IDX.name]
    start = evaluate(pipe.base, m.env) + (seq % pipe.slot_num) * pipe.slot_elems
    owner = start // pipe.per_block_elems
    if start < 0 or start + pipe.slot_elems > t.numel():
        raise _error(m, f"pipe {pipe.name} slot [{start}, {start + pipe.slot_elems}) lies outside its gm-pipe "
                        f"tensor of {t.numel()} elements")
    if owner != block or (start + pipe.slot_elems - 1) // pipe.per_block_elems != block:
        raise _error(m, f"gm-pipe ownership violation: pipe {pipe.name} slot [{start}, {start + pipe.slot_elems}) "
                        f"is in block {owner}'s slice (slices of {pipe.per_block_elems} elements)")
    name = pipe.slot(role)
    m.tensors[name] = t[start:start + pipe.slot_elems]
    m.slot_elems[name] = pipe.slot_elems


def _unbind(m, pipe: Pipe, role: Role) -> None:
    name = pipe.slot(role)
    m.tensors.pop(name, None)
    m.slot_elems.pop(name, None)


def _state(inst: TileInst, m) -> tuple[Pipe, PipeState]:
    pipe = m.program.pipe(inst.attr("pipe"))
    return pipe, m.pipes.setdefault(pipe.name, PipeState())


@interp_rule("TALLOC")
def _talloc(inst: TileInst, m) -> None:
    pipe, st = _state(inst, m)
    if st.allocated - st.freed >= pipe.slot_num:
        raise _error(m, f"deadlock: TALLOC on pipe {pipe.name} with all {pipe.slot_num} slots in use")
    _bind(m, pipe, pipe.producer, st.allocated)
    st.allocated += 1


@interp_rule("TPUSH")
def _tpush(inst: TileInst, m) -> None:
    pipe, st = _state(inst, m)
    st.pushed += 1
    _unbind(m, pipe, pipe.producer)


@interp_rule("TPOP")
def _tpop(inst: TileInst, m) -> None:
    pipe, st = _state(inst, m)
    if st.popped >= st.pushed:
        raise _error(m, f"deadlock: TPOP on pipe {pipe.name} with no pushed slot")
    _bind(m, pipe, pipe.consumer, st.popped)
    st.popped += 1


@interp_rule("TFREE")
def _tfree(inst: TileInst, m) -> None:
    pipe, st = _state(inst, m)
    st.freed += 1
    _unbind(m, pipe, pipe.consumer)


def check_drained(m) -> None:
    """At the end of a block every pushed slot was popped and freed."""
    for name, st in m.pipes.items():
        if not st.allocated == st.pushed == st.popped == st.freed:
            raise _error(m, f"pipe {name} ends with {st.allocated} allocated, {st.pushed} pushed, {st.popped} popped, "
                            f"{st.freed} freed slots")
