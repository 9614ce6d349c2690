"""Self-consistency of the DeepSeek-V4 example (eager, fp32, TINY config).

One-shot prefill == chunked prefill (several chunk sizes, also several requests in one step) ==
token-by-token decode (S = 1 and MTP-style S = 2), for logits and for every cache and compressor
state. L = 300 crosses two ratio-128 windows, wraps the 128-slot ring and exercises the ratio-4
overlap and the attention sink.
"""
from __future__ import annotations

import pytest
import torch

from examples.deepseek_v4 import TINY, DeepSeekV4, Session
from examples.deepseek_v4.layers import HyperConnection, sinkhorn

L = 300
TOL = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def model() -> DeepSeekV4:
    return DeepSeekV4(TINY).eval()


@pytest.fixture(scope="module")
def prompts() -> torch.Tensor:
    return torch.randint(0, TINY.vocab_size, (TINY.max_batch, L), generator=torch.Generator().manual_seed(1))


def cache_rows(name: str, t: torch.Tensor) -> torch.Tensor:
    """Drop the trash row (last) of caches that have one; states have none."""
    return t if name.endswith("state") else t[:-1]


def assert_same_caches(a: Session, b: Session) -> None:
    for layer, (ca, cb) in enumerate(zip(a.caches, b.caches)):
        assert ca.keys() == cb.keys()
        for name in ca:
            torch.testing.assert_close(cache_rows(name, ca[name]), cache_rows(name, cb[name]), **TOL,
                                       msg=lambda m: f"layer {layer} {name}: {m}")


@pytest.fixture(scope="module")
def one_shot(model, prompts):
    """Reference: each request prefilled in one chunk of L tokens."""
    with torch.no_grad():
        session = Session(model)
        logits = torch.stack([session.prefill(r, prompts[r]) for r in range(TINY.max_batch)])
    return session, logits


def test_caches_are_exercised(one_shot):
    session, logits = one_shot
    assert torch.isfinite(logits).all()
    n128 = L // 128                                    # complete ratio-128 windows per request
    cmp128 = session.caches[2]["cmp_kv"]
    assert cmp128[:n128].abs().sum(-1).gt(0).all() and cmp128[n128:TINY.max_seq_len // 128].eq(0).all()
    cmp4 = session.caches[1]["cmp_kv"]
    assert cmp4[:L // 4].abs().sum(-1).gt(0).all() and cmp4[L // 4:TINY.max_seq_len // 4].eq(0).all()


@pytest.mark.parametrize("chunk", [7, 64, 128, 200])
def test_chunked_prefill_matches_one_shot(model, prompts, one_shot, chunk):
    ref_session, ref_logits = one_shot
    session = Session(model)
    with torch.no_grad():
        for r in range(TINY.max_batch):
            out = [session.prefill(r, prompts[r, i:i + chunk]) for i in range(0, L, chunk)]
            torch.testing.assert_close(torch.cat(out), ref_logits[r], **TOL)
    assert_same_caches(session, ref_session)


def test_multi_request_step_matches_one_shot(model, prompts, one_shot):
    """Chunks of both requests (different lengths and starts) packed into one step."""
    ref_session, ref_logits = one_shot
    session = Session(model)
    bounds = [(0, 90, 210, 300), (0, 150, 300, 300)]  # per request: chunk boundaries of 3 steps
    outs: dict[int, list[torch.Tensor]] = {0: [], 1: []}
    with torch.no_grad():
        for step in range(3):
            runs = [(r, bounds[r][step], bounds[r][step + 1] - bounds[r][step]) for r in (0, 1)]
            ids = torch.cat([prompts[r, a:a + n] for r, a, n in runs])
            logits = session.run(runs, ids)
            outs[0].append(logits[:runs[0][2]])
            outs[1].append(logits[runs[0][2]:])
    for r in (0, 1):
        torch.testing.assert_close(torch.cat(outs[r]), ref_logits[r], **TOL)
    assert_same_caches(session, ref_session)


@pytest.mark.parametrize("s", [1, 2])
def test_decode_matches_one_shot(model, prompts, one_shot, s):
    """B requests x S tokens per step, from an empty cache to L tokens."""
    ref_session, ref_logits = one_shot
    session = Session(model)
    with torch.no_grad():
        out = [session.decode_step(prompts[:, i:i + s]).view(TINY.max_batch, s, -1) for i in range(0, L, s)]
    torch.testing.assert_close(torch.cat(out, dim=1), ref_logits, **TOL)
    assert_same_caches(session, ref_session)


def test_prefill_then_mtp_decode(model, prompts, one_shot):
    ref_session, ref_logits = one_shot
    session = Session(model)
    with torch.no_grad():
        first = [session.prefill(r, prompts[r, :131]) for r in range(TINY.max_batch)]
        rest = [session.decode_step(prompts[:, i:i + 2]).view(TINY.max_batch, 2, -1)
                for i in range(131, L - 1, 2)]
    torch.testing.assert_close(torch.stack(first), ref_logits[:, :131], **TOL)
    torch.testing.assert_close(torch.cat(rest, dim=1), ref_logits[:, 131:L - 1], **TOL)


def test_sinkhorn_is_doubly_stochastic():
    # unit-scale logits, as hc_pre produces; 20 iterations converge to ~1e-4 there (far sharper
    # logits converge more slowly, and the reference runs a fixed 20 all the same)
    logits = torch.randn(64, 4, 4, generator=torch.Generator().manual_seed(0))
    c = sinkhorn(logits, TINY.hc_sinkhorn_iters, TINY.hc_eps)
    assert (c > 0).all()
    torch.testing.assert_close(c.sum(-2), torch.ones(64, 4), rtol=0, atol=1e-5)   # last step: columns
    torch.testing.assert_close(c.sum(-1), torch.ones(64, 4), rtol=0, atol=1e-3)


def test_hc_pre_comb_is_doubly_stochastic():
    torch.manual_seed(0)
    hc = HyperConnection(TINY)
    _, post, comb = hc.pre(torch.randn(16, TINY.hc_mult, TINY.dim))
    assert comb.shape == (16, 4, 4) and ((post > 0) & (post < 2)).all()
    torch.testing.assert_close(comb.sum(-2), torch.ones(16, 4), rtol=0, atol=1e-5)
    torch.testing.assert_close(comb.sum(-1), torch.ones(16, 4), rtol=0, atol=1e-3)
