"""Per-opcode verifier rules (operand kinds and Vec-ness are checked generically by the verifier).

Each rule receives the instruction and a VerifyCtx, and reports with `ctx.error(...)`.
Constraints follow docs/pto_isa.md (A2A3 unless stated).
"""
from __future__ import annotations

from pto_dynamo.lowering.tile.dtypes import BF16, F16, F32, I8, I16, I32, U8
from pto_dynamo.lowering.tile.expr import exprs_equal
from pto_dynamo.lowering.tile.ir import GmView, Layout, Role, TileInst, TileLoc
from pto_dynamo.lowering.tile.ops import CMP_MODES, EXPDIF_TYPES, ROUND_MODES
from pto_dynamo.lowering.tile.printer import fmt_expr
from pto_dynamo.lowering.tile.specs import ops_of_family, verify_rule

_MAX_ROWS = 4095


_FLOATS = (F32, BF16, F16)


def _float_mix_or_same_dtype(ctx, *tiles) -> None:
    """One element type, or floats of several: the narrow ones widened exactly, the result computed
    in f32 and rounded once into dst's type (the forms fuse.py folds a TCVT into)."""
    if not all(t.dtype in _FLOATS for t in tiles):
        ctx.same_dtype(*tiles)


@verify_rule(*ops_of_family("binary"))
def _binary(inst: TileInst, ctx) -> None:
    dst, a, b = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0]), ctx.tile(inst.ins[1])
    ctx.row_major(dst, a, b)
    _float_mix_or_same_dtype(ctx, dst, a, b)
    ctx.same_valid(dst, a, f"{inst.op} operand")
    ctx.same_valid(dst, b, f"{inst.op} operand")


@verify_rule(*ops_of_family("unary"))
def _unary(inst: TileInst, ctx) -> None:
    dst, src = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    ctx.row_major(dst, src)
    _float_mix_or_same_dtype(ctx, dst, src)
    ctx.same_valid(dst, src, f"{inst.op} operand")
    if inst.op == "TRECIP" and dst.name == src.name:
        ctx.error("TRECIP cannot run in place on A2A3 (dst must differ from src); use another tile")


@verify_rule(*ops_of_family("scalar"))
def _scalar(inst: TileInst, ctx) -> None:
    dst, src = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    ctx.row_major(dst, src)
    ctx.same_dtype(dst, src)
    ctx.same_valid(dst, src, f"{inst.op} operand")


@verify_rule("TEXPANDS")
def _fill(inst: TileInst, ctx) -> None:
    ctx.row_major(ctx.tile(inst.outs[0]))


@verify_rule("TCI")
def _iota(inst: TileInst, ctx) -> None:
    dst = ctx.tile(inst.outs[0])
    ctx.row_major(dst)
    if dst.dtype not in (I32, I16):
        ctx.error(f"TCI writes int32/int16 tiles; {dst.name} is {dst.dtype}")
    if dst.cols == 1:
        ctx.error(f"TCI needs a tile with more than one column; {dst.name} has 1")


@verify_rule("TTRI")
def _triangle(inst: TileInst, ctx) -> None:
    dst = ctx.tile(inst.outs[0])
    ctx.row_major(dst)
    if dst.dtype not in (F32, F16, BF16, I32, I16, U8):
        ctx.error(f"TTRI writes a float, int32/int16 or uint8 tile; {dst.name} is {dst.dtype}")
    if not isinstance(inst.attr("upper", False), bool):
        ctx.error(f"TTRI's `upper` attribute is a bool, not {inst.attr('upper')!r}")


GATHER_OOB = ("Undefined", "Clamp", "Wrap", "Zero")


