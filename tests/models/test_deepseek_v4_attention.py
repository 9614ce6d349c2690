"""Sparse-index construction and sparse attention against hand-derived expectations.

KV rows here encode (request, position) so that the gathered rows can be read back and compared
with the positions the doc says a token must see.
"""
from __future__ import annotations

import torch

from examples.deepseek_v4 import TINY, build_meta
from examples.deepseek_v4.attention import gather_kv, hca_indices, sparse_attention, window_indices

W = TINY.window
RUNS = [(0, 0, 5), (1, 200, 150)]        # request 0 starts, request 1 continues past the ring size


def tagged(req, pos):
    """A KV row `[req, pos, 0, ...]` of width head_dim."""
    row = torch.zeros(TINY.head_dim)
    row[0], row[1] = req, pos
    return row


def pools():
    """Ring and ratio-128 cache as they are before the step, plus this step's fresh rows."""
    ring = torch.full((TINY.max_batch * W + 1, TINY.head_dim), -7.0)
    for pos in range(200):                                 # request 1 saw positions 0..199
        ring[1 * W + pos % W] = tagged(1, pos)
    n = TINY.n_compressed(128)
    cmp = torch.full((TINY.max_batch * n + 1, TINY.head_dim), -7.0)
    for req in range(TINY.max_batch):
        for c in range(n):
            cmp[req * n + c] = tagged(req, 1000 + c)       # "position" 1000+c marks compressed row c
    fresh = torch.stack([tagged(r, s + i) for r, s, k in RUNS for i in range(k)])
    return ring, cmp, fresh


def test_window_and_hca_indices_gather_the_right_rows():
    ring, cmp, fresh = pools()
    meta = build_meta(TINY, RUNS)
    t = fresh.shape[0]
    raw = torch.cat([window_indices(meta, t, W), hca_indices(meta, t, TINY)], dim=1)
    assert raw.shape == (t, TINY.attn_width(128))
    rows = gather_kv(raw, fresh, ring, cmp, meta["req_idx"], TINY, 128)
    for i in range(t):
        req, pos = int(meta["req_idx"][i]), int(meta["positions"][i])
        seen = rows[i][raw[i] >= 0]
        assert (seen[:, 0] == req).all(), f"token {i} sees another request's rows"
        want = set(range(max(0, pos - W + 1), pos + 1)) | {1000 + c for c in range((pos + 1) // 128)}
        got = seen[:, 1].tolist()
        assert len(got) == len(set(got)) and set(got) == want, f"token {i} (pos {pos})"


def test_superseded_ring_writes_are_skipped():
    meta = build_meta(TINY, [(1, 200, 150)])
    slots = meta["swa_slot"]
    # only the last W tokens of the chunk write the ring, and they cover every slot once
    assert (slots[:150 - W] == -1).all()
    assert sorted(slots[150 - W:].tolist()) == list(range(W, 2 * W))


def test_sparse_attention_with_sink_matches_naive():
    g = torch.Generator().manual_seed(0)
    t, h, k, d = 5, 3, 9, 16
    q, kv = torch.randn(t, h, d, generator=g), torch.randn(t, k, d, generator=g)
    sink = torch.randn(h, generator=g)
    valid = torch.rand(t, k, generator=g) > 0.4
    valid[:, 0] = True
    got = sparse_attention(q, kv, valid, sink, torch.float32)
    for i in range(t):
        v = kv[i][valid[i]]
        for j in range(h):
            logits = torch.cat([v @ q[i, j] / d ** 0.5, sink[j:j + 1]])   # the sink has no value row
            p = torch.softmax(logits, dim=0)[:-1]
            torch.testing.assert_close(got[i, j], p @ v, rtol=1e-5, atol=1e-6)


def test_indexer_picks_static_width_of_visible_rows():
    from examples.deepseek_v4 import make_caches
    from examples.deepseek_v4.compressor import Indexer
    from examples.deepseek_v4.layers import rope_tables

    torch.manual_seed(0)
    indexer = Indexer(TINY)
    cos, sin = rope_tables(TINY, compressed=True)
    cache = make_caches(TINY)[1]
    t = 70
    meta = build_meta(TINY, [(1, 0, t)])
    with torch.no_grad():
        raw = indexer(torch.randn(t, TINY.dim), torch.randn(t, TINY.q_lora_rank), meta, cache, cos, sin)
    assert raw.shape == (t, TINY.index_width)
    for i in range(t):
        visible = (i + 1) // 4                             # compressed rows complete at position i
        picked = raw[i][raw[i] >= 0] - (W + t)
        assert len(picked) == min(visible, TINY.index_width)
        assert len(set(picked.tolist())) == len(picked) and (picked < visible).all()
