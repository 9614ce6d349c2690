"""Device claims of the vector lowering: which nodes the device takes, with checkers.

Values of float32/bfloat16/float16, int32/int64 and bool. Integer and bool results are taken
only from the ops that compute them exactly (`EXACT_INT`, `EXACT_BOOL`, `EXACT_ANY` in opinfo);
any other op with such a result stays on the host with the reason.
"""
from __future__ import annotations

import math

import sympy
import torch
import torch.utils._sympy.functions

from pto_dynamo.graph.ir import Graph, Node, Ref, TensorMeta
from pto_dynamo.lowering.registry import device_rule, host_reason
from pto_dynamo.lowering.tile.expr import exprs_equal
from pto_dynamo.lowering.vector.expand import contiguous_meta
from pto_dynamo.lowering.vector.opinfo import EXACT_ANY, EXACT_BOOL, EXACT_INT, INT_DIVISION, VECTOR_OPS

aten = torch.ops.aten
FLOATS = (torch.float32, torch.bfloat16, torch.float16)
INTS = (torch.int32, torch.int64)
SUPPORTED = FLOATS + INTS + (torch.bool,)


def _dtype_name(d) -> str:
    return str(d).replace("torch.", "")


def check_vector_node(node: Node, graph: Graph) -> str | None:
    """None if the vector lowering takes `node`, else the reason it stays on the host."""
    if not isinstance(node.meta, TensorMeta):
        return "result is not a single tensor"
    dtype = node.meta.dtype
    if dtype not in SUPPORTED:
        return f"result dtype {_dtype_name(dtype)} (the vector lowering takes f32/bf16/f16/i32/i64/bool)"
    info = VECTOR_OPS[node.target]
    if info.kind != "view" and node.target not in EXACT_ANY:
        if dtype in INTS and node.target not in EXACT_INT:
            return f"{_dtype_name(dtype)} result (integer math on the device: add/sub/mul/max/min/abs/neg/clamp/sum)"
        if dtype == torch.bool and node.target not in EXACT_BOOL:
            return "bool result of an arithmetic op (bool math on the device: compare/logical/where/any/all)"
    if node.target in INT_DIVISION:
        return _check_int_division(node)
    if info.kind == "cat":
        return _check_cat(node, graph)
    if info.kind == "gather":
        return _check_gather(node, graph)
    for i, a in enumerate(node.args):
        if isinstance(a, Ref) and i in info.tensor_args:
            m = graph.meta_of(a.name)
            if not isinstance(m, TensorMeta) or m.dtype not in SUPPORTED:
                return f"operand {a.name} is {_dtype_name(getattr(m, 'dtype', 'not a tensor'))}"
        elif isinstance(a, (list, tuple)) and any(isinstance(x, Ref) for x in a):
            return "takes a list of tensors"
    kw = node.kwargs_dict()
    if node.target is aten._to_copy.default and any(k not in ("dtype", "layout", "device") for k in kw):
        return "_to_copy with memory_format or other options"
    if node.target in (aten.sum.dim_IntList, aten.mean.dim) and kw.get("dtype") not in (None, node.meta.dtype):
        return "reduction with an accumulation dtype"
    if info.kind == "view" and not _feeds_device(node, graph) and not returned_alias(node, graph):
        return "view read only on the host (a view costs nothing there)"
    return None


# Views that may reinterpret a device result in place (see returned_alias).
REINTERPRETING_VIEWS = frozenset({aten.view.default, aten._unsafe_view.default, aten.reshape.default,
                                  aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default,
                                  aten.unsqueeze.default, aten.alias.default})


def returned_alias(node: Node, graph: Graph) -> bool:
    """Is `node` a view that reinterprets a device-computed value's whole buffer in the same memory
    order (both contiguous, equal size, no offset), e.g. the `[B, T, N]` view of a linear's mm?
    The device region then computes the value straight into the view's buffer, which the host
    allocates in the view's shape: no copy, and no view op left on the host
    (fusion.output_aliases). Not when the value is returned or read on the host as well: it gets
    a tensor of its own, and the view of it stays a free host view."""
    if node.target not in REINTERPRETING_VIEWS or not isinstance(node.args[0], Ref):
        return False
    src = graph.node_by_name.get(node.args[0].name)
    if src is None or not isinstance(src.meta, TensorMeta) or not isinstance(node.meta, TensorMeta):
        return False
    if (VECTOR_OPS.get(src.target) is not None and VECTOR_OPS[src.target].kind == "view") or host_reason(src, graph):
        return False
    others = [graph.node_by_name[u] for u in graph.users.get(src.name, ()) if u != node.name]
    if src.name in graph.output_names or any(u.target in REINTERPRETING_VIEWS for u in others) or any(
            host_reason(u, graph) for u in others):
        # the value has a tensor of its own (also when another view reinterprets it: two views
        # cannot both be its buffer, and asking the other view would ask this one again)
        return False
    return (_whole_contiguous(src.meta) and _whole_contiguous(node.meta)
            and exprs_equal(math.prod(src.meta.shape), math.prod(node.meta.shape)))