@verify_rule("MGATHER")
def _gather(inst: TileInst, ctx) -> None:
    """Row: dst[r, :] = table[idx[0, r], :] (the table: an ND view of `rows x width`).
    Elem: dst[r, c] = table_flat[idx[r, c]] (an index tile of dst's shape)."""
    dst, view, idx = ctx.tile(inst.outs[0]), inst.ins[0], ctx.tile(inst.ins[1])
    ctx.row_major(dst, idx)
    coalesce = inst.attr("coalesce", "Row")
    if coalesce not in ("Row", "Elem"):
        ctx.error(f"MGATHER: coalesce must be Row or Elem, got {coalesce!r}")
    if inst.attr("oob", "Undefined") not in GATHER_OOB:
        ctx.error(f"MGATHER: oob must be one of {', '.join(GATHER_OOB)}, got {inst.attr('oob')!r}")
    if idx.dtype != I32:
        ctx.error(f"MGATHER: the index tile {idx.name} must be i32, is {idx.dtype}")
    if ctx.program.param(view.tensor).dtype != dst.dtype:
        ctx.error(f"MGATHER: table {view.tensor} is {ctx.program.param(view.tensor).dtype}, tile {dst.name} {dst.dtype}")
    if not view.is_nd or view.col_stride != 1:
        ctx.error("MGATHER: the table must be an ND view with unit column stride")
    if coalesce == "Elem":
        if not (exprs_equal(idx.valid_rows, dst.valid_rows) and exprs_equal(idx.valid_cols, dst.valid_cols)):
            ctx.error(f"MGATHER: Elem index tile {idx.name} [{fmt_expr(idx.valid_rows)} x "
                      f"{fmt_expr(idx.valid_cols)}] differs from {dst.name}'s valid shape "
                      f"[{fmt_expr(dst.valid_rows)} x {fmt_expr(dst.valid_cols)}]")
        return
    if idx.rows != 1:
        ctx.error(f"MGATHER: the Row index tile {idx.name} must be 1 x R, is [{idx.rows} x {idx.cols}]")
    if not exprs_equal(idx.valid_cols, dst.valid_rows):
        ctx.error(f"MGATHER: index tile {idx.name} has {fmt_expr(idx.valid_cols)} valid indices for "
                  f"{fmt_expr(dst.valid_rows)} rows of {dst.name}")
    if not exprs_equal(view.cols, dst.valid_cols):
        ctx.error(f"MGATHER: table width {fmt_expr(view.cols)} differs from {dst.name}'s {fmt_expr(dst.valid_cols)} columns")


@verify_rule("TCVT")
def _convert(inst: TileInst, ctx) -> None:
    dst, src = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    ctx.row_major(dst, src)
    ctx.same_valid(dst, src, "TCVT operand")
    mode = inst.attr("round", "CAST_RINT")
    if mode not in ROUND_MODES:
        ctx.error(f"unknown rounding mode {mode!r}; valid: {', '.join(ROUND_MODES)}")


def _check_view_matches(ctx, tile, view: GmView, verb: str) -> None:
    gm_dtype = ctx.program.gm_dtype(view.tensor)
    if gm_dtype != tile.dtype and not (tile.loc is TileLoc.Acc and verb == "store"):
        ctx.error(f"{verb}: tile {tile.name} is {tile.dtype} but tensor {view.tensor} is {gm_dtype} "
                  f"(TLOAD/TSTORE do not convert; add a TCVT)")
    if not (exprs_equal(view.rows, tile.valid_rows) and exprs_equal(view.cols, tile.valid_cols)):
        ctx.error(f"{verb}: the global view is {fmt_expr(view.rows)} x {fmt_expr(view.cols)} but tile {tile.name}'s "
                  f"valid region is {fmt_expr(tile.valid_rows)} x {fmt_expr(tile.valid_cols)}; they must be equal")
    if tile.loc is TileLoc.Vec:
        want = Layout.RowMajor if view.is_nd else Layout.ColMajor
        if tile.layout is not want:
            ctx.error(f"{verb}: {'an ND (row-major)' if view.is_nd else 'a DN (column-major)'} view needs a "
                      f"{want.value} Vec tile; {tile.name} is {tile.layout.value}")
    if tile.loc is TileLoc.Mat:     # ND -> Nz (RowMajor), DN -> Zn (ColMajor)
        want = Layout.RowMajor if view.is_nd else Layout.ColMajor
        if tile.layout is not want:
            ctx.error(f"{verb}: {'an ND' if view.is_nd else 'a DN'} view moves to a "
                      f"{'Nz (RowMajor)' if view.is_nd else 'Zn (ColMajor)'} Mat tile; {tile.name} is {tile.layout.value}")
    if view.is_nd and view.col_stride != 1:
        ctx.error(f"{verb}: an ND view needs unit column stride, has {fmt_expr(view.col_stride)}")


