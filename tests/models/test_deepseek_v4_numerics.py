"""bf16 and W8A8 variants of the TINY model stay close to fp32, and the RoPE tables are right.

Where they differ most, a discrete choice flipped (MoE top-k, indexer top-k); the bulk of the
tokens agrees to ~1e-4 in cosine, so the quantiles below are what is asserted.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from examples.deepseek_v4 import TINY, DeepSeekV4, Session
from examples.deepseek_v4.layers import rope_tables


def prefill_logits(cfg, prompts):
    session = Session(DeepSeekV4(cfg).eval())
    with torch.no_grad():
        logits = torch.cat([session.prefill(r, prompts[r]) for r in range(len(prompts))])
    return logits, session


@pytest.fixture(scope="module")
def prompts():
    return torch.randint(0, TINY.vocab_size, (TINY.max_batch, 200), generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def fp32_logits(prompts):
    return prefill_logits(TINY, prompts)[0]


@pytest.mark.parametrize("dtype,w8a8", [(torch.bfloat16, False), (torch.float32, True), (torch.bfloat16, True)])
def test_low_precision_close_to_fp32(prompts, fp32_logits, dtype, w8a8):
    cfg = dataclasses.replace(TINY, dtype=dtype, w8a8=w8a8)
    logits, session = prefill_logits(cfg, prompts)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    cos = torch.nn.functional.cosine_similarity(logits, fp32_logits, dim=-1)
    assert cos.median() > 0.999 and torch.quantile(cos, 0.1) > 0.99, torch.quantile(cos, torch.tensor([0.0, 0.1, 0.5]))
    for cache in session.caches:   # caches in the model dtype, compressor states always fp32
        for name, t in cache.items():
            assert t.dtype == (torch.float32 if name.endswith("state") else dtype), name


def test_rope_tables():
    cos, sin = rope_tables(TINY, compressed=False)
    i = torch.arange(TINY.rope_dim // 2)
    angle = 300 * TINY.rope_theta ** (-2.0 * i / TINY.rope_dim)
    torch.testing.assert_close(cos[300], angle.cos())
    torch.testing.assert_close(sin[300], angle.sin())
    # YaRN on compressed layers: the fastest pair keeps its frequency, slower pairs are
    # interpolated towards freq / factor (never past it)
    cos_c, sin_c = rope_tables(TINY, compressed=True)
    freq = TINY.compress_rope_theta ** (-2.0 * i / TINY.rope_dim)
    got = torch.atan2(sin_c[1], cos_c[1])
    assert math.isclose(got[0].item(), freq[0].item(), rel_tol=1e-5)
    assert (got <= freq * (1 + 1e-5)).all() and (got >= freq / TINY.rope_factor * (1 - 1e-5)).all()
    assert got[-1] < freq[-1] * 0.9
