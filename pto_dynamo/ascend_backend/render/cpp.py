"""C++ spellings shared by the renderers: element types, tile and global-tensor types,
integer/float expressions, literals."""
from __future__ import annotations

import math
import struct

from pto_dynamo.lowering.tile.dtypes import ElemType
from pto_dynamo.lowering.tile.expr import ExprLike, ExprPrinter
from pto_dynamo.lowering.tile.ir import Layout, TileDecl, TileLoc

CPP_TYPES = {"f32": "float", "f16": "half", "bf16": "bfloat16_t", "i8": "int8_t", "u8": "uint8_t",
             "i16": "int16_t", "i32": "int32_t", "i64": "int64_t"}


def cpp_type(t: ElemType) -> str:
    """The element type as the PTO headers spell it."""
    return CPP_TYPES[t.name]


class CppExprPrinter(ExprPrinter):
    """Integer expressions over int64_t scalars; float context divides in double."""

    def fmt_min(self, a: str, b: str) -> str:
        return f"std::min<int64_t>({a}, {b})"

    def fmt_max(self, a: str, b: str) -> str:
        return f"std::max<int64_t>({a}, {b})"

    def fmt_floordiv(self, a: str, b: str) -> str:
        return f"({a} / {b})"        # operands are non-negative (tile IR convention)

    def fmt_float_div(self, a: str, b: str) -> str:
        return f"(double({a}) / double({b}))"

    def fmt_float(self, value: float) -> str:
        return float_literal(value, "double")


def cexpr(e: ExprLike) -> str:
    """An integer expression, outer parentheses dropped where safe."""
    return _strip(CppExprPrinter().doprint(e))


def cexpr_float(e: ExprLike) -> str:
    """An expression evaluated as double and narrowed to float (a scalar operand)."""
    return f"static_cast<float>({_strip(CppExprPrinter(float_context=True).doprint(e))})"


def _strip(text: str) -> str:
    if text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0 and i < len(text) - 1:
                return text
        return text[1:-1]
    return text


def float_literal(value: float, ctype: str = "float") -> str:
    """An exact literal: the shortest repr that round-trips at the type's precision."""
    value = float(value)
    if math.isnan(value):
        return f"std::numeric_limits<{ctype}>::quiet_NaN()"
    if math.isinf(value):
        return f"{'-' if value < 0 else ''}std::numeric_limits<{ctype}>::infinity()"
    if ctype == "float":
        value = struct.unpack("f", struct.pack("f", value))[0]
        for digits in range(6, 10):
            text = f"{value:.{digits}g}"
            if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
                break
    else:
        text = repr(value)
    if "e" not in text and "." not in text and "inf" not in text:
        text += ".0"
    return text + ("f" if ctype == "float" else "")


def tile_type(d: TileDecl) -> str:
    """The pto::Tile type of a declaration; valid rows/cols are always DYNAMIC."""
    et = cpp_type(d.dtype)
    if d.loc is TileLoc.Left:
        return f"TileLeft<{et}, {d.rows}, {d.cols}, DYNAMIC, DYNAMIC>"
    if d.loc is TileLoc.Right:
        return f"TileRight<{et}, {d.rows}, {d.cols}, DYNAMIC, DYNAMIC>"
    if d.loc is TileLoc.Acc:
        return f"TileAcc<{et}, {d.rows}, {d.cols}, DYNAMIC, DYNAMIC>"
    if d.loc is TileLoc.Mat:   # Nz: column-major boxes of row-major 512-byte fractals; Zn: the transpose
        boxes = "BLayout::ColMajor" if d.layout is Layout.RowMajor else "BLayout::RowMajor"
        inner = "SLayout::RowMajor" if d.layout is Layout.RowMajor else "SLayout::ColMajor"
        return f"Tile<TileType::Mat, {et}, {d.rows}, {d.cols}, {boxes}, DYNAMIC, DYNAMIC, {inner}, 512>"
    layout = "BLayout::RowMajor" if d.layout is Layout.RowMajor else "BLayout::ColMajor"
    return f"Tile<TileType::Vec, {et}, {d.rows}, {d.cols}, {layout}, DYNAMIC, DYNAMIC>"


def tile_alias(d: TileDecl) -> str:
    """A readable alias name for a tile type: `VecF32_16x64`, `VecF32_16x1c` (ColMajor), `MatF32_128x64zn`
    (a Zn Mat tile)."""
    suffix = {TileLoc.Vec: "c", TileLoc.Mat: "zn"}.get(d.loc, "") if d.layout is Layout.ColMajor else ""
    return f"{d.loc.name}{d.dtype.name.upper()}_{d.rows}x{d.cols}{suffix}"


GM_SHAPE = "Shape<1, 1, 1, DYNAMIC, DYNAMIC>"
GM_STRIDE_ND = "Stride<1, 1, 1, DYNAMIC, 1>"
GM_STRIDE_DN = "Stride<1, 1, 1, DYNAMIC, DYNAMIC>"


def gm_alias(t: ElemType, nd: bool) -> str:
    return f"Gm{'ND' if nd else 'DN'}{t.name.upper()}"


def gm_type(t: ElemType, nd: bool) -> str:
    """GlobalTensor of a 2-D window: ND (row stride dynamic, unit column stride) or DN."""
    if nd:
        return f"GlobalTensor<{cpp_type(t)}, {GM_SHAPE}, {GM_STRIDE_ND}, Layout::ND>"
    return f"GlobalTensor<{cpp_type(t)}, {GM_SHAPE}, {GM_STRIDE_DN}, Layout::DN>"


def pipe_type(pipe) -> str:
    """The TPipe alias of a mixed kernel's pipe."""
    return f"Pipe_{pipe.name}"


def slot_type(pipe) -> str:
    """The GlobalTensor alias of one slot of a pipe."""
    return f"GmSlot_{pipe.name}"