@verify_rule("TLOAD")
def _load(inst: TileInst, ctx) -> None:
    dst, view = ctx.tile(inst.outs[0]), inst.ins[0]
    if dst.loc not in (TileLoc.Vec, TileLoc.Mat):
        ctx.error(f"TLOAD writes Vec or Mat tiles; {dst.name} is a {dst.loc.name} tile")
    if dst.loc is TileLoc.Vec and dst.rows > _MAX_ROWS:
        ctx.error(f"TLOAD into a Vec tile allows at most {_MAX_ROWS} rows; {dst.name} has {dst.rows}")
    _check_view_matches(ctx, dst, view, "load")


@verify_rule("TSTORE")
def _store(inst: TileInst, ctx) -> None:
    view, src = inst.outs[0], ctx.tile(inst.ins[0])
    slot = ctx.program.slots().get(view.tensor)
    if slot is not None and slot[1] is not slot[0].producer:
        ctx.error(f"TSTORE into {view.tensor}: the {slot[1].value} side of pipe {slot[0].name} only reads its slots")
    if slot is None and not ctx.program.param(view.tensor).is_output:
        ctx.error(f"TSTORE into {view.tensor}, which is not an output parameter of the kernel")
    gm_dtype = ctx.program.gm_dtype(view.tensor)
    if src.loc is TileLoc.Acc:
        ok = (src.dtype == F32 and gm_dtype in (F32, F16, BF16)) or (src.dtype == I32 and gm_dtype == I32)
        if not ok:
            ctx.error(f"TSTORE from Acc converts f32 -> f32/f16/bf16 or i32 -> i32; not {src.dtype} -> {gm_dtype}")
    elif src.loc not in (TileLoc.Vec, TileLoc.Mat):
        ctx.error(f"TSTORE reads Vec, Mat or Acc tiles; {src.name} is a {src.loc.name} tile")
    _check_view_matches(ctx, src, view, "store")


_MOV_PAIRS = {(TileLoc.Mat, TileLoc.Left), (TileLoc.Mat, TileLoc.Right), (TileLoc.Vec, TileLoc.Vec),
              (TileLoc.Acc, TileLoc.Mat)}


@verify_rule("TMOV")
def _move(inst: TileInst, ctx) -> None:
    dst, src = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    if (src.loc, dst.loc) not in _MOV_PAIRS:
        ctx.error(f"TMOV {src.loc.name} -> {dst.loc.name} is not legal on A2A3; legal: "
                  + ", ".join(f"{a.name}->{b.name}" for a, b in sorted(_MOV_PAIRS, key=str)))
    if (dst.rows, dst.cols) != (src.rows, src.cols):
        ctx.error(f"TMOV needs equal capacities: {dst.name} {dst.rows}x{dst.cols}, {src.name} {src.rows}x{src.cols}")
    ctx.same_valid(dst, src, "TMOV operand")


@verify_rule("TEXTRACT")
def _extract(inst: TileInst, ctx) -> None:
    dst, src = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    if (src.loc, dst.loc) not in {(TileLoc.Mat, TileLoc.Left), (TileLoc.Mat, TileLoc.Right), (TileLoc.Vec, TileLoc.Vec)}:
        ctx.error(f"TEXTRACT {src.loc.name} -> {dst.loc.name} is not legal (Mat->Left/Right or Vec->Vec)")
    row, col = inst.attr("row", 0), inst.attr("col", 0)
    if not (isinstance(row, int) and isinstance(col, int)):
        ctx.error("TEXTRACT row/col must be integers")
    elif row + dst.rows > src.rows or col + dst.cols > src.cols:
        ctx.error(f"TEXTRACT window ({row}, {col}) + {dst.rows}x{dst.cols} exceeds {src.name} {src.rows}x{src.cols}")
    ctx.same_dtype(dst, src)


@verify_rule(*ops_of_family("rowreduce"))
def _row_reduce(inst: TileInst, ctx) -> None:
    dst, src, tmp = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0]), ctx.tile(inst.tmps[0])
    ctx.row_major(src)
    ctx.same_dtype(dst, src, tmp)
    _check_per_row(ctx, inst, dst, src)
    _check_scratch(ctx, tmp, src)


def _check_per_row(ctx, inst, out, src) -> None:
    """`out` holds one value per row of `src` (a row reduction's result)."""
    if not exprs_equal(out.valid_rows, src.valid_rows) or not exprs_equal(out.valid_cols, 1):
        ctx.error(f"{inst.op} writes one value per row: {out.name} must be valid [{fmt_expr(src.valid_rows)}, 1], "
                  f"is [{fmt_expr(out.valid_rows)}, {fmt_expr(out.valid_cols)}]")
    if out.layout is Layout.ColMajor and out.cols != 1:
        ctx.error(f"a ColMajor per-row tile has one column; {out.name} has {out.cols}")


