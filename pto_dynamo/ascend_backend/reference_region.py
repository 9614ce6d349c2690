"""A device-region runner that executes the region's nodes with ATen: the oracle for the host
program's region interface, and the runner used when a region has no native code yet."""
from __future__ import annotations

import operator

import sympy

from pto_dynamo.graph.dims import dim_symbol
from pto_dynamo.graph.ir import Graph, map_refs
from pto_dynamo.lowering.partition import DeviceRegion


class ReferenceRegion:
    """`runner(tensors, scalars)`: tensors = region inputs then outputs, scalars = its dims."""

    kernel_names = ("<reference: ATen, no native kernel>",)

    def __init__(self, graph: Graph, region: DeviceRegion, scalar_names: tuple[str, ...]):
        self.graph = graph
        self.region = region
        self.scalar_names = scalar_names

    def __call__(self, tensors: list, scalars: list) -> None:
        n_in = len(self.region.inputs)
        env = dict(zip(self.region.inputs, tensors[:n_in]))
        dims = {dim_symbol(n): v for n, v in zip(self.scalar_names, scalars)}

        def value(v):
            v = map_refs(v, lambda r: env[r.name])
            return _subst(v, dims)

        for name in self.region.nodes:
            node = self.graph.node_by_name[name]
            args, kwargs = value(node.args), dict(value(node.kwargs))
            env[name] = args[0][args[1]] if node.target is operator.getitem else node.target(*args, **kwargs)
        for name, out in zip(self.region.outputs, tensors[n_in:]):
            out.copy_(env[name])


def _subst(value, dims):
    if isinstance(value, sympy.Basic):
        return _number(value.xreplace(dims))
    if isinstance(value, tuple):
        return tuple(_subst(v, dims) for v in value)
    if isinstance(value, list):
        return [_subst(v, dims) for v in value]
    return value


def _number(e: sympy.Basic):
    """A symbolic scalar with every dim substituted, as the Python number ATen takes: an int for a
    size, a float for a float expression (BatchNorm's backward scales by 1 / (N * H * W): truncated
    to an int it was 0, and the gradients with it)."""
    if isinstance(e, (bool, int, float)):            # some of torch's sympy functions evaluate to these
        return e
    if isinstance(e, sympy.logic.boolalg.BooleanAtom):
        return bool(e)
    if e.is_Integer:
        return int(e)
    if e.is_number:
        return float(e)
    raise ValueError(f"reference region: scalar {e} still has free symbols {sorted(map(str, e.free_symbols))}")