def _whole_contiguous(meta: TensorMeta) -> bool:
    contiguous = contiguous_meta(tuple(meta.shape), meta.dtype).stride
    return meta.offset == 0 and all(exprs_equal(_nonempty(a), _nonempty(b)) for a, b in zip(meta.stride, contiguous))


def _nonempty(stride):
    """A symbolic stride for sizes >= 1: torch writes the stride after a dynamic dim T as
    `Max(1, T) * ...`, which is `T * ...` whenever the tensor has elements (an empty one has no
    layout to agree on)."""
    return sympy.sympify(stride).replace(
        lambda e: isinstance(e, _MAXES) and sympy.Integer(1) in e.args,
        lambda e: sympy.Max(*[a for a in e.args if a != 1]))


_MAXES = (sympy.Max, torch.utils._sympy.functions.Max)    # torch's shape env writes its own Max


def _check_int_division(node: Node) -> str | None:
    divisor = node.args[1]
    if node.meta.dtype not in INTS:
        return "floating-point remainder / rounded division (the device takes them on integers)"
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor == 0:
        return "division by a tensor or a symbolic value (the device divides by a nonzero integer constant)"
    if node.target is aten.div.Tensor_mode and node.kwargs_dict().get("rounding_mode") not in ("floor", "trunc"):
        return "div with rounding_mode=None on integers"
    return None


def _check_cat(node: Node, graph: Graph) -> str | None:
    parts = node.args[0]
    if not all(isinstance(p, Ref) for p in parts):
        return "cat of a non-tensor"
    for p in parts:
        m = graph.meta_of(p.name)
        if not isinstance(m, TensorMeta) or m.dtype not in SUPPORTED:
            return f"operand {p.name} is {_dtype_name(getattr(m, 'dtype', 'not a tensor'))}"
        if m.rank != node.meta.rank:
            return "cat of a legacy empty 1-d tensor with tensors of another rank"
    return None


def _check_gather(node: Node, graph: Graph) -> str | None:
    table, idx = graph.meta_of(node.args[0].name), graph.meta_of(node.args[VECTOR_OPS[node.target].tensor_args[0]].name)
    if node.target is aten.index_select.default and node.args[1] % max(table.rank, 1) != 0:
        return "index_select along a dim other than 0"
    if node.target is aten.take.default:
        if table.stride != contiguous_meta(tuple(table.shape), table.dtype).stride:
            return "take from a non-contiguous tensor"
    elif table.rank != 2 or not (isinstance(table.stride[1], int) and table.stride[1] == 1):
        return "gathers rows of a 2-d table with contiguous rows only"
    if table.dtype not in SUPPORTED or idx.dtype not in INTS:
        return f"table {_dtype_name(table.dtype)} indexed by {_dtype_name(idx.dtype)}"
    return None          # padding_idx, scale_grad_by_freq and sparse change only the gradient


def _feeds_device(node: Node, graph: Graph) -> bool:
    """Does some user of this view (through further views) compute on the device?"""
    for user in graph.users.get(node.name, ()):
        u = graph.node_by_name[user]
        info = VECTOR_OPS.get(u.target)
        if info is None:
            if host_reason(u, graph) is None:              # another lowering (a matmul) reads it
                return True
            continue
        if info.kind == "view" and _feeds_device(u, graph):
            return True
        if info.kind != "view" and check_vector_node(u, graph) is None:
            return True
    return False


device_rule(*VECTOR_OPS)(check_vector_node)


@device_rule(aten.view_as_complex.default, aten.view_as_real.default)
def _complex_view(node: Node, graph: Graph) -> str:
    """Complex views stay on the host (tracer/complex_arith.py moves complex products to the device
    as real arithmetic on these views)."""
    return "complex view (tiles hold no complex values; a view costs nothing on the host)"
