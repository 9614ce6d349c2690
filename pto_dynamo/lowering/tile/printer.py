"""Readable text of a TileProgram (for debug dumps, error messages and tests).

    kernel pto_vec_add_0(x: f32[T, 64] stride (64, 1), out: f32[T, 64] stride (64, 1) out; T)
      # graph g, pass tile: z = x + y
      for t in spmd(ceil(T, 16), cyclic):
        vr = min(16, T - 16*t)
        tile tx: Vec f32[16 x 64] RowMajor valid [vr, 64] @UB+0x0
        TLOAD tx <- x[16*64*t : vr x 64, ld 64]
        TADD tz <- tx, ty
"""
from __future__ import annotations

from pto_dynamo.lowering.tile.expr import ExprLike, PyExprPrinter
from pto_dynamo.lowering.tile.ir import (FloatImm, GmView, Let, Operand, SerialLoop, Stage, Stmt, TileDecl,
                                         TileInst, TileLoop, TileProgram)


def fmt_expr(e: ExprLike) -> str:
    """An expression in Python syntax, outer parentheses dropped."""
    try:
        text = PyExprPrinter(float_context=True).doprint(e)
    except ValueError:
        text = str(e)
    if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1]
    return text


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def fmt_operand(o: Operand) -> str:
    if isinstance(o, str):
        return o
    if isinstance(o, GmView):
        layout = "" if o.is_nd else f", col stride {fmt_expr(o.col_stride)}"
        return (f"{o.tensor}[{fmt_expr(o.offset)} : {fmt_expr(o.rows)} x {fmt_expr(o.cols)}, "
                f"ld {fmt_expr(o.row_stride)}{layout}]")
    if isinstance(o, FloatImm):
        return repr(o.value) if o.is_const() else f"float({fmt_expr(o.value)})"
    return repr(o)


def fmt_inst(inst: TileInst) -> str:
    """`TADD z <- x, y` (tmps after `;`, attributes in braces)."""
    text = f"{inst.op} {', '.join(fmt_operand(o) for o in inst.outs)}"
    if inst.ins:
        text += " <- " + ", ".join(fmt_operand(o) for o in inst.ins)
    if inst.tmps:
        text += " ; tmp " + ", ".join(inst.tmps)
    if inst.attrs:
        text += " {" + ", ".join(f"{k}={fmt_operand(v) if isinstance(v, GmView) else v}" for k, v in inst.attrs) + "}"
    return text


def fmt_decl(d: TileDecl, offsets: dict[str, int] | None = None) -> str:
    where = ""
    if offsets is not None and d.name in offsets:
        where = f" @{d.loc.memory}+{offsets[d.name]:#x}"
    return (f"tile {d.name}: {d.loc.name} {d.dtype}[{d.rows} x {d.cols}] {d.layout.value} "
            f"valid [{fmt_expr(d.valid_rows)}, {fmt_expr(d.valid_cols)}]{where}")


def _lines(body: tuple[Stmt, ...], indent: str, offsets: dict[str, int]) -> list[str]:
    out: list[str] = []
    for s in body:
        if isinstance(s, TileDecl):
            out.append(indent + fmt_decl(s, offsets))
        elif isinstance(s, TileInst):
            out.append(indent + fmt_inst(s))
        elif isinstance(s, Let):
            out.append(f"{indent}{s.var.name} = {fmt_expr(s.value)}")
        elif isinstance(s, TileLoop):
            out.append(f"{indent}for {s.var.name} in spmd({fmt_expr(s.count)}, {s.distribution.value}):")
            out += _lines(s.body, indent + "  ", offsets)
        elif isinstance(s, SerialLoop):
            step = f", {s.step}" if s.step != 1 else ""
            out.append(f"{indent}for {s.var.name} in range({fmt_expr(s.start)}, {fmt_expr(s.stop)}{step}):")
            out += _lines(s.body, indent + "  ", offsets)
        elif isinstance(s, Stage):
            out.append(f"{indent}{s.role.value} stage:")
            out += _lines(s.body, indent + "  ", offsets)
        else:
            out.append(f"{indent}<unknown statement {s!r}>")
    return out


def print_program(program: TileProgram) -> str:
    """The whole kernel as readable text."""
    params = [f"{p.name}: {p.dtype}[{', '.join(fmt_expr(s) for s in p.shape)}] "
              f"stride ({', '.join(fmt_expr(s) for s in p.strides)}){' out' if p.is_output else ''}"
              for p in program.params]
    scalars = ", ".join(s.name for s in program.scalars)
    head = f"kernel {program.name}({', '.join(params)}; {scalars}{', ' if scalars else ''}block_num)"
    lines = [head, f"  # graph {program.graph}, pass {program.pass_name}"
             + (f": {program.description}" if program.description else "")]
    lines += _lines(program.body, "  ", program.offsets())
    return "\n".join(lines) + "\n"
