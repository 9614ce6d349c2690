"""Integer shape arithmetic of tile programs: sympy expressions over named scalar dims.

Sizes, offsets, valid regions and loop bounds are sympy expressions whose free symbols are the
kernel's scalar parameters (`T`, `x_stride0`), its loop variables (`t`) and its `Let` bindings
(`vr`). Division is `FloorDiv` (torch's sympy function), so the same expression evaluates
exactly in Python and renders to C++ integer division. All quantities are non-negative.

`ExprPrinter` is the shared printer; `PyExprPrinter` writes Python (the interpreter compiles
expressions with it), the renderer subclasses it for C++.
"""
from __future__ import annotations

import functools
from typing import Callable, Mapping, Union

import sympy
from torch.utils._sympy.functions import (FloatTrueDiv, FloorDiv, IntTrueDiv, Max as TorchMax, Min as TorchMin, Mod,
                                         PythonMod, ToFloat)

Expr = sympy.Expr
ExprLike = Union[int, sympy.Expr]


def sym(name: str) -> sympy.Symbol:
    """A scalar symbol (dim, stride, loop variable or binding): integer, non-negative.

    Same assumptions as `pto_dynamo.graph.dims.dim_symbol`, so a DynDim's symbol and the kernel's
    scalar parameter of the same name are one symbol.
    """
    return sympy.Symbol(name, integer=True, nonnegative=True)


def as_expr(value: ExprLike) -> sympy.Expr:
    """Sympify an int or expression (bools rejected)."""
    if isinstance(value, bool):
        raise TypeError(f"tile IR: a bool is not a shape expression: {value!r}")
    if isinstance(value, (int, sympy.Basic)):
        return sympy.sympify(value)
    raise TypeError(f"tile IR: not a shape expression: {value!r} ({type(value).__name__})")


def floor_div(a: ExprLike, b: ExprLike) -> sympy.Expr:
    """a // b for non-negative a and positive b."""
    return FloorDiv(as_expr(a), as_expr(b))


def ceil_div(a: ExprLike, b: ExprLike) -> sympy.Expr:
    """ceil(a / b) for non-negative a and positive b."""
    b = as_expr(b)
    return FloorDiv(as_expr(a) + b - 1, b)


def emod(a: ExprLike, b: ExprLike) -> sympy.Expr:
    """a % b for non-negative a and positive b."""
    return Mod(as_expr(a), as_expr(b))


def emin(a: ExprLike, b: ExprLike) -> sympy.Expr:
    """min(a, b)."""
    return sympy.Min(as_expr(a), as_expr(b))


def emax(a: ExprLike, b: ExprLike) -> sympy.Expr:
    """max(a, b)."""
    return sympy.Max(as_expr(a), as_expr(b))


def free_names(expr: ExprLike) -> frozenset[str]:
    """Names of the symbols an expression mentions."""
    if isinstance(expr, sympy.Basic):
        return frozenset(s.name for s in expr.free_symbols)
    return frozenset()


def exprs_equal(a: ExprLike, b: ExprLike) -> bool:
    """True when `a` and `b` are provably the same expression (structurally or after expand)."""
    a, b = as_expr(a), as_expr(b)
    if a == b:
        return True
    try:
        return sympy.expand(a - b) == 0
    except Exception:   # sympy cannot subtract some function applications; treat as different
        return False


