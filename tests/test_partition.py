"""Partition: maximal acyclic device regions, host reasons, and the region interface end to end.

The device registry is empty until the lowering issues land, so these tests register temporary
rules and run regions through the reference region runner (ATen), checking the host program's
region calls, allocation and ordering against eager."""
import pytest
import torch

from pto_dynamo.graph.dims import DimSource, DynDim, dim_symbol
from pto_dynamo.graph.ir import Graph, GraphInput, Node, Ref, TensorMeta
from pto_dynamo.lowering.partition import partition_graph
from pto_dynamo.lowering.registry import device_rule, unregister_device_rule
from tests.conftest import VERIFY, compiled_graphs

aten = torch.ops.aten
POINTWISE = (aten.add.Tensor, aten.mul.Tensor, aten.exp.default, aten.sub.Tensor)


@pytest.fixture
def pointwise_on_device():
    device_rule(*POINTWISE)(lambda node, graph: None)
    yield
    for op in POINTWISE:
        unregister_device_rule(op)


def _meta(*shape):
    stride, acc = [], 1
    for d in reversed(shape):
        stride.insert(0, acc)
        acc = acc * d
    return TensorMeta(tuple(shape), torch.float32, tuple(stride))


def _graph(nodes, outputs):
    T = dim_symbol("T")
    return Graph("g", (GraphInput("x", _meta(T, 4)),), tuple(nodes), tuple(outputs),
                 (DynDim("T", (DimSource(0, 0),)),))


def test_region_never_depends_on_host_node_that_depends_on_it(pointwise_on_device):
    T = dim_symbol("T")
    nodes = [
        Node("a", aten.exp.default, (Ref("x"),), (), _meta(T, 4)),
        Node("h", aten.cos.default, (Ref("a"),), (), _meta(T, 4)),            # host
        Node("b", aten.add.Tensor, (Ref("a"), Ref("h")), (), _meta(T, 4)),    # needs h
        Node("c", aten.mul.Tensor, (Ref("a"), Ref("a")), (), _meta(T, 4)),    # independent of h
    ]
    p = partition_graph(_graph(nodes, [Ref("b"), Ref("c")]))
    regions = [set(r.nodes) for r in p.regions]
    assert {"a", "c"} in regions and {"b"} in regions and len(regions) == 2
    assert p.host_reason_of("h") == "no device rule for aten.cos.default"
    order = [u for u in p.schedule]
    assert order.index(("node", "h")) < order.index(("region", [i for i, r in enumerate(regions) if r == {"b"}][0]))


def test_host_only_keeps_everything_on_host(pointwise_on_device):
    T = dim_symbol("T")
    p = partition_graph(_graph([Node("a", aten.exp.default, (Ref("x"),), (), _meta(T, 4))], [Ref("a")]), host_only=True)
    assert p.regions == () and p.host_reason_of("a") == "host_only option"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_regions_run_through_host_program(fresh, pointwise_on_device, dtype):
    def f(x, y):
        a = (x + y).exp()
        h = a.cos()                       # host node between device work
        return a * h - y, a + 1
    cf = torch.compile(f, backend="pto", fullgraph=True, options=VERIFY)
    for n in [1, 7, 64]:
        x, y = torch.randn(n, 5, dtype=dtype), torch.randn(n, 5, dtype=dtype)
        fresh.mark_dynamic(x, 0, name="T")
        fresh.mark_dynamic(y, 0)
        torch.testing.assert_close(cf(x, y), f(x, y))
    (c,) = compiled_graphs()
    assert len(c.partition.regions) >= 1
    assert "regions[0](" in c.host_program.source and "torch.empty_strided([T, 5], [5, 1]" in c.host_program.source
    s = fresh.stats()
    assert s["signatures_compiled"] == 1
    assert s["host_nodes"][c.graph.name] == len(c.partition.host_reasons) >= 1
