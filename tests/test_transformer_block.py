"""The transformer block through backend="pto": one compile for every token count, eager results,
and a training step with eager's gradients."""
import pytest
import torch

from examples.transformer_block import make_block
from pto_dynamo.lowering.attention.op import ATTENTION
from pto_dynamo.lowering.registry import RUNTIME_CHECK
from tests.conftest import VERIFY, assert_on_device, compiled_graphs

TOKEN_COUNTS = [1, 2, 3, 17, 64, 100, 255, 256, 512]
TOL = {torch.float32: {}, torch.bfloat16: {"rtol": 2e-2, "atol": 2e-2}}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_block_all_token_counts_one_compile(fresh, dtype):
    block = make_block(dtype)
    compiled = torch.compile(block, backend="pto", fullgraph=True, options=VERIFY)
    with torch.no_grad():
        for T in TOKEN_COUNTS:
            x = torch.randn(T, 64, dtype=dtype)
            fresh.mark_dynamic(x, 0, name="T")
            torch.testing.assert_close(compiled(x), block(x), **TOL[dtype])
    s = fresh.stats()
    assert s["graphs_received"] == 1 and s["signatures_compiled"] == 1, s
    assert all(n == 0 for n in s["fallback_regions"].values()), s


MATMULS = {torch.ops.aten.mm.default, torch.ops.aten.bmm.default, torch.ops.aten.addmm.default}


@pytest.mark.slow
def test_block_long_sequences_all_on_the_device(fresh):
    """The issue's token counts up to 4096 in one compile, with no host node: the linears run as
    cube kernels, attention (SDPA, causal) as one mixed flash-attention kernel, the SwiGLU gate and
    up projections with the gate as one mixed kernel, RMSNorm and the causal mask as vector kernels."""
    block = make_block()
    compiled = torch.compile(block, backend="pto", fullgraph=True, options=VERIFY)
    with torch.no_grad():
        for T in [1, 17, 1000, 4096]:
            x = torch.randn(T, 64)
            fresh.mark_dynamic(x, 0, name="T")
            torch.testing.assert_close(compiled(x), block(x), rtol=1e-4, atol=1e-5)
    s = fresh.stats()
    assert s["graphs_received"] == 1 and s["signatures_compiled"] == 1, s
    assert all(n == 0 for n in s["fallback_regions"].values()), s
    (c,) = compiled_graphs()
    host = {name: reason for name, reason in c.partition.host_reasons if reason != RUNTIME_CHECK}
    assert not host, host
    device_matmuls = [n for n in c.graph.nodes if n.target in MATMULS]
    assert len(device_matmuls) >= 5, device_matmuls          # qkv, o, 3 MLP linears
    assert [n.target for n in c.graph.nodes].count(ATTENTION) == 1
    kernels = [k for r in c.runners for k in r.kernel_names]
    assert any(k.startswith("pto_mixed_attention") for k in kernels), kernels
    assert any(k.startswith("pto_mixed_mm_mm") for k in kernels), kernels   # silu(x w1^T) * (x w3^T)


def test_block_plain_dynamo_mark_dynamic_compiles_t1_separately(fresh):
    block = make_block()
    compiled = torch.compile(block, backend="pto", fullgraph=True)
    with torch.no_grad():
        for T in [2, 3, 17, 64, 1]:
            x = torch.randn(T, 64)
            torch._dynamo.mark_dynamic(x, 0)
            torch.testing.assert_close(compiled(x), block(x))
    s = fresh.stats()
    assert s["graphs_received"] == 2 and s["signatures_compiled"] == 2, s   # T>=2 dynamic, T=1 static


def test_block_training_step_gradients(fresh):
    ref = make_block()
    mine = make_block()
    compiled = torch.compile(mine, backend="pto", fullgraph=True, options=VERIFY)
    for T in [5, 33]:
        x = torch.randn(T, 64)
        x_ref, x_pto = x.clone().requires_grad_(), x.clone().requires_grad_()
        fresh.mark_dynamic(x_pto, 0, name="T")
        loss_ref = ref(x_ref).square().mean()
        loss_pto = compiled(x_pto).square().mean()
        torch.testing.assert_close(loss_pto, loss_ref)
        loss_ref.backward()
        loss_pto.backward()
        torch.testing.assert_close(x_pto.grad, x_ref.grad)
        for (name, p_ref), (_, p_pto) in zip(ref.named_parameters(), mine.named_parameters()):
            torch.testing.assert_close(p_pto.grad, p_ref.grad, msg=name)
    s = fresh.stats()
    assert s["graphs_received"] == 1
    assert s["signatures_compiled"] == 2          # forward + backward, one compile each for both T
    assert any(k.endswith("_backward") for k in s["host_nodes"])


@pytest.mark.parametrize("norm_first, activation", [(False, "relu"), (True, "gelu")])
def test_nn_transformer_encoder_layer_fast_path_on_the_device(fresh, norm_first, activation):
    """In eval mode under no_grad, nn.TransformerEncoderLayer calls the fused
    `_transformer_encoder_layer_fwd`, once one host op for the whole layer; without a mask it is
    decomposed (tracer/transformer_decompositions.py), so its norms, matmuls and attention run on
    the device. With a padding mask the fused op stays on the host and still matches."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=norm_first,
                                             activation=activation).eval()
    compiled = torch.compile(layer, backend="pto", fullgraph=True, options=VERIFY)
    with torch.no_grad():
        for T in (5, 17):
            x = torch.randn(2, T, 32)
            fresh.mark_dynamic(x, 1)
            torch.testing.assert_close(compiled(x), layer(x), rtol=1e-4, atol=1e-4)
        s = fresh.stats()
        assert s["signatures_compiled"] == 1, s
        assert_on_device(s)
        x, pad = torch.randn(2, 9, 32), torch.tensor([[False] * 9, [False] * 6 + [True] * 3])
        torch.testing.assert_close(compiled(x, src_key_padding_mask=pad), layer(x, src_key_padding_mask=pad),
                                   rtol=1e-4, atol=1e-4)
