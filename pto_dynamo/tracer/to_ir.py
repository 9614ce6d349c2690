"""Convert aot_autograd's functional ATen FX graph into the graph IR.

Every free symbol of the ShapeEnv that the graph mentions becomes a `DynDim`:
  - symbols that are sizes of graph inputs (or integer inputs) get binding sources;
  - symbols minted inside the graph (an unbacked size such as `sym_size(x[:n-1], 0)`, or
    `.item()`) are bound by the node that produces them, which is named after the DynDim.
Scalar (SymInt/SymBool) nodes whose value is an expression of known dims are folded into the
arguments that use them, so `view(x, [n, -1])` reads `view(x, [T, -1])`.
"""
from __future__ import annotations

import keyword

import sympy
import torch
import torch.fx as fx

from pto_dynamo.graph.dims import DimSource, DynDim, as_dim, dim_symbol
from pto_dynamo.graph.ir import Graph, GraphInput, Node, Ref, ScalarMeta, TensorMeta

aten = torch.ops.aten
SYM_TYPES = (torch.SymInt, torch.SymFloat, torch.SymBool)
# Names a value or dim must not take: they are globals of the generated host program.
RESERVED_NAMES = {"torch", "aten", "math", "operator", "regions", "prims"}


class TraceError(RuntimeError):
    """The FX graph holds something the IR cannot express."""


def _safe_name(name: str, taken: set[str]) -> str:
    base = name if name.isidentifier() and not keyword.iskeyword(name) and name not in RESERVED_NAMES else f"v_{name}"
    out, i = base, 1
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    taken.add(out)
    return out


