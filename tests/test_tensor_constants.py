"""Tensor constants Dynamo keeps in the graph (`get_attr`: `x[:, [0, 2]]`, `torch.tensor([...])`)
reach the compiled graph as inputs (tracer/constants.py): they compile, run on the device, and
two graphs that differ only in a constant's values share one compile and each gets its own values."""
import torch

from tests.conftest import VERIFY, assert_on_device, check_dynamic


def test_an_index_list_compiles_and_runs_on_the_device(fresh):
    # once: BackendCompilerFailed "get_attr _tensor_constant0 (constants are lifted to inputs)"
    check_dynamic(fresh, lambda x: x[:, [0, 2, -1]] * 2, lambda T: (torch.randn(T, 4),), exact=True)


def test_a_torch_tensor_literal_runs_on_the_device(fresh):
    fn = lambda x: x * torch.tensor([1.0, 2.0, 3.0, 4.0]) + torch.tensor(0.5)     # noqa: E731
    check_dynamic(fresh, fn, lambda T: (torch.randn(T, 4),), exact=True)


def test_graphs_differing_only_in_constant_values_share_a_compile(fresh):
    x = torch.randn(6, 5)
    firsts, seconds = [0, 2], [4, 1]
    f = torch.compile(lambda x: x[:, firsts] * 2, backend="pto", fullgraph=True, options=VERIFY)
    g = torch.compile(lambda x: x[:, seconds] * 2, backend="pto", fullgraph=True, options=VERIFY)
    torch.testing.assert_close(f(x), x[:, firsts] * 2, rtol=0, atol=0)
    torch.testing.assert_close(g(x), x[:, seconds] * 2, rtol=0, atol=0)
    s = fresh.stats()
    assert s["graphs_received"] == 2 and s["signatures_compiled"] == 1 and s["memory_hits"] == 1, s
    assert_on_device(s)
