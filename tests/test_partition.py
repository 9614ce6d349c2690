"""Partition: maximal acyclic device regions, host reasons, the region interface end to end, and
the ATen reference runner a region falls back to when it cannot be lowered."""
import pytest
import torch

from pto_dynamo.graph.dims import DimSource, DynDim, dim_symbol
from pto_dynamo.graph.ir import Graph, GraphInput, Node, Ref, TensorMeta
from pto_dynamo.lowering.partition import partition_graph
from pto_dynamo.lowering.registry import device_rule, unregister_device_rule
from tests.conftest import VERIFY, compiled_graphs

aten = torch.ops.aten
T = dim_symbol("T")


def _meta(*shape):
    stride, acc = [], 1
    for d in reversed(shape):
        stride.insert(0, acc)
        acc = acc * d
    return TensorMeta(tuple(shape), torch.float32, tuple(stride))


def _graph(nodes, outputs):
    return Graph("g", (GraphInput("x", _meta(T, 4)),), tuple(nodes), tuple(outputs),
                 (DynDim("T", (DimSource(0, 0),)),))


def _node(name, op, *args):
    return Node(name, op, tuple(Ref(a) for a in args), (), _meta(T, 4))


def test_region_never_depends_on_host_node_that_depends_on_it():
    nodes = [_node("a", aten.exp.default, "x"),
             _node("h", aten.atan.default, "a"),            # host (no device rule)
             _node("b", aten.add.Tensor, "a", "h"),         # needs h
             _node("c", aten.mul.Tensor, "a", "a")]         # independent of h
    p = partition_graph(_graph(nodes, [Ref("b"), Ref("c")]))
    regions = [set(r.nodes) for r in p.regions]
    assert {"a", "c"} in regions and {"b"} in regions and len(regions) == 2
    assert p.host_reason_of("h") == "no device rule for aten.atan.default"
    order = list(p.schedule)
    b_region = [i for i, r in enumerate(regions) if r == {"b"}][0]
    assert order.index(("node", "h")) < order.index(("region", b_region))


def test_no_cycle_through_another_member_of_a_region():
    """Regression: d may not join region {a} through c when c's region also holds b, which reads h,
    which reads a: the regions run as whole units."""
    nodes = [_node("a", aten.exp.default, "x"),
             _node("h", aten.atan.default, "a"),
             _node("b", aten.add.Tensor, "h", "h"),         # region R1 (depends on a via h)
             _node("c", aten.mul.Tensor, "x", "x"),         # joins R1 as the latest region
             _node("d", aten.add.Tensor, "a", "c")]
    p = partition_graph(_graph(nodes, [Ref("d"), Ref("b")]))
    region_of = {n: r.index for r in p.regions for n in r.nodes}
    assert region_of["c"] == region_of["b"] != region_of["a"]     # c joined the latest region
    assert region_of["d"] == region_of["c"]                        # not a's region: that is a cycle
    order = list(p.schedule)                                        # (building it checks for cycles)
    assert order.index(("region", region_of["a"])) < order.index(("node", "h")) < order.index(("region", region_of["d"]))


def test_host_only_keeps_everything_on_host():
    p = partition_graph(_graph([_node("a", aten.exp.default, "x")], [Ref("a")]), host_only=True)
    assert p.regions == () and p.host_reason_of("a") == "host_only option"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_regions_run_natively_through_host_program(fresh, dtype):
    def f(x, y):
        a = (x + y).exp()
        h = a.atan()                      # host node between device work
        return a * h - y, a + 1
    cf = torch.compile(f, backend="pto", fullgraph=True, options=VERIFY)
    gen = torch.Generator().manual_seed(0)
    for n in [1, 7, 64]:
        x, y = (torch.randn(n, 5, generator=gen).to(dtype) for _ in range(2))
        fresh.mark_dynamic(x, 0, name="T")
        fresh.mark_dynamic(y, 0)
        # DESIGN.md "Numerics": device kernels compute in f32 and round once, so bf16 results are
        # compared with eager computed in f32 and cast back
        want = tuple(t.to(dtype) for t in f(x.float(), y.float()))
        torch.testing.assert_close(cf(x, y), want, **({"rtol": 1.6e-2, "atol": 1e-2} if dtype != torch.float32 else {}))
    (c,) = compiled_graphs()
    assert len(c.partition.regions) == 2
    assert all(r.kernel_names and not hasattr(r, "fallback_reason") for r in c.runners)
    assert "regions[0](" in c.host_program.source and "empty_strided([T, 5], [5, 1]" in c.host_program.source
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and s["launches"] >= 6
    assert s["host_nodes"][c.graph.name] == 1                      # atan


@pytest.fixture
def atan_claimed_without_lowering():
    device_rule(aten.atan.default)(lambda node, graph: None)
    yield
    unregister_device_rule(aten.atan.default)


def test_region_without_lowering_falls_back_to_aten(fresh, atan_claimed_without_lowering, tmp_path):
    f = torch.compile(lambda x: (x * 2).atan() + 1, backend="pto", fullgraph=True,
                      options={"debug_dir": str(tmp_path)})
    x = torch.randn(6, 3)
    torch.testing.assert_close(f(x), (x * 2).atan() + 1)
    (c,) = compiled_graphs()
    (runner,) = c.runners
    assert "no rule" in runner.fallback_reason and "atan" in runner.fallback_reason
    (dumped,) = tmp_path.glob("*/*_region0_fallback.txt")          # the reason and where it was raised
    text = dumped.read_text()
    assert text.startswith(runner.fallback_reason) and "Traceback" in text and "lower_vector_region" in text
