"""The table of tile instruction specs and the rule registries attached to it.

Every opcode is defined once with `define_op` (operand kinds, which operands must be Vec tiles,
whether it is a project extension from `<pto/pto-ext.hpp>`). Each consumer registers its rule per
opcode with a decorator:

    @verify_rule("TADD", "TSUB")      # lowering/tile/verify_rules.py
    @interp_rule("TADD", "TSUB")      # lowering/tile/interp_rules.py
    @render_rule("TADD", "TSUB")      # ascend_backend/render/inst_rules.py (its own registry)

Tests check that every opcode has a rule in every registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

# Operand kinds of an OpSpec's signature.
TILE, GM, SCALAR = "tile", "gm", "scalar"


@dataclass(frozen=True)
class OpSpec:
    """What an opcode takes.

    outs / ins:  operand kinds in order (TILE, GM or SCALAR).
    n_tmps:      scratch tiles the instruction needs on A2A3 (`TROWSUM(dst, src, tmp)`).
    vec_only:    every tile operand must be a Vec tile (a V-op).
    family:      the group the op belongs to (binary, unary, rowreduce, ...), for readers and rules.
    ext:         a project extension declared in <pto/pto-ext.hpp>, not a PTO ISA instruction.
    payload:     family data (e.g. the torch function of an elementwise op, the reduction kind).
    """

    name: str
    outs: tuple[str, ...]
    ins: tuple[str, ...]
    family: str
    n_tmps: int = 0
    vec_only: bool = True
    ext: bool = False
    payload: object = None


OPS: dict[str, OpSpec] = {}
VERIFY_RULES: dict[str, Callable] = {}
INTERP_RULES: dict[str, Callable] = {}


def define_op(name: str, outs: tuple[str, ...], ins: tuple[str, ...], family: str, *, n_tmps: int = 0,
              vec_only: bool = True, ext: bool = False, payload: object = None) -> OpSpec:
    """Add an opcode to the table (each name once)."""
    if name in OPS:
        raise ValueError(f"tile IR: opcode {name} defined twice")
    spec = OpSpec(name, tuple(outs), tuple(ins), family, n_tmps, vec_only, ext, payload)
    OPS[name] = spec
    return spec


def op_spec(name: str) -> OpSpec:
    """The spec of `name`; a KeyError names the known opcodes."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"tile IR: unknown opcode {name!r}; known: {', '.join(sorted(OPS))}") from None


def ops_of_family(family: str) -> list[str]:
    return [n for n, s in OPS.items() if s.family == family]


def _registrar(table: dict[str, Callable], what: str):
    def register(*names: str):
        def deco(fn: Callable) -> Callable:
            for n in names:
                op_spec(n)   # must be a defined opcode
                if n in table:
                    raise ValueError(f"tile IR: {what} rule for {n} registered twice")
                table[n] = fn
            return fn
        return deco
    return register


verify_rule = _registrar(VERIFY_RULES, "verify")
interp_rule = _registrar(INTERP_RULES, "interpreter")


def make_rule_registry(what: str) -> tuple[dict[str, Callable], Callable]:
    """A fresh (table, decorator) pair for a consumer outside lowering (the renderer)."""
    table: dict[str, Callable] = {}
    return table, _registrar(table, what)


def lookup_rule(table: dict[str, Callable], name: str, what: str) -> Callable:
    rule: Optional[Callable] = table.get(name)
    if rule is None:
        raise NotImplementedError(f"tile IR: no {what} rule for opcode {name}")
    return rule
