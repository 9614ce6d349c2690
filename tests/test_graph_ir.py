"""Graph IR: printer text, verifier rules, CSE and DCE on hand-built graphs."""
import pytest
import sympy
import torch
from torch.utils._sympy.functions import FloorDiv

from pto_dynamo.graph.dims import DimSource, DynDim, dim_symbol, dim_text, dim_to_python
from pto_dynamo.graph.ir import Graph, GraphInput, Node, Ref, TensorMeta
from pto_dynamo.graph.printer import canonical_text, graph_text
from pto_dynamo.graph.verify import GraphVerifyError, verify_graph
from pto_dynamo.lowering.simplify import eliminate_common_subexpressions, eliminate_dead_code

aten = torch.ops.aten
T = dim_symbol("T")


def meta(*shape, dtype=torch.bfloat16):
    stride, acc = [], 1
    for d in reversed(shape):
        stride.insert(0, acc)
        acc = acc * d
    return TensorMeta(tuple(shape), dtype, tuple(stride))


def graph(nodes, outputs, name="g"):
    return Graph(name, (GraphInput("x", meta(T, 4, 4096)),), tuple(nodes), tuple(outputs),
                 (DynDim("T", (DimSource(0, 0),)),))


def test_printer_has_a_shape_comment_per_line():
    g = graph([Node("t1", aten.mul.Tensor, (Ref("x"), Ref("x")), (), meta(T, 4, 4096)),
               Node("t2", aten.view.default, (Ref("t1"), (T * 4, -1)), (), meta(4 * T, 4096))],
              [Ref("t2"), T - 1])
    text = graph_text(g)
    assert 't1: "bf16[T, 4, 4096]" = aten.mul.Tensor(x, x)' in text
    assert 't2: "bf16[4*T, 4096]" = aten.view.default(t1, [4*T, -1])' in text
    assert "# dyndim T <- input 0 axis 0" in text
    assert "return [t2, T - 1]" in text
    assert canonical_text(g) == canonical_text(graph(g.nodes, g.outputs, name="other"))


def test_dim_printing_is_python():
    blocks = FloorDiv(T + 127, 128)                      # what torch's ShapeEnv produces for (T+127)//128
    assert dim_to_python(blocks) == "(T + 127) // 128"
    assert eval(dim_to_python(blocks), {"T": 300}) == 3
    assert eval(dim_to_python(sympy.Max(T, 4)), {"T": 2, "max": max}) == 4
    assert dim_text(T) == "T"


def test_verifier_rejects_use_before_definition():
    g = graph([Node("t1", aten.neg.default, (Ref("t2"),), (), meta(T, 4, 4096)),
               Node("t2", aten.neg.default, (Ref("x"),), (), meta(T, 4, 4096))], [Ref("t1")])
    with pytest.raises(GraphVerifyError, match="node t1: uses t2 before it is defined"):
        verify_graph(g)


def test_verifier_rejects_unknown_dim_and_duplicate_names():
    S = dim_symbol("S")
    bad_dim = graph([Node("t1", aten.neg.default, (Ref("x"),), (), meta(S, 4, 4096))], [Ref("t1")])
    with pytest.raises(GraphVerifyError, match="dynamic dim\\(s\\) S"):
        verify_graph(bad_dim)
    dup = graph([Node("x", aten.neg.default, (Ref("x"),), (), meta(T, 4, 4096))], [Ref("x")])
    with pytest.raises(GraphVerifyError, match="duplicate name"):
        verify_graph(dup)


def test_cse_merges_repeated_norms_and_dce_drops_dead_nodes():
    m = meta(T, 4, 4096)
    g = graph([Node("a", aten.mul.Tensor, (Ref("x"), Ref("x")), (), m),
               Node("b", aten.mul.Tensor, (Ref("x"), Ref("x")), (), m),
               Node("c", aten.add.Tensor, (Ref("a"), Ref("b")), (), m),
               Node("dead", aten.exp.default, (Ref("x"),), (), m)], [Ref("c")])
    g2 = eliminate_dead_code(eliminate_common_subexpressions(g))
    verify_graph(g2)
    assert [n.name for n in g2.nodes] == ["a", "c"]
    assert g2.node_by_name["c"].args == (Ref("a"), Ref("a"))


def test_cse_keeps_random_and_mutating_ops():
    m = meta(T, 4, 4096)
    g = graph([Node("r1", aten.rand_like.default, (Ref("x"),), (), m),
               Node("r2", aten.rand_like.default, (Ref("x"),), (), m),
               Node("w", aten.add_.Tensor, (Ref("x"), Ref("r1")), (), m)], [Ref("r2")])
    g2 = eliminate_dead_code(eliminate_common_subexpressions(g))
    assert [n.name for n in g2.nodes] == ["r1", "r2", "w"]