def _check_scratch(ctx, tmp, src) -> None:
    """A row reduction's scratch tile holds its source (A2A3)."""
    if tmp.rows * tmp.cols < src.rows * src.cols:
        ctx.error(f"scratch tile {tmp.name} ({tmp.rows}x{tmp.cols}) is smaller than the source {src.name} "
                  f"({src.rows}x{src.cols})")


@verify_rule(*ops_of_family("colreduce"))
def _col_reduce(inst: TileInst, ctx) -> None:
    dst, src = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    ctx.row_major(dst, src)
    ctx.same_dtype(dst, src)
    if not exprs_equal(dst.valid_cols, src.valid_cols) or not exprs_equal(dst.valid_rows, 1):
        ctx.error(f"{inst.op} writes one value per column: {dst.name} must be valid [1, {fmt_expr(src.valid_cols)}], "
                  f"is [{fmt_expr(dst.valid_rows)}, {fmt_expr(dst.valid_cols)}]")


def _check_row_operand(ctx, inst, dst, vec) -> None:
    """`vec` holds one value per row of `dst`: ColMajor R x 1 (mode 1) or RowMajor R x 32B (mode 2)."""
    if not exprs_equal(vec.valid_rows, dst.valid_rows):
        ctx.error(f"{inst.op}: per-row operand {vec.name} has {fmt_expr(vec.valid_rows)} valid rows, "
                  f"{dst.name} has {fmt_expr(dst.valid_rows)}")
    block = 32 // vec.dtype.itemsize
    if vec.layout is Layout.ColMajor:
        if not exprs_equal(vec.valid_cols, 1):
            ctx.error(f"{inst.op}: ColMajor per-row operand {vec.name} must have 1 valid column")
    elif not exprs_equal(vec.valid_cols, block):
        ctx.error(f"{inst.op}: a RowMajor per-row operand must be valid [R, {block}] (one 32-byte block per "
                  f"row); {vec.name} is [.., {fmt_expr(vec.valid_cols)}]. Use a ColMajor R x 1 tile instead")


@verify_rule("TROWEXPAND")
def _row_expand(inst: TileInst, ctx) -> None:
    dst, src = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    ctx.row_major(dst)
    ctx.same_dtype(dst, src)
    _check_row_operand(ctx, inst, dst, src)


def _check_expdif(ctx, inst, dst) -> None:
    if inst.op.endswith("EXPDIF") and dst.dtype not in EXPDIF_TYPES:
        ctx.error(f"{inst.op}: half or float tiles only, {dst.name} is {dst.dtype}")


@verify_rule(*ops_of_family("rowexpand_binary"))
def _row_expand_binary(inst: TileInst, ctx) -> None:
    dst, a, vec = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0]), ctx.tile(inst.ins[1])
    ctx.row_major(dst, a)
    _float_mix_or_same_dtype(ctx, dst, a, vec)
    _check_expdif(ctx, inst, dst)
    ctx.same_valid(dst, a, f"{inst.op} operand")
    _check_row_operand(ctx, inst, dst, vec)


def _check_col_operand(ctx, inst, dst, vec) -> None:
    ctx.row_major(vec)
    if not exprs_equal(vec.valid_rows, 1) or not exprs_equal(vec.valid_cols, dst.valid_cols):
        ctx.error(f"{inst.op}: per-column operand {vec.name} must be valid [1, {fmt_expr(dst.valid_cols)}], is "
                  f"[{fmt_expr(vec.valid_rows)}, {fmt_expr(vec.valid_cols)}]")


@verify_rule("TCOLEXPAND")
def _col_expand(inst: TileInst, ctx) -> None:
    dst, src = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    ctx.row_major(dst)
    ctx.same_dtype(dst, src)
    _check_col_operand(ctx, inst, dst, src)


@verify_rule(*ops_of_family("colexpand_binary"))
def _col_expand_binary(inst: TileInst, ctx) -> None:
    dst, a, vec = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0]), ctx.tile(inst.ins[1])
    ctx.row_major(dst, a)
    _float_mix_or_same_dtype(ctx, dst, a, vec)
    _check_expdif(ctx, inst, dst)
    ctx.same_valid(dst, a, f"{inst.op} operand")
    _check_col_operand(ctx, inst, dst, vec)


