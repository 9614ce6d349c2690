"""Per-opcode render rules: one TileInst -> lines of PTO-ISA C++ (pto_isa.md vocabulary).

Each rule receives the instruction and the KernelRenderCtx (kernel.py) and returns lines. Rules
are registered per opcode with `@render_rule`; tests check that every opcode has one.
"""
from __future__ import annotations

from pto_dynamo.ascend_backend.render.cpp import cexpr, cpp_type, pipe_type, slot_type
from pto_dynamo.lowering.tile.ir import TileInst
from pto_dynamo.lowering.tile.specs import lookup_rule, make_rule_registry, ops_of_family

RENDER_RULES, render_rule = make_rule_registry("render")


def render_inst(inst: TileInst, ctx) -> list[str]:
    """The C++ lines of one instruction. A V-op with attr into=<window of a held slot> first
    points its destination tile at the window (the CPU target's TASSIGN to an address), so it
    computes the result there and its TSTORE is not rendered (tile/slot_stores.py)."""
    lines = lookup_rule(RENDER_RULES, inst.op, "render")(inst, ctx)
    into = inst.attr("into")
    if into is None or inst.op == "TMATMUL":
        return lines
    decl_line, gm = ctx.global_view(into)
    return [decl_line, f"TASSIGN({inst.outs[0]}, reinterpret_cast<uint64_t>({gm}.data()));", *lines]


def _call(op: str, *args: str) -> str:
    return f"{op}({', '.join(args)});"


@render_rule(*ops_of_family("binary"), *ops_of_family("unary"), *ops_of_family("rowexpand_binary"),
             *ops_of_family("colexpand_binary"), "TROWEXPAND", "TCOLEXPAND", "TMOV", "TRESHAPE",
             *ops_of_family("colreduce"), *ops_of_family("rowreduce"), "TMATMUL_ACC",
             "TROWEXPANDEXPDIF_ROWSUM", "TROWEXPANDMUL_ADD", "TMUL_ROWSUM", "TROWEXPANDMUL_COLEXPANDMUL")
def _tiles_only(inst: TileInst, ctx) -> list[str]:
    """`OP(dst, src..., tmp...)`: every operand a tile, in IR order."""
    return [_call(inst.op, *inst.outs, *inst.ins, *inst.tmps)]


@render_rule("TMATMUL")
def _matmul(inst: TileInst, ctx) -> list[str]:
    """`TMATMUL(acc, left, right)`; with attr into=<window of a held slot> the CPU target's form
    `TMATMUL(acc, left, right, gm)`, which writes the product into the window (the TSTORE of acc
    that follows is then not rendered: tile/slot_stores.py, docs/device_abi.md); with attr chain=True
    (TMATMUL_ACCs into acc follow) acc is pointed at the window and the TMATMUL is the plain one."""
    into = inst.attr("into")
    if into is None:
        return [_call("TMATMUL", *inst.outs, *inst.ins)]
    decl_line, gm = ctx.global_view(into)
    if inst.attr("chain", False):       # the TMATMUL_ACCs after it accumulate in the window too
        return [decl_line, f"TASSIGN({inst.outs[0]}, reinterpret_cast<uint64_t>({gm}.data()));",
                _call("TMATMUL", *inst.outs, *inst.ins)]
    return [decl_line, _call("TMATMUL", *inst.outs, *inst.ins, gm)]


@render_rule(*ops_of_family("scalar"))
def _tile_scalar(inst: TileInst, ctx) -> list[str]:
    dst, src, s = inst.outs[0], inst.ins[0], inst.ins[1]
    return [_call(inst.op, dst, src, ctx.scalar(s, ctx.decl(src).dtype))]


@render_rule("TMULS_ROWMAX")
def _muls_rowmax(inst: TileInst, ctx) -> list[str]:
    (dst, mx), (src, s), (tmp,) = inst.outs, inst.ins, inst.tmps
    return [_call(inst.op, dst, mx, src, ctx.scalar(s, ctx.decl(src).dtype), tmp)]


@render_rule("TEXPANDS")
def _fill(inst: TileInst, ctx) -> list[str]:
    dst = inst.outs[0]
    return [_call("TEXPANDS", dst, ctx.scalar(inst.ins[0], ctx.decl(dst).dtype))]


@render_rule("TCI")
def _iota(inst: TileInst, ctx) -> list[str]:
    dst = inst.outs[0]
    ctype = cpp_type(ctx.decl(dst).dtype)
    descending = int(bool(inst.attr("descending", False)))
    return [f"TCI<decltype({dst}), {ctype}, {descending}>({dst}, {ctx.scalar(inst.ins[0], ctx.decl(dst).dtype)});"]


@render_rule("TTRI")
def _triangle(inst: TileInst, ctx) -> list[str]:
    dst = inst.outs[0]
    upper = int(bool(inst.attr("upper", False)))
    return [f"TTRI<decltype({dst}), {upper}>({dst}, static_cast<int>({cexpr(inst.ins[0].value)}));"]


@render_rule("MGATHER")
def _gather(inst: TileInst, ctx) -> list[str]:
    decl_line, gm = ctx.global_view(inst.ins[0])
    mode = f"Coalesce::{inst.attr('coalesce', 'Row')}, GatherOOB::{inst.attr('oob', 'Undefined')}"
    return [decl_line, f"MGATHER<{mode}>({inst.outs[0]}, {gm}, {inst.ins[1]});"]


