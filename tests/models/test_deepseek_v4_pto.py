"""The whole DeepSeek-V4 model (TINY) through torch.compile(backend="pto", fullgraph=True) matches
eager: decode steps and prefill chunks of several lengths, with logits, every cache and compressor
state, and the top-k expert / indexer selections. The token dim is marked with
`pto_dynamo.mark_dynamic`, so prefill chunks of every length and decode steps share one compile."""
from __future__ import annotations

import pytest
import torch

import pto_dynamo
from examples.deepseek_v4 import TINY, DeepSeekV4, Session

TOL = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def model() -> DeepSeekV4:
    return DeepSeekV4(TINY).eval()


def compiled_forward(model):
    compiled = torch.compile(model, backend="pto", fullgraph=True)

    def forward(ids, meta, caches, *rest):
        for t in (ids, *meta.values()):
            pto_dynamo.mark_dynamic(t, 0, name="T")
        return compiled(ids, meta, caches, *rest)
    return forward


def assert_same(got: Session, want: Session, logits_got, logits_want, where: str) -> None:
    scale = logits_want.abs().max().item()
    torch.testing.assert_close(logits_got, logits_want, rtol=1e-4, atol=1e-4 * scale,
                               msg=lambda m: f"{where} logits: {m}")
    for layer, (cg, cw) in enumerate(zip(got.caches, want.caches)):
        for name in cw:
            a, b = (cg[name], cw[name]) if name.endswith("state") else (cg[name][:-1], cw[name][:-1])
            torch.testing.assert_close(a, b, **TOL, msg=lambda m: f"{where} layer {layer} {name}: {m}")
    assert got.last_selections.keys() == want.last_selections.keys()
    assert any(k.endswith(".indexer") for k in want.last_selections)
    for k, v in want.last_selections.items():
        assert torch.equal(got.last_selections[k], v), f"{where}: selection {k} differs"


def _check_prefill_chunks(pto_forward, model) -> None:
    """Request 0 prefills 130 then 7 tokens (across the ratio-128 window end at 127)."""
    prompt = torch.randint(0, TINY.vocab_size, (137,), generator=torch.Generator().manual_seed(1))
    eager = Session(model, batch=2, record=True)
    pto = Session(model, batch=2, forward=pto_forward, record=True)
    with torch.no_grad():
        for start, n in ((0, 130), (130, 7)):
            want = eager.prefill(0, prompt[start:start + n])
            got = pto.prefill(0, prompt[start:start + n])
            assert_same(pto, eager, got, want, f"prefill chunk {start}+{n}")
    assert pto.caches[2]["cmp_kv"][0].abs().sum() > 0        # a ratio-128 row was written


def _check_decode_steps(pto_forward, model) -> None:
    """Two requests at positions 254 and 253 (prefilled in eager) take three steps across the
    window end at 255 (ratio-128 and ratio-4 rows); T = 2, 2, 4 (MTP)."""
    g = torch.Generator().manual_seed(0)
    prefix = torch.randint(0, TINY.vocab_size, (2, 254), generator=g)
    eager = Session(model, batch=2, record=True)
    with torch.no_grad():
        eager.prefill(0, prefix[0, :254])
        eager.prefill(1, prefix[1, :253])
    pto = Session(model, batch=2, forward=pto_forward, record=True)
    for c_pto, c_eager in zip(pto.caches, eager.caches):
        for k in c_eager:
            c_pto[k].copy_(c_eager[k])
    pto.seq_lens = list(eager.seq_lens)
    steps = [torch.randint(0, TINY.vocab_size, (2, s), generator=g) for s in (1, 1, 2)]
    with torch.no_grad():
        for i, ids in enumerate(steps):
            want = eager.decode_step(ids)
            got = pto.decode_step(ids)
            assert_same(pto, eager, got, want, f"decode step {i}")


@pytest.mark.slow
def test_prefill_chunks_and_decode_steps_match_eager_one_compile(fresh, model):
    """Prefill chunks of 130 and 7 tokens, then decode steps of 2, 2 and 4 tokens, through one
    compiled model: one compile serves every token count of both phases."""
    forward = compiled_forward(model)
    _check_prefill_chunks(forward, model)
    _check_decode_steps(forward, model)
    s = pto_dynamo.stats()
    assert s["graphs_received"] >= 1
    assert s["signatures_compiled"] == 1, s
    assert list(s["fallback_regions"].values()) == [0], s
