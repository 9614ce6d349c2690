"""Every generated host function reads only its parameters, its locals and HOST_GLOBALS, so no
function can use a dim it did not bind."""
import symtable

import torch
import torch.nn.functional as F

from examples.transformer_block import make_block
from pto_dynamo.ascend_backend.host_program import HOST_GLOBALS
from tests.conftest import compiled_graphs


def _free_names(source: str, fn_name: str) -> set[str]:
    table = symtable.symtable(source, "<host>", "exec")
    (fn,) = [c for c in table.get_children() if c.get_name() == fn_name]
    return {s.get_name() for s in fn.get_symbols() if s.is_global() or s.is_free()}


def _check_all():
    graphs = compiled_graphs()
    assert graphs
    for c in graphs:
        free = _free_names(c.host_program.source, c.graph.name)
        assert free <= set(HOST_GLOBALS), (c.graph.name, free - set(HOST_GLOBALS), c.host_program.source)


def test_generated_functions_bind_what_they_use(fresh):
    def f(x, pos, cache):
        n = x.shape[0]
        y = F.softmax(x, -1)[: n - 1]
        cache.index_copy_(0, pos, x)
        return y.sum(0) * ((n + 127) // 128), torch.arange(n) * 2
    cf = torch.compile(f, backend="pto", fullgraph=True)
    x, pos, cache = torch.randn(6, 4), torch.arange(6), torch.zeros(10, 4)
    fresh.mark_dynamic(x, 0)
    fresh.mark_dynamic(pos, 0)
    cf(x, pos, cache)
    block = make_block()
    xb = torch.randn(9, 64, requires_grad=True)
    fresh.mark_dynamic(xb, 0, name="T")
    torch.compile(block, backend="pto", fullgraph=True)(xb).sum().backward()   # forward + backward graphs
    _check_all()
    kinds = {c.graph.name.split("_", 1)[1] for c in compiled_graphs()}
    assert {"inference", "forward", "backward"} <= kinds


def test_scope_checker_catches_an_unbound_dim():
    src = "def g(a):\n    return a.view(T, -1)\n"
    assert _free_names(src, "g") == {"T"}