class ExprPrinter:
    """Prints integer (and, with `float_context`, float) sympy expressions as C-like source.

    Subclasses override the spelling of min/max/floor-division/casts. Integer context rejects
    non-integer arithmetic (a rational coefficient would silently truncate in C++).
    """

    def __init__(self, float_context: bool = False):
        self.float_context = float_context

    # spellings a subclass overrides
    def fmt_min(self, a: str, b: str) -> str:
        raise NotImplementedError

    def fmt_max(self, a: str, b: str) -> str:
        raise NotImplementedError

    def fmt_floordiv(self, a: str, b: str) -> str:
        raise NotImplementedError

    def fmt_mod(self, a: str, b: str) -> str:
        return f"({a} % {b})"

    def fmt_float_div(self, a: str, b: str) -> str:
        raise NotImplementedError

    def fmt_symbol(self, name: str) -> str:
        return name

    def fmt_float(self, value: float) -> str:
        return repr(float(value))

    def doprint(self, expr: ExprLike) -> str:
        return self._print(as_expr(expr))

    def _print(self, e: sympy.Basic) -> str:
        if e.is_Integer:
            v = int(e)
            return str(v) if v >= 0 else f"({v})"
        if e.is_Symbol:
            return self.fmt_symbol(e.name)
        if isinstance(e, sympy.Rational) or isinstance(e, sympy.Float):
            if not self.float_context:
                raise ValueError(f"tile IR: non-integer constant {e} in an integer expression")
            return self.fmt_float(float(e))
        if isinstance(e, sympy.Add):
            return self._print_add(e)
        if isinstance(e, sympy.Mul):
            return self._print_mul(e)
        if isinstance(e, sympy.Pow):
            return self._print_pow(e)
        if isinstance(e, FloorDiv):
            return self.fmt_floordiv(self._print(e.args[0]), self._print(e.args[1]))
        if isinstance(e, (Mod, PythonMod, sympy.Mod)):
            return self.fmt_mod(self._print(e.args[0]), self._print(e.args[1]))
        if isinstance(e, (FloatTrueDiv, IntTrueDiv)) and self.float_context:    # ShapeEnv's `a / b` of sizes
            return self.fmt_float_div(self._print(e.args[0]), self._print(e.args[1]))
        if isinstance(e, ToFloat) and self.float_context:
            return self._print(e.args[0])
        if isinstance(e, (sympy.Min, sympy.Max, TorchMin, TorchMax)):      # torch's: from ShapeEnv sizes
            fmt = self.fmt_min if isinstance(e, (sympy.Min, TorchMin)) else self.fmt_max
            parts = [self._print(a) for a in e.args]
            out = parts[0]
            for p in parts[1:]:
                out = fmt(out, p)
            return out
        raise ValueError(f"tile IR: cannot print expression {e} ({type(e).__name__})")

    def _print_add(self, e: sympy.Add) -> str:
        def negative(a):
            return a.as_coeff_Mul()[0].is_negative

        # positive terms first, constants last: `rows - 16 * t`, not `-16 * t + rows`
        terms = sorted(e.args, key=lambda a: (negative(a), a.is_Number, sympy.default_sort_key(a)))
        out = self._print(terms[0]) if not negative(terms[0]) else "0 - " + self._print(-terms[0])
        for term in terms[1:]:
            coeff, rest = term.as_coeff_Mul()
            if coeff.is_negative:
                out += " - " + self._print(-term)
            else:
                out += " + " + self._print(term)
        return f"({out})"

    def _print_mul(self, e: sympy.Mul) -> str:
        num, den = [], []
        for f in e.args:
            if isinstance(f, sympy.Pow) and f.exp.is_Integer and f.exp < 0:
                den.append(f.base if f.exp == -1 else sympy.Pow(f.base, -f.exp))
            elif isinstance(f, sympy.Rational) and not f.is_Integer:
                num.append(sympy.Integer(f.p))
                den.append(sympy.Integer(f.q))
            else:
                num.append(f)
        if den and not self.float_context:
            raise ValueError(f"tile IR: true division in integer expression {e}; use floor_div")
        text = " * ".join(self._print(f) for f in num) if num else "1"
        if den:
            text = self.fmt_float_div(text, " * ".join(self._print(f) for f in den))
        return f"({text})" if len(num) > 1 or den else text

    def _print_pow(self, e: sympy.Pow) -> str:
        if e.exp.is_Integer and e.exp > 0:
            base = self._print(e.base)
            return "(" + " * ".join([base] * int(e.exp)) + ")"
        if e.exp.is_Integer and e.exp < 0 and self.float_context:
            return self.fmt_float_div("1", self._print(sympy.Pow(e.base, -e.exp)))
        raise ValueError(f"tile IR: unsupported power {e}")


class PyExprPrinter(ExprPrinter):
    """Python spelling, used by the interpreter to compile expressions to lambdas."""

    def fmt_min(self, a: str, b: str) -> str:
        return f"min({a}, {b})"

    def fmt_max(self, a: str, b: str) -> str:
        return f"max({a}, {b})"

    def fmt_floordiv(self, a: str, b: str) -> str:
        return f"({a} // {b})"

    def fmt_float_div(self, a: str, b: str) -> str:
        return f"({a} / {b})"


@functools.lru_cache(maxsize=4096)
def _compile(expr: sympy.Expr, float_context: bool) -> Callable[[Mapping[str, int]], object]:
    names = sorted(free_names(expr))
    body = PyExprPrinter(float_context).doprint(expr)
    src = f"lambda env: (lambda {', '.join(names)}: {body})({', '.join(f'env[{n!r}]' for n in names)})" \
        if names else f"lambda env: {body}"
    return eval(src, {"min": min, "max": max})   # noqa: S307 - our own printer's output


def evaluate(expr: ExprLike, env: Mapping[str, int]) -> int:
    """Value of an integer expression given values for its symbols; raises on a missing symbol."""
    expr = as_expr(expr)
    if expr.is_Integer:
        return int(expr)
    try:
        return int(_compile(expr, False)(env))
    except KeyError as exc:
        raise KeyError(f"tile IR: symbol {exc.args[0]} of expression {expr} has no value") from None


def evaluate_float(expr: ExprLike, env: Mapping[str, int]) -> float:
    """Value of an expression in float context (`1/D` is a true division)."""
    expr = as_expr(expr)
    try:
        return float(_compile(expr, True)(env))
    except KeyError as exc:
        raise KeyError(f"tile IR: symbol {exc.args[0]} of expression {expr} has no value") from None
