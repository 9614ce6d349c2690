"""Readable, Python-like text of a graph with a shape comment on every line.

    t3: "bf16[T, 4, 4096]" = aten.mul.Tensor(t1, t2)

The text names symbols by DynDim name and values by IR name, so it is also the structural part of
the cache key (`canonical_text`).
"""
from __future__ import annotations

import dataclasses
import math
import operator

import sympy
import torch

from pto_dynamo.graph.dims import dim_text, dim_to_python, produced_text
from pto_dynamo.graph.ir import Graph, Node, Ref, ScalarMeta, TensorMeta

DTYPE_SHORT = {
    torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16",
    torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8", torch.uint8: "u8",
    torch.bool: "b8", torch.complex64: "c64", torch.complex128: "c128",
}


def meta_text(meta) -> str:
    """`f32[T, 4096]`, `int`, or a tuple of those."""
    if isinstance(meta, TensorMeta):
        return f"{DTYPE_SHORT.get(meta.dtype, str(meta.dtype))}[{', '.join(dim_text(d) for d in meta.shape)}]"
    if isinstance(meta, ScalarMeta):
        return meta.kind
    if isinstance(meta, tuple):
        return "(" + ", ".join(meta_text(m) for m in meta) + ")"
    return "none"


def target_text(target) -> str:
    """`aten.mm.default` for ATen overloads, `torch.ops.prims.x.default` for other namespaces."""
    if isinstance(target, torch._ops.OpOverload):
        ns = "aten" if target.namespace == "aten" else f"torch.ops.{target.namespace}"
        return f"{ns}.{target._schema.name.split('::')[-1]}.{target._overloadname}"
    if target is operator.getitem:
        return "operator.getitem"
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def format_value(value) -> str:
    """Python source for an argument value (Refs by name, dims as expressions)."""
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "math.nan"
        if math.isinf(value):
            return "math.inf" if value > 0 else "-math.inf"
        return repr(value)
    if isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, sympy.Basic):
        return dim_to_python(value)
    if isinstance(value, torch.dtype):
        return str(value)                       # torch.float32
    if isinstance(value, torch.device):
        return f"torch.device({str(value)!r})"
    if isinstance(value, (torch.layout, torch.memory_format)):
        return str(value)                       # torch.strided / torch.contiguous_format
    raise TypeError(f"pto: cannot print argument value {value!r} ({type(value).__name__})")


def call_text(node: Node) -> str:
    """`aten.add.Tensor(t1, t2, alpha=2)`."""
    parts = [format_value(a) for a in node.args] + [f"{k}={format_value(v)}" for k, v in node.kwargs]
    if node.target is operator.getitem:
        return f"{format_value(node.args[0])}[{format_value(node.args[1])}]"
    return f"{target_text(node.target)}({', '.join(parts)})"


def node_line(node: Node) -> str:
    return f'{node.name}: "{meta_text(node.meta)}" = {call_text(node)}'


def graph_text(graph: Graph, annotate=None) -> str:
    """The whole graph as text. `annotate(node) -> str` may add a trailing comment per node."""
    params = ", ".join(f'{i.name}: "{meta_text(i.meta)}"' for i in graph.inputs)
    lines = [f"graph {graph.name}({params}):"]
    for d in graph.dyndims:
        where = ", ".join(str(s) for s in d.sources) or f"{produced_text(d.produced_by)} (data-dependent)"
        lines.append(f"    # dyndim {d.name} <- {where}")
    for node in graph.nodes:
        extra = annotate(node) if annotate else ""
        lines.append("    " + node_line(node) + (f"  # {extra}" if extra else ""))
    lines.append(f"    return {format_value(tuple(graph.outputs))}")
    return "\n".join(lines) + "\n"


def canonical_text(graph: Graph) -> str:
    """The graph text without its (process-specific) name: the structural cache-key part."""
    return graph_text(dataclasses.replace(graph, name="_"))
