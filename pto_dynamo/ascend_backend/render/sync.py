"""Pipe synchronisation for manual-mode kernels (pto_isa.md §3.7), conservative and simple.

Each instruction runs on one pipe. Between two consecutive instructions on different pipes the
renderer emits `set_flag(src, dst, EVENT_ID0); wait_flag(src, dst, EVENT_ID0);`, between two
vector instructions `pipe_barrier(PIPE_V);`, and at the end of a loop body the edge back to the
body's first pipe. This serialises the pipes (no overlap of load, compute and store) but is
always correct; on the CPU target all of these are no-ops. Ping-pong buffering is later work.
"""
from __future__ import annotations

from pto_dynamo.lowering.tile.ir import TileInst, TileLoc
from pto_dynamo.lowering.tile.specs import op_spec


def inst_pipe(inst: TileInst, decls) -> str | None:
    """The pipe an instruction runs on (None for TRESHAPE, which only binds an address, and for
    the cube <-> vector FIFO instructions)."""
    family = op_spec(inst.op).family
    if family in ("alias", "pipe"):      # pipe ops synchronise the cores themselves (TPipe flags)
        return None
    if family == "load":
        return "PIPE_MTE2"
    if family == "store":
        return "PIPE_FIX" if decls[inst.ins[0]].loc is TileLoc.Acc else "PIPE_MTE3"
    if family == "matmul":
        return "PIPE_M"
    if family in ("move", "extract"):
        src, dst = decls[inst.ins[0]].loc, decls[inst.outs[0]].loc
        if src is TileLoc.Acc:
            return "PIPE_FIX"
        if dst in (TileLoc.Left, TileLoc.Right):
            return "PIPE_MTE1"
    return "PIPE_V"


def sync_lines(prev: str | None, cur: str) -> list[str]:
    """What to emit between an instruction on pipe `prev` and the next on pipe `cur`."""
    if prev is None:
        return []
    if prev == cur:
        return [f"pipe_barrier({cur});"] if cur == "PIPE_V" else []
    return [f"set_flag({prev}, {cur}, EVENT_ID0); wait_flag({prev}, {cur}, EVENT_ID0);"]