@render_rule("TCVT")
def _convert(inst: TileInst, ctx) -> list[str]:
    mode = inst.attr("round", "CAST_RINT")
    return [_call("TCVT", inst.outs[0], inst.ins[0], f"RoundMode::{mode}")]


@render_rule("TEXTRACT")
def _extract(inst: TileInst, ctx) -> list[str]:
    return [_call("TEXTRACT", inst.outs[0], inst.ins[0], str(inst.attr("row", 0)), str(inst.attr("col", 0)))]


@render_rule("TLOAD")
def _load(inst: TileInst, ctx) -> list[str]:
    """`TLOAD(tile, gm)`; with attrs prefetch_next=True and/or in_place=True the CPU target's
    hint form `TLOAD(tile, gm, LoadHint::PrefetchNext | LoadHint::InPlace)` (docs/device_abi.md:
    prefetch the rows after the loaded ones, for tile loops that walk a tensor's rows in order;
    read a matmul operand where it lies instead of copying it)."""
    decl_line, gm = ctx.global_view(inst.ins[0])
    hints = [f"LoadHint::{hint}" for attr, hint in _LOAD_HINTS if inst.attr(attr, False)]
    if hints:
        return [decl_line, _call("TLOAD", inst.outs[0], gm, " | ".join(hints))]
    return [decl_line, _call("TLOAD", inst.outs[0], gm)]


# TLOAD attrs -> the CPU target's LoadHint flags
_LOAD_HINTS = (("prefetch_next", "PrefetchNext"), ("in_place", "InPlace"))


@render_rule("TSTORE")
def _store(inst: TileInst, ctx) -> list[str]:
    """`TSTORE(gm, tile)`; with attr stream=True the CPU target's cache-hint form
    `TSTORE(gm, tile, StoreHint::Stream)` (docs/device_abi.md: streaming stores for outputs that are
    not read again soon); with attr stream_bytes=<bytes of the whole tensor> the hint is decided at
    run time (streaming when the tensor is at least stream_tensor_bytes(), half the last-level cache);
    with attr by_producer=True nothing (the instruction that computed the tile wrote the window:
    tile/slot_stores.py)."""
    if inst.attr("by_producer", False):
        return [f"// {inst.ins[0]} is in the slot already: it was computed there"]
    decl_line, gm = ctx.global_view(inst.outs[0])
    if inst.attr("stream", False):
        return [decl_line, _call("TSTORE", gm, inst.ins[0], "StoreHint::Stream")]
    if inst.attr("stream_bytes") is not None:          # stream when the whole tensor is large
        hint = f"({cexpr(inst.attr('stream_bytes'))}) >= stream_tensor_bytes() ? StoreHint::Stream : StoreHint::Cache"
        return [decl_line, _call("TSTORE", gm, inst.ins[0], hint)]
    return [decl_line, _call("TSTORE", gm, inst.ins[0])]


@render_rule("TCMP")
def _compare(inst: TileInst, ctx) -> list[str]:
    return [_call("TCMP", inst.outs[0], *inst.ins, f"CmpMode::{inst.attr('mode')}")]


@render_rule("TCMPS")
def _compare_scalar(inst: TileInst, ctx) -> list[str]:
    src, s = inst.ins
    return [_call("TCMPS", inst.outs[0], src, ctx.scalar(s, ctx.decl(src).dtype), f"CmpMode::{inst.attr('mode')}")]


@render_rule("TSEL")
def _select(inst: TileInst, ctx) -> list[str]:
    return [_call("TSEL", inst.outs[0], *inst.ins, *inst.tmps)]


@render_rule("TSELS")
def _select_scalar(inst: TileInst, ctx) -> list[str]:
    mask, src, s = inst.ins
    return [_call("TSELS", inst.outs[0], mask, src, inst.tmps[0], ctx.scalar(s, ctx.decl(src).dtype))]


@render_rule("TALLOC", "TPOP")
def _pipe_acquire(inst: TileInst, ctx) -> list[str]:
    """`TALLOC<Pipe, GmSlot, Split>(pipe, slot_gm)` (producer) / `TPOP<...>` (consumer): wait for a
    slot and bind it; the slot's base pointer is what the stage's GmViews of the slot offset from."""
    pipe = ctx.program.pipe(inst.attr("pipe"))
    slot = pipe.slot(pipe.producer if inst.op == "TALLOC" else pipe.consumer)
    args = f"{pipe_type(pipe)}, {slot_type(pipe)}, TileSplitAxis::TILE_NO_SPLIT"
    return [f"{slot_type(pipe)} {slot}_gm;",
            f"{inst.op}<{args}>({pipe.name}, {slot}_gm);",
            f"{cpp_type(pipe.dtype)}* const {slot} = {slot}_gm.data();"]


@render_rule("TPUSH", "TFREE")
def _pipe_release(inst: TileInst, ctx) -> list[str]:
    """`TPUSH<Pipe, GmSlot, Split>(pipe, slot_gm)` (producer commits) / `TFREE<...>` (consumer frees)."""
    pipe = ctx.program.pipe(inst.attr("pipe"))
    slot = pipe.slot(pipe.producer if inst.op == "TPUSH" else pipe.consumer)
    args = f"{pipe_type(pipe)}, {slot_type(pipe)}, TileSplitAxis::TILE_NO_SPLIT"
    return [f"{inst.op}<{args}>({pipe.name}, {slot}_gm);"]