def _check_per_row_result(ctx, inst, out, src, tmp) -> None:
    """A fused op's row max or sum: one f32 value per row of `src`, the reduction's scratch
    tile as a row reduction's."""
    if out.dtype != F32:
        ctx.error(f"{inst.op}: the per-row result {out.name} is f32, is {out.dtype}")
    _check_per_row(ctx, inst, out, src)
    _check_scratch(ctx, tmp, src)


@verify_rule("TMULS_ROWMAX")
def _muls_rowmax(inst: TileInst, ctx) -> None:
    dst, mx, src = ctx.tile(inst.outs[0]), ctx.tile(inst.outs[1]), ctx.tile(inst.ins[0])
    ctx.row_major(dst, src)
    ctx.same_dtype(dst, src)
    if dst.dtype != F32:
        ctx.error(f"TMULS_ROWMAX: f32 tiles only, {dst.name} is {dst.dtype}")
    ctx.same_valid(dst, src, "TMULS_ROWMAX operand")
    _check_per_row_result(ctx, inst, mx, dst, ctx.tile(inst.tmps[0]))


@verify_rule("TROWEXPANDEXPDIF_ROWSUM")
def _expdif_rowsum(inst: TileInst, ctx) -> None:
    dst, total, a, vec = (ctx.tile(n) for n in (*inst.outs, *inst.ins))
    ctx.row_major(dst, a)
    ctx.same_dtype(a, vec)
    if a.dtype != F32 or dst.dtype not in (F32, BF16, F16):
        ctx.error(f"TROWEXPANDEXPDIF_ROWSUM: an f32 source into an f32, bf16 or f16 tile; {a.name} is {a.dtype}, "
                  f"{dst.name} {dst.dtype}")
    ctx.same_valid(dst, a, "TROWEXPANDEXPDIF_ROWSUM operand")
    _check_row_operand(ctx, inst, dst, vec)
    _check_per_row_result(ctx, inst, total, dst, ctx.tile(inst.tmps[0]))


@verify_rule("TROWEXPANDMUL_ADD")
def _rowexpand_mul_add(inst: TileInst, ctx) -> None:
    dst, a, vec, b = ctx.tile(inst.outs[0]), *(ctx.tile(n) for n in inst.ins)
    ctx.row_major(dst, a, b)
    ctx.same_dtype(dst, a, vec, b)
    if dst.dtype != F32:
        ctx.error(f"TROWEXPANDMUL_ADD: f32 tiles only, {dst.name} is {dst.dtype}")
    ctx.same_valid(dst, a, "TROWEXPANDMUL_ADD operand")
    ctx.same_valid(dst, b, "TROWEXPANDMUL_ADD operand")
    _check_row_operand(ctx, inst, dst, vec)


@verify_rule("TMUL_ROWSUM")
def _mul_rowsum(inst: TileInst, ctx) -> None:
    dst, total, a, b = (ctx.tile(n) for n in (*inst.outs, *inst.ins))
    ctx.row_major(dst, a, b)
    ctx.same_dtype(dst, a, b)
    if dst.dtype != F32:
        ctx.error(f"TMUL_ROWSUM: f32 tiles only, {dst.name} is {dst.dtype}")
    ctx.same_valid(dst, a, "TMUL_ROWSUM operand")
    ctx.same_valid(dst, b, "TMUL_ROWSUM operand")
    _check_per_row_result(ctx, inst, total, dst, ctx.tile(inst.tmps[0]))


@verify_rule("TROWEXPANDMUL_COLEXPANDMUL")
def _rowexpand_colexpand_mul(inst: TileInst, ctx) -> None:
    dst, a, rows, cols = ctx.tile(inst.outs[0]), *(ctx.tile(n) for n in inst.ins)
    ctx.row_major(dst, a)
    ctx.same_dtype(dst, a, rows, cols)
    if dst.dtype != F32:
        ctx.error(f"TROWEXPANDMUL_COLEXPANDMUL: f32 tiles only, {dst.name} is {dst.dtype}")
    ctx.same_valid(dst, a, "TROWEXPANDMUL_COLEXPANDMUL operand")
    _check_row_operand(ctx, inst, dst, rows)
    _check_col_operand(ctx, inst, dst, cols)


