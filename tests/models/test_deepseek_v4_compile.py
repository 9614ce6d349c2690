"""One decoder layer of each kind traces whole (fullgraph) under aot_eager with a dynamic token
count: one graph for T = 1..N, same outputs and same in-place cache updates as eager. (The whole
model's one graph for prefill and decode is asserted with the pto backend itself, in
test_deepseek_v4_pto.py.)"""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch._dynamo
import torch._dynamo.testing

from examples.deepseek_v4 import TINY, DeepSeekV4, build_meta, make_caches


@pytest.fixture(scope="module")
def model() -> DeepSeekV4:
    return DeepSeekV4(TINY).eval()


def bf16_model() -> DeepSeekV4:
    return DeepSeekV4(dataclasses.replace(TINY, dtype=torch.bfloat16)).eval()


def step_inputs(n_tokens: int, seed: int, dtype: torch.dtype = torch.float32):
    """x_hc, input_ids and meta of a decode-like step: request 0 gets 1 token at position 255
    (a ratio-128 / ratio-4 window end), request 1 the rest, starting at 126 (crossing the ring)."""
    g = torch.Generator().manual_seed(seed)
    runs = [(0, 255, 1)] + ([(1, 126, n_tokens - 1)] if n_tokens > 1 else [])
    x_hc = torch.randn(n_tokens, TINY.hc_mult, TINY.dim, generator=g).to(dtype)
    ids = torch.randint(0, TINY.vocab_size, (n_tokens,), generator=g)
    return x_hc, ids, build_meta(TINY, runs)


def filled_caches(seed: int, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(seed)
    cfg = dataclasses.replace(TINY, dtype=dtype)
    return [{k: torch.randn(v.shape, generator=g).to(v.dtype) for k, v in c.items()} for c in make_caches(cfg)]


def mark_tokens(x_hc, ids, meta) -> None:
    # one unbacked symbol shared by every token-major input: a single graph covers T = 1 too
    for t in (x_hc, ids, *meta.values()):
        torch._dynamo.decorators.mark_unbacked(t, 0, shape_id="T")


@pytest.mark.parametrize("layer_id,kind,dtype", [(0, "SWA", torch.float32), (1, "CSA", torch.float32),
                                                  (2, "HCA", torch.float32), (1, "CSA", torch.bfloat16)])
def test_layer_compiles_once_for_all_token_counts(model, layer_id, kind, dtype):
    block = (model if dtype == torch.float32 else bf16_model()).layer(kind)
    assert block.layer_id == layer_id
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(block, backend=counter, fullgraph=True)
    for n_tokens in (3, 1, 2, 17):
        x_hc, ids, meta = step_inputs(n_tokens, seed=n_tokens, dtype=dtype)
        mark_tokens(x_hc, ids, meta)
        eager_caches, compiled_caches = filled_caches(layer_id, dtype), filled_caches(layer_id, dtype)
        with torch.no_grad():
            want = block(x_hc, ids, meta, eager_caches[layer_id])
            got = compiled(x_hc, ids, meta, compiled_caches[layer_id])
        # bf16: aot_eager runs the same ATen ops, so results match up to bf16 re-rounding
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
        torch.testing.assert_close(got, want, **tol)
        for name, t in eager_caches[layer_id].items():
            torch.testing.assert_close(compiled_caches[layer_id][name], t, **tol,
                                       msg=lambda m: f"{kind} T={n_tokens} cache {name}: {m}")
    assert counter.frame_count == 1, f"{kind}: {counter.frame_count} graphs for 4 token counts"