class _Converter:
    def __init__(self, gm: fx.GraphModule, graph_name: str, shape_env, dim_names: dict, input_labels=None):
        self.gm = gm
        self.graph_name = graph_name
        self.shape_env = shape_env
        self.user_dim_names = dim_names           # ShapeEnv symbol -> user name
        self.symbol_map: dict[sympy.Symbol, sympy.Symbol] = {}
        self.dyndims: dict[str, DynDim] = {}
        self.taken: set[str] = set()
        self.env: dict[fx.Node, object] = {}
        self.input_labels = input_labels

    # -- symbols -----------------------------------------------------------------------------
    def _replace(self, expr):
        return self.shape_env.replace(expr) if self.shape_env is not None else expr

    def _new_dim(self, sym: sympy.Symbol, sources=(), produced_by=None) -> sympy.Symbol:
        name = self.user_dim_names.get(sym) or str(sym)
        name = _safe_name(name, self.taken)
        self.dyndims[name] = DynDim(name, tuple(sources), produced_by)
        self.symbol_map[sym] = dim_symbol(name)
        return self.symbol_map[sym]

    def _add_source(self, sym: sympy.Symbol, source: DimSource) -> None:
        if sym not in self.symbol_map:
            self._new_dim(sym, (source,))
        else:
            d = self.dyndims[self.symbol_map[sym].name]
            self.dyndims[d.name] = DynDim(d.name, d.sources + (source,))

    def expr(self, value):
        """A SymInt/SymBool/int as an int, bool or sympy expression over DynDim symbols."""
        if isinstance(value, (bool, int, float)):
            return value
        expr = self._replace(value.node.expr)
        unknown = [s for s in expr.free_symbols if s not in self.symbol_map]
        if unknown:
            raise TraceError(f"graph {self.graph_name}: symbolic value {expr} mentions {unknown}, "
                             f"which no graph input or earlier node binds")
        out = expr.xreplace(self.symbol_map)
        if isinstance(value, torch.SymBool):
            return bool(out) if out in (sympy.true, sympy.false) else out
        return as_dim(out) if isinstance(value, torch.SymInt) else out

    def tensor_meta(self, val) -> TensorMeta:
        return TensorMeta(tuple(self.expr(s) for s in val.shape), val.dtype,
                          tuple(self.expr(s) for s in val.stride()), offset=self.expr(val.storage_offset()))

    def meta(self, val):
        if isinstance(val, torch.Tensor):
            return self.tensor_meta(val)
        if isinstance(val, (tuple, list)):
            return tuple(self.meta(v) for v in val)
        if isinstance(val, (torch.SymBool, bool)):
            return ScalarMeta("bool", self.expr(val) if isinstance(val, SYM_TYPES) else val)
        if isinstance(val, (torch.SymInt, int)):
            return ScalarMeta("int", self.expr(val) if isinstance(val, SYM_TYPES) else val)
        if isinstance(val, (torch.SymFloat, float)):
            return ScalarMeta("float", None)
        return None

    # -- arguments ---------------------------------------------------------------------------
    def arg(self, a):
        if isinstance(a, fx.Node):
            return self.env[a]
        if isinstance(a, (list, tuple)):
            return tuple(self.arg(x) for x in a)
        if isinstance(a, dict):
            raise TraceError(f"graph {self.graph_name}: dict arguments are not supported ({a})")
        return a

    # -- nodes -------------------------------------------------------------------------------
    def placeholders(self) -> list[GraphInput]:
        inputs = []
        phs = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        # First pass: register every input-bound symbol, so that input metas can mention any.
        for idx, ph in enumerate(phs):
            val = ph.meta.get("val")
            if isinstance(val, torch.Tensor):
                for axis, size in enumerate(val.shape):
                    if isinstance(size, torch.SymInt):
                        e = self._replace(size.node.expr)
                        if isinstance(e, sympy.Symbol):
                            self._add_source(e, DimSource(idx, axis))
            elif isinstance(val, torch.SymInt):
                e = self._replace(val.node.expr)
                if isinstance(e, sympy.Symbol):
                    self._add_source(e, DimSource(idx, None))
        labels = self.input_labels if self.input_labels and len(self.input_labels) == len(phs) else [None] * len(phs)
        for ph, label in zip(phs, labels):
            name = _safe_name(ph.name, self.taken)
            val = ph.meta.get("val")
            # An integer input is read through its DynDim (`T`), not through the parameter.
            self.env[ph] = self.expr(val) if isinstance(val, torch.SymInt) else Ref(name)
            inputs.append(GraphInput(name, self.meta(val), label))
        return inputs

    def call(self, n: fx.Node, nodes: list[Node]) -> None:
        val = n.meta.get("val")
        if isinstance(val, SYM_TYPES) and n.target is not aten._assert_scalar.default:
            expr = self._replace(val.node.expr)
            if isinstance(expr, sympy.Symbol) and expr not in self.symbol_map:
                # A scalar the graph itself produces (`.item()`): the node binds a new DynDim.
                name = _safe_name(n.name, self.taken)
                sym = self._new_dim(expr, produced_by=(name, None, None))
                nodes.append(Node(name, n.target, self.arg(n.args), self._kwargs(n), self.meta(val)))
                self.env[n] = sym
            else:
                self.env[n] = self.expr(val)
            return
        if isinstance(val, (int, bool)) and not isinstance(val, torch.Tensor) and n.target is not aten._assert_scalar.default:
            self.env[n] = val                     # a static scalar (sym_size of a static dim)
            return
        args = self.arg(n.args)
        if n.target is aten._assert_scalar.default and args[0] is True:
            return                                # statically known to hold
        name = _safe_name(n.name, self.taken)
        self._bind_produced_sizes(name, val)
        nodes.append(Node(name, n.target, args, self._kwargs(n), self.meta(val)))
        self.env[n] = Ref(name)

    def _bind_produced_sizes(self, name: str, val) -> None:
        """Sizes that first appear in this node's result (a data-dependent shape) become DynDims."""
        multi = isinstance(val, (tuple, list))
        for index, v in enumerate(val if multi else (val,)):
            if not isinstance(v, torch.Tensor):
                continue
            for axis, size in enumerate(v.shape):
                if isinstance(size, torch.SymInt):
                    e = self._replace(size.node.expr)
                    if isinstance(e, sympy.Symbol) and e not in self.symbol_map:
                        self._new_dim(e, produced_by=(name, index if multi else None, axis))

    def _kwargs(self, n: fx.Node):
        return tuple((k, self.arg(v)) for k, v in n.kwargs.items())

    def run(self) -> Graph:
        inputs = self.placeholders()
        for d in self.dyndims.values():            # dim names are taken before node names
            self.taken.add(d.name)
        nodes: list[Node] = []
        outputs: tuple = ()
        for n in self.gm.graph.nodes:
            if n.op == "call_function":
                self.call(n, nodes)
            elif n.op == "output":
                outputs = tuple(self.arg(a) for a in n.args[0])
            elif n.op == "get_attr":
                raise TraceError(f"graph {self.graph_name}: get_attr {n.target} (constants are lifted to inputs)")
            elif n.op != "placeholder":
                raise TraceError(f"graph {self.graph_name}: unsupported FX node {n.op} {n.target}")
        return Graph(self.graph_name, tuple(inputs), tuple(nodes), outputs, tuple(self.dyndims.values()))


def fx_to_ir(gm: fx.GraphModule, graph_name: str, shape_env=None, dim_names: dict | None = None,
             input_labels: list[str] | None = None) -> Graph:
    """Convert a functional ATen FX graph (placeholders carry meta["val"]) into a `Graph`.

    dim_names maps ShapeEnv symbols to user-chosen DynDim names (`pto_dynamo.mark_dynamic(..., name=)`);
    input_labels names where each input comes from (used only when there is one per placeholder).
    """
    return _Converter(gm, graph_name, shape_env, dim_names or {}, input_labels).run()