_MATMUL_TYPES = {(F32, F16, F16), (F32, F32, F32), (F32, BF16, BF16), (I32, I8, I8)}


@verify_rule("TMATMUL", "TMATMUL_ACC")
def _matmul(inst: TileInst, ctx) -> None:
    acc = ctx.tile(inst.outs[0])
    ins = [ctx.tile(n) for n in inst.ins]
    if inst.op == "TMATMUL_ACC":
        acc_in, left, right = ins
        if acc_in.loc is not TileLoc.Acc or (acc_in.rows, acc_in.cols) != (acc.rows, acc.cols):
            ctx.error(f"TMATMUL_ACC: accumulator input {acc_in.name} must be an Acc tile shaped like {acc.name}")
    else:
        left, right = ins
    for tile, loc in ((acc, TileLoc.Acc), (left, TileLoc.Left), (right, TileLoc.Right)):
        if tile.loc is not loc:
            ctx.error(f"{inst.op}: {tile.name} must be a {loc.name} tile, is {tile.loc.name}")
    if left.rows != acc.rows or left.cols != right.rows or right.cols != acc.cols:
        ctx.error(f"{inst.op}: capacities do not chain: Left {left.rows}x{left.cols}, Right {right.rows}x{right.cols}, "
                  f"Acc {acc.rows}x{acc.cols}")
    if (acc.dtype, left.dtype, right.dtype) not in _MATMUL_TYPES:
        ctx.error(f"{inst.op}: (acc, left, right) types ({acc.dtype}, {left.dtype}, {right.dtype}) are not supported")
    for what, e in (("M", left.valid_rows), ("K", left.valid_cols), ("N", right.valid_cols)):
        if e.is_Integer and not 1 <= int(e) <= 4095:
            ctx.error(f"{inst.op}: {what} = {int(e)} outside [1, 4095]")


@verify_rule("TRESHAPE")
def _reshape(inst: TileInst, ctx) -> None:
    dst, src = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    if dst.loc is not src.loc:
        ctx.error(f"TRESHAPE keeps the memory: {dst.name} is {dst.loc.name}, {src.name} is {src.loc.name}")
    if dst.nbytes != src.nbytes:
        ctx.error(f"TRESHAPE needs equal bytes: {dst.name} {dst.nbytes} B, {src.name} {src.nbytes} B")
    if dst.boxed or src.boxed:
        ctx.error("TRESHAPE of boxed (cube) tiles is not supported by the tile IR")
    if dst.name == src.name:
        ctx.error("TRESHAPE of a tile onto itself")


def _check_mask(ctx, mask, data) -> None:
    """A mask holds one bit per element of `data`: u8, ceil(cols / 8) bytes per row."""
    if mask.dtype != U8:
        ctx.error(f"mask tile {mask.name} must be u8, is {mask.dtype}")
    if mask.cols * 8 < data.cols:
        ctx.error(f"mask tile {mask.name} has {mask.cols} bytes per row; {data.name} needs {-(-data.cols // 8)}")
    if not exprs_equal(mask.valid_rows, data.valid_rows):
        ctx.error(f"mask tile {mask.name} must have {fmt_expr(data.valid_rows)} valid rows like {data.name}")


@verify_rule("TCMP", "TCMPS")
def _compare(inst: TileInst, ctx) -> None:
    mask, a = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0])
    ctx.row_major(mask, a)
    if inst.op == "TCMP":
        b = ctx.tile(inst.ins[1])
        ctx.row_major(b)
        ctx.same_dtype(a, b)
        ctx.same_valid(a, b, "TCMP operand")
    if inst.attr("mode") not in CMP_MODES:
        ctx.error(f"{inst.op} needs mode= one of {', '.join(CMP_MODES)}, got {inst.attr('mode')!r}")
    _check_mask(ctx, mask, a)


@verify_rule("TSEL", "TSELS")
def _select(inst: TileInst, ctx) -> None:
    dst, mask, a = ctx.tile(inst.outs[0]), ctx.tile(inst.ins[0]), ctx.tile(inst.ins[1])
    ctx.row_major(dst, mask, a)
    ctx.same_valid(dst, a, f"{inst.op} operand")
    tiles = [dst, a]
    if inst.op == "TSEL":
        b = ctx.tile(inst.ins[2])
        ctx.same_valid(dst, b, "TSEL operand")
        tiles.append(b)
    ctx.same_dtype(*tiles)
    _check_mask(ctx, mask, dst)
