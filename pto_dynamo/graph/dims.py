"""Symbolic dimensions: `DynDim` (a named runtime size with its binding sources) and `DimExpr`.

A shape entry is an `int` or a `DimExpr`, a sympy expression over DynDim symbols
(`T`, `T - 1`, `(T + 127) // 128`). Symbols carry the DynDim's name, so canonical text and
generated code read the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import sympy
from sympy.printing.str import StrPrinter
from torch.utils._sympy.printers import PythonPrinter

DimExpr = sympy.Expr
Dim = Union[int, DimExpr]


@dataclass(frozen=True)
class DimSource:
    """Where a DynDim's value can be read at run time: graph input `input_index`, size of `axis`
    (axis None: the input is itself the integer)."""

    input_index: int
    axis: int | None

    def __str__(self) -> str:
        return f"input {self.input_index}" if self.axis is None else f"input {self.input_index} axis {self.axis}"


def produced_text(produced_by: tuple) -> str:
    """Python expression reading a graph-produced dim: `u2 = slice_2.shape[0]`."""
    node, index, axis = produced_by
    value = node if index is None else f"{node}[{index}]"
    return value if axis is None else f"{value}.shape[{axis}]"


@dataclass(frozen=True)
class DynDim:
    """A dynamic dimension: readable name, binding sources, and the sympy symbol used in shapes.

    `sources` lists every (input, axis) whose runtime size equals this dim. A dim minted inside
    the graph (the size of a data-dependent result, `.item()`) has no sources; `produced_by`
    names the node and axis (None: the node's scalar value) that the host binds it from, right
    after that node runs: (node name, output index or None, axis or None for a scalar).
    """

    name: str
    sources: tuple[DimSource, ...] = ()
    produced_by: tuple[str, int | None, int | None] | None = None

    @property
    def symbol(self) -> sympy.Symbol:
        return dim_symbol(self.name)


def dim_symbol(name: str) -> sympy.Symbol:
    """The sympy symbol of the DynDim called `name` (integer, non-negative)."""
    return sympy.Symbol(name, integer=True, nonnegative=True)


def as_dim(value) -> Dim:
    """Normalise a shape entry: sympy integers become ints, everything else stays an expression."""
    if isinstance(value, bool):
        raise TypeError(f"a dimension cannot be a bool: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, sympy.Expr):
        value = sympy.simplify(value) if not value.is_Atom else value
        return int(value) if value.is_Integer else value
    raise TypeError(f"not a dimension: {value!r} ({type(value).__name__})")


def is_static(dim: Dim) -> bool:
    """True if the entry is a plain int."""
    return isinstance(dim, int)


def free_dim_names(value) -> set[str]:
    """Names of the DynDims an expression (or nested tuple of expressions) mentions."""
    if isinstance(value, sympy.Basic):
        return {s.name for s in value.free_symbols}
    if isinstance(value, (tuple, list)):
        out: set[str] = set()
        for v in value:
            out |= free_dim_names(v)
        return out
    return set()


def same_layout(shape_a, stride_a, shape_b, stride_b) -> bool:
    """Do two tensors of one shape lay their elements out alike? Strides along size-1 dims are
    ignored (as torch's contiguity checks do), and the dims of the shape are taken >= 1: a tensor
    with a 0-size dim has no element to place, so `128 * Max(1, T)` and `128 * T` agree."""
    if len(shape_a) != len(shape_b) or len(stride_a) != len(stride_b) or len(shape_a) != len(stride_a):
        return False
    if any(not _equal(a, b, {}) for a, b in zip(shape_a, shape_b)):
        return False
    positive = {dim_symbol(n): sympy.Symbol(n, integer=True, positive=True) for n in free_dim_names(tuple(shape_a))}
    return all(_equal(sa, sb, positive) for size, sa, sb in zip(shape_a, stride_a, stride_b)
               if not (isinstance(size, int) and size == 1))


def _equal(a, b, subs: dict) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    diff = sympy.sympify(a) - sympy.sympify(b)
    return diff == 0 or sympy.simplify(diff.xreplace(subs)) == 0


class _DimPrinter(PythonPrinter):
    """Python-source printer for dim expressions: `//`, `%`, `max`, comparisons."""

    def _print_Add(self, expr, order=None) -> str:
        return StrPrinter._print_Add(self, expr, order)      # `T - 1`, not `(-1) + T`

    def _print_Relational(self, expr) -> str:
        ops = {"==": "==", "!=": "!=", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
        return f"({self._print(expr.lhs)} {ops[expr.rel_op]} {self._print(expr.rhs)})"

    def _print_And(self, expr) -> str:
        return "(" + " and ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr) -> str:
        return "(" + " or ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr) -> str:
        return f"(not {self._print(expr.args[0])})"

    def _print_BooleanTrue(self, expr) -> str:
        return "True"

    def _print_BooleanFalse(self, expr) -> str:
        return "False"


_PRINTER = _DimPrinter()


def dim_to_python(value) -> str:
    """Python source for an int, a DimExpr or a symbolic boolean (`T - 1`, `(T + 127) // 128`)."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return _PRINTER.doprint(value)


def dim_text(value: Dim) -> str:
    """Compact text of a shape entry for printers (`T`, `T - 1`, `4096`)."""
    text = dim_to_python(value)
    return text[1:-1] if text.startswith("(") and text.endswith(")") and text.count("(") == 1 else text
